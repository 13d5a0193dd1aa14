"""Each scenario's fault: how it is injected (through the API, as a CD pipeline or the world
would do it), when it is visible, and whether it is still active."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from oncall_sandbox import cronos
from oncall_sandbox.controllers import rollout_complete
from oncall_sandbox.patches import MERGE_PATCH, STRATEGIC_MERGE_PATCH
from oncall_sandbox.podlogs import stamp
from oncall_sandbox.selectors import matches_labels
from oncall_sandbox.store import Obj

if TYPE_CHECKING:
    from oncall_sandbox.server import Sandbox

Check = Callable[["Sandbox"], bool]
_BACKEND_BAD = "ghcr.io/gremlinsai/backend:1.5.0"
_CRONOS_BAD = "ghcr.io/cronos-ai/cronos-ai:2.5.0"


@dataclass(frozen=True)
class Fault:
    """Inject, then `visible` says the symptom is there; `active` says it still is."""

    inject: Callable[[Sandbox], None]
    visible: Check
    active: Check


def _api(sb: Sandbox, path: str, body: object, content_type: str) -> Obj:
    with httpx.Client(headers={"Authorization": "Bearer sandbox"}, timeout=10) as client:
        response = client.patch(
            f"{sb.api_url}{path}", content=json.dumps(body), headers={"Content-Type": content_type}
        )
        response.raise_for_status()
        result: Obj = response.json()
        return result


def _deployment_path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def _set_image(
    namespace: str, deployment: str, container: str, image: str
) -> Callable[[Sandbox], None]:
    def inject(sb: Sandbox) -> None:
        patch = {
            "spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}
        }
        _api(sb, _deployment_path(namespace, deployment), patch, STRATEGIC_MERGE_PATCH)

    return inject


def _pods(sb: Sandbox, namespace: str, app: str) -> list[Obj]:
    return sb.store.list(
        "pods", namespace, lambda p: matches_labels({"app": app}, p["metadata"].get("labels"))
    )


def _crash_looping(sb: Sandbox, namespace: str, app: str) -> bool:
    return any(
        ((s.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
        for pod in _pods(sb, namespace, app)
        for s in pod["status"].get("containerStatuses") or []
    )


def _ready(sb: Sandbox, namespace: str, service: str) -> int:
    found = sb.simulated(namespace, service)
    return len(found.backends()) if found else 0


def _error_rate(sb: Sandbox, namespace: str, service: str) -> float:
    found = sb.simulated(namespace, service)
    return found.recent_error_rate() if found else 0.0


def _cronos_load(sb: Sandbox) -> float:
    found = sb.simulated("cronos-ai", "cronos-ai")
    return found.load_per_pod if found else 0.0


def _pool_exhausted(sb: Sandbox) -> bool:
    found = sb.simulated("cronos-ai", "cronos-ai")
    if found is None:
        return False
    return any(sb.world.db.pool(b, found.load_per_pod)[2] for b in found.backends())


def _bad_release_out(sb: Sandbox) -> bool:
    d = sb.store.get("deployments", "gremlinsai", "gremlinsai-backend-blue")
    image = d["spec"]["template"]["spec"]["containers"][0]["image"]
    return image == _BACKEND_BAD and rollout_complete(d)


def _offload_ollama(sb: Sandbox) -> None:
    for pod in _pods(sb, "gremlinsai", "ollama"):
        sb.world.offloaded.add(pod["metadata"]["uid"])
        line = (
            f'{stamp(time.time())} WARN msg="insufficient VRAM after context growth: offloading '
            '24/33 layers to CPU" model=llama3:8b num_parallel=4'
        )
        sb.logs.write("gremlinsai", pod["metadata"]["name"], "ollama", line)


def _poison_weaviate(sb: Sandbox) -> None:
    for pod in _pods(sb, "gremlinsai", "weaviate"):
        sb.world.poisoned.add(pod["metadata"]["uid"])


def _break_config(sb: Sandbox) -> None:
    data = {"CACHE_TTL_SECONDS": "30s"}
    path = "/api/v1/namespaces/cronos-ai/configmaps/cronos-ai-config"
    config = _api(sb, path, {"data": data}, MERGE_PATCH)
    checksum = hashlib.sha256(json.dumps(config["data"], sort_keys=True).encode()).hexdigest()
    # The chart rolls the pods on a config change, as Helm's checksum annotation does.
    patch = {"spec": {"template": {"metadata": {"annotations": {"checksum/config": checksum}}}}}
    _api(sb, _deployment_path("cronos-ai", "cronos-ai"), patch, STRATEGIC_MERGE_PATCH)


def _surge(sb: Sandbox) -> None:
    found = sb.simulated("cronos-ai", "cronos-ai")
    if found is not None:
        found.requests_per_second = 45.0


def _flaky_reports(sb: Sandbox) -> None:
    sb.world.db.errors_until = time.monotonic() + sb.clock.real(900.0)


def _cronos_down(sb: Sandbox) -> bool:
    return _ready(sb, "cronos-ai", "cronos-ai") == 0 and _crash_looping(
        sb, "cronos-ai", "cronos-ai"
    )


FAULTS: dict[str, Fault] = {
    "bad-deploy": Fault(
        _set_image("gremlinsai", "gremlinsai-backend-blue", "backend", _BACKEND_BAD),
        _bad_release_out,
        lambda sb: _error_rate(sb, "gremlinsai", "gremlinsai-service") > 0.05,
    ),
    "llm-latency": Fault(
        _offload_ollama,
        lambda sb: sb.world.ollama_degraded(),
        lambda sb: sb.world.ollama_degraded(),
    ),
    "weaviate-down": Fault(
        _poison_weaviate,
        lambda sb: (
            _ready(sb, "gremlinsai", "weaviate") == 0
            and _crash_looping(sb, "gremlinsai", "weaviate")
        ),
        lambda sb: _ready(sb, "gremlinsai", "weaviate") == 0,
    ),
    "service-down": Fault(
        _set_image("cronos-ai", "cronos-ai", "cronos-ai", _CRONOS_BAD),
        _cronos_down,
        lambda sb: (
            _ready(sb, "cronos-ai", "cronos-ai") == 0
            or _error_rate(sb, "cronos-ai", "cronos-ai") > 0.5
        ),
    ),
    "degraded": Fault(
        _surge,
        lambda sb: cronos.utilization(_cronos_load(sb)) > 1.0,
        lambda sb: cronos.utilization(_cronos_load(sb)) > 0.8,
    ),
    "crash-loop": Fault(
        _break_config,
        _cronos_down,
        lambda sb: (
            _ready(sb, "cronos-ai", "cronos-ai") == 0
            or _crash_looping(sb, "cronos-ai", "cronos-ai")
        ),
    ),
    "db-pool-exhausted": Fault(
        lambda sb: sb.world.db.start_leak(600.0), _pool_exhausted, _pool_exhausted
    ),
    "high-latency": Fault(
        lambda sb: sb.world.db.flush_cache(),
        lambda sb: sb.world.db.hit_rate() < 0.5,
        lambda sb: sb.world.db.hit_rate() < 0.8,
    ),
    "minor": Fault(_flaky_reports, lambda sb: sb.world.db.flaky(), lambda sb: sb.world.db.flaky()),
}


_WORKLOAD_PLURALS = {
    "deployment": "deployments",
    "statefulset": "statefulsets",
    "daemonset": "daemonsets",
}


def bad_release(sb: Sandbox, namespace: str, kind: str, name: str) -> str:
    """Roll out a crashing build of any workload's first container, as a bad CD push would.

    The new image (the current tag with `-broken`) exits 1 at start with an ImportError, so
    the workload's new pods crash-loop while its earlier revision stays good. Returns it.
    """
    plural = _WORKLOAD_PLURALS.get(kind)
    if plural is None:
        raise ValueError(f"{kind}: a bad release needs a deployment, statefulset or daemonset")
    obj = sb.store.get(plural, namespace, name)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    image = str(container["image"])
    tagged = ":" in image.rsplit("/", 1)[-1]
    broken = f"{image}-broken" if tagged else f"{image}:broken"
    sb.world.broken_images.add(broken)
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": container["name"], "image": broken}]}}
        }
    }
    _api(sb, f"/apis/apps/v1/namespaces/{namespace}/{plural}/{name}", patch, STRATEGIC_MERGE_PATCH)
    return broken
