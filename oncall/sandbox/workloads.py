"""What each container image does once running: error profile, latency, logs."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime


class SimClock:
    """Maps simulated durations onto real ones: D simulated seconds take D * time_scale."""

    def __init__(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale

    def real(self, sim_seconds: float) -> float:
        """Real seconds that a simulated duration takes."""
        return sim_seconds * self.time_scale

    def sim(self, real_seconds: float) -> float:
        """Simulated seconds that a real duration covers."""
        return real_seconds / self.time_scale


@dataclass(frozen=True)
class Route:
    """One request shape a workload serves, and what breaks when it fails."""

    method: str
    path: str
    upstream: str = ""


@dataclass(frozen=True)
class ImageProfile:
    """Behaviour of a container image: error rate, status codes, latency, start-up."""

    error_rate: float
    error_codes: tuple[int, ...] = (500, 502, 503)
    latency_seconds: float = 0.08
    ready_after_seconds: float = 5.0
    crashes: bool = False  # reserved for the crash-loop scenario
    routes: tuple[Route, ...] = (Route("GET", "/"),)
    startup_lines: tuple[str, ...] = ("starting",)

    def outcome(self, rng: random.Random) -> tuple[int, float]:
        """Status code and latency (seconds) of one request."""
        latency = rng.expovariate(1.0 / self.latency_seconds)
        if rng.random() < self.error_rate:
            return rng.choice(self.error_codes), latency * 3
        return 200, latency


_BACKEND_ROUTES = (
    Route("POST", "/api/v1/chat", "ollama:11434"),
    Route("POST", "/api/v1/search", "weaviate:8080"),
    Route("GET", "/api/v1/conversations", "postgres:5432"),
    Route("GET", "/api/v1/agents", "redis:6379"),
)
_BACKEND_STARTUP = (
    "INFO Started server process [1]",
    "INFO Waiting for application startup.",
    "INFO Connected to weaviate at http://weaviate:8080",
    "INFO Connected to ollama at http://ollama:11434",
    "INFO Application startup complete.",
    "INFO Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)",
)
_HEALTHY_BACKEND = ImageProfile(
    error_rate=0.002, routes=_BACKEND_ROUTES, startup_lines=_BACKEND_STARTUP
)
_BAD_BACKEND = ImageProfile(
    error_rate=0.27,
    error_codes=(500, 502, 502, 503),
    latency_seconds=0.25,
    routes=_BACKEND_ROUTES,
    startup_lines=_BACKEND_STARTUP,
)
_WEAVIATE = ImageProfile(
    error_rate=0.001,
    latency_seconds=0.02,
    routes=(Route("GET", "/v1/meta"), Route("POST", "/v1/graphql")),
    startup_lines=(
        'INFO {"action":"startup","msg":"Serving weaviate at http://[::]:8080"}',
        'INFO {"action":"restapi_management","msg":"Configured API"}',
    ),
)
_OLLAMA = ImageProfile(
    error_rate=0.001,
    latency_seconds=0.9,
    routes=(Route("POST", "/api/generate"), Route("GET", "/api/tags")),
    startup_lines=('INFO msg="Listening on [::]:11434 (version 0.1.32)"',),
)

# Exact images first, then the repository's default: a catalogue later scenarios extend.
IMAGES: dict[str, ImageProfile] = {"ghcr.io/gremlinsai/backend:1.5.0": _BAD_BACKEND}
REPOSITORIES: dict[str, ImageProfile] = {
    "ghcr.io/gremlinsai/backend": _HEALTHY_BACKEND,
    "semitechnologies/weaviate": _WEAVIATE,
    "ollama/ollama": _OLLAMA,
}
_DEFAULT = ImageProfile(error_rate=0.0)


def profile_for(image: str) -> ImageProfile:
    """The behaviour of an image: exact tag, else its repository's default."""
    if image in IMAGES:
        return IMAGES[image]
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return REPOSITORIES.get(repository, _DEFAULT)


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def access_line(route: Route, code: int, latency: float, at: float) -> str:
    """One application log line for a request, ERROR for a 5xx."""
    ms = int(latency * 1000)
    if code >= 500:
        detail = {500: "internal error", 502: "bad gateway", 503: "service unavailable"}
        reason = detail.get(code, "error")
        upstream = f" upstream={route.upstream}" if route.upstream else ""
        return (
            f"{_stamp(at)} ERROR {route.method} {route.path} status={code}{upstream} "
            f'duration_ms={ms} error="{reason}"'
        )
    return f"{_stamp(at)} INFO {route.method} {route.path} status={code} duration_ms={ms}"


@dataclass
class _Buffer:
    lines: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=4000))


class PodLogs:
    """Per-container log buffers, keyed by (namespace, pod, container)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffers: dict[tuple[str, str, str], _Buffer] = {}

    def write(self, namespace: str, pod: str, container: str, line: str) -> None:
        """Append a line (already carrying its own timestamp) to a container's log."""
        with self._lock:
            buffer = self._buffers.setdefault((namespace, pod, container), _Buffer())
            buffer.lines.append((time.time(), line))

    def start(self, namespace: str, pod: str, container: str, image: str) -> None:
        """Write an image's start-up lines."""
        now = time.time()
        for line in profile_for(image).startup_lines:
            self.write(namespace, pod, container, f"{_stamp(now)} {line}")

    def read(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        tail: int | None = None,
        since_seconds: float | None = None,
        timestamps: bool = False,
    ) -> str:
        """The log text the pods/log endpoint returns."""
        with self._lock:
            entries = list(self._buffers.get((namespace, pod, container), _Buffer()).lines)
        if since_seconds is not None:
            cutoff = time.time() - since_seconds
            entries = [e for e in entries if e[0] >= cutoff]
        if tail is not None:
            entries = entries[-tail:] if tail > 0 else []
        if timestamps:
            return "".join(f"{_stamp(at)} {line}\n" for at, line in entries)
        return "".join(f"{line}\n" for _, line in entries)

    def forget(self, namespace: str, pod: str) -> None:
        """Drop the buffers of a deleted pod."""
        with self._lock:
            for key in [k for k in self._buffers if k[:2] == (namespace, pod)]:
                del self._buffers[key]
