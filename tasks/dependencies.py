"""Downstream dependency probes (seed step 5): each time-bounded, retried while down."""

from __future__ import annotations

from collections.abc import Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from tenacity import retry, retry_if_result, stop_after_attempt, wait_exponential

from oncall.clients import probes
from oncall.observations import ProbeResult

# A dependency that fails one probe may be blipping; two more tries tell "down" from "blip".
_ATTEMPTS = 3


def _with_retries(probe: Callable[[], ProbeResult]) -> ProbeResult:
    retrying = retry(
        retry=retry_if_result(lambda result: not result.ok),
        stop=stop_after_attempt(_ATTEMPTS),
        wait=wait_exponential(multiplier=0.2, max=2),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
    result: ProbeResult = retrying(probe)()
    log = get_run_logger()
    if result.ok:
        log.info("%s up (%s, %.0f ms)", result.name, result.detail, result.latency_ms)
    else:
        log.warning("%s DOWN at %s: %s", result.name, result.target, result.detail)
    return result


@task(cache_policy=NO_CACHE)
def probe_postgres(dsn: str, timeout_s: float) -> ProbeResult:
    """Check PostgreSQL answers `SELECT 1`."""
    return _with_retries(lambda: probes.probe_postgres(dsn, timeout_s))


@task(cache_policy=NO_CACHE)
def probe_redis(url: str, timeout_s: float) -> ProbeResult:
    """Check Redis answers `PING`."""
    return _with_retries(lambda: probes.probe_redis(url, timeout_s))


@task(cache_policy=NO_CACHE)
def probe_http(name: str, url: str, timeout_s: float) -> ProbeResult:
    """Check an HTTP health endpoint answers 2xx."""
    return _with_retries(lambda: probes.probe_http(name, url, timeout_s))
