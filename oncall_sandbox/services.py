"""Simulated Service endpoints: an HTTP server per Service, routed to its ready pods."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from oncall_sandbox.app_metrics import AppCollector
from oncall_sandbox.podlogs import PodLogs
from oncall_sandbox.selectors import matches_labels
from oncall_sandbox.service_http import handler_for
from oncall_sandbox.store import Obj, Store
from oncall_sandbox.workloads import Route, SimClock, access_line, profile_for
from oncall_sandbox.world import Backend, World

_HEALTH_WINDOW_SIM_SECONDS = 10.0
_UNHEALTHY_ERROR_RATE = 0.05
_LOG_LINES_PER_TICK = 20
_LOAD_TIME_CONSTANT = 10.0  # simulated seconds over which the load estimate follows traffic
_LLM_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0)
_HTTP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)

RunLookup = Callable[[str], tuple[dict[str, str], float] | None]


def is_ready(pod: Obj) -> bool:
    """True when the pod's Ready condition is True and it is not being deleted."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def ready_backends(
    store: Store, namespace: str, selector: dict[str, str], runs: RunLookup | None = None
) -> list[Backend]:
    """Ready pods matching a Service's current selector."""
    pods = store.list(
        "pods", namespace, lambda p: matches_labels(selector, p["metadata"].get("labels"))
    )
    backends = []
    for pod in pods:
        if not is_ready(pod):
            continue
        container = pod["spec"]["containers"][0]
        labels = pod["metadata"].get("labels") or {}
        env, started = (runs and runs(pod["metadata"]["uid"])) or ({}, 0.0)
        backends.append(
            Backend(
                pod["metadata"]["name"],
                pod["metadata"]["uid"],
                container["name"],
                container["image"],
                labels.get("version", ""),
                env,
                started,
            )
        )
    return backends


