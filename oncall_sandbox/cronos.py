"""CRONOS AI: configuration, DB connection pool, cache and CPU, and how requests fare."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from oncall_sandbox.workloads import Crash, ImageProfile, Route, SimClock

if TYPE_CHECKING:
    from oncall_sandbox.world import Backend, Outcome, StartPlan

DEFAULT_POOL_SIZE = 10
CPU_CAPACITY_RPS = 12.0  # requests per second one pod serves at its CPU limit
LEAK_PER_MINUTE = 3.0  # connections the stuck export job leaks per pod per simulated minute
LEAK_CAP = 20
HEALTHY_HIT_RATE = 0.94
FLUSHED_HIT_RATE = 0.35
WARM_UP_SECONDS = 30.0
POOL_TIMEOUT_SECONDS = 30.0
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}
_SLOW_QUERIES = (
    "SELECT * FROM job_runs WHERE job_id = $1 ORDER BY started_at DESC LIMIT 50",
    "SELECT m.*, f.* FROM model_versions m JOIN features f ON f.model_id = m.id WHERE m.name = $1",
    "SELECT count(*) FROM predictions WHERE created_at > now() - interval '1 day'",
)


def _config_error(version: str, key: str, value: str, expected: str, line: str) -> Crash:
    return Crash(
        1.5,
        1,
        "Error",
        (
            f"INFO Starting CRONOS AI {version}",
            "INFO Loading configuration from environment (ConfigMap cronos-ai-config)",
            "Traceback (most recent call last):",
            '  File "/app/ai_engine/config.py", line 48, in load',
            f"    {line}",
            f"ValueError: invalid literal for int() with base 10: {value!r}",
            f"ERROR Configuration error: {key} must be {expected}, got {value!r}",
        ),
    )


def start_plan(image: str, env: dict[str, str], ready_after: float) -> StartPlan:
    """Validate the configuration the container started with, as the app does at import."""
    from oncall_sandbox.world import StartPlan

    version = image.rsplit(":", 1)[-1]
    for key, expected, line in (
        ("CACHE_TTL_SECONDS", "an integer number of seconds", 'int(env["CACHE_TTL_SECONDS"])'),
        ("DB_POOL_SIZE", "a positive integer", 'int(env["DB_POOL_SIZE"])'),
    ):
        value = env.get(key, "1")
        if not value.isdigit() or int(value) < 1:
            return StartPlan((), ready_after, _config_error(version, key, value, expected, line))
    level = env.get("LOG_LEVEL", "INFO")
    lines = (
        f"INFO Starting CRONOS AI {version}",
        f"INFO Configuration loaded: CACHE_TTL_SECONDS={env.get('CACHE_TTL_SECONDS', '300')} "
        f"LOG_LEVEL={level if level in _LOG_LEVELS else 'INFO'}",
        f"INFO Database pool ready: size={pool_size(env)} overflow=0 "
        f"timeout={POOL_TIMEOUT_SECONDS:.0f}s host=postgres:5432",
        "INFO Connected to redis at redis:6379",
        "INFO Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)",
    )
    return StartPlan(lines, ready_after)


def pool_size(env: dict[str, str]) -> int:
    """DB_POOL_SIZE as the app reads it."""
    value = env.get("DB_POOL_SIZE", str(DEFAULT_POOL_SIZE))
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_POOL_SIZE


def utilization(load_per_pod: float) -> float:
    """CPU use of one pod relative to its limit."""
    return load_per_pod / CPU_CAPACITY_RPS


class Database:
    """The shared PostgreSQL and Redis of CRONOS: connection leak, cache, slow queries."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.leak_origin: float | None = None
        self._leak_noticed = 0.0
        self._hit_rate = HEALTHY_HIT_RATE
        self._warming: tuple[float, float] | None = None  # (started, from rate)
        self.errors_until: float | None = None  # the flaky reports API of the `minor` scenario
        self._slow: deque[tuple[float, str, float]] = deque(maxlen=500)

    def start_leak(self, backdate_sim_seconds: float) -> None:
        """The stuck export job holds connections: pods running now have leaked since
        `backdate` ago; pods started later leak from their start."""
        self._leak_noticed = time.monotonic()
        self.leak_origin = self._leak_noticed - self.clock.real(backdate_sim_seconds)

    def leaked(self, started: float) -> float:
        """Connections a pod started at `started` has leaked by now."""
        if self.leak_origin is None:
            return 0.0
        origin = self.leak_origin if started < self._leak_noticed else started
        since = self.clock.sim(time.monotonic() - origin)
        return min(float(LEAK_CAP), LEAK_PER_MINUTE * max(since, 0.0) / 60.0)

    def pool(self, backend: Backend, load_per_pod: float) -> tuple[float, int, bool]:
        """(connections wanted, pool size, exhausted) of one pod."""
        wanted = load_per_pod * 0.6 + self.leaked(backend.started)
        size = pool_size(backend.env)
        return wanted, size, wanted >= size

    def flush_cache(self) -> None:
        """Redis lost its keys (failover): the hit rate collapses and stays low."""
        with self._lock:
            self._hit_rate, self._warming = FLUSHED_HIT_RATE, None

    def warm_cache(self) -> None:
        """`POST /admin/cache/warm`: reload the hot keys over half a simulated minute."""
        with self._lock:
            self._warming = (time.monotonic(), self._hit_rate_locked())

    def _hit_rate_locked(self) -> float:
        if self._warming is None:
            return self._hit_rate
        started, start_rate = self._warming
        done = min(self.clock.sim(time.monotonic() - started) / WARM_UP_SECONDS, 1.0)
        rate = start_rate + (HEALTHY_HIT_RATE - start_rate) * done
        if done >= 1.0:
            self._hit_rate, self._warming = HEALTHY_HIT_RATE, None
        return rate

    def hit_rate(self) -> float:
        """Share of cache lookups that hit right now."""
        with self._lock:
            return self._hit_rate_locked()

    def query_seconds(self) -> float:
        """Mean time of an uncached query: the misses' load makes the database slow."""
        misses = 1.0 - self.hit_rate()
        return 0.25 + max(misses - 0.1, 0.0) * 3.5

    def record_slow(self, query: str, seconds: float) -> None:
        """Keep a query that took over a second (pg_stat_statements-like)."""
        with self._lock:
            self._slow.append((time.monotonic(), query, seconds))

    def slow_queries(self, window_sim_seconds: float = 300.0) -> list[dict[str, object]]:
        """Slow queries of the last few simulated minutes, slowest mean first."""
        horizon = time.monotonic() - self.clock.real(window_sim_seconds)
        with self._lock:
            recent = [(q, s) for at, q, s in self._slow if at >= horizon]
        stats: dict[str, list[float]] = {}
        for query, seconds in recent:
            stats.setdefault(query, []).append(seconds)
        rows: list[dict[str, object]] = [
            {
                "query": q,
                "calls": len(d),
                "mean_ms": round(1000 * sum(d) / len(d), 1),
                "max_ms": round(1000 * max(d), 1),
            }
            for q, d in stats.items()
        ]
        return sorted(rows, key=lambda r: -float(str(r["mean_ms"])))

    def flaky(self) -> bool:
        """True while the reports API fails intermittently."""
        return self.errors_until is not None and time.monotonic() < self.errors_until


