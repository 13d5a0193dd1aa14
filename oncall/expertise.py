"""Which subject-matter experts an alert calls for: its area (database, LLM, vector DB,
Kubernetes), as the seed's rotation names them."""

from __future__ import annotations

import re

from oncall.models import Alert

# Area -> words of an alert's name or its component/service labels that point at it.
AREAS: dict[str, re.Pattern[str]] = {
    "database": re.compile(r"database|postgres|dbpool|db_pool|sql|redis", re.IGNORECASE),
    "llm-ai": re.compile(r"llm|ollama|inference|model", re.IGNORECASE),
    "weaviate-vector-db": re.compile(r"weaviate|vector", re.IGNORECASE),
    "kubernetes-infrastructure": re.compile(
        r"^kube|crashloop|oomkill|node|pod|container", re.IGNORECASE
    ),
}


def area_of(alert: Alert) -> str | None:
    """The alert's area: an explicit ``area`` label, else the first area its name or its
    ``component`` label names; None for an alert of no particular area."""
    if alert.labels.get("area"):
        return alert.labels["area"]
    for text in (alert.labels.get("component", ""), alert.name):
        for area, words in AREAS.items():
            if text and words.search(text):
                return area
    return None
