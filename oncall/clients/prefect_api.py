"""The Prefect API client: run labels, approvals (resume with input) and run history."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
from prefect import get_client
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.states import Cancelled, Running, Scheduled
from pydantic import BaseModel
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from oncall.errors import PermanentError, TransientError, UnsafeToRemediate
from oncall.prefect_auth import client_auth_string

RESUME_BUSY_S = 180.0
"""How long an approval keeps trying a server that answers 503 before it is reported."""
API_RESUME_BUSY_S = 20.0
"""The same for a decision sent over HTTP: its caller waits, and is told to try again."""


class _ServerBusy(Exception):
    """The Prefect server answered 503: nothing was changed, the call may be repeated."""


class StepTiming(BaseModel):
    """How long one task run of a playbook took, as Prefect recorded it."""

    name: str
    state: str
    started: datetime | None
    ended: datetime | None
    seconds: float


class PrefectApi:
    """Talks to the Prefect server: the one given by URL, else the current settings' one."""

    def __init__(self, api_url: str | None = None) -> None:
        self.api_url = api_url

    @contextmanager
    def _client(self) -> Iterator[SyncPrefectClient]:
        client = (
            SyncPrefectClient(self.api_url, auth_string=client_auth_string())
            if self.api_url
            else get_client(sync_client=True)
        )
        try:
            with client:
                yield client
        except httpx.TransportError as exc:
            raise TransientError(f"Prefect API unreachable: {exc}") from exc

    def ui_url(self, flow_run_id: UUID | str) -> str:
        """Link to the flow run in the Prefect UI."""
        base = self.api_url
        if base is None:
            with self._client() as client:
                base = str(client.api_url)
        return f"{base.rstrip('/').removesuffix('/api')}/runs/flow-run/{flow_run_id}"

    def add_tags(self, flow_run_id: UUID, tags: list[str]) -> None:
        """Add tags to a flow run, keeping those it has."""
        with self._client() as client:
            run = client.read_flow_run(flow_run_id)
            merged = sorted(set(run.tags) | set(tags))
            client.update_flow_run(flow_run_id, tags=merged)

    def force_running(self, flow_run_id: UUID) -> None:
        """Take a run out of an expired pause so the playbook can end it cleanly."""
        with self._client() as client:
            client.set_flow_run_state(flow_run_id, Running(message="approval expired"), force=True)

    def find_flow_run(self, name: str) -> FlowRun | None:
        """The newest flow run with this name, if any."""
        with self._client() as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])), limit=1
            )
        return runs[0] if runs else None

    def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
        """One flow run."""
        with self._client() as client:
            try:
                return client.read_flow_run(flow_run_id)
            except ObjectNotFound as exc:
                raise PermanentError(f"no flow run {flow_run_id}") from exc

    def wait_for_pause(self, run: str | UUID, timeout_s: float, poll_s: float = 0.25) -> FlowRun:
        """Block until the run (by name, or by id) is paused for a human; raise if it never is.

        By id where it is known: a run created from a deployment gets its incident name only
        once it starts.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.read_flow_run(run) if isinstance(run, UUID) else self.find_flow_run(run)
            if found and found.state and found.state.is_paused():
                return found
            if found and found.state and found.state.is_final():
                raise PermanentError(f"flow run {run} ended ({found.state.name}) without pausing")
            time.sleep(poll_s)
        raise TransientError(f"flow run {run} did not pause within {timeout_s:.0f}s")

    def resume(
        self, flow_run_id: UUID, run_input: dict[str, Any], busy_for_s: float = RESUME_BUSY_S
    ) -> None:
        """Resume a paused run with the approval form's input (what the UI's Resume does).

        A server that answers 503 (an SQLite server under an alert storm: the resume's
        transaction read the run, another writer committed, so the write is refused) rolled
        the resume back whole; it is tried again, with jitter, for ``busy_for_s``, and then
        reported as transient: a person's decision is not dropped on the first busy answer.
        """
        retrying = Retrying(
            retry=retry_if_exception_type(_ServerBusy),
            wait=wait_random_exponential(multiplier=0.5, max=5),
            stop=stop_after_delay(busy_for_s),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._resume_once(flow_run_id, run_input)
        except _ServerBusy as exc:
            raise TransientError(
                f"Prefect server busy for {busy_for_s:.0f}s, {flow_run_id} not resumed: {exc}"
            ) from exc

    def _resume_once(self, flow_run_id: UUID, run_input: dict[str, Any]) -> None:
        with self._client() as client:
            try:
                run = client.read_flow_run(flow_run_id)
            except ObjectNotFound as exc:
                raise PermanentError(f"no flow run {flow_run_id}") from exc
            if not run.state or not run.state.is_paused():
                state = run.state.name if run.state else "unknown"
                raise PermanentError(f"flow run {flow_run_id} is not waiting ({state})")
            try:
                result = client.resume_flow_run(flow_run_id, run_input=run_input)
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code == httpx.codes.SERVICE_UNAVAILABLE:
                    raise _ServerBusy(str(exc.response.text)[:200]) from exc
                raise
        if result.status != SetStateStatus.ACCEPT:
            if "schema not found" in str(result.details).lower():
                # Paused a moment before the pause saved its form: nothing changed, try again.
                raise _ServerBusy(f"the pause of {flow_run_id} has not saved its form yet")
            raise PermanentError(f"resume of {flow_run_id} refused: {result.details}")

    def decide(
        self,
        flow_run_id: UUID,
        key: bytes,
        *,
        approve: bool,
        approver: str,
        reason: str,
        channel: str,
        busy_for_s: float = RESUME_BUSY_S,
    ) -> None:
        """Resume with a verified decision: the approver was checked through ``channel``."""
        from oncall.approval import signed_input

        self.resume(
            flow_run_id,
            signed_input(
                key,
                str(flow_run_id),
                approve=approve,
                approver=approver,
                reason=reason,
                channel=channel,
            ),
            busy_for_s,
        )

    @contextmanager
    def exclusive(self, name: str, wait_s: float, lease_s: float = 600) -> Iterator[None]:
        """Hold a global concurrency slot (limit 1) named ``name``; refuse if it stays taken.

        The limit lives on the Prefect server, so it holds across workers and processes.
        The slot is leased: if this process dies holding it, it frees itself after ``lease_s``.
        Acquire and release are synchronous calls, so a process that exits right after the
        action cannot leave the slot taken.
        """
        deadline = time.monotonic() + wait_s
        with self._client() as client:
            try:
                client.upsert_global_concurrency_limit_by_name(name, 1)
            except PrefectHTTPStatusError as exc:
                raise TransientError(f"cannot set up concurrency limit {name}: {exc}") from exc
            while True:
                try:
                    response = client.increment_concurrency_slots_with_lease(
                        names=[name], slots=1, mode="concurrency", lease_duration=lease_s
                    )
                    break
                except PrefectHTTPStatusError as exc:
                    if exc.response.status_code != 423:
                        raise TransientError(f"concurrency limit {name}: {exc}") from exc
                    if time.monotonic() >= deadline:
                        raise UnsafeToRemediate(
                            f"another remediation holds {name}; refusing to act concurrently"
                        ) from exc
                    time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
            lease_id = UUID(response.json()["lease_id"])
            try:
                yield
            finally:
                client.release_concurrency_slots_with_lease(lease_id)

    def schedule_run(
        self,
        deployment: str,
        parameters: dict[str, Any],
        at: datetime,
        idempotency_key: str,
        tags: list[str],
    ) -> FlowRun | None:
        """Create a run of a deployment due at ``at`` (None if the deployment is missing).

        The same idempotency key returns the same run, so a re-run flow schedules nothing twice.
        """
        with self._client() as client:
            try:
                dep = client.read_deployment_by_name(deployment)
            except ObjectNotFound:
                return None
            return client.create_flow_run_from_deployment(
                dep.id,
                parameters=parameters,
                state=Scheduled(scheduled_time=at),
                idempotency_key=idempotency_key,
                tags=tags,
            )

    def cancel_scheduled(self, tag: str, reason: str) -> int:
        """Cancel every not-yet-started run carrying ``tag``; return how many."""
        with self._client() as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(all_=[tag]),
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                    ),
                )
            )
            cancelled = 0
            for run in runs:
                result: Any = client.set_flow_run_state(run.id, Cancelled(message=reason))
                cancelled += result.status == SetStateStatus.ACCEPT
        return cancelled

    def step_timings(self, flow_run_id: UUID) -> list[StepTiming]:
        """Task runs of a flow run in start order, with their durations."""
        with self._client() as client:
            task_runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
        steps = [
            StepTiming(
                name=tr.name,
                state=tr.state.name if tr.state else "?",
                started=tr.start_time,
                ended=tr.end_time,
                seconds=round(tr.total_run_time.total_seconds(), 2),
            )
            for tr in task_runs
        ]
        return sorted(steps, key=lambda s: (s.started is None, s.started))
