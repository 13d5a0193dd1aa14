"""Group commit: messages arriving together are committed by one writer in one transaction.

Every request still gets its 2xx only after its own alerts are committed; under load the
fsync and the single SQLite writer are shared by a batch instead of paid per request. On
PostgreSQL, ``ONCALL_INTAKE_WRITERS`` threads can drain the same queue, so that one batch's
round trips overlap another's (the inbox's advisory locks and ON CONFLICT keep them
consistent); the default is one.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from oncall.errors import TransientError
from oncall.intake.accepting import Accepted, Message
from oncall.intake.inbox import Inbox
from oncall.models import Alert

log = logging.getLogger(__name__)


@dataclass
class _Job:
    message: Message
    future: Future[Accepted] = field(default_factory=Future)


class GroupCommitter:
    """Writer threads draining a queue of messages into batched transactions."""

    def __init__(
        self,
        inbox: Inbox,
        route: Callable[[Alert], str],
        max_batch: int = 64,
        writers: int = 1,
    ) -> None:
        self.inbox, self.route, self.max_batch = inbox, route, max_batch
        self.writers = writers if inbox.is_postgres else 1
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._run, name=f"intake-committer-{n}", daemon=True)
            for n in range(self.writers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, message: Message) -> Future[Accepted]:
        """Queue one message; the future resolves once it is committed (or failed)."""
        job = _Job(message)
        self._jobs.put(job)
        return job.future

    def close(self, timeout_s: float = 10.0) -> None:
        """Commit what is queued, then stop the writers (each stops at its own None)."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            batch, stopping = [first], False
            while len(batch) < self.max_batch:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            self._commit(batch)
            if stopping:
                return

    def _commit(self, batch: list[_Job], attempts: int = 3) -> None:
        try:
            results = self.inbox.accept_batch([j.message for j in batch], self.route)
        except Exception as exc:
            if len(batch) == 1:
                # A deadlock between two writers is transient: try again before a 503.
                if isinstance(exc, TransientError) and attempts > 1 and self.writers > 1:
                    self._commit(batch, attempts - 1)
                else:
                    batch[0].future.set_exception(exc)
                return
            # One bad message must not fail its neighbours: commit them one by one.
            log.warning("group commit of %d messages failed (%s); one by one", len(batch), exc)
            for job in batch:
                self._commit([job])
            return
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)
