"""Run history from the Prefect API: states, task runs and logs of the incident's runs.

Reads only. `PrefectApi` has no state-history or log reads yet; these belong there.
"""

from __future__ import annotations

import time
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterTags,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort, LogSort
from prefect.exceptions import ObjectNotFound

from oncall.clients.prefect_api import PrefectApi
from oncall.errors import NotFoundError
from oncall.postmortem.evidence import FlowRunRecord, LogLine, RunState, TaskRunRecord

_PAGE = 200
# The flow engine's last log line of a run.
_LAST = "Finished in state"


class RunHistory(PrefectApi):
    """Reads run history from the Prefect server given by URL, else the current settings' one."""

    def record(self, flow_run_id: str) -> FlowRunRecord:
        """A flow run with every state it went through and its task runs."""
        run_id = UUID(flow_run_id)
        with self._client() as client:
            try:
                run = client.read_flow_run(run_id)
            except ObjectNotFound as exc:
                raise NotFoundError(f"no flow run {flow_run_id}") from exc
            states = client.read_flow_run_states(run_id)
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
            )
            url = self._ui_url(client, run.id)
        return FlowRunRecord(
            id=str(run.id),
            name=run.name,
            url=url,
            states=[
                RunState(
                    type=s.type.value, name=s.name or "", at=s.timestamp, message=s.message or ""
                )
                for s in sorted(states, key=lambda s: s.timestamp)
            ],
            tasks=sorted(
                (
                    TaskRunRecord(
                        name=t.name,
                        state=t.state.name if t.state else "?",
                        started=t.start_time,
                        ended=t.end_time,
                    )
                    for t in tasks
                ),
                key=lambda t: (t.started is None, t.started),
            ),
        )

    def tagged(self, tag: str, exclude_tag: str) -> list[FlowRun]:
        """Flow runs carrying ``tag`` and not ``exclude_tag``, oldest first."""
        with self._client() as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                limit=_PAGE,
            )
        return [r for r in runs if exclude_tag not in r.tags]

    def logs(self, flow_run_id: str, settle_s: float = 10.0) -> list[LogLine]:
        """Every log line of a flow run and its task runs, oldest first.

        Runs ship their logs in the background, so the tail of a run that just ended may
        not be stored yet: for a finished run, wait (up to ``settle_s``) for its last line.
        """
        deadline = time.monotonic() + settle_s
        while True:
            found, final = self._logs(UUID(flow_run_id))
            finished = any(not line.task and line.message.startswith(_LAST) for line in found)
            if not final or finished or time.monotonic() > deadline:
                return found
            time.sleep(0.25)

    def _logs(self, run_id: UUID) -> tuple[list[LogLine], bool]:
        found: list[LogLine] = []
        with self._client() as client:
            run = client.read_flow_run(run_id)
            task_names = {
                t.id: t.name
                for t in client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
                )
            }
            while True:
                page = client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])),
                    limit=_PAGE,
                    offset=len(found),
                    sort=LogSort.TIMESTAMP_ASC,
                )
                found += [
                    LogLine(
                        at=log.timestamp,
                        level=_level(log.level),
                        message=log.message,
                        task=task_names.get(log.task_run_id, "") if log.task_run_id else "",
                    )
                    for log in page
                ]
                if len(page) < _PAGE:
                    return found, bool(run.state and run.state.is_final())

    def _ui_url(self, client: SyncPrefectClient, flow_run_id: UUID) -> str:
        base = str(client.api_url).rstrip("/").removesuffix("/api")
        return f"{base}/runs/flow-run/{flow_run_id}"

    def ui_base(self) -> str:
        """The Prefect UI's base URL."""
        with self._client() as client:
            return str(client.api_url).rstrip("/").removesuffix("/api")


def _level(level: int) -> str:
    names = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
    return names.get(level, str(level))
