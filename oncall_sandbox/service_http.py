"""The HTTP face of a simulated Service: app routes, /health, /metrics, admin endpoints."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, ClassVar

from prometheus_client import CONTENT_TYPE_LATEST

from oncall_sandbox.podlogs import stamp
from oncall_sandbox.store import Obj

if TYPE_CHECKING:
    from oncall_sandbox.services import SimulatedService

_OLLAMA_TAGS: Obj = {
    "models": [
        {
            "name": "llama3:8b",
            "model": "llama3:8b",
            "size": 4661224676,
            "details": {"family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_0"},
        }
    ]
}


def handler_for(service: SimulatedService) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one Service."""

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

    def _json(self, code: int, body: object) -> None:
        self._send(code, json.dumps(body).encode(), "application/json")

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        service = self.target
        if self.command == "GET" and path == "/metrics":
            self._send(200, service.metrics(), CONTENT_TYPE_LATEST)
            return
        if self.command == "GET" and path in ("/health", "/healthz"):
            code, body = service.health()
            self._json(code, body)
            return
        if service.app == "cronos-ai" and self._cronos_admin(path):
            return
        code = service.serve(1, self.command, path)
        if code >= 400:
            self._json(code, {"error": f"upstream returned {code}"})
        elif path == "/v1/meta":
            self._json(200, {"hostname": "http://[::]:8080", "version": "1.24.1", "modules": {}})
        elif path == "/api/tags":
            self._json(200, _OLLAMA_TAGS)
        else:
            self._json(code, {"status": "ok"})

    def _cronos_admin(self, path: str) -> bool:
        service, db = self.target, self.target.world.db
        backends = service.backends()
        if path == "/debug/slow_queries" and self.command == "GET":
            if not backends:
                self._json(503, {"error": "no ready endpoints"})
            else:
                self._json(200, {"slow_queries": db.slow_queries(), "threshold_ms": 1000})
            return True
        if path == "/admin/cache/warm" and self.command == "POST":
            if not backends:
                self._json(503, {"error": "no ready endpoints"})
                return True
            db.warm_cache()
            pod = backends[0]
            line = (
                f"{stamp(time.time())} INFO POST /admin/cache/warm status=202 "
                "cache warm-up started: loading hot keys from postgres"
            )
            service.write_log(pod, line)
            self._json(202, {"status": "warming", "pod": pod.pod})
            return True
        return False

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer
