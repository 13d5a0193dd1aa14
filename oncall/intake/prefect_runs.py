"""The intake's Prefect client: create flow runs by idempotency key, read their states.

Plain REST over httpx rather than Prefect's client: the dispatcher owns the retry policy
(Prefect's client would retry a dead server for about a minute inside one call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from oncall.errors import NotFoundError, PermanentError, TransientError

FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})


@dataclass(frozen=True)
class CreatedRun:
    """A flow run Prefect holds for an idempotency key; ``new`` is False for a repeat."""

    id: str
    new: bool


class PrefectRuns:
    """Creates and reads flow runs through the Prefect REST API at ``api_url``."""

    def __init__(
        self,
        api_url: str,
        timeout_s: float = 10.0,
        auth_string: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        auth = tuple(auth_string.split(":", 1)) if auth_string and ":" in auth_string else None
        self._http = httpx.Client(
            base_url=self.api_url + "/",
            timeout=timeout_s,
            auth=auth,  # type: ignore[arg-type]
            transport=transport,
        )
        self._deployment_ids: dict[str, str] = {}

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, json: Any = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=json)
        except httpx.TransportError as exc:
            raise TransientError(f"Prefect API unreachable at {self.api_url}: {exc!r}") from exc
        if response.status_code == 404:
            raise NotFoundError(f"{method} {path}: {response.text[:300]}")
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"Prefect API {response.status_code} on {method} {path}")
        if response.status_code >= 400:
            raise PermanentError(
                f"Prefect API refused {method} {path} ({response.status_code}): "
                f"{response.text[:500]}"
            )
        return response

    def healthy(self) -> bool:
        """True when the Prefect API answers its health check."""
        try:
            response = self._call("GET", "health")
        except (TransientError, PermanentError):
            return False
        return response.text.strip() == "true"

    def deployment_id(self, name: str) -> str:
        """The id of deployment '<flow>/<deployment>'; NotFoundError if it is not registered."""
        if name not in self._deployment_ids:
            flow, deployment = name.split("/", 1)
            response = self._call("GET", f"deployments/name/{quote(flow)}/{quote(deployment)}")
            self._deployment_ids[name] = str(response.json()["id"])
        return self._deployment_ids[name]

    def create_run(
        self, deployment: str, parameters: dict[str, Any], idempotency_key: str, tags: list[str]
    ) -> CreatedRun:
        """The deployment's flow run for this key: created now, or the one created before."""
        deployment_id = self.deployment_id(deployment)
        body = {"parameters": parameters, "idempotency_key": idempotency_key, "tags": tags}
        try:
            response = self._call("POST", f"deployments/{deployment_id}/create_flow_run", body)
        except NotFoundError:
            self._deployment_ids.pop(deployment, None)  # deleted and maybe re-registered
            raise
        return CreatedRun(id=str(response.json()["id"]), new=response.status_code == 201)

    def states(self, flow_run_ids: list[str]) -> dict[str, str]:
        """Flow run id -> state type (SCHEDULED, RUNNING, COMPLETED, ...)."""
        if not flow_run_ids:
            return {}
        body = {"flow_runs": {"id": {"any_": flow_run_ids}}, "limit": len(flow_run_ids)}
        runs = self._call("POST", "flow_runs/filter", body).json()
        return {str(r["id"]): str((r.get("state") or {}).get("type") or "") for r in runs}
