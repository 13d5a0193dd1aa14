"""Open action items of postmortems kept as Markdown files (``- [ ]`` = still open).

The postmortem feature does not exist yet; until it does, postmortems are the seed's
template saved as ``ONCALL_HOME/postmortems/*.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

from oncall.rotation.report import PostmortemActions

_OPEN_ITEM = re.compile(r"^\s*[-*+]\s+\[ \]\s+(?P<item>\S.*?)\s*$")
_TITLE = re.compile(r"^#\s+(?P<title>\S.*?)\s*$")


def parse_postmortem(name: str, text: str) -> PostmortemActions:
    """Title (first ``#`` heading, else ``name``) and unchecked items of one postmortem."""
    title = next((m["title"] for line in text.splitlines() if (m := _TITLE.match(line))), name)
    items = [m["item"] for line in text.splitlines() if (m := _OPEN_ITEM.match(line))]
    return PostmortemActions(postmortem=name, title=title, open_items=items)


def open_action_items(directory: Path) -> list[PostmortemActions]:
    """Postmortems under ``directory`` that still have unchecked action items, by name."""
    if not directory.is_dir():
        return []
    found = [
        parse_postmortem(path.name, path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.md"))
    ]
    return [pm for pm in found if pm.open_items]
