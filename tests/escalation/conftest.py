"""Escalation fixtures: `oncall worker` as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ONCALL = str(Path(sys.executable).parent / "oncall")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail the test naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Worker:
    """`oncall worker` as a user runs it, in its own process group; one log per start."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0
        self._launched = 0.0
        self._ready: threading.Event = threading.Event()
        self.startup_s = 0.0

    @property
    def log(self) -> Path:
        return self.home / f"worker-{self.starts}.log"

    def launch(self) -> None:
        """Start it; a thread notes when it is ready (it says so once it has registered)."""
        self.starts += 1
        self._ready = threading.Event()
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [ONCALL, "worker", "--poll", "0.1"],
                env={**os.environ, "ONCALL_HOME": str(self.home), "COLUMNS": "200"},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        self._launched = time.monotonic()
        threading.Thread(target=self._watch, args=(self.proc, self.log), daemon=True).start()

    def _watch(self, proc: subprocess.Popen[str], log: Path) -> None:
        while proc.poll() is None and time.monotonic() - self._launched < 120:
            if "Worker ready" in log.read_text():
                self.startup_s = time.monotonic() - self._launched
                self._ready.set()
                return
            time.sleep(0.05)

    def wait_ready(self) -> float:
        """Block until it is ready; return how long it took from its launch."""
        assert self._ready.wait(125), f"worker not ready:\n{self.log.read_text()}"
        return self.startup_s

    @property
    def pid(self) -> int:
        """The process (and process group) id of the running worker."""
        assert self.proc is not None, "not launched"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def worker(oncall_home: Path, prefect_api: str) -> Iterator[Worker]:
    oncall_home.mkdir(parents=True, exist_ok=True)
    w = Worker(oncall_home)
    yield w
    w.kill()
