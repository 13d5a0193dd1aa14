"""Receiving one webhook: read, verify, parse, commit to the inbox, answer.

The answer follows what the senders do with it: 2xx only once the alerts are committed;
400/422 only for bodies that can never succeed (kept as dead letters); 503 with
Retry-After while the store is unavailable, so Alertmanager and PagerDuty retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from oncall.errors import OncallError, TransientError
from oncall.intake.accepting import Message
from oncall.intake.bodies import BodyError, load_json
from oncall.intake.committer import GroupCommitter
from oncall.intake.dispatcher import Dispatcher
from oncall.intake.inbox import Inbox
from oncall.intake.metrics import IntakeMetrics
from oncall.intake.settings import IntakeSettings
from oncall.models import Alert
from oncall.routing import PlaybookRouter

log = logging.getLogger(__name__)

# A dead letter keeps this much of the body: enough to see what the sender got wrong.
_DEAD_LETTER_BODY_CHARS = 65_536

# Decoded JSON -> the alerts it carries and the delivery id to dedupe on (if any).
Interpret = Callable[[Any], tuple[list[Alert], str | None]]


@dataclass
class Receiver:
    """What every receiving endpoint shares: the inbox, the router, metrics, the dispatcher."""

    inbox: Inbox
    router: PlaybookRouter
    metrics: IntakeMetrics
    settings: IntakeSettings
    committer: GroupCommitter
    dispatcher: Dispatcher | None = None

    def reject(self, source: str, reason: str) -> None:
        """Count a refused request."""
        self.metrics.rejected.labels(source, reason).inc()

    async def read_body(self, request: Request) -> bytes:
        """The raw body, refused with BodyError(413) past the configured size."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyError(413, "too_large", f"body: {declared} bytes; at most {limit} accepted")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyError(413, "too_large", f"body: over {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def refuse(
        self, request: Request, source: str, raw: bytes, exc: BodyError
    ) -> JSONResponse:
        """Answer 4xx for a body that can never succeed, keeping it as a dead letter."""
        self.reject(source, exc.reason)
        body = raw[:_DEAD_LETTER_BODY_CHARS].decode("utf-8", errors="replace")
        try:
            await run_in_threadpool(
                self.inbox.dead_letter,
                source,
                exc.status_code,
                exc.message,
                request.headers.get("content-type", ""),
                body,
                self.settings.dead_letter_limit,
            )
        except OncallError as store_exc:
            log.warning("could not keep dead letter from %s: %s", source, store_exc)
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.message})

    async def receive(
        self, request: Request, source: str, raw: bytes, interpret: Interpret
    ) -> JSONResponse:
        """Parse and commit one message; 202 with what it did, or the refusal."""
        try:
            alerts, event_id = interpret(load_json(raw))
        except BodyError as exc:
            return await self.refuse(request, source, raw, exc)
        try:
            accepted = await asyncio.wrap_future(
                self.committer.submit(Message(alerts, source, event_id))
            )
        except TransientError as exc:
            self.reject(source, "store_unavailable")
            log.error("refusing %s alerts with 503: %s", source, exc)
            return JSONResponse(
                status_code=503,
                content={"detail": "alert store unavailable; retry later"},
                headers={"Retry-After": str(self.settings.retry_after_s)},
            )
        except OncallError as exc:
            self.reject(source, "store_error")
            log.error("refusing %s alerts with 500: %s", source, exc)
            return JSONResponse(status_code=500, content={"detail": "alert store error"})
        self.metrics.received.labels(source).inc(len(alerts))
        self.metrics.deduplicated.labels(source).inc(accepted.deduplicated)
        self.metrics.attached.labels(source).inc(accepted.attached)
        if accepted.new and self.dispatcher is not None:
            self.dispatcher.wake()
        return JSONResponse(status_code=202, content=accepted.as_json())