def outcome(
    db: Database,
    profile: ImageProfile,
    backend: Backend,
    route: Route,
    load_per_pod: float,
    rng: random.Random,
) -> Outcome:
    """One request to a CRONOS pod: pool, CPU, cache, upstream, in that order."""
    from oncall_sandbox.world import Outcome

    if route.path in ("/health", "/healthz"):
        return Outcome(200, 0.005)
    wanted, size, exhausted = db.pool(backend, load_per_pod)
    if exhausted and rng.random() < min(0.85, (wanted - size + 1) / wanted):
        return Outcome(
            503 if rng.random() < 0.8 else 504,
            POOL_TIMEOUT_SECONDS,
            f"connection pool exhausted: QueuePool limit of size {size} overflow 0 reached, "
            f"connection timed out, timeout {POOL_TIMEOUT_SECONDS:.2f}",
        )
    u = utilization(load_per_pod)
    stress = min(max((u - 0.8) / 0.2, 0.0), 1.0)  # 0 below 80 % CPU, 1 at saturation
    mean = profile.latency_seconds + stress * 0.35
    latency = rng.expovariate(1 / mean)
    if rng.random() < profile.error_rate + stress * 0.07:
        code = 503 if rng.random() < 0.5 else 504
        return Outcome(code, latency * 3, "worker timeout: request queue full (CPU saturated)")
    cache = "hit"
    if rng.random() >= db.hit_rate():
        cache = "miss"
        query_time = db.query_seconds() * (0.5 + rng.random())
        latency += query_time
        if query_time > 1.0:
            db.record_slow(rng.choice(_SLOW_QUERIES), query_time)
    if route.path == "/api/v1/reports/export" and db.flaky() and rng.random() < 0.08:
        return Outcome(502, latency, "upstream reports-api: connection reset by peer", cache)
    return Outcome(200, latency, cache=cache)
