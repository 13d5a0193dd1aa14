"""Building blocks of server-side printing: columns, cells and kubectl's age format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from oncall_sandbox.store import Obj

Cells = list[Any]


def human_age(timestamp: str | None) -> str:
    """`kubectl`'s short age format (`45s`, `3m12s`, `5h`, `2d`)."""
    if not timestamp:
        return "<unknown>"
    then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = max(int((datetime.now(UTC) - then).total_seconds()), 0)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{days}d{hours % 24}h" if days < 8 and hours % 24 else f"{days}d"


def age(obj: Obj) -> str:
    """The age of an object, from its creationTimestamp."""
    return human_age(obj["metadata"].get("creationTimestamp"))


def columns(*names: str, wide: int = 0) -> list[Obj]:
    """Column definitions; the last `wide` ones only show with `-o wide`."""
    count = len(names)
    return [
        {
            "name": n,
            "type": "integer" if n in {"Count", "Data"} else "string",
            "format": "name" if n == "Name" else "",
            "description": n,
            "priority": 1 if i >= count - wide else 0,
        }
        for i, n in enumerate(names)
    ]
