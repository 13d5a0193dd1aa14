"""What each container image is: routes, start-up output, error profile, a crash if it has one."""

from __future__ import annotations

import random
from dataclasses import dataclass

from oncall_sandbox.podlogs import stamp


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
class Crash:
    """How a container run ends: after how long, with what exit code, saying what."""

    after_seconds: float
    exit_code: int
    reason: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class ImageProfile:
    """Behaviour of a container image: app family, error rate, latency, start-up, crash."""

    app: str
    error_rate: float
    error_codes: tuple[int, ...] = (500, 502, 503)
    latency_seconds: float = 0.08
    ready_after_seconds: float = 5.0
    crash: Crash | None = None
    routes: tuple[Route, ...] = (Route("GET", "/"),)
    startup_lines: tuple[str, ...] = ("starting",)

    def outcome(self, rng: random.Random) -> tuple[int, float]:
        """Status code and latency (seconds) of one request, by the image alone."""
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
    "backend", error_rate=0.002, routes=_BACKEND_ROUTES, startup_lines=_BACKEND_STARTUP
)
_BAD_BACKEND = ImageProfile(
    "backend",
    error_rate=0.27,
    error_codes=(500, 502, 502, 503),
    latency_seconds=0.25,
    routes=_BACKEND_ROUTES,
    startup_lines=_BACKEND_STARTUP,
)
_WEAVIATE = ImageProfile(
    "weaviate",
    error_rate=0.001,
    latency_seconds=0.02,
    routes=(Route("GET", "/v1/meta"), Route("POST", "/v1/graphql")),
    startup_lines=(
        'INFO {"action":"startup","msg":"Serving weaviate at http://[::]:8080"}',
        'INFO {"action":"restapi_management","msg":"Configured API"}',
    ),
)
_OLLAMA = ImageProfile(
    "ollama",
    error_rate=0.001,
    latency_seconds=0.9,
    routes=(Route("POST", "/api/generate"), Route("GET", "/api/tags")),
    startup_lines=('INFO msg="Listening on [::]:11434 (version 0.1.32)"',),
)
CRONOS_ROUTES = (
    Route("GET", "/api/v1/jobs", "postgres:5432"),
    Route("POST", "/api/v1/predictions", "postgres:5432"),
    Route("GET", "/api/v1/models", "redis:6379"),
    Route("GET", "/api/v1/reports/export", "reports-api:443"),
)
_CRONOS = ImageProfile("cronos", error_rate=0.002, latency_seconds=0.1, routes=CRONOS_ROUTES)
_CRONOS_BROKEN_RELEASE = ImageProfile(
    "cronos",
    error_rate=1.0,
    routes=CRONOS_ROUTES,
    crash=Crash(
        2.0,
        1,
        "Error",
        (
            "INFO Starting CRONOS AI 2.5.0",
            "Traceback (most recent call last):",
            '  File "/app/ai_engine/main.py", line 12, in <module>',
            "    from ai_engine.scheduler.v2 import JobScheduler",
            "ModuleNotFoundError: No module named 'ai_engine.scheduler.v2'",
            "CRITICAL startup failed: ModuleNotFoundError, exiting with status 1",
        ),
    ),
)
_KUBE_STATE_METRICS = ImageProfile(
    "kube-state-metrics",
    error_rate=0.0,
    routes=(Route("GET", "/metrics"),),
    startup_lines=('I0101 00:00:00.000000       1 server.go:199] "Starting metrics server"',),
)

CRONOS_IMAGE = "ghcr.io/cronos-ai/cronos-ai"
# Exact images first, then the repository's default.
IMAGES: dict[str, ImageProfile] = {
    "ghcr.io/gremlinsai/backend:1.5.0": _BAD_BACKEND,
    f"{CRONOS_IMAGE}:2.5.0": _CRONOS_BROKEN_RELEASE,
}
REPOSITORIES: dict[str, ImageProfile] = {
    "ghcr.io/gremlinsai/backend": _HEALTHY_BACKEND,
    "semitechnologies/weaviate": _WEAVIATE,
    "ollama/ollama": _OLLAMA,
    CRONOS_IMAGE: _CRONOS,
    "registry.k8s.io/kube-state-metrics/kube-state-metrics": _KUBE_STATE_METRICS,
}
_DEFAULT = ImageProfile("", error_rate=0.0)


def profile_for(image: str) -> ImageProfile:
    """The behaviour of an image: exact tag, else its repository's default."""
    if image in IMAGES:
        return IMAGES[image]
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return REPOSITORIES.get(repository, _DEFAULT)


_REASONS = {
    500: "internal error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


def access_line(route: Route, code: int, latency: float, at: float, error: str = "") -> str:
    """One application log line for a request, ERROR for a 5xx."""
    ms = int(latency * 1000)
    if code >= 500:
        reason = error or _REASONS.get(code, "error")
        upstream = f" upstream={route.upstream}" if route.upstream else ""
        return (
            f"{stamp(at)} ERROR {route.method} {route.path} status={code}{upstream} "
            f'duration_ms={ms} error="{reason}"'
        )
    return f"{stamp(at)} INFO {route.method} {route.path} status={code} duration_ms={ms}"
