"""The Alertmanager API v2: is the incident's alert still firing?

The seeds end a mitigation with "verify all alerts have cleared": metrics that look healthy
to the playbook are not the alert's own verdict. ``GET /api/v2/alerts`` lists the alerts
Alertmanager holds that have not ended (active, silenced, inhibited or unprocessed); a
resolved alert is not listed.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from oncall.errors import PermanentError, TransientError


class AlertmanagerSettings(BaseSettings):
    """Where Alertmanager answers (environment prefix ``ONCALL_ALERTMANAGER_``)."""

    model_config = SettingsConfigDict(env_prefix="ONCALL_ALERTMANAGER_", extra="ignore")

    url: str | None = Field(
        default=None, description="Alertmanager base URL; without it clearance is not checked."
    )
    bearer_token: SecretStr | None = Field(default=None, description="Bearer token, if any.")
    timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one request (s).")


def _matcher(name: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"'


class AlertmanagerClient:
    """Reads the alerts one Alertmanager holds."""

    def __init__(
        self,
        base_url: str,
        *,
        bearer_token: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self.http = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)

    @classmethod
    def from_settings(cls, settings: AlertmanagerSettings) -> AlertmanagerClient | None:
        """The configured Alertmanager, or None when ``ONCALL_ALERTMANAGER_URL`` is unset."""
        if not settings.url:
            return None
        token = settings.bearer_token.get_secret_value() if settings.bearer_token else None
        return cls(settings.url, bearer_token=token, timeout_s=settings.timeout_s)

    def close(self) -> None:
        """Release the connection pool."""
        self.http.close()

    def firing(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        """The alerts not yet ended whose labels include all of ``labels``."""
        params = httpx.QueryParams([("filter", _matcher(k, v)) for k, v in sorted(labels.items())])
        try:
            response = self.http.get(f"{self.base_url}/api/v2/alerts", params=params)
        except httpx.TransportError as exc:
            raise TransientError(f"Alertmanager unreachable at {self.base_url}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"Alertmanager answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(
                f"Alertmanager refused the alert query ({response.status_code}): "
                f"{response.text[:300]}"
            )
        found: list[dict[str, Any]] = response.json()
        return found
