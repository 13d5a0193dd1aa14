"""Flow run names: the incident, so the Prefect UI's run list reads as an incident list."""

from __future__ import annotations

from typing import Any

from prefect.runtime import flow_run

from oncall.models import Alert, Incident


def incident_run_name_for(alert: Alert) -> str:
    """`<incident id> <alert> <service>` for one alert occurrence."""
    return f"{Incident.id_for(alert)} {alert.name} {alert.service}"


def incident_run_name() -> str:
    """The run's name, computed from its `alert` parameter (Prefect's flow_run_name hook)."""
    raw: Any = flow_run.get_parameters().get("alert")
    alert = raw if isinstance(raw, Alert) else Alert.model_validate(raw)
    return incident_run_name_for(alert)
