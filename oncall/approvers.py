"""Approver tokens: one per person, shown once, stored as a SHA-256 hash.

`oncall approvers add NAME` creates one; `oncall approve` sends it to the intake's
`POST /v1/approvals/{flow_run_id}`, which resolves it to the person and resumes the run
with an attested (verified) decision. A token is 32 random bytes, so an unsalted hash is
enough: there is nothing to guess from it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import delete, insert, select

from oncall.errors import NotFoundError, PermanentError
from oncall.models import utcnow
from oncall.store import IncidentStore, approver_tokens, transaction

PREFIX = "oca_"  # recognisable in a secret scanner


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApproverTokens:
    """The approver tokens of one incident store."""

    def __init__(self, store: IncidentStore) -> None:
        self.store = store

    def add(self, name: str) -> str:
        """A new token for ``name`` (replacing any earlier one); returned once, never stored."""
        name = name.strip()
        if not name:
            raise PermanentError("an approver needs a name")
        token = PREFIX + secrets.token_urlsafe(32)
        with transaction(self.store.engine, "approver tokens") as conn:
            conn.execute(delete(approver_tokens).where(approver_tokens.c.name == name))
            conn.execute(
                insert(approver_tokens).values(
                    name=name, token_sha256=_digest(token), created_at=utcnow()
                )
            )
        return token

    def remove(self, name: str) -> None:
        """Revoke ``name``'s token."""
        with transaction(self.store.engine, "approver tokens") as conn:
            gone = conn.execute(delete(approver_tokens).where(approver_tokens.c.name == name))
        if gone.rowcount == 0:
            raise NotFoundError(f"no approver named {name!r}")

    def names(self) -> list[tuple[str, datetime]]:
        """Every approver and when their token was made."""
        with transaction(self.store.engine, "approver tokens") as conn:
            rows = conn.execute(
                select(approver_tokens.c.name, approver_tokens.c.created_at).order_by(
                    approver_tokens.c.name
                )
            ).all()
        return [(row.name, row.created_at) for row in rows]

    def who(self, token: str) -> str | None:
        """The approver a presented token belongs to; None for an unknown token."""
        if not token.startswith(PREFIX):
            return None
        digest = _digest(token)
        with transaction(self.store.engine, "approver tokens") as conn:
            row = conn.execute(
                select(approver_tokens.c.name, approver_tokens.c.token_sha256).where(
                    approver_tokens.c.token_sha256 == digest
                )
            ).first()
        if row is None or not hmac.compare_digest(row.token_sha256, digest):
            return None
        return str(row.name)
