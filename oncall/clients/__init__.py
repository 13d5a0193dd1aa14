"""Clients: the only code that talks to the outside world, built once per flow run."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from oncall.clients.kube import KubeClient
from oncall.clients.notify import LogNotifier
from oncall.clients.prefect_api import PrefectApi
from oncall.settings import OncallSettings
from oncall.store import IncidentStore


@dataclass
class Clients:
    """Every client a playbook needs, made from one settings object."""

    settings: OncallSettings
    notifier: LogNotifier = field(default_factory=LogNotifier)

    @cached_property
    def store(self) -> IncidentStore:
        """The incident store."""
        return IncidentStore(self.settings.store_url)

    @cached_property
    def kube(self) -> KubeClient:
        """The cluster the playbooks remediate (the sandbox's unless configured)."""
        return KubeClient(self.settings.kubeconfig or self.settings.sandbox_kubeconfig)

    @cached_property
    def prefect(self) -> PrefectApi:
        """The Prefect API of the current run."""
        return PrefectApi()

    def contacts_for(self, role: str) -> list[str]:
        """Who ``role`` means right now, per the rotation file (the role name if unknown)."""
        from oncall.models import utcnow
        from oncall.rotation.loader import load_rotation
        from oncall.rotation.settings import EXAMPLE_ROTATION

        rotation = load_rotation(self.settings.rotation_file or EXAMPLE_ROTATION)
        people = rotation.contacts(role, utcnow())
        return [f"{p.name} ({p.slack_user_id})" for p in people] or [role]


__all__ = ["Clients", "IncidentStore", "KubeClient", "LogNotifier", "PrefectApi"]
