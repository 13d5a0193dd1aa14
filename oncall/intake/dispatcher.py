"""The dispatcher: turns inbox entries into Prefect flow runs, exactly once per occurrence.

It resumes from the inbox after a crash (every entry without `dispatched_at` is owed),
backs off while Prefect or the store is unreachable, and relies on Prefect's
idempotency key so that a run created just before a crash is found, not duplicated.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential_jitter

from oncall.errors import NotFoundError, OncallError, PermanentError, TransientError
from oncall.intake.metrics import IntakeMetrics
from oncall.intake.prefect_runs import FINAL_STATES, PrefectRuns
from oncall.intake.queue import Claim, DispatchQueue, PendingRun
from oncall.intake.settings import IntakeSettings
from oncall.lifecycle import POSTMORTEM_TAG
from oncall.models import Alert, utcnow

log = logging.getLogger(__name__)

_STATES_PER_CALL = 200  # the Prefect API's default page size


@dataclass(frozen=True)
class _AttemptNumber:
    """What tenacity's wait strategies read of a retry: the attempt number."""

    attempt_number: int


class Dispatcher:
    """A background thread creating the flow runs the inbox owes."""

    def __init__(
        self,
        queue: DispatchQueue,
        prefect: PrefectRuns,
        default_deployment: str,
        settings: IntakeSettings,
        metrics: IntakeMetrics,
    ) -> None:
        self.queue, self.prefect, self.settings, self.metrics = queue, prefect, settings, metrics
        self.default_deployment = default_deployment
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_run_check = 0.0
        # Failures since the last flow run was created: the backoff grows with these, so
        # one 503 after progress ("database is locked" on a busy SQLite Prefect) costs the
        # initial wait again, not the longest one reached during an outage.
        self._failures = 0
        self._wait = wait_exponential_jitter(
            initial=settings.backoff_initial_s,
            max=settings.backoff_max_s,
            jitter=settings.backoff_initial_s,
        )

    def start(self) -> None:
        """Start dispatching in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="intake-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the thread to finish and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def wake(self) -> None:
        """New entries were committed: look now instead of at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=self._backoff,
            stop=lambda _state: self._stop.is_set(),
            sleep=self._sleep,
            before_sleep=self._log_backoff,
            reraise=True,
        )
        while not self._stop.is_set():
            self._wake.clear()
            try:
                for attempt in retrying:
                    with attempt:
                        self.step()
            except TransientError:
                pass  # stopping while the API was down; the inbox keeps what is owed
            except Exception:
                log.exception("intake dispatcher step failed; retrying at the next poll")
            self._wake.wait(self.settings.poll_interval_s)

    def _backoff(self, state: RetryCallState) -> float:
        """Exponential in the failures since the last progress, with jitter, capped."""
        self._failures += 1
        return float(self._wait(_AttemptNumber(self._failures)))  # type: ignore[arg-type]

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)  # a stop request cuts the backoff short

    def _log_backoff(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.metrics.dispatch_errors.labels("unreachable").inc()
        log.warning(
            "dispatch paused %.1fs (failure %d since the last created run): %s",
            wait,
            self._failures,
            exc,
        )

    def step(self) -> int:
        """Dispatch everything due, then look at running playbooks; return runs created."""
        created = self.drain()
        if time.monotonic() >= self._next_run_check:
            self.check_runs()
            self._next_run_check = time.monotonic() + self.settings.run_check_interval_s
            created += self.drain()  # post-incident runs just queued
        self.behind()
        return created

    def behind(self) -> tuple[int, float]:
        """Flow runs owed and the oldest one's age in seconds (also set on /metrics)."""
        count, oldest = self.queue.backlog()
        age = max((utcnow() - oldest).total_seconds(), 0.0) if oldest else 0.0
        self.metrics.pending.set(count)
        self.metrics.oldest_pending.set(age)
        return count, age

    def drain(self) -> int:
        """Create the flow run of every due inbox entry; TransientError if Prefect is down."""
        created, limit = 0, self.settings.dispatch_batch
        while True:
            failure: TransientError | None = None
            with self.queue.claim(limit) as claim:
                for run in claim.rows:
                    try:
                        created += self._dispatch(claim, run)
                    except TransientError as exc:
                        claim.failed(run, str(exc), utcnow())
                        failure = exc
                        break
            if failure is not None:
                raise failure
            if len(claim.rows) < limit:
                return created

    def _dispatch(self, claim: Claim, run: PendingRun) -> int:
        deployment = run.deployment
        if run.kind == "playbook":
            alert = Alert.model_validate(run.parameters["alert"])
            self.queue.inbox.ensure_incident(run.incident_id, alert, deployment)
        tags = ["oncall-intake", f"incident:{run.incident_id}"]
        if run.kind == "post-incident":
            # Not ``incident:<id>``: resolving cancels the scheduled runs with that tag.
            tags = ["oncall-intake", POSTMORTEM_TAG, f"postmortem:{run.incident_id}"]
        try:
            created = self.prefect.create_run(deployment, run.parameters, run.key, tags)
        except NotFoundError as exc:
            if run.kind != "playbook":
                claim.skipped(run, f"no deployment {deployment}: nothing started ({exc})")
                return 0
            age = utcnow() - run.created_at
            grace = timedelta(seconds=self.settings.missing_deployment_grace_s)
            if deployment == self.default_deployment or age < grace:
                self._retry_later(claim, run, "missing_deployment", f"no deployment {deployment}")
                return 0
            log.warning("%s: no deployment %s; sending to default triage", run.key, deployment)
            deployment = self.default_deployment
            try:
                created = self.prefect.create_run(deployment, run.parameters, run.key, tags)
            except NotFoundError:
                self._retry_later(claim, run, "missing_deployment", f"no deployment {deployment}")
                return 0
        except PermanentError as exc:
            # A refused run (parameter schema, ...) is a configuration error: keep it owed.
            self._retry_later(claim, run, "refused", str(exc))
            return 0
        done_at = claim.done(run, created.id, deployment)
        if run.kind == "playbook":
            try:
                self.queue.inbox.store.attach_flow_run(run.incident_id, created.id)
            except OncallError as exc:  # the flow's open_incident links it too
                log.warning(
                    "could not link %s to flow run %s: %s", run.incident_id, created.id, exc
                )
        self._failures = 0
        self.metrics.dispatched.labels(run.kind).inc()
        self.metrics.dispatch_lag.observe((done_at - run.created_at).total_seconds())
        log.info("%s -> flow run %s of %s", run.key, created.id, deployment)
        return 1

    def _retry_later(self, claim: Claim, run: PendingRun, error: str, detail: str) -> None:
        delay = min(self.settings.backoff_max_s, self.settings.backoff_initial_s * 2**run.attempts)
        self.metrics.dispatch_errors.labels(error).inc()
        log.warning("%s: %s; next attempt in %.1fs", run.key, detail, delay)
        claim.failed(run, detail, utcnow() + timedelta(seconds=delay))

    def check_runs(self) -> None:
        """Read the states of unfinished playbook runs; queue post-incident runs now due."""
        watched = self.queue.watched_runs()
        ids = sorted(watched)
        for start in range(0, len(ids), _STATES_PER_CALL):
            states = self.prefect.states(ids[start : start + _STATES_PER_CALL])
            for run_id, state in states.items():
                self.queue.record_run_state(watched[run_id], state, state in FINAL_STATES)
        for incident_id in self.queue.queue_post_incident(self.settings.post_incident_deployment):
            log.info(
                "%s: alert resolved and playbook finished; post-incident run owed", incident_id
            )
