"""One suspension observer for every flow run of the warm runner, not one per run.

Prefect's flow engine watches each deployment flow run for an external `Suspended`
request with its own observer: a thread, an event loop and a websocket to
`/api/events/out` held for the whole run, paused time included. A Prefect server on
SQLite admits at most 100 concurrent requests and counts each open websocket as one, so
~98 runs waiting for approval at once leave it no room to answer anything: every paused
run, the runner and the UI then wait on it forever. Prefect's `FlowRunSuspendingObserver`
can watch many runs over one subscription (with one batched polling query as fallback);
the warm runner installs this class in place of the per-run observer, so a worker holds
one websocket however many runs it has in flight.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any
from uuid import UUID

import prefect.flow_engine
from prefect._flow_run_suspension import (
    FlowRunSuspensionRequest,
    mark_flow_run_suspension_requested,
)
from prefect._internal.observers import FlowRunSuspendingObserver
from prefect.client.schemas.objects import State

from oncall.errors import PermanentError

PREFECT_MINOR = (3, 9)
"""The Prefect release whose private flow engine hook this module replaces (pinned in
``pyproject.toml``): another minor release is refused, not trusted to still behave."""


def check_prefect_version(version: str) -> None:
    """Refuse a Prefect other than :data:`PREFECT_MINOR`, naming both."""
    parts = version.split(".")
    try:
        found = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        found = None
    if found != PREFECT_MINOR:
        wanted = ".".join(map(str, PREFECT_MINOR))
        raise PermanentError(
            f"prefect {version} is installed; the warm runner replaces a private hook of "
            f"prefect {wanted}.x (prefect._flow_run_suspension, flow_engine.{ENGINE_HOOK}): "
            f"install prefect=={wanted}.* as pyproject.toml pins it"
        )


# The name the flow engine looks the per-run observer up by (prefect 3.9).
ENGINE_HOOK = "observe_flow_run_suspension"
ObserveFn = Callable[..., AbstractContextManager[None]]


class SharedSuspensionObserver:
    """Watches every in-flight flow run of this process with one observer and one loop."""

    def __init__(self, polling_interval_s: float = 10.0, start_timeout_s: float = 30.0) -> None:
        self.polling_interval_s = polling_interval_s
        self.start_timeout_s = start_timeout_s
        self._requests: dict[UUID, FlowRunSuspensionRequest] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer: FlowRunSuspendingObserver | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._replaced: ObserveFn | None = None

    def start(self) -> None:
        """Open the observer (its subscription and polling fallback) on a loop thread."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def run() -> None:
            self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
            try:
                async with FlowRunSuspendingObserver(
                    on_suspended=self._on_suspended, polling_interval=self.polling_interval_s
                ) as observer:
                    self._observer = observer
                    ready.set()
                    await self._stopping.wait()
            except BaseException as exc:
                failure.append(exc)
                raise
            finally:
                self._observer = None
                ready.set()

        # The copied context carries the Prefect settings (API URL) of the caller.
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=lambda: context.run(asyncio.run, run()),
            name="suspension-observer",
            daemon=True,
        )
        self._thread.start()
        if not ready.wait(self.start_timeout_s) or self._observer is None:
            raise PermanentError(f"the suspension observer did not start: {failure or 'timeout'}")

    def stop(self) -> None:
        """Close the subscription and end the loop thread."""
        if self._loop and self._stopping and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread:
            self._thread.join(timeout=5)

    @contextmanager
    def observe(
        self,
        flow_run_id: UUID,
        suspension_request: FlowRunSuspensionRequest,
        polling_interval: float = 10,  # the engine's signature; the shared observer has its own
    ) -> Iterator[None]:
        """Watch one flow run for the duration of the block (the flow engine's hook)."""
        loop, observer = self._loop, self._observer
        if loop is None or observer is None:
            raise PermanentError("the suspension observer is not running")
        with self._lock:
            self._requests[flow_run_id] = suspension_request
        # Like Prefect's own observer, the run starts only once its watch knows the
        # run's current state, so a suspension requested before the start is not missed.
        asyncio.run_coroutine_threadsafe(observer.watch_flow_run_id(flow_run_id), loop).result()
        try:
            yield
        finally:
            with self._lock:
                self._requests.pop(flow_run_id, None)
            with suppress(RuntimeError):  # the loop closed first: nothing left to remove
                loop.call_soon_threadsafe(observer.remove_in_flight_flow_run_id, flow_run_id)

    def _on_suspended(self, flow_run_id: UUID, state: State) -> None:
        if mark_flow_run_suspension_requested(flow_run_id, state):
            return
        with self._lock:
            request = self._requests.get(flow_run_id)
        if request is not None:
            request.mark_requested(state)

    def install(self) -> None:
        """Make the flow engine use this observer for every flow run of the process."""
        check_prefect_version(prefect.__version__)
        current: Any = getattr(prefect.flow_engine, ENGINE_HOOK, None)
        if current is None:
            raise PermanentError(
                f"prefect.flow_engine.{ENGINE_HOOK} is gone in prefect {prefect.__version__}; "
                "the warm runner needs a release where the flow engine observes suspension "
                "through it (3.9)"
            )
        self._replaced = current
        setattr(prefect.flow_engine, ENGINE_HOOK, self.observe)

    def uninstall(self) -> None:
        """Give the flow engine its per-run observer back."""
        if self._replaced is not None:
            setattr(prefect.flow_engine, ENGINE_HOOK, self._replaced)
            self._replaced = None


_shared: SharedSuspensionObserver | None = None
_users = 0
_shared_lock = threading.Lock()


@contextmanager
def shared_suspension_observer() -> Iterator[SharedSuspensionObserver]:
    """The process's observer: started and installed by the first user, closed by the last.

    Enter it under the Prefect settings (API URL) the flow runs use: its loop thread
    copies the caller's context.
    """
    global _shared, _users
    with _shared_lock:
        if _shared is None:
            observer = SharedSuspensionObserver()
            observer.start()
            observer.install()
            _shared = observer
        _users += 1
        shared = _shared
    try:
        yield shared
    finally:
        with _shared_lock:
            _users -= 1
            if _users == 0:
                shared.uninstall()
                shared.stop()
                _shared = None
