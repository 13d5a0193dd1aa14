"""Post-incident: evidence gathered, postmortem drafted from the seeds' templates.

Public surface: `Evidence`, `draft_postmortem`, `schedule_postmortem`. Imported lazily so
`oncall --help` does not pay for Prefect's import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oncall.postmortem.draft import draft_postmortem
    from oncall.postmortem.evidence import Evidence
    from oncall.postmortem.trigger import POSTMORTEM_DEPLOYMENT, schedule_postmortem

_WHERE = {
    "Evidence": "oncall.postmortem.evidence",
    "draft_postmortem": "oncall.postmortem.draft",
    "schedule_postmortem": "oncall.postmortem.trigger",
    "POSTMORTEM_DEPLOYMENT": "oncall.postmortem.trigger",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


__all__ = ["POSTMORTEM_DEPLOYMENT", "Evidence", "draft_postmortem", "schedule_postmortem"]
