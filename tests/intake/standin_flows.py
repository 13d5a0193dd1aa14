"""Stand-ins for flows other engineers own: registered as deployments, never served here."""

from __future__ import annotations

from prefect import flow

from oncall.models import Alert


@flow(name="default-triage")
def default_triage(alert: Alert) -> None:
    """Stand-in for the default triage flow (acknowledge, notify, escalate)."""


@flow(name="post-incident")
def post_incident(incident_id: str) -> None:
    """Stand-in for the post-incident flow."""
