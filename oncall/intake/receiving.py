"""Receiving one webhook: read, verify, parse, commit to the inbox, answer.

The answer follows what the senders do with it: 2xx only once the alerts are committed;
400/422 only for bodies that can never succeed (kept as dead letters); 503 with
Retry-After while the store is unavailable, so Alertmanager and PagerDuty retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from oncall.errors import OncallError, TransientError
from oncall.intake.accepting import Message
from oncall.intake.bodies import BodyError, load_json, printable
from oncall.intake.committer import GroupCommitter
from oncall.intake.dispatcher import Dispatcher
from oncall.intake.inbox import Inbox
from oncall.intake.messages import Interpret, Parsed
from oncall.intake.metrics import IntakeMetrics
from oncall.intake.settings import IntakeSettings
from oncall.routing import PlaybookRouter

log = logging.getLogger(__name__)

# A dead letter keeps this much of the body: enough to see what the sender got wrong.
_DEAD_LETTER_BODY_CHARS = 65_536

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def media_type(content_type: str) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json(content_type: str) -> bool:
    """JSON or a JSON-based type (`application/*+json`)."""
    kind = media_type(content_type)
    return kind == JSON or (kind.startswith("application/") and kind.endswith("+json"))


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

    async def read_body(self, request: Request, limit: int | None = None) -> bytes:
        """The raw body: 413 past ``limit`` bytes, 408 when the upload stalls or drags on."""
        limit = limit or self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyError(413, "too_large", f"body: {declared} bytes; at most {limit} accepted")
        chunks, size = [], 0
        idle, total = self.settings.body_idle_timeout_s, self.settings.body_timeout_s
        deadline = time.monotonic() + total
        stream = request.stream().__aiter__()
        while True:
            wait = min(idle, deadline - time.monotonic())
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), timeout=max(wait, 0.001))
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise BodyError(
                    408,
                    "timeout",
                    f"body: {size} bytes received, then the upload stalled (at most {idle:g}s "
                    f"without data and {total:g}s in all)",
                ) from None
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
        await self.keep_dead_letter(request, source, exc.status_code, exc.message, body)
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.message})

    async def keep_dead_letter(
        self, request: Request, source: str, status_code: int, reason: str, body: str
    ) -> None:
        """Keep a refused body, escaped so that any store takes it, whatever it contains."""
        try:
            await run_in_threadpool(
                self.inbox.dead_letter,
                source,
                status_code,
                printable(reason),
                printable(request.headers.get("content-type", "")),
                printable(body),
                self.settings.dead_letter_limit,
            )
        except OncallError as store_exc:
            log.warning("could not keep dead letter from %s: %s", source, store_exc)

    async def receive(
        self, request: Request, source: str, raw: bytes, interpret: Interpret
    ) -> JSONResponse:
        """Parse and commit one message; 202 with what it did, or the refusal."""
        try:
            content_type = request.headers.get("content-type", "")
            if not is_json(content_type):  # what Alertmanager and PagerDuty send
                raise BodyError(
                    415,
                    "unsupported_media_type",
                    f"Content-Type {content_type or '(none)'!r}: send application/json",
                )
            parsed = interpret(load_json(raw))
        except BodyError as exc:
            return await self.refuse(request, source, raw, exc)
        alerts = parsed.alerts
        try:
            accepted = await asyncio.wrap_future(
                self.committer.submit(Message(alerts, source, parsed.event_id))
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
        answer = accepted.as_json()
        if parsed.refused:
            answer["rejected"] = await self._refuse_some(request, source, parsed)
        return JSONResponse(status_code=202, content=answer)

    async def _refuse_some(self, request: Request, source: str, parsed: Parsed) -> list[object]:
        """The invalid alerts of an accepted message: one dead letter naming each."""
        self.reject(source, "invalid_alert")
        self.metrics.alerts_refused.labels(source).inc(len(parsed.refused))
        reason = "; ".join(r.detail for r in parsed.refused[:20])
        if len(parsed.refused) > 20:
            reason += f"; and {len(parsed.refused) - 20} more"
        kept = [{"index": r.index, "alert": r.alert} for r in parsed.refused]
        body = json.dumps(kept, ensure_ascii=True, default=str)[:_DEAD_LETTER_BODY_CHARS]
        await self.keep_dead_letter(request, source, 422, reason, body)
        return [r.as_json() for r in parsed.refused]
