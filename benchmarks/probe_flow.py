"""A minimal playbook-shaped flow for start-latency benchmarks: its first task marks the start."""

from __future__ import annotations

from typing import Any

from prefect import flow, task


@task
def first_step() -> None:
    """The first task of the run; its start time is what the benchmark reads."""


@flow(name="start-latency-probe")
def start_latency_probe(created: float = 0.0, alert: dict[str, Any] | None = None) -> None:
    """Run one task and end (``alert`` is what the intake's dispatcher passes)."""
    first_step()
