"""The Prefect API's basic-auth string: who may talk to the control plane.

Anyone who reaches an open Prefect API can resume a paused run, that is approve a
rollback. So the local server `oncall up` and `oncall server start` run is closed: it
gets ``PREFECT_SERVER_API_AUTH_STRING``, and every client (worker, intake, CLI, the flow
runs) sends the same string as ``PREFECT_API_AUTH_STRING``. The string is generated once
into ``ONCALL_HOME/prefect-auth`` (mode 0600), as the intake token is; in a cluster it
comes from the Secret (`deployments/`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx

from oncall.settings import secret_file

CLIENT_VARIABLE = "PREFECT_API_AUTH_STRING"
SERVER_VARIABLE = "PREFECT_SERVER_API_AUTH_STRING"
FILE_NAME = "prefect-auth"
USER = "oncall"


def auth_file(home: Path) -> Path:
    """Where the generated string is kept."""
    return home / FILE_NAME


def local_auth_string(home: Path, create: bool = False) -> str | None:
    """The string under ``home``; generated (``oncall:<random>``, 0600) when asked to."""
    path = auth_file(home)
    if not create and not path.exists():
        return None
    return secret_file(path, lambda: f"{USER}:{secrets.token_urlsafe(32)}") or None


def load_into_environment(home: Path) -> str | None:
    """Before Prefect reads its settings: ``PREFECT_API_AUTH_STRING`` from ``home``.

    An explicit ``PREFECT_API_AUTH_STRING`` wins; otherwise the string generated under
    ``home`` (created on first use) is exported, so every client of the local server
    authenticates without configuration. Returns the string in effect.
    """
    explicit = os.environ.get(CLIENT_VARIABLE)
    if explicit:
        return explicit
    try:
        found = local_auth_string(home, create=True)
    except OSError:  # a home we may not write: run without, the server then warns
        return None
    if found:
        os.environ[CLIENT_VARIABLE] = found
    return found


def client_auth_string() -> str | None:
    """The auth string Prefect's settings give this process's clients (None: none)."""
    from prefect.settings import get_current_settings

    secret = get_current_settings().api.auth_string
    value = secret.get_secret_value() if secret is not None else ""
    return value or None


def accepts_anonymous(api_url: str, timeout_s: float = 5.0) -> bool:
    """True when the Prefect API answers a request that carries no credentials."""
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/admin/version", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


OPEN_WARNING = (
    "the Prefect API at {url} accepts requests without credentials: anyone who reaches it "
    "can resume a paused run, that is approve a mitigation. Set PREFECT_SERVER_API_AUTH_STRING "
    "on the server and PREFECT_API_AUTH_STRING on every client (`oncall up` does both)."
)
