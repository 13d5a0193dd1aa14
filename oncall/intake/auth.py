"""Who may talk to the intake: a bearer token on every route but health; PagerDuty's HMAC."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from fastapi import HTTPException, Request, status

OnReject = Callable[[Request, str], None]


def bearer_matches(authorization: str | None, token: str) -> bool:
    """True when the header is ``Bearer <token>``; compared in constant time."""
    if not authorization:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


class BearerAuth:
    """FastAPI dependency: 401 unless the request carries the intake token."""

    def __init__(self, token: str, on_reject: OnReject) -> None:
        if not token:
            raise ValueError("the intake token must not be empty")
        self._token = token
        self._on_reject = on_reject

    def __call__(self, request: Request) -> None:
        if not bearer_matches(request.headers.get("authorization"), self._token):
            self._on_reject(request, "unauthorized")
            # The token is never echoed or logged; the client learns only that it failed.
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )


def pagerduty_signature_valid(header: str | None, secret: str, body: bytes) -> bool:
    """PagerDuty V3: any ``v1=<hex HMAC-SHA256(secret, body)>`` of the comma-separated list."""
    if not header:
        return False
    expected = ("v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()).encode()
    matched = False
    for candidate in header.split(","):
        # No early exit: every candidate is compared, each in constant time.
        matched |= hmac.compare_digest(candidate.strip().encode(), expected)
    return matched
