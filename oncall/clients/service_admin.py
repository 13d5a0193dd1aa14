"""Calls to a service's own diagnostic and admin endpoints (slow queries, cache warm-up)."""

from __future__ import annotations

from typing import Any

import httpx

from oncall.clients.service_urls import resolve
from oncall.errors import PermanentError, TransientError


class ServiceAdmin:
    """One service's debug and admin HTTP endpoints."""

    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.base_url = resolve(base_url).rstrip("/")
        self.http = httpx.Client(timeout=timeout_s)

    def _request(self, method: str, path: str) -> Any:
        try:
            response = self.http.request(method, f"{self.base_url}{path}")
        except httpx.HTTPError as exc:
            raise TransientError(f"{method} {path}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"{method} {path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response.json() if response.content else {}

    def slow_queries(self, path: str = "/debug/slow_queries") -> list[dict[str, Any]]:
        """The service's slowest recent queries (CRONOS seed: `metrics.get_slow_queries()`)."""
        data = self._request("GET", path)
        items = data.get("slow_queries", data) if isinstance(data, dict) else data
        return list(items) if isinstance(items, list) else []

    def warm_cache(self, path: str = "/admin/cache/warm") -> dict[str, Any]:
        """Ask the service to warm its cache (CRONOS seed: "Warm up caches")."""
        result = self._request("POST", path)
        return result if isinstance(result, dict) else {"result": result}
