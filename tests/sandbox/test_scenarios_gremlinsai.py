"""GremlinsAI scenarios as the seed's diagnosis sees them, healed only by its remediation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sandbox_cluster import Cluster, quantile, wait_for

from oncall_sandbox import SCENARIOS, Sandbox
from oncall_sandbox.services import SimulatedService
from oncall_sandbox.world import World


@pytest.fixture
def llm(tmp_path: Path) -> Iterator[Cluster]:
    """The llm-latency scenario, fault injected."""
    with Sandbox(tmp_path, time_scale=0.01, scenario="llm-latency") as sb:
        sb.inject_fault()
        yield Cluster(sb)


def _llm_p99(cluster: Cluster) -> float:
    return quantile(cluster.service_url, "llm_request_duration_seconds", 0.99)


def test_registry_names_every_scenario_and_its_alert(cluster: Cluster) -> None:
    assert list(SCENARIOS) == [
        "bad-deploy",
        "llm-latency",
        "weaviate-down",
        "service-down",
        "degraded",
        "crash-loop",
        "db-pool-exhausted",
        "high-latency",
        "minor",
    ]
    assert cluster.sb.scenario_info is SCENARIOS["bad-deploy"]
    for spec in SCENARIOS.values():
        for probe in spec.probes:
            assert cluster.sb.service_url(probe.namespace, probe.service)
        source = spec.alert.source
        metrics = httpx.get(cluster.sb.service_url(source.namespace, source.service) + "/metrics")
        if spec.alert.metric != "probe_success":
            assert spec.alert.metric in metrics.text, spec.name


def test_a_late_tick_sends_ollama_all_the_load_that_arrived(llm: Cluster) -> None:
    """A starved tick serves a sample of its requests, but their LLM calls count in full."""
    sb = llm.sb

    def llm_calls(ticks: list[float]) -> float:
        world = World(sb.clock)  # its own: the sandbox's Ollama tick must not take the calls
        service = SimulatedService(
            sb.store, sb.logs, sb.clock, "gremlinsai", "gremlinsai-service", 20.0, world=world
        )
        try:
            for real_seconds in ticks:
                service.simulate(real_seconds)
        finally:
            service.stop()
        return world.take_llm_calls()

    on_time = llm_calls([0.05] * 60)  # 3 real s = 300 simulated s: 6,000 requests, 100 a tick
    late = llm_calls([3.0])  # the same 6,000 arriving in one tick, 2,000 of them served
    assert on_time > 0
    assert 0.8 < late / on_time < 1.25


def test_llm_latency_healed_by_scaling_ollama_not_by_restarting_backend(llm: Cluster) -> None:
    assert _llm_p99(llm) > 10
    pods = llm.kubectl("get", "pods", "-l", "app=ollama").stdout
    assert "Running" in pods  # nothing looks wrong from kubectl get
    logs = llm.kubectl("logs", "deployment/ollama", "--tail=50").stdout
    assert "offloading 24/33 layers to CPU" in logs
    tags = httpx.get(llm.sb.service_url("gremlinsai", "ollama") + "/api/tags")
    assert tags.status_code == 200 and tags.json()["models"]

    llm.kubectl("rollout", "restart", "deployment/gremlinsai-backend-blue")
    llm.kubectl("rollout", "status", "deployment/gremlinsai-backend-blue", "--timeout=30s")
    assert _llm_p99(llm) > 10
    assert llm.sb.fault_active()

    llm.kubectl("scale", "deployment/ollama", "--replicas=2")
    llm.kubectl("rollout", "status", "deployment/ollama", "--timeout=30s")
    wait_for(lambda: not llm.sb.fault_active(), what="ollama to recover")
    assert _llm_p99(llm) <= 10


def test_llm_latency_healed_by_restart_or_fallback_provider(llm: Cluster) -> None:
    llm.kubectl("set", "env", "deployment/gremlinsai-backend-blue", "LLM_PROVIDER=fallback")
    llm.kubectl("rollout", "status", "deployment/gremlinsai-backend-blue", "--timeout=30s")
    assert _llm_p99(llm) <= 10
    env = llm.kubectl(
        "get",
        "deploy",
        "gremlinsai-backend-blue",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].env}",
    ).stdout
    assert "fallback" in env
    # Ollama itself is still offloaded until restarted (the fallback only routes around it).
    llm.kubectl("set", "env", "deployment/gremlinsai-backend-blue", "LLM_PROVIDER-")
    llm.kubectl("rollout", "restart", "deployment/ollama")
    llm.kubectl("rollout", "status", "deployment/ollama", "--timeout=30s")
    llm.kubectl("rollout", "status", "deployment/gremlinsai-backend-blue", "--timeout=30s")
    assert _llm_p99(llm) <= 10


def test_weaviate_down_healed_by_rollout_restart(tmp_path: Path) -> None:
    with Sandbox(tmp_path, time_scale=0.01, scenario="weaviate-down") as sb:
        sb.inject_fault()
        cluster = Cluster(sb)
        meta = sb.service_url("gremlinsai", "weaviate") + "/v1/meta"
        assert httpx.get(meta).status_code == 503
        wait_for(
            lambda: (
                "CrashLoopBackOff" in cluster.kubectl("get", "pods", "-l", "app=weaviate").stdout
            ),
            what="CrashLoopBackOff",
        )
        described = cluster.kubectl("describe", "pods", "-l", "app=weaviate").stdout
        assert "Last State:     Terminated" in described and "Exit Code:    1" in described
        assert "Back-off restarting failed container weaviate" in described
        events = cluster.kubectl("get", "events", "--sort-by=.lastTimestamp").stdout
        assert "BackOff" in events.splitlines()[-1] or "BackOff" in events
        previous = cluster.kubectl("logs", "deployment/weaviate", "--previous").stdout
        assert "node name conflict" in previous
        pvc = cluster.kubectl("get", "pvc", "weaviate-data").stdout
        assert "Bound" in pvc
        assert "<none>" in cluster.kubectl("get", "endpoints", "weaviate").stdout

        # Wrong: restarting the backend; and the kubelet's own restarts never fix it.
        cluster.kubectl("rollout", "restart", "deployment/gremlinsai-backend-blue")
        cluster.kubectl("rollout", "status", "deployment/gremlinsai-backend-blue", "--timeout=30s")
        assert httpx.get(meta).status_code == 503

        cluster.kubectl("rollout", "restart", "deployment/weaviate")
        cluster.kubectl("rollout", "status", "deployment/weaviate", "--timeout=30s")
        answer = httpx.get(meta)
        assert answer.status_code == 200 and answer.json()["version"] == "1.24.1"
        wait_for(lambda: not sb.fault_active(), what="weaviate back")
