"""CRONOS AI scenarios as the seed's diagnosis sees them, healed only by its remediation."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sandbox_cluster import Cluster, error_rate, gauge, quantile, scrape, wait_for

from oncall_sandbox import Sandbox

NS = "cronos-ai"


@contextmanager
def faulted(tmp_path: Path, scenario: str, time_scale: float = 0.01) -> Iterator[Cluster]:
    """A sandbox of the scenario with its fault injected, reached in namespace cronos-ai."""
    with Sandbox(tmp_path, time_scale=time_scale, scenario=scenario) as sb:
        sb.inject_fault()
        yield Cluster(sb, NS, "cronos-ai")


def _health(cluster: Cluster) -> int:
    return httpx.get(f"{cluster.service_url}/health").status_code


def _p95(cluster: Cluster) -> float:
    return quantile(cluster.service_url, "http_request_duration_seconds", 0.95)


def _pods(cluster: Cluster) -> list[dict[str, object]]:
    items: list[dict[str, object]] = json.loads(
        cluster.kubectl("get", "pods", "-l", "app=cronos-ai", "-o", "json").stdout
    )["items"]
    return items


def test_service_down_healed_by_rollout_undo_not_restart(tmp_path: Path) -> None:
    with faulted(tmp_path, "service-down") as cluster:
        assert "<none>" in cluster.kubectl("get", "endpoints", "cronos-ai").stdout
        assert _health(cluster) == 503
        assert error_rate(cluster.service_url) > 0.5
        history = cluster.kubectl("rollout", "history", "deployment/cronos-ai").stdout
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == [
            "1",
            "2",
            "3",
        ]
        described = cluster.kubectl("describe", "pods", "-n", NS).stdout
        assert "CrashLoopBackOff" in described and "Exit Code:    1" in described
        logs = cluster.kubectl("logs", "-l", "app=cronos-ai", "--tail=100", "--previous").stdout
        assert "ModuleNotFoundError" in logs

        # Wrong: restarting the pods brings the same release back. (`rollout restart` would
        # also add revision 4 with the bad image, so a plain undo would then go to revision 3.)
        cluster.kubectl("delete", "pods", "-l", "app=cronos-ai", "--wait=false")
        time.sleep(cluster.sb.clock.real(60))
        assert _health(cluster) == 503

        assert "rolled back" in cluster.kubectl("rollout", "undo", "deployment/cronos-ai").stdout
        cluster.kubectl("rollout", "status", "deployment/cronos-ai", "--timeout=30s")
        wait_for(lambda: _health(cluster) == 200, what="health")
        assert error_rate(cluster.service_url) < 0.02
        image = cluster.kubectl(
            "get", "deploy", "cronos-ai", "-o", "jsonpath={.spec.template.spec.containers[0].image}"
        ).stdout
        assert image == "ghcr.io/cronos-ai/cronos-ai:2.4.0"


def test_degraded_healed_by_scaling_not_restart(tmp_path: Path) -> None:
    with faulted(tmp_path, "degraded") as cluster:
        assert _p95(cluster) > 1.0
        assert 0.05 <= error_rate(cluster.service_url, 2000) <= 0.10
        assert min(gauge(cluster.service_url, "cpu_utilization_ratio")) == 1.0

        cluster.kubectl("rollout", "restart", "deployment/cronos-ai")
        cluster.kubectl("rollout", "status", "deployment/cronos-ai", "--timeout=30s")
        assert _p95(cluster) > 1.0

        assert "scaled" in cluster.kubectl("scale", "deployment/cronos-ai", "--replicas=5").stdout
        cluster.kubectl("rollout", "status", "deployment/cronos-ai", "--timeout=30s")
        wait_for(lambda: not cluster.sb.fault_active(), what="load per pod to drop")
        assert _p95(cluster) <= 1.0
        assert error_rate(cluster.service_url) < 0.02
        scale = httpx.get(
            f"{cluster.sb.api_url}/apis/apps/v1/namespaces/{NS}/deployments/cronos-ai/scale"
        ).json()
        assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 5


def test_crash_loop_healed_by_fixing_the_configmap(tmp_path: Path) -> None:
    with faulted(tmp_path, "crash-loop") as cluster:
        pod = str(_pods(cluster)[0]["metadata"]["name"])  # type: ignore[index]

        def restarts() -> int:
            status = cluster.kubectl("get", "pod", pod, "-o", "json").stdout
            return int(json.loads(status)["status"]["containerStatuses"][0]["restartCount"])

        first = restarts()
        wait_for(lambda: restarts() > first, what="restartCount to rise")
        status = json.loads(cluster.kubectl("get", "pod", pod, "-o", "json").stdout)["status"]
        container = status["containerStatuses"][0]
        assert status["phase"] == "Running"
        assert container["lastState"]["terminated"]["exitCode"] == 1
        assert container["lastState"]["terminated"]["reason"] == "Error"
        previous = cluster.kubectl("logs", pod, "--previous").stdout
        assert "CACHE_TTL_SECONDS must be an integer number of seconds, got '30s'" in previous
        assert (
            "Back-off restarting failed container" in cluster.kubectl("describe", "pod", pod).stdout
        )
        events = cluster.kubectl("get", "events", "--sort-by=.lastTimestamp").stdout
        assert "BackOff" in events
        ksm = cluster.sb.service_url("kube-system", "kube-state-metrics")
        assert "CrashLoopBackOff" in httpx.get(f"{ksm}/metrics").text

        assert "rolled back" in cluster.kubectl("rollout", "undo", "deployment/cronos-ai").stdout
        time.sleep(cluster.sb.clock.real(60))
        assert _health(cluster) == 503  # the old template still reads the broken ConfigMap

        cluster.kubectl(
            "patch", "configmap", "cronos-ai-config", "-p", '{"data":{"CACHE_TTL_SECONDS":"300"}}'
        )
        cluster.kubectl("rollout", "restart", "deployment/cronos-ai")
        cluster.kubectl("rollout", "status", "deployment/cronos-ai", "--timeout=30s")
        wait_for(lambda: _health(cluster) == 200, what="health")
        assert all(
            c["restartCount"] == 0 and c["ready"]
            for p in _pods(cluster)
            for c in p["status"]["containerStatuses"]  # type: ignore[index]
        )


def test_db_pool_restart_is_temporary_set_env_heals(tmp_path: Path) -> None:
    with faulted(tmp_path, "db-pool-exhausted", time_scale=0.03) as cluster:
        url = cluster.service_url

        # Both gauges from one scrape: the exporter lists the ready endpoints only, and
        # exhausted pods drop out of them for a moment now and then, so two scrapes in a row
        # can list different pods (a race seen on a loaded machine).
        def all_pools_full() -> bool:
            sample = scrape(url)
            in_use = [v for (n, _), v in sample.items() if n == "db_pool_connections_in_use"]
            size = [v for (n, _), v in sample.items() if n == "db_pool_size"]
            return in_use == size == [10.0] * 3

        wait_for(all_pools_full, timeout=10, what="three pods with full pools of 10")
        assert error_rate(url) > 0.3
        logs = cluster.kubectl("logs", "-l", "app=cronos-ai", "--tail=200").stdout
        assert "ERROR" in logs and "connection pool exhausted" in logs

        cluster.kubectl("rollout", "restart", "deployment/cronos-ai")
        # Every pool was full before the restart, so a pool with room is a restarted pod's.
        # They start with free connections and leak again from their start (3 a simulated
        # minute, 33 simulated seconds per real second here: room for about 6 real seconds),
        # one pod after another: poll for the first with room from the moment the restart is
        # issued. Reading all of them after `rollout status` returned raced the refill on a
        # loaded machine.
        wait_for(
            lambda: min(gauge(url, "db_pool_connections_in_use"), default=10.0) < 10,
            timeout=15,
            what="a restarted pod's pool to have room",
        )
        cluster.kubectl("rollout", "status", "deployment/cronos-ai", "--timeout=30s")
        wait_for(lambda: cluster.sb.fault_active(), timeout=30, what="the pool to fill again")
        assert error_rate(url) > 0.1

        cluster.kubectl("set", "env", "deployment/cronos-ai", "DB_POOL_SIZE=50")
        cluster.kubectl("rollout", "status", "deployment/cronos-ai", "--timeout=30s")
        assert gauge(url, "db_pool_size") == [50.0] * 3
        time.sleep(cluster.sb.clock.real(8 * 60))  # the leak reaches its plateau
        assert max(gauge(url, "db_pool_connections_in_use")) < 50
        assert error_rate(url) < 0.02
        revisions = cluster.kubectl("rollout", "history", "deployment/cronos-ai").stdout
        assert "4" in revisions  # set env made a new ReplicaSet


def test_high_latency_healed_by_cache_warm_up_not_scaling(tmp_path: Path) -> None:
    with faulted(tmp_path, "high-latency") as cluster:
        url = cluster.service_url
        assert _p95(cluster) > 1.0
        assert gauge(url, "cache_hit_rate") == [0.35]
        assert error_rate(url) < 0.02
        slow = httpx.get(f"{url}/debug/slow_queries").json()["slow_queries"]
        assert slow and float(slow[0]["mean_ms"]) > 1000

        cluster.kubectl("scale", "deployment/cronos-ai", "--replicas=6")
        cluster.kubectl("rollout", "status", "deployment/cronos-ai", "--timeout=30s")
        assert _p95(cluster) > 1.0

        assert httpx.post(f"{url}/admin/cache/warm").status_code == 202
        wait_for(lambda: gauge(url, "cache_hit_rate")[0] > 0.9, what="cache warm")
        assert _p95(cluster) <= 1.0
        assert not cluster.sb.fault_active()


def test_minor_errors_stay_low_and_heal_by_themselves(tmp_path: Path) -> None:
    # The reports API fails for 15 simulated minutes: 18 s at 0.02, long enough for the
    # checks and a rollout restart on a loaded machine to happen inside the window.
    with faulted(tmp_path, "minor", time_scale=0.02) as cluster:
        url = cluster.service_url
        assert 0.01 <= error_rate(url, 4000) <= 0.035
        assert _health(cluster) == 200  # P3: the service stays up
        logs = cluster.kubectl("logs", "-l", "app=cronos-ai", "--tail=300").stdout
        assert "status=502 upstream=reports-api:443" in logs

        cluster.kubectl("rollout", "restart", "deployment/cronos-ai")
        cluster.kubectl("rollout", "status", "deployment/cronos-ai", "--timeout=30s")
        assert cluster.sb.fault_active()

        wait_for(lambda: not cluster.sb.fault_active(), timeout=40, what="self-heal")
        assert error_rate(url, 4000) < 0.01


def test_a_seeded_service_keeps_its_endpoints_from_the_first_tick(tmp_path: Path) -> None:
    # The seeded pods were serving before the sandbox started: they stay ready through the
    # kubelet's first ticks, so the Service never answers 503 for want of endpoints (which
    # a fault injected at once would otherwise be measured with).
    with Sandbox(tmp_path, time_scale=0.02, scenario="minor") as sb:
        service = sb.simulated(NS, "cronos-ai")
        assert service is not None
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert len(service.backends()) == 3
            time.sleep(0.01)
        no_endpoint = [
            line
            for line in httpx.get(f"{service.url}/metrics").text.splitlines()
            if line.startswith("http_requests_total") and 'pod=""' in line
        ]
        assert no_endpoint == []