class SimulatedService:
    """One Service's traffic: routing, Prometheus metrics, health, pod access logs."""

    def __init__(
        self,
        store: Store,
        logs: PodLogs,
        clock: SimClock,
        namespace: str,
        name: str,
        requests_per_second: float,
        world: World | None = None,
        runs: RunLookup | None = None,
        exporter: Callable[[], bytes] | None = None,
    ) -> None:
        self.namespace, self.name = namespace, name
        self.requests_per_second = requests_per_second
        self._store, self._logs, self._clock = store, logs, clock
        self.world = world or World(clock)
        self._runs, self.exporter = runs, exporter
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._window: deque[tuple[float, int, int]] = deque()
        self._carry = 0.0
        self.load_per_pod = 0.0  # requests per second per ready pod, smoothed
        self._load_seen = False
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "http_requests",
            "HTTP requests served.",
            ["code", "pod", "version"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency.",
            ["version"],
            buckets=_HTTP_BUCKETS,
            registry=self.registry,
        )
        self._llm = Histogram(
            "llm_request_duration_seconds",
            "LLM generation latency seen by the app.",
            ["provider"],
            buckets=_LLM_BUCKETS,
            registry=self.registry,
        )
        self._llm_requests = Counter(
            "llm_requests", "LLM generation calls.", ["provider", "code"], registry=self.registry
        )
        self._cache = {
            "hit": Counter("cache_hits", "Cache lookups that hit.", registry=self.registry),
            "miss": Counter("cache_misses", "Cache lookups that missed.", registry=self.registry),
        }
        self.registry.register(AppCollector(self))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"svc-{name}", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL of this Service's endpoint."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def app(self) -> str:
        """The `app` label the Service selects: which simulated app answers."""
        service = self._store.find("services", self.namespace, self.name)
        return str(((service or {}).get("spec", {}).get("selector") or {}).get("app", self.name))

    def start(self) -> None:
        """Start answering HTTP."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering HTTP (a Service that never started just closes its socket)."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def write_log(self, backend: Backend, line: str) -> None:
        """Append a line to the log of the pod that handled something."""
        self._logs.write(self.namespace, backend.pod, backend.container, line)

    def backends(self) -> list[Backend]:
        """Ready pods selected by the Service right now (selector read live)."""
        service = self._store.find("services", self.namespace, self.name)
        if service is None:
            return []
        selector = service["spec"].get("selector") or {}
        return ready_backends(self._store, self.namespace, selector, self._runs)

    def serve(
        self,
        count: int,
        method: str = "",
        path: str = "",
        backends: list[Backend] | None = None,
        weight: float = 1.0,
    ) -> int:
        """Route `count` requests to backends (read live unless given); the last status.

        `weight` is how many arrived requests each served one stands for (a late tick
        serves a sample): the calls they make upstream are counted that many times.
        """
        backends = self.backends() if backends is None else backends
        now = time.time()
        if not backends:
            self._requests.labels("503", "", "").inc(count)
            self._record(count, count)
            return 503
        errors, code, logged_err, logged_ok = 0, 200, 0, 0
        per_pod: dict[tuple[str, str], int] = {}
        # Looked up once per call, not once per request: the loop below runs thousands of
        # times per real second at a compressed clock.
        profiles = {b.image: profile_for(b.image) for b in backends}
        durations = {b.version: self._duration.labels(b.version) for b in backends}
        for _ in range(count):
            backend = self._rng.choice(backends)
            profile = profiles[backend.image]
            route = self._rng.choice(profile.routes)
            if method:
                route = Route(method, path, route.upstream if route.path == path else "")
            result = self.world.outcome(profile, backend, route, self.load_per_pod, self._rng)
            code, latency, error = result.code, result.latency, result.error
            if result.cache:
                self._cache[result.cache].inc()
            if route.path == "/api/v1/chat" and profile.app == "backend":
                provider, llm_code, llm_latency = self.world.llm_call(
                    backend.env, self._rng, weight
                )
                self._llm.labels(provider).observe(llm_latency)
                self._llm_requests.labels(provider, str(llm_code)).inc()
                if llm_code >= 500 and code < 500:
                    code, error = 502, f"LLM provider {provider} unavailable"
            key = (str(code), backend.pod)
            per_pod[key] = per_pod.get(key, 0) + 1
            durations[backend.version].observe(latency)
            if code >= 500:
                errors += 1
                if logged_err < _LOG_LINES_PER_TICK:
                    logged_err += 1
                    line = access_line(route, code, latency, now, error)
                    self._logs.write(self.namespace, backend.pod, backend.container, line)
            elif logged_ok < 3:
                logged_ok += 1
                line = access_line(route, code, latency, now)
                self._logs.write(self.namespace, backend.pod, backend.container, line)
        versions = {b.pod: b.version for b in backends}
        for (status, pod), n in per_pod.items():
            self._requests.labels(status, pod, versions[pod]).inc(n)
        self._record(count, errors)
        return code

    def observe_ready(self) -> None:
        """Tell the world which pods of this Service are ready, without serving anything."""
        self.world.observe(self.app, [b.uid for b in self.backends()], self.load_per_pod)

    def simulate(self, real_seconds: float) -> None:
        """Count the simulated client traffic of a real time slice."""
        sim_seconds = max(self._clock.sim(real_seconds), 1e-9)
        self._carry += self.requests_per_second * sim_seconds
        if self.app == "ollama":
            self._carry += self.world.take_llm_calls()
        arrived = int(self._carry)
        self._carry -= arrived
        # At most 2000 requests are served per tick (a slow tick must not stall the thread),
        # but the load is what arrived: a late tick does not make the pods look idle.
        count = min(arrived, 2000)
        backends = self.backends()
        instant = arrived / sim_seconds / max(len(backends), 1)
        if self._load_seen:
            weight = 1.0 - math.exp(-sim_seconds / _LOAD_TIME_CONSTANT)
            self.load_per_pod += (instant - self.load_per_pod) * weight
        else:
            self.load_per_pod, self._load_seen = instant, True
        self.world.observe(self.app, [b.uid for b in backends], self.load_per_pod)
        if count:
            self.serve(count, backends=backends, weight=arrived / count)

    def _record(self, total: int, errors: int) -> None:
        now = time.monotonic()
        horizon = now - max(self._clock.real(_HEALTH_WINDOW_SIM_SECONDS), 0.15)
        with self._lock:
            self._window.append((now, total, errors))
            while self._window and self._window[0][0] < horizon:
                self._window.popleft()

    def recent_error_rate(self) -> float:
        """5xx share of the requests of the last few simulated seconds."""
        with self._lock:
            total = sum(t for _, t, _ in self._window)
            errors = sum(e for _, _, e in self._window)
        return errors / total if total else 0.0

    def health(self) -> tuple[int, Obj]:
        """The /health answer: 200 while errors are rare and someone is serving."""
        backends = len(self.backends())
        rate = self.recent_error_rate()
        body: Obj = {
            "service": self.name,
            "ready_endpoints": backends,
            "error_rate": round(rate, 4),
        }
        if backends and rate <= _UNHEALTHY_ERROR_RATE:
            return 200, {"status": "ok", **body}
        return 503, {"status": "degraded" if backends else "unavailable", **body}

    def metrics(self) -> bytes:
        """Prometheus text exposition of this Service's registry."""
        if self.exporter is not None:
            return self.exporter()
        data: bytes = generate_latest(self.registry)
        return data
