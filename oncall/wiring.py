"""Where the parts are put together: every client and notifier a playbook needs, from settings.

The clients (``oncall.clients``) each talk to one peer; this module composes them with the
catalog, the rotation and the Slack side, which is why it sits above them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from oncall.clients.kube import KubeClient
from oncall.clients.metrics import ServiceMetrics
from oncall.clients.notify import (
    LogNotifier,
    Notifications,
    Notifier,
    PagerDutyLog,
    PagerDutyNotifier,
)
from oncall.clients.pagerduty import PagerDutyClient, PagerDutySettings
from oncall.clients.prefect_api import PrefectApi
from oncall.clients.prometheus import PrometheusClient, PrometheusSettings
from oncall.clients.promql_metrics import PromQLMetrics, Readings
from oncall.clients.slack import SlackSettings
from oncall.settings import OncallSettings
from oncall.store import IncidentStore

if TYPE_CHECKING:
    from oncall.business_hours import BusinessHours
    from oncall.catalog import ServiceCatalog, ServiceEntry
    from oncall.models import Incident, PagePolicy
    from oncall.playbooks import PlaybookConfig


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
        from oncall.catalog import is_sandbox, load_catalog

        return load_catalog(self.settings.services_file, is_sandbox(self.kubeconfig))

    @cached_property
    def prometheus_settings(self) -> PrometheusSettings:
        """Where Prometheus answers (``ONCALL_PROMETHEUS_*``)."""
        return PrometheusSettings()

    @cached_property
    def prometheus(self) -> PrometheusClient | None:
        """The configured Prometheus; None: the services' own scrapes are read."""
        return PrometheusClient.from_settings(self.prometheus_settings)

    def readings(self, config: PlaybookConfig) -> Readings:
        """A playbook's readings of its service: from Prometheus when one is configured (the
        playbook's own, else ``ONCALL_PROMETHEUS_URL``), else the service's own scrapes."""
        prometheus = self.prometheus
        if config.prometheus_url:
            settings = self.prometheus_settings.model_copy(update={"url": config.prometheus_url})
            prometheus = PrometheusClient.from_settings(settings)
        if prometheus is None:
            return ServiceMetrics(str(getattr(config, "service_url", "")))
        interval = config.prometheus_scrape_interval_s or self.prometheus_settings.scrape_interval_s
        return PromQLMetrics(
            prometheus, config.metrics_labels(), interval, config.prometheus_queries
        )

    @cached_property
    def prefect(self) -> PrefectApi:
        """The Prefect API of the current run."""
        return PrefectApi()

    @cached_property
    def notifier(self) -> Notifications:
        """Slack and PagerDuty as configured, else the log; failures are recorded, not raised."""
        return build_notifier(
            self.store,
            self._run_url,
            self.slack_channel_for,
            self.pagerduty_key_for,
            self.page_policy_for,
        )

    def page_policy_for(self, incident: Incident) -> PagePolicy:
        """When the incident's severity pages a person: its catalog service's policy, else
        ONCALL_PAGE_POLICY."""
        entry = self.service_entry(incident)
        if entry is not None and incident.severity in entry.page_policy:
            return entry.page_policy[incident.severity]
        return self.settings.page_policy[incident.severity]

    def _run_url(self, flow_run_id: str) -> str | None:
        try:
            return self.prefect.ui_url(flow_run_id)
        except Exception:  # a missing link never stops a notification
            return None

    def service_entry(self, incident: Incident | None) -> ServiceEntry | None:
        """The catalog entry of the incident's subject, if it has one."""
        from oncall.errors import OncallError

        service = incident.subject.catalog_service if incident and incident.subject else None
        if not service:
            return None
        try:
            return self.catalog.get(service)
        except OncallError:  # the catalog changed since the incident opened
            return None

    def slack_channel_for(self, incident: Incident) -> str | None:
        """The incident's service's own Slack channel (None: the configured one)."""
        entry = self.service_entry(incident)
        return (entry.slack_channel or None) if entry else None

    def pagerduty_key_for(self, incident: Incident) -> str | None:
        """The incident's service's own PagerDuty integration key, from its reference (an
        environment variable or a Secret); None: the configured key."""
        from oncall.errors import OncallError

        entry = self.service_entry(incident)
        ref = entry.pagerduty_routing_key if entry else None
        if ref is None:
            return None
        if ref.env:
            return ref.from_env()
        namespace = ref.namespace or (incident.subject.namespace if incident.subject else "")
        try:
            return self.kube.secret_value(namespace, ref.secret or "", ref.key or "")
        except OncallError:  # unreadable: the configured key still pages someone
            return None

    def rotation_file(self, incident: Incident | None = None) -> Path:
        """The rotation that is on call for ``incident``: its catalog service's own, else
        ONCALL_ROTATION_FILE, else the shipped example."""
        from oncall.rotation.settings import EXAMPLE_ROTATION

        entry = self.service_entry(incident)
        if entry is not None and entry.rotation_file is not None:
            return entry.rotation_file
        return self.settings.rotation_file or EXAMPLE_ROTATION

    def experts_for(self, incident: Incident) -> list[str]:
        """The rotation's subject-matter experts of the incident's area (none if it has no
        area, or the rotation lists nobody for it)."""
        from oncall.expertise import area_of
        from oncall.rotation.loader import load_rotation

        area = area_of(incident.alert)
        if area is None:
            return []
        people = load_rotation(self.rotation_file(incident)).experts(area)
        return [f"{p.name} ({p.slack_user_id})" for p in people]

    def business_hours(self, incident: Incident | None = None) -> BusinessHours:
        """Business hours in the time zone of the rotation on call for ``incident``."""
        from oncall.business_hours import BusinessHours
        from oncall.rotation.loader import load_rotation

        rotation = load_rotation(self.rotation_file(incident))
        return BusinessHours(rotation.handoff.timezone)

    def contacts_for(self, role: str, incident: Incident | None = None) -> list[str]:
        """Who ``role`` means right now in the rotation on call for ``incident`` (the role
        name if unknown)."""
        from oncall.models import utcnow
        from oncall.rotation.loader import load_rotation

        rotation = load_rotation(self.rotation_file(incident))
        people = rotation.contacts(role, utcnow())
        return [f"{p.name} ({p.slack_user_id})" for p in people] or [role]


