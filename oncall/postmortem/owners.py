"""Action-item owners suggested from the rotation: the primary at the start, the area's SMEs."""

from __future__ import annotations

from oncall.models import Incident
from oncall.postmortem.evidence import OwnerSuggestion
from oncall.rotation.model import Rotation

# Which subject-matter area an incident belongs to, by what the playbook did or found down.
_AREA_OF_ACTION = {
    "rollback": "kubernetes-infrastructure",
    "restart": "kubernetes-infrastructure",
    "scale": "kubernetes-infrastructure",
    "switch": "kubernetes-infrastructure",
    "set_env": "kubernetes-infrastructure",
}
_AREA_OF_PROBE = {
    "postgresql": "database",
    "weaviate": "weaviate-vector-db",
    "ollama": "llm-ai",
}


def areas_of(incident: Incident) -> list[str]:
    """Subject-matter areas the evidence points at, in order of appearance."""
    areas: list[str] = []
    for action in incident.actions:
        kind = action.kind.removesuffix("-planned")
        if (area := _AREA_OF_ACTION.get(kind)) and area not in areas:
            areas.append(area)
        for probe in action.detail.get("probes", []) if action.kind == "diagnosis" else []:
            area = _AREA_OF_PROBE.get(probe["name"])
            if not probe["ok"] and area and area not in areas:
                areas.append(area)
    return areas


def suggest_owners(rotation: Rotation, incident: Incident) -> list[OwnerSuggestion]:
    """The primary on call when the alert started, then the experts of each area."""
    started = incident.alert.starts_at
    primary = rotation.on_call(started).primary
    owners = [
        OwnerSuggestion(
            name=primary.name,
            handle=primary.slack_handle,
            why=f"primary on call at {started:%Y-%m-%d %H:%M} UTC (incident owner)",
        )
    ]
    for area in areas_of(incident):
        for person in rotation.experts(area):
            if all(o.name != person.name for o in owners):
                owners.append(
                    OwnerSuggestion(
                        name=person.name, handle=person.slack_handle, why=f"{area} expert"
                    )
                )
    return owners
