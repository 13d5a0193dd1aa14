"""In-cluster service URLs (`http://svc.ns:port/...`) resolved to the sandbox's local ports.

In a cluster, `gremlinsai-service.gremlinsai:8000` resolves through cluster DNS. On a laptop
the sandbox publishes where each Service really listens (`ONCALL_HOME/sandbox/services.json`),
so the same playbook configuration works against it unchanged. URLs the map does not know
are returned as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from oncall.settings import OncallSettings

_cache: dict[Path, tuple[float, dict[str, str]]] = {}


def services_file(home: Path) -> Path:
    """Where the sandbox publishes its Service URLs."""
    return home / "sandbox" / "services.json"


def publish_services(home: Path, services: dict[str, str]) -> None:
    """Write the map of "namespace/service" -> local base URL (the sandbox calls this)."""
    path = services_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(services, indent=2, sort_keys=True))


def _load(path: Path) -> dict[str, str]:
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return {}
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    mapping: dict[str, str] = json.loads(path.read_text())
    _cache[path] = (mtime, mapping)
    return mapping


def resolve(url: str, home: Path | None = None) -> str:
    """The URL to call for ``url``: the sandbox's local address of a known Service, else ``url``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    labels = host.split(".")
    if len(labels) < 2 or host.replace(".", "").isdigit():
        return url
    mapping = _load(services_file(home or OncallSettings().home))
    local = mapping.get(f"{labels[1]}/{labels[0]}")
    if local is None:
        return url
    base = urlsplit(local)
    return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))