def build_notifier(
    store: IncidentStore,
    run_url: Callable[[str], str | None],
    channel_for: Callable[[Incident], str | None] | None = None,
    routing_key_for: Callable[[Incident], str | None] | None = None,
    policy_for: Callable[[Incident], PagePolicy] | None = None,
) -> Notifications:
    """The channels the environment configures; the log says where the rest would have gone.

    ``channel_for`` names an incident's own Slack channel (its catalog service's), if any;
    ``routing_key_for`` its service's own PagerDuty integration key; ``policy_for`` when
    its severity pages a person.
    """
    from oncall.slack.notifier import SlackNotifier  # it imports the postmortem's thread

    channels: list[tuple[str, Notifier]] = []
    slack_settings = SlackSettings()
    if slack_settings.bot_token is not None and slack_settings.bot_token.get_secret_value():
        slack = SlackNotifier.from_settings(slack_settings, store, run_url, channel_for)
        channels.append(("slack", slack))
    else:
        channels.append(("log", LogNotifier(channel=slack_settings.channel)))
    pagerduty = PagerDutyClient.from_settings(PagerDutySettings())
    if pagerduty is not None:
        channels.append(
            (
                "pagerduty",
                PagerDutyNotifier(pagerduty, run_url, routing_key_for, policy_for, store),
            )
        )
    else:
        channels.append(("pagerduty-log", PagerDutyLog(policy_for)))
    return Notifications(channels, store)
