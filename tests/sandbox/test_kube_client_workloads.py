"""KubeClient on StatefulSets and Deployments: reads, restart, scale, history, undo, readiness."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from empty_cluster import NS, EmptyCluster, empty, statefulset

from oncall.clients.kube import KubeClient
from oncall.errors import NotFoundError, PermanentError, UnsafeToRemediate

__all__ = ["empty"]  # the fixture

AT = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)


@pytest.fixture
def kube(empty: EmptyCluster) -> Iterator[KubeClient]:
    client = KubeClient(empty.sb.kubeconfig_path)
    yield client
    client.close()


def _wait_ready(empty: EmptyCluster, kube: KubeClient, kind: str, name: str) -> None:
    empty.wait_for(lambda: kube.workload_ready(NS, kind, name), what=f"{kind}/{name} ready")


def _images(empty: EmptyCluster, selector: str = "app=web") -> set[str]:
    return {p["spec"]["containers"][0]["image"] for p in empty.pods(selector)}


def test_reads_and_readiness_follow_rollout_status(empty: EmptyCluster, kube: KubeClient) -> None:
    with pytest.raises(NotFoundError):
        kube.statefulset(NS, "web")
    with pytest.raises(NotFoundError):
        kube.daemonset(NS, "agent")
    with pytest.raises(PermanentError):
        kube.workload_ready(NS, "cronjob", "web")
    empty.apply(statefulset())
    assert kube.workload_ready(NS, "statefulset", "web") is False
    _wait_ready(empty, kube, "statefulset", "web")
    # the same verdict as kubectl's
    empty.kubectl("rollout", "status", "statefulset/web", "--timeout=1s")
    sts = kube.statefulset(NS, "web")
    assert sts["status"]["readyReplicas"] == 3

    on_delete = '{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}'
    empty.kubectl("patch", "sts", "web", "--type=merge", "-p", on_delete)
    with pytest.raises(PermanentError, match="only available for RollingUpdate"):
        kube.workload_ready(NS, "statefulset", "web")


def test_restart_workload_as_kubectl(empty: EmptyCluster, kube: KubeClient) -> None:
    empty.apply(statefulset())
    empty.kubectl("create", "deployment", "api", "--image=nginx:1.27")
    _wait_ready(empty, kube, "statefulset", "web")
    _wait_ready(empty, kube, "deployment", "api")
    before = {p["metadata"]["uid"] for p in empty.pods("app=web")}

    kube.restart_workload(NS, "statefulset", "web", AT)
    assert kube.workload_ready(NS, "statefulset", "web") is False
    _wait_ready(empty, kube, "statefulset", "web")
    after = kube.statefulset(NS, "web")
    annotations = after["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"kubectl.kubernetes.io/restartedAt": "2026-03-01T12:30:05Z"}
    assert not before & {p["metadata"]["uid"] for p in empty.pods("app=web")}
    assert [r["revision"] for r in kube.controller_revisions(NS, "statefulset", "web")] == [1, 2]

    kube.restart_workload(NS, "deployment", "api", AT)
    _wait_ready(empty, kube, "deployment", "api")
    template = kube.deployment(NS, "api")["spec"]["template"]["metadata"]
    assert template["annotations"]["kubectl.kubernetes.io/restartedAt"] == "2026-03-01T12:30:05Z"
    empty.kubectl("rollout", "pause", "deployment/api")
    with pytest.raises(UnsafeToRemediate, match="paused"):
        kube.restart_workload(NS, "deployment", "api", AT)


def test_scale_statefulset(empty: EmptyCluster, kube: KubeClient) -> None:
    empty.apply(statefulset(replicas=1))
    _wait_ready(empty, kube, "statefulset", "web")
    scale = kube.scale_statefulset(NS, "web", 3)
    assert scale["spec"]["replicas"] == 3
    _wait_ready(empty, kube, "statefulset", "web")
    assert [p["metadata"]["name"] for p in empty.pods("app=web")] == ["web-0", "web-1", "web-2"]
    with pytest.raises(NotFoundError):
        kube.scale_statefulset(NS, "nope", 2)
    with pytest.raises(PermanentError):
        kube.scale_statefulset(NS, "web", -1)


def test_controller_revisions_and_undo(empty: EmptyCluster, kube: KubeClient) -> None:
    empty.apply(statefulset())
    _wait_ready(empty, kube, "statefulset", "web")
    with pytest.raises(UnsafeToRemediate, match="no last revision"):
        kube.rollout_undo_workload(NS, "statefulset", "web")
    empty.kubectl("set", "image", "statefulset/web", "app=nginx:1.28")
    _wait_ready(empty, kube, "statefulset", "web")
    # Another StatefulSet with the same labels: its revisions are not web's.
    other = statefulset(name="web-b")
    other["spec"]["selector"]["matchLabels"] = other["spec"]["template"]["metadata"]["labels"] = {
        "app": "web"
    }
    other["spec"]["serviceName"] = "web-b"
    empty.apply(other)

    history = kube.controller_revisions(NS, "statefulset", "web")
    assert [r["revision"] for r in history] == [1, 2]
    assert all(r["metadata"]["name"].startswith("web-") for r in history)
    with pytest.raises(PermanentError):
        kube.controller_revisions(NS, "deployment", "web")

    undo = kube.rollout_undo_workload(NS, "statefulset", "web")
    assert (undo.revision, undo.skipped) == (1, False)
    assert undo.workload["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    _wait_ready(empty, kube, "statefulset", "web")
    assert _images(empty, "statefulset.kubernetes.io/pod-name in (web-0,web-1,web-2)") == {
        "nginx:1.27"
    }
    assert [r["revision"] for r in kube.controller_revisions(NS, "statefulset", "web")] == [2, 3]

    same = kube.rollout_undo_workload(NS, "statefulset", "web", to_revision=3)
    assert same.skipped and same.revision == 3
    # kubectl agrees that it is a no-op
    out = empty.kubectl("rollout", "undo", "statefulset/web", "--to-revision=3").stdout
    assert "skipped rollback" in out
    with pytest.raises(UnsafeToRemediate, match="revision 7"):
        kube.rollout_undo_workload(NS, "statefulset", "web", to_revision=7)
    back = kube.rollout_undo_workload(NS, "statefulset", "web", to_revision=2)
    assert not back.skipped
    _wait_ready(empty, kube, "statefulset", "web")
    assert kube.statefulset(NS, "web")["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "nginx:1.28"
    )


def test_undo_of_a_deployment_goes_through_its_replicasets(
    empty: EmptyCluster, kube: KubeClient
) -> None:
    empty.kubectl("create", "deployment", "api", "--image=nginx:1.27")
    _wait_ready(empty, kube, "deployment", "api")
    empty.kubectl("set", "image", "deployment/api", "nginx=nginx:1.28")
    _wait_ready(empty, kube, "deployment", "api")
    undo = kube.rollout_undo_workload(NS, "deployment", "api")
    assert (undo.revision, undo.skipped) == (1, False)
    _wait_ready(empty, kube, "deployment", "api")
    assert _images(empty, "app=api") == {"nginx:1.27"}
