"""Clients: the only code that talks to the outside world, built once per flow run."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from oncall.clients.kube import KubeClient
from oncall.clients.notify import LogNotifier, Notifications, build_notifier
from oncall.clients.prefect_api import PrefectApi
from oncall.settings import OncallSettings
from oncall.store import IncidentStore

if TYPE_CHECKING:
    from oncall.catalog import ServiceCatalog


@dataclass
class Clients:
    """Every client a playbook needs, made from one settings object."""

    settings: OncallSettings

    @cached_property
    def store(self) -> IncidentStore:
        """The incident store."""
        return IncidentStore(self.settings.store_url)

    @cached_property
    def kube(self) -> KubeClient:
        """The cluster the playbooks remediate (the sandbox's unless configured)."""
        return KubeClient(self.kubeconfig)

    @property
    def kubeconfig(self) -> Path:
        """The kubeconfig of the cluster the playbooks remediate."""
        return self.settings.kubeconfig or self.settings.sandbox_kubeconfig

    @cached_property
    def catalog(self) -> ServiceCatalog:
        """The service catalog; against the sandbox without a file, the two seeds' entries."""
        from oncall.catalog import is_sandbox, load_catalog  # it imports the guards, which
        # import a client: not at module level

        return load_catalog(self.settings.services_file, is_sandbox(self.kubeconfig))

    @cached_property
    def prefect(self) -> PrefectApi:
        """The Prefect API of the current run."""
        return PrefectApi()

    @cached_property
    def notifier(self) -> Notifications:
        """Slack and PagerDuty as configured, else the log; failures are recorded, not raised."""
        return build_notifier(self.store, self._run_url)

    def _run_url(self, flow_run_id: str) -> str | None:
        try:
            return self.prefect.ui_url(flow_run_id)
        except Exception:  # a missing link never stops a notification
            return None

    def contacts_for(self, role: str) -> list[str]:
        """Who ``role`` means right now, per the rotation file (the role name if unknown)."""
        from oncall.models import utcnow
        from oncall.rotation.loader import load_rotation
        from oncall.rotation.settings import EXAMPLE_ROTATION

        rotation = load_rotation(self.settings.rotation_file or EXAMPLE_ROTATION)
        people = rotation.contacts(role, utcnow())
        return [f"{p.name} ({p.slack_user_id})" for p in people] or [role]


__all__ = ["Clients", "IncidentStore", "KubeClient", "LogNotifier", "Notifications", "PrefectApi"]
