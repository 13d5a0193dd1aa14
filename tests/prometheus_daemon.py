"""Debian's Prometheus, run on 127.0.0.1 for one test with the config it is given."""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import free_port

PROMETHEUS = shutil.which("prometheus")


class Daemon:
    """A binary run directly on 127.0.0.1 with its output in a log file."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        """Terminate and wait."""
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def healthy(url: str) -> bool:
    """True when ``url`` answers 200."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def _ready(name: str, argv: list[str], log: Path, port: int, timeout_s: float) -> Iterator[str]:
    """Run ``argv`` (listening on ``port``); yield its URL once ``/-/ready`` answers 200."""
    daemon = Daemon(argv, log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not healthy(f"{url}/-/ready"):
            if daemon.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        daemon.stop()


@contextmanager
def prometheus(config: str, workdir: Path, timeout_s: float = 30) -> Iterator[str]:
    """A Prometheus with ``config`` (YAML); yields its base URL once it is ready."""
    assert PROMETHEUS is not None
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(config)
    port = free_port()
    argv = [
        PROMETHEUS,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with _ready("Prometheus", argv, workdir / "prometheus.log", port, timeout_s) as url:
        yield url


ALERTMANAGER = shutil.which("prometheus-alertmanager")


@contextmanager
def alertmanager(workdir: Path, config: str | None = None, timeout_s: float = 30) -> Iterator[str]:
    """A single-node Alertmanager (by default routing to no receiver); yields its base URL."""
    assert ALERTMANAGER is not None
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(
        config or 'route: {receiver: "null"}\nreceivers: [{name: "null"}]\n'
    )
    port = free_port()
    argv = [
        ALERTMANAGER,
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with _ready("Alertmanager", argv, workdir / "alertmanager.log", port, timeout_s) as url:
        yield url


SHIPPED_RULES = Path(__file__).resolve().parents[1] / "deployments" / "prometheus" / "rules.yaml"
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


def compressed_rules(scale: float, min_range_s: float, interval_s: float = 1.0) -> str:
    """The shipped rules file with its ranges and ``for`` durations scaled by ``scale``.

    The end-to-end tests fire the very rules a user deploys, at the sandbox's compressed
    clock: a range never shorter than ``min_range_s`` (it must hold two scrapes), every
    group evaluated each ``interval_s``.
    """
    import re

    import yaml

    def seconds(amount: str, unit: str) -> float:
        return int(amount) * _UNIT_S[unit] * scale

    def scaled_range(match: re.Match[str]) -> str:
        return f"[{max(round(seconds(match[1], match[2])), math.ceil(min_range_s))}s]"

    doc = yaml.safe_load(SHIPPED_RULES.read_text())
    for group in doc["groups"]:
        group["interval"] = f"{interval_s:g}s"
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[(\d+)([smh])\]", scaled_range, rule["expr"])
            if "for" in rule:
                found = re.fullmatch(r"(\d+)([smh])", str(rule["for"]))
                assert found, f"unexpected for: {rule['for']}"
                wait = max(seconds(found[1], found[2]), interval_s)
                rule["for"] = f"{round(wait * 1000)}ms"  # Prometheus takes no decimals
    return str(yaml.safe_dump(doc, sort_keys=False))
