"""Simulated Service endpoints: an HTTP server per Service, routed to its ready pods."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from oncall.sandbox.selectors import matches_labels
from oncall.sandbox.store import Obj, Store
from oncall.sandbox.workloads import PodLogs, SimClock, access_line, profile_for

_HEALTH_WINDOW_SIM_SECONDS = 10.0
_UNHEALTHY_ERROR_RATE = 0.05
_LOG_LINES_PER_TICK = 20


@dataclass(frozen=True)
class Backend:
    """A ready pod behind a Service: where one request lands."""

    pod: str
    container: str
    image: str
    version: str


def is_ready(pod: Obj) -> bool:
    """True when the pod's Ready condition is True and it is not being deleted."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def ready_backends(store: Store, namespace: str, selector: dict[str, str]) -> list[Backend]:
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
        backends.append(
            Backend(
                pod["metadata"]["name"],
                container["name"],
                container["image"],
                labels.get("version", ""),
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
    ) -> None:
        self.namespace, self.name = namespace, name
        self.requests_per_second = requests_per_second
        self._store, self._logs, self._clock = store, logs, clock
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._window: deque[tuple[float, int, int]] = deque()
        self._carry = 0.0
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
            registry=self.registry,
        )
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"svc-{name}", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL of this Service's endpoint."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        """Start answering HTTP."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering HTTP."""
        self._server.shutdown()
        self._server.server_close()

    def backends(self) -> list[Backend]:
        """Ready pods selected by the Service right now (selector read live)."""
        service = self._store.find("services", self.namespace, self.name)
        if service is None:
            return []
        return ready_backends(self._store, self.namespace, service["spec"].get("selector") or {})

    def serve(self, count: int, method: str = "", path: str = "") -> int:
        """Route `count` requests to backends; returns the last status code."""
        backends = self.backends()
        now = time.time()
        if not backends:
            self._requests.labels("503", "", "").inc(count)
            self._record(count, count)
            return 503
        errors, code, logged_err, logged_ok = 0, 200, 0, 0
        per_pod: dict[tuple[str, str], int] = {}
        for _ in range(count):
            backend = self._rng.choice(backends)
            profile = profile_for(backend.image)
            code, latency = profile.outcome(self._rng)
            key = (str(code), backend.pod)
            per_pod[key] = per_pod.get(key, 0) + 1
            self._duration.labels(backend.version).observe(latency)
            route = self._rng.choice(profile.routes)
            if method:
                route = type(route)(method, path, route.upstream)
            if code >= 500:
                errors += 1
                if logged_err < _LOG_LINES_PER_TICK:
                    logged_err += 1
                    line = access_line(route, code, latency, now)
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

    def simulate(self, real_seconds: float) -> None:
        """Count the simulated client traffic of a real time slice."""
        self._carry += self.requests_per_second * self._clock.sim(real_seconds)
        count = min(int(self._carry), 2000)
        self._carry -= int(self._carry)
        if count:
            self.serve(count)

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
        data: bytes = generate_latest(self.registry)
        return data


def _handler_for(service: SimulatedService) -> type[BaseHTTPRequestHandler]:
    class Handler(_ServiceHandler):
        target: ClassVar[SimulatedService] = service

    return Handler


class _ServiceHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target: ClassVar[SimulatedService]

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        if self.command == "GET" and path == "/metrics":
            self._send(200, self.target.metrics(), CONTENT_TYPE_LATEST)
            return
        if self.command == "GET" and path in ("/health", "/healthz"):
            code, body = self.target.health()
        else:
            code = self.target.serve(1, self.command, path)
            body = {"status": "ok"} if code < 400 else {"error": f"upstream returned {code}"}
        self._send(code, json.dumps(body).encode(), "application/json")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer
