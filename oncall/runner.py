"""The warm runner: executes the playbooks' flow runs inside one long-lived process.

Prefect's process worker starts a new Python interpreter for every flow run (~3.4 s here,
most of it `import prefect`). An alert cannot wait that long, so this runner imports every
playbook once, registers their deployments (from `prefect.yaml`), polls the Prefect API
for due runs of those deployments, claims each by proposing `Pending` (the server lets
exactly one claimant win) and runs it on a thread with Prefect's own flow engine. A run
paused for approval holds a thread, not a process, and every run of the process shares one
suspension observer (`oncall.suspension`) rather than holding a websocket of its own.
Everything the runner does talks to `api_url`, whatever PREFECT_API_URL says.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from prefect import Flow
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import Abort
from prefect.flow_engine import run_flow
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Crashed, Pending, Scheduled
from prefect.utilities.engine import propose_state_sync
from pydantic import BaseModel, Field

from oncall.errors import PermanentError
from oncall.prefect_auth import client_auth_string
from oncall.suspension import shared_suspension_observer

log = logging.getLogger("oncall.runner")


class ScheduleSpec(BaseModel):
    """A cron schedule of a deployment, as prefect.yaml writes it."""

    cron: str
    timezone: str = "UTC"


class DeploymentSpec(BaseModel):
    """One deployment entry of prefect.yaml (the fields the runner uses)."""

    name: str
    entrypoint: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    schedules: list[ScheduleSpec] = Field(default_factory=list)

    def load_flow(self) -> Flow[..., Any]:
        """Import the flow object named by the entrypoint (`flows/x.py:fn` or `flows.x:fn`)."""
        path, _, attr = self.entrypoint.partition(":")
        module_name = path.removesuffix(".py").replace("/", ".")
        try:
            flow = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise PermanentError(f"cannot load {self.entrypoint}: {exc}") from exc
        if not isinstance(flow, Flow):
            raise PermanentError(f"{self.entrypoint} is not a Prefect flow")
        return flow


def load_deployments(path: Path) -> list[DeploymentSpec]:
    """The deployments section of a prefect.yaml."""
    data = yaml.safe_load(path.read_text()) or {}
    return [DeploymentSpec.model_validate(d) for d in data.get("deployments") or []]


def default_prefect_yaml() -> Path:
    """The prefect.yaml shipped at the root of the checkout."""
    return Path(__file__).resolve().parent.parent / "prefect.yaml"


class WarmRunner:
    """Registers deployments and runs their due flow runs on threads of this process."""

    def __init__(
        self,
        api_url: str,
        specs: list[DeploymentSpec],
        poll_s: float = 0.2,
        max_runs: int = 200,
        orphaned_after_s: float = 20.0,
    ) -> None:
        self.api_url, self.specs, self.poll_s = api_url, specs, poll_s
        self.max_runs = max_runs
        # A claim (Pending) normally turns Running within milliseconds; one older than this
        # belongs to a runner that died between the two, and is given back (see
        # `recover_orphans`).
        self.orphaned_after_s = orphaned_after_s
        self._next_orphan_check = 0.0
        self.inflight: dict[UUID, threading.Thread] = {}
        self._inflight_lock = threading.Lock()
        self.flows: dict[UUID, Flow[..., Any]] = {}
        self.names: dict[UUID, str] = {}
        self.started_runs = 0
        self.stop_event = threading.Event()

    @contextmanager
    def _on_our_server(self) -> Iterator[None]:
        # Prefect's client reads the API URL from a context variable, which a new thread
        # does not inherit: without this, each thread would fall back to the environment
        # (or, with nothing set, start an ephemeral server of its own).
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
            yield

    def register(self) -> dict[str, UUID]:
        """Create or update every deployment on the server; return their ids by full name."""
        with self._on_our_server():
            return self._register()

    def _register(self) -> dict[str, UUID]:
        ids: dict[str, UUID] = {}
        for spec in self.specs:
            flow = spec.load_flow()
            deployment = flow.to_deployment(
                name=spec.name,
                description=spec.description or None,
                tags=spec.tags,
                parameters=spec.parameters,
                schedules=[CronSchedule(cron=s.cron, timezone=s.timezone) for s in spec.schedules],
            )
            deployment_id: UUID = deployment.apply()  # type: ignore[assignment,union-attr]
            self.flows[deployment_id] = flow
            full = f"{flow.name}/{spec.name}"
            self.names[deployment_id] = full
            ids[full] = deployment_id
        return ids

    def recover_orphans(self, client: SyncPrefectClient) -> int:
        """Give back to the schedule the runs of our deployments that a dead runner claimed
        (Pending for longer than ``orphaned_after_s``, not ours); return how many.

        Without this, a runner killed between its claim and the run's start leaves the run
        Pending for good: an escalation timer that never fires. Several runners may find
        the same orphan; each puts it back to Scheduled, and the claim lets one win.
        """
        pending = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=list(self.flows)),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING])),
            ),
            limit=200,
        )
        now = datetime.now(UTC)
        recovered = 0
        for run in pending:
            with self._inflight_lock:
                ours = run.id in self.inflight
            state = run.state
            if ours or state is None or state.timestamp is None:
                continue
            if (now - state.timestamp).total_seconds() < self.orphaned_after_s:
                continue
            log.warning(
                "flow run %s (%s) was claimed %.0f s ago by a runner that never started it: "
                "back to Scheduled",
                run.id,
                run.name,
                (now - state.timestamp).total_seconds(),
            )
            client.set_flow_run_state(
                run.id,
                Scheduled(scheduled_time=now, message="claimed by a runner that died"),
                force=True,
            )
            recovered += 1
        return recovered

    def poll_once(self, client: SyncPrefectClient) -> int:
        """Claim and start every due run; return how many were started."""
        if time.monotonic() >= self._next_orphan_check:
            self._next_orphan_check = time.monotonic() + max(1.0, self.orphaned_after_s / 4)
            self.recover_orphans(client)
        with self._inflight_lock:
            room = self.max_runs - len(self.inflight)
        if room <= 0:
            return 0
        due = client.get_scheduled_flow_runs_for_deployments(
            list(self.flows), scheduled_before=datetime.now(UTC), limit=room
        )
        started = 0
        for flow_run in due:
            try:
                state = propose_state_sync(client, Pending(), flow_run_id=flow_run.id)
            except Abort:
                continue  # another runner claimed it first
            if not state.is_pending():
                continue
            flow = self.flows[flow_run.deployment_id]  # type: ignore[index]
            # Daemon threads: a paused run must not keep the process from exiting on stop.
            thread = threading.Thread(
                target=self._execute,
                args=(flow, flow_run.id),
                name=f"flow-run-{flow_run.id}",
                daemon=True,
            )
            with self._inflight_lock:
                self.inflight[flow_run.id] = thread
            thread.start()
            started += 1
        self.started_runs += started
        return started

    def _execute(self, flow: Flow[..., Any], flow_run_id: UUID) -> None:
        with SyncPrefectClient(self.api_url, auth_string=client_auth_string()) as client:
            flow_run = client.read_flow_run(flow_run_id)
        try:
            with self._on_our_server():
                run_flow(flow, flow_run=flow_run, return_type="state")
        except BaseException:
            log.exception("flow run %s crashed in the runner", flow_run_id)
        finally:
            with self._inflight_lock:
                self.inflight.pop(flow_run_id, None)

    def serve(self, on_ready: Any = None) -> None:
        """Register, then poll until `stop_event` is set."""
        self.register()
        if on_ready:
            on_ready(self)
        with (
            self._on_our_server(),
            shared_suspension_observer(),
            SyncPrefectClient(self.api_url, auth_string=client_auth_string()) as client,
        ):
            while not self.stop_event.is_set():
                try:
                    self.poll_once(client)
                except Exception:
                    log.exception("polling the Prefect API failed; retrying")
                    time.sleep(1)
                self.stop_event.wait(self.poll_s)

    def stop(self, grace_s: float = 10.0) -> list[UUID]:
        """Stop polling, give running flow runs ``grace_s`` to finish, mark the rest Crashed.

        Returns the runs that were still in flight (paused for approval, or slower than the
        grace period): they are marked Crashed so the UI does not show them waiting for a
        process that is gone; their incidents stay open for a person.
        """
        self.stop_event.set()
        deadline = time.monotonic() + grace_s
        with self._inflight_lock:
            threads = list(self.inflight.items())
        for _, thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._inflight_lock:
            left = list(self.inflight)
        if left:
            with SyncPrefectClient(self.api_url, auth_string=client_auth_string()) as client:
                for run_id in left:
                    try:
                        client.set_flow_run_state(
                            run_id,
                            Crashed(message="the worker stopped during the run"),
                            force=True,
                        )
                    except Exception:
                        log.exception("could not mark flow run %s crashed", run_id)
        return left
