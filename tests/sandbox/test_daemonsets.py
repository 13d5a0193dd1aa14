"""DaemonSets in the sandbox: one pod per node, revisions, and kubectl's rollout commands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from empty_cluster import NS, EmptyCluster, daemonset, empty

from oncall.clients.kube import KubeClient
from oncall.errors import UnsafeToRemediate

__all__ = ["empty"]  # the fixture

NODES = ["sandbox-gpu-1", "sandbox-node-1", "sandbox-node-2"]


@pytest.fixture
def kube(empty: EmptyCluster) -> Iterator[KubeClient]:
    client = KubeClient(empty.sb.kubeconfig_path)
    yield client
    client.close()


def _rolled_out(cluster: EmptyCluster) -> str:
    return cluster.kubectl("rollout", "status", "daemonset/agent", "--timeout=30s").stdout


def _revisions(cluster: EmptyCluster) -> list[int]:
    out = cluster.kubectl("rollout", "history", "daemonset/agent").stdout
    return [int(line.split()[0]) for line in out.splitlines() if re.match(r"^\d+\s", line)]


def _by_node(cluster: EmptyCluster) -> dict[str, str]:
    return {
        p["spec"].get("nodeName", ""): p["spec"]["containers"][0]["image"]
        for p in cluster.pods("app=agent")
    }


def test_one_pod_per_node(empty: EmptyCluster) -> None:
    empty.apply(daemonset())
    assert 'daemon set "agent" successfully rolled out' in _rolled_out(empty)
    ds = empty.get("daemonset", "agent")
    pods = empty.pods("app=agent")
    assert sorted(p["spec"]["nodeName"] for p in pods) == NODES
    (revision,) = empty.get("controllerrevisions")["items"]
    digest = revision["metadata"]["labels"]["controller-revision-hash"]
    assert revision["metadata"]["name"] == f"agent-{digest}" and revision["revision"] == 1
    assert revision["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
    for pod in pods:
        (owner,) = pod["metadata"]["ownerReferences"]
        assert owner["kind"] == "DaemonSet" and owner["controller"] is True
        assert pod["metadata"]["labels"]["controller-revision-hash"] == digest
        assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
        terms = pod["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert terms[0]["matchFields"][0]["values"] == [pod["spec"]["nodeName"]]
    status = ds["status"]
    assert status["desiredNumberScheduled"] == status["numberReady"] == 3
    assert status["updatedNumberScheduled"] == status["numberAvailable"] == 3
    table = empty.kubectl("get", "daemonsets").stdout.splitlines()
    assert table[0].split()[:6] == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
    ]
    assert table[1].split()[:7] == ["agent", "3", "3", "3", "3", "3", "<none>"]

    victim = pods[0]["metadata"]["name"]
    empty.kubectl("delete", "pod", victim)
    empty.wait_for(
        lambda: (
            sorted(_by_node(empty)) == NODES
            and victim not in {p["metadata"]["name"] for p in empty.pods("app=agent")}
        ),
        what="a replacement on the same node",
    )
    empty.kubectl("delete", "daemonset", "agent")
    empty.wait_for(lambda: not empty.pods("app=agent"), what="pods collected")
    assert empty.get("controllerrevisions")["items"] == []


def test_node_selector_picks_the_gpu_node(empty: EmptyCluster) -> None:
    manifest = daemonset(name="gpu-exporter")
    manifest["spec"]["template"]["spec"]["nodeSelector"] = {"nvidia.com/gpu.present": "true"}
    empty.apply(manifest)
    empty.kubectl("rollout", "status", "daemonset/gpu-exporter", "--timeout=30s")
    (pod,) = empty.pods("app=gpu-exporter")
    assert pod["spec"]["nodeName"] == "sandbox-gpu-1"
    row = empty.kubectl("get", "ds", "gpu-exporter").stdout.splitlines()[1].split()
    assert row[1] == "1" and row[6] == "nvidia.com/gpu.present=true"


def test_rollout_restart_history_and_undo(empty: EmptyCluster) -> None:
    empty.apply(daemonset())
    _rolled_out(empty)
    assert "restarted" in empty.kubectl("rollout", "restart", "daemonset/agent").stdout
    assert "successfully rolled out" in _rolled_out(empty)
    empty.kubectl("set", "image", "daemonset/agent", "agent=nginx:1.28")
    _rolled_out(empty)
    assert set(_by_node(empty).values()) == {"nginx:1.28"} and sorted(_by_node(empty)) == NODES
    assert _revisions(empty) == [1, 2, 3]
    assert (
        "nginx:1.27"
        in empty.kubectl("rollout", "history", "daemonset/agent", "--revision=2").stdout
    )

    assert "rolled back" in empty.kubectl("rollout", "undo", "daemonset/agent").stdout
    _rolled_out(empty)
    assert set(_by_node(empty).values()) == {"nginx:1.27"}
    assert _revisions(empty) == [1, 3, 4]
    skipped = empty.kubectl("rollout", "undo", "daemonset/agent", "--to-revision=4").stdout
    assert "skipped rollback (current template already matches revision 4)" in skipped
    empty.kubectl("rollout", "undo", "daemonset/agent", "--to-revision=1")
    _rolled_out(empty)
    annotations = empty.get("daemonset", "agent")["spec"]["template"]["metadata"]
    assert "annotations" not in annotations  # revision 1 predates the restart
    assert _revisions(empty) == [3, 4, 5]


def test_kube_client_on_a_daemonset(empty: EmptyCluster, kube: KubeClient) -> None:
    empty.apply(daemonset())
    empty.wait_for(lambda: kube.workload_ready(NS, "daemonset", "agent"), what="ready")
    assert kube.daemonset(NS, "agent")["status"]["numberReady"] == 3
    with pytest.raises(UnsafeToRemediate):
        kube.rollout_undo_workload(NS, "daemonset", "agent")
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    kube.restart_workload(NS, "daemonset", "agent", at)
    assert kube.workload_ready(NS, "daemonset", "agent") is False
    empty.wait_for(lambda: kube.workload_ready(NS, "daemonset", "agent"), what="restarted")
    history = kube.controller_revisions(NS, "daemonset", "agent")
    assert [r["revision"] for r in history] == [1, 2]
    undo = kube.rollout_undo_workload(NS, "daemonset", "agent")
    assert (undo.revision, undo.skipped) == (1, False)
    empty.wait_for(lambda: kube.workload_ready(NS, "daemonset", "agent"), what="rolled back")
    template = kube.daemonset(NS, "agent")["spec"]["template"]["metadata"]
    assert "annotations" not in template
    assert kube.rollout_undo_workload(NS, "daemonset", "agent", to_revision=3).skipped
