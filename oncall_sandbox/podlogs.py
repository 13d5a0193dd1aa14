"""Container log buffers as the kubelet keeps them: the running container and the previous one."""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime

_MAX_LINES = 4000
Key = tuple[str, str, str]


def stamp(at: float) -> str:
    """RFC 3339 with microseconds, as container runtimes stamp log lines."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class PodLogs:
    """Per-container log buffers, keyed by (namespace, pod, container)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[Key, deque[tuple[float, str]]] = {}
        self._previous: dict[Key, deque[tuple[float, str]]] = {}

    def write(self, namespace: str, pod: str, container: str, line: str) -> None:
        """Append a line (already carrying its own timestamp) to a container's log."""
        with self._lock:
            buffer = self._current.setdefault((namespace, pod, container), deque(maxlen=_MAX_LINES))
            buffer.append((time.time(), line))

    def start(self, namespace: str, pod: str, container: str, lines: tuple[str, ...]) -> None:
        """A container (re)starts: its last run becomes `previous`, then its start-up lines."""
        key = (namespace, pod, container)
        with self._lock:
            if key in self._current:
                self._previous[key] = self._current.pop(key)
        now = time.time()
        for line in lines:
            self.write(namespace, pod, container, f"{stamp(now)} {line}")

    def has_previous(self, namespace: str, pod: str, container: str) -> bool:
        """True once the container has been restarted at least once."""
        with self._lock:
            return (namespace, pod, container) in self._previous

    def read(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        previous: bool = False,
        tail: int | None = None,
        since_seconds: float | None = None,
        timestamps: bool = False,
    ) -> str:
        """The log text the pods/log endpoint returns."""
        source = self._previous if previous else self._current
        with self._lock:
            entries = list(source.get((namespace, pod, container), ()))
        if since_seconds is not None:
            cutoff = time.time() - since_seconds
            entries = [e for e in entries if e[0] >= cutoff]
        if tail is not None:
            entries = entries[-tail:] if tail > 0 else []
        if timestamps:
            return "".join(f"{stamp(at)} {line}\n" for at, line in entries)
        return "".join(f"{line}\n" for _, line in entries)

    def forget(self, namespace: str, pod: str) -> None:
        """Drop the buffers of a deleted pod."""
        with self._lock:
            for buffers in (self._current, self._previous):
                for key in [k for k in buffers if k[:2] == (namespace, pod)]:
                    del buffers[key]
