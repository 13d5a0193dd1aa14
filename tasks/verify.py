"""Verification: the alert's condition must stay clear for several windows in a row."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oncall.clients.metrics import ServiceMetrics
from oncall.errors import TransientError
from oncall.observations import Verification


@task(cache_policy=NO_CACHE)
def verify_error_rate(
    metrics: ServiceMetrics, threshold: float, checks: int, window_s: float, timeout_s: float
) -> Verification:
    """Pass when the 5xx rate stays under ``threshold`` for ``checks`` windows in a row."""
    log = get_run_logger()
    deadline = time.monotonic() + timeout_s
    samples: list[float] = []
    streak = 0
    while time.monotonic() < deadline:
        try:
            sample = metrics.error_rate(window_s)
        except TransientError as exc:
            log.warning("Scrape failed, counts as unhealthy: %s", exc)
            streak = 0
            time.sleep(min(window_s, 1.0))
            continue
        samples.append(round(sample.rate, 4))
        streak = streak + 1 if sample.rate < threshold else 0
        log.info(
            "5xx rate %.2f%% over %.1fs (%d requests): %d/%d healthy in a row",
            sample.rate * 100,
            sample.window_s,
            sample.requests,
            streak,
            checks,
        )
        if streak >= checks:
            return Verification(
                passed=True,
                samples=samples,
                threshold=threshold,
                detail=f"5xx rate under {threshold:.0%} for {checks} consecutive windows",
            )
    return Verification(
        passed=False,
        samples=samples,
        threshold=threshold,
        detail=f"5xx rate not under {threshold:.0%} for {checks} windows within {timeout_s:.0f}s",
    )
