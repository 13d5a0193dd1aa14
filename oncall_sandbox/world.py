"""The simulated world behind the pods: injected faults, and how each app answers under them."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from oncall_sandbox import cronos
from oncall_sandbox.workloads import Crash, ImageProfile, Route, SimClock, profile_for

# Ollama: a runner that has offloaded layers to CPU recovers once its load drops below this.
_OLLAMA_RECOVERY_RPS = 8.0
_OLLAMA_RECOVERY_SECONDS = 30.0  # ... after staying below it this long (simulated)
_WEAVIATE_CRASH_SECONDS = 3.0


@dataclass(frozen=True)
class Backend:
    """A ready pod behind a Service: where one request lands, with what it started with."""

    pod: str
    uid: str
    container: str
    image: str
    version: str
    env: dict[str, str] = field(default_factory=dict)
    started: float = 0.0  # time.monotonic() of the running container's start


@dataclass(frozen=True)
class Outcome:
    """What one request got: status code, latency, and the error text the app logs."""

    code: int
    latency: float
    error: str = ""
    cache: str = ""  # "hit" or "miss" when the app looked the answer up in its cache


@dataclass(frozen=True)
class StartPlan:
    """How a container run goes: start-up output, readiness delay, the crash if any."""

    lines: tuple[str, ...]
    ready_after: float
    crash: Crash | None = None


def _weaviate_conflict(pod: str) -> Crash:
    return Crash(
        _WEAVIATE_CRASH_SECONDS,
        1,
        "Error",
        (
            '{"action":"startup","level":"info","msg":"Starting weaviate v1.24.1"}',
            f'{{"action":"cluster_join","level":"error","msg":"memberlist: failed to join: '
            f"node name conflict: {pod} is already a member with a different address"
            '"}',
            '{"action":"startup","level":"fatal","msg":"could not join the cluster: '
            'node name conflict"}',
        ),
    )


def _broken_release(image: str) -> Crash:
    return Crash(
        1.0,
        1,
        "Error",
        (
            f"INFO starting {image}",
            "Traceback (most recent call last):",
            '  File "/app/main.py", line 3, in <module>',
            "    from app.settings import load",
            "ImportError: cannot import name 'load' from 'app.settings'",
            "CRITICAL startup failed, exiting with status 1",
        ),
    )


class World:
    """Fault state shared by the kubelet (container starts) and the Services (requests)."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.injected: dict[str, str] = {}  # scenario name -> what was done
        self.offloaded: set[str] = set()  # ollama pod uids whose runner fell back to CPU
        self.poisoned: set[str] = set()  # weaviate pod uids with a stale gossip member
        self.ready: dict[str, list[str]] = {}  # app -> uids of its Service's ready pods
        self.ollama_load = 0.0  # generate calls per second per ready ollama pod
        self._ollama_calm_since: float | None = None
        # False stands for a cause that load cannot cure (a failing GPU node): an offloaded
        # runner then stays offloaded however calm it gets.
        self.ollama_recovers = True
        self._llm_calls = 0.0
        self.db = cronos.Database(clock)
        # Images a `bad-release` fault published for a team's own workloads: they crash.
        self.broken_images: set[str] = set()

    # --- container starts (kubelet) ---------------------------------------------------------

    def start_plan(self, pod: str, uid: str, image: str, env: dict[str, str]) -> StartPlan:
        """Decide how a container started now will run."""
        profile = profile_for(image)
        if image in self.broken_images:
            return StartPlan((), profile.ready_after_seconds, _broken_release(image))
        if profile.crash is not None:
            return StartPlan((), profile.ready_after_seconds, profile.crash)
        if profile.app == "cronos":
            return cronos.start_plan(image, env, profile.ready_after_seconds)
        if profile.app == "weaviate" and uid in self.poisoned:
            return StartPlan((), profile.ready_after_seconds, _weaviate_conflict(pod))
        lines = profile.startup_lines
        if profile.app == "backend":
            provider = env.get("LLM_PROVIDER", "ollama")
            lines = (*lines, f"INFO LLM provider: {provider}")
        return StartPlan(lines, profile.ready_after_seconds)

    def crash_now(self, pod: str, uid: str) -> Crash | None:
        """A running container that must die at once (weaviate losing its cluster membership)."""
        if uid in self.poisoned:
            return _weaviate_conflict(pod)
        return None

    # --- requests (Services) ----------------------------------------------------------------

    def observe(self, app: str, uids: list[str], load_per_pod: float) -> None:
        """A Service's tick: who is ready and how loaded each pod is."""
        with self._lock:
            self.ready[app] = uids
            if app == "ollama":
                self.ollama_load = load_per_pod
                now = time.monotonic()
                if not uids or load_per_pod >= _OLLAMA_RECOVERY_RPS:
                    self._ollama_calm_since = None
                elif self._ollama_calm_since is None:
                    self._ollama_calm_since = now
                elif (
                    self.ollama_recovers
                    and self.clock.sim(now - self._ollama_calm_since) >= _OLLAMA_RECOVERY_SECONDS
                ):
                    self.offloaded -= set(uids)

    def outcome(
        self,
        profile: ImageProfile,
        backend: Backend,
        route: Route,
        load_per_pod: float,
        rng: random.Random,
    ) -> Outcome:
        """How one request served by `backend` goes."""
        if profile.app == "cronos":
            return cronos.outcome(self.db, profile, backend, route, load_per_pod, rng)
        if profile.app == "ollama" and route.path == "/api/generate":
            if backend.uid in self.offloaded:
                return Outcome(200, 6.0 + rng.expovariate(1 / 6.0))
            return Outcome(200, rng.expovariate(1 / profile.latency_seconds))
        code, latency = profile.outcome(rng)
        if (
            profile.app == "backend"
            and route.path == "/api/v1/search"
            and not self.ready.get("weaviate", ["?"])
        ):
            return Outcome(503, latency, "weaviate unavailable: connection refused")
        return Outcome(code, latency)

    def llm_call(
        self, env: dict[str, str], rng: random.Random, weight: float = 1.0
    ) -> tuple[str, int, float]:
        """One generation call from a backend pod (standing for `weight` calls of load)."""
        provider = env.get("LLM_PROVIDER", "ollama")
        if provider == "fallback":
            return provider, 200, 0.8 + rng.expovariate(1 / 0.6)
        with self._lock:
            ready = self.ready.get("ollama", [])
            self._llm_calls += weight
            uid = rng.choice(ready) if ready else ""
        if not uid:
            return provider, 503, 0.01
        if uid in self.offloaded:
            return provider, 200, 6.0 + rng.expovariate(1 / 6.0)
        return provider, 200, rng.expovariate(1 / 0.9)

    def take_llm_calls(self) -> float:
        """Generation calls the backends sent since the last take: the Ollama Service's load."""
        with self._lock:
            calls, self._llm_calls = self._llm_calls, 0
            return calls

    def ollama_degraded(self) -> bool:
        """True while a ready Ollama pod is still offloaded to CPU."""
        with self._lock:
            return bool(self.offloaded & set(self.ready.get("ollama", [])))

    def now(self) -> float:
        """The monotonic clock everything here is measured on."""
        return time.monotonic()
