"""Watch streams: the initial state, then every logged change matching the selectors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from oncall_sandbox.routing import Request
from oncall_sandbox.selectors import field_selector, label_selector
from oncall_sandbox.store import ApiError, Obj, Store

_DEFAULT_WATCH_SECONDS = 1800


def stream_watch(
    store: Store,
    req: Request,
    select: Callable[[], list[Obj]],
    send: Callable[[Obj], None],
    stopping: threading.Event,
) -> None:
    """Send watch events for `req` until its timeout, a send failure or `stopping`."""
    plural = req.resource.plural
    deadline = time.monotonic() + float(req.query.get("timeoutSeconds") or _DEFAULT_WATCH_SECONDS)
    by_label = label_selector(req.query.get("labelSelector"))
    by_field = field_selector(req.query.get("fieldSelector"))
    wanted = req.query.get("resourceVersion", "")
    with store.lock:
        if wanted in ("", "0"):
            last = int(store.resource_version)
            backlog = [{"type": "ADDED", "object": o} for o in select()]
        elif int(wanted) < store.oldest_logged_rv():
            gone = ApiError(410, "Expired", f"too old resource version: {wanted}")
            send({"type": "ERROR", "object": gone.status()})
            return
        else:
            last, backlog = int(wanted), []
    for initial in backlog:
        send(initial)
    while not stopping.is_set() and time.monotonic() < deadline:
        with store.lock:
            fresh = list(store.events_since(last, plural))
            if not fresh:
                store.changed.wait(timeout=min(1.0, max(deadline - time.monotonic(), 0)))
                fresh = list(store.events_since(last, plural))
        for event in fresh:
            last = event.rv
            if req.namespace and event.namespace != req.namespace:
                continue
            if by_label(event.obj) and by_field(event.obj):
                send({"type": event.type, "object": event.obj})
