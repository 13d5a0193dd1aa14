"""A stand-in for Prometheus where Debian's is not installed: the same HTTP API shape.

It scrapes every simulated Service of the sandbox on an interval, as Prometheus would scrape
each pod (the series carry ``namespace``, ``service``, ``job`` and the exporter's ``pod``
labels), keeps the samples for a while, and answers ``/api/v1/query`` and
``/api/v1/query_range`` for the part of PromQL that :mod:`oncall_sandbox.promql` evaluates.
The playbooks cannot tell it from a Prometheus: they ask the same queries, get the same
envelope, and a query outside that part is refused with ``bad_data``, never guessed.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from oncall_sandbox.promql import Labels, Matcher, PromQLError, Samples, Vector, evaluate

Key = tuple[str, tuple[tuple[str, str], ...]]
Collect = Callable[[], list[tuple[str, Labels, float]]]
"""One scrape of a target: every sample as (name, labels, value)."""
Target = tuple[Labels, Collect]
"""A scrape target: its target labels and how to scrape it."""


class SeriesStore:
    """Samples of every scraped series, for ``retention_s`` seconds."""

    def __init__(self, retention_s: float = 900.0) -> None:
        self.retention_s = retention_s
        self._series: dict[Key, deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def add(self, at: float, samples: Iterable[tuple[str, Labels, float]]) -> None:
        """Append one scrape's samples (name, labels, value)."""
        horizon = at - self.retention_s
        with self._lock:
            for name, labels, value in samples:
                key = (name, tuple(sorted(labels.items())))
                kept = self._series.setdefault(key, deque())
                kept.append((at, value))
                while kept and kept[0][0] < horizon:
                    kept.popleft()

    def select(self, name: str, matchers: list[Matcher]) -> list[tuple[Labels, Samples]]:
        """Every series of ``name`` that all ``matchers`` pass, with its samples."""
        with self._lock:
            found: list[tuple[Labels, Samples]] = [
                (dict(labels), list(samples))
                for (series, labels), samples in self._series.items()
                if series == name and all(m.matches(dict(labels)) for m in matchers)
            ]
        return found


class PrometheusStandIn:
    """Scrapes the given targets every ``interval_s``; serves the query API on 127.0.0.1."""

    def __init__(
        self,
        targets: Callable[[], list[Target]],
        interval_s: float = 0.5,
    ) -> None:
        self.interval_s = interval_s
        self.store = SeriesStore()
        self._targets = targets
        self._stopping = threading.Event()
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True),
            threading.Thread(target=self._scrape_loop, name="prometheus-standin", daemon=True),
        ]

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, what ``ONCALL_PROMETHEUS_URL`` is set to."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        """Scrape once, then keep scraping and serving."""
        self.scrape()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop scraping and serving."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def scrape(self) -> None:
        """One scrape of every target, its target labels added to each sample."""
        now = time.time()
        for target_labels, collect in self._targets():
            try:
                samples = [(n, {**ls, **target_labels}, v) for n, ls, v in collect()]
            except Exception:  # a target that fails one scrape is missing one sample
                continue
            self.store.add(now, [*samples, ("up", dict(target_labels), 1.0)])

    def _scrape_loop(self) -> None:
        while not self._stopping.wait(self.interval_s):
            self.scrape()

    def query(self, expr: str, at: float) -> dict[str, Any]:
        """The API's ``data`` of an instant query."""
        return _as_data(evaluate(expr, self.store.select, at), at)

    def query_range(self, expr: str, start: float, end: float, step: float) -> dict[str, Any]:
        """The API's ``data`` of a range query."""
        if step <= 0 or (end - start) / step > 11_000:
            raise PromQLError("exceeded maximum resolution of 11,000 points per timeseries")
        series: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
        t = start
        while t <= end + 1e-9:
            found = evaluate(expr, self.store.select, t)
            vector = [({}, found)] if isinstance(found, float) else found
            for labels, value in vector:
                if not math.isnan(value):
                    series.setdefault(tuple(sorted(labels.items())), []).append(
                        [round(t, 3), _number(value)]
                    )
            t += step
        return {
            "resultType": "matrix",
            "result": [{"metric": dict(k), "values": v} for k, v in series.items()],
        }


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _as_data(found: Vector | float, at: float) -> dict[str, Any]:
    if isinstance(found, float):
        return {"resultType": "scalar", "result": [round(at, 3), _number(found)]}
    return {
        "resultType": "vector",
        "result": [
            {"metric": labels, "value": [round(at, 3), _number(value)]} for labels, value in found
        ],
    }


class _Handler(BaseHTTPRequestHandler):
    standin: PrometheusStandIn

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self._answer(url.path, {k: v[-1] for k, v in parse_qs(url.query).items()})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode(errors="replace"))
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        params.update({k: v[-1] for k, v in form.items()})
        self._answer(url.path, params)

    def _answer(self, path: str, params: dict[str, str]) -> None:
        if path in ("/-/ready", "/-/healthy"):
            self._send(200, b"Prometheus stand-in is Ready.\n", "text/plain")
            return
        try:
            if path == "/api/v1/query":
                at = float(params["time"]) if "time" in params else time.time()
                data = self.standin.query(_required(params, "query"), at)
            elif path == "/api/v1/query_range":
                data = self.standin.query_range(
                    _required(params, "query"),
                    float(_required(params, "start")),
                    float(_required(params, "end")),
                    _step(_required(params, "step")),
                )
            else:
                self._send(404, b"404 page not found\n", "text/plain")
                return
        except (PromQLError, ValueError, KeyError) as exc:
            body = {"status": "error", "errorType": "bad_data", "error": str(exc)}
            self._send(400, json.dumps(body).encode(), "application/json")
            return
        self._send(
            200, json.dumps({"status": "success", "data": data}).encode(), "application/json"
        )

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _required(params: dict[str, str], name: str) -> str:
    if name not in params:
        raise PromQLError(f'invalid parameter "{name}": missing')
    return params[name]


def _step(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * units[unit]
    return float(text)
