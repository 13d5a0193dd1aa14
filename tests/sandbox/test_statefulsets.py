"""StatefulSets in the sandbox, driven with the real kubectl and the `kubernetes` client."""

from __future__ import annotations

import json
import re
import threading

import httpx
import pytest
from empty_cluster import NS, EmptyCluster, empty, statefulset
from kubernetes import watch
from kubernetes.client.rest import ApiException

__all__ = ["empty"]  # the fixture

CRASHING = "ghcr.io/cronos-ai/cronos-ai:2.5.0"  # exits 1 at start: CrashLoopBackOff


def _revisions(cluster: EmptyCluster, name: str = "web") -> list[int]:
    out = cluster.kubectl("rollout", "history", f"statefulset/{name}").stdout
    return [int(line.split()[0]) for line in out.splitlines() if re.match(r"^\d+\s", line)]


def _images(cluster: EmptyCluster) -> dict[str, str]:
    return {
        p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in cluster.pods("app=web")
    }


def _rolled_out(cluster: EmptyCluster, name: str = "web", timeout: str = "30s") -> str:
    return cluster.kubectl(
        "rollout", "status", f"statefulset/{name}", f"--timeout={timeout}"
    ).stdout


def test_pods_revisions_and_status(empty: EmptyCluster) -> None:
    empty.apply(statefulset())
    assert "partitioned roll out complete: 3 new pods have been updated" in _rolled_out(empty)
    sts = empty.get("statefulset", "web")
    status = sts["status"]
    revision = status["updateRevision"]
    assert status["currentRevision"] == revision and re.fullmatch(r"web-[a-z0-9]+", revision)
    assert status["readyReplicas"] == status["updatedReplicas"] == status["replicas"] == 3
    assert status["observedGeneration"] == sts["metadata"]["generation"]
    pods = empty.pods("app=web")
    assert [p["metadata"]["name"] for p in pods] == ["web-0", "web-1", "web-2"]
    for index, pod in enumerate(pods):
        labels = pod["metadata"]["labels"]
        assert labels["controller-revision-hash"] == revision
        assert labels["statefulset.kubernetes.io/pod-name"] == f"web-{index}"
        assert labels["app"] == "web"
        (owner,) = pod["metadata"]["ownerReferences"]
        assert owner["kind"] == "StatefulSet" and owner["controller"] is True
        assert owner["uid"] == sts["metadata"]["uid"]
        assert pod["spec"]["hostname"] == f"web-{index}" and pod["spec"]["subdomain"] == "web"
        assert pod["spec"]["nodeName"] == "sandbox-node-1"
        claim = pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
        assert claim == f"data-web-{index}"
    claims = empty.get("pvc")["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == [
        "data-web-0",
        "data-web-1",
        "data-web-2",
    ]
    assert {c["status"]["phase"] for c in claims} == {"Bound"}

    listing = empty.apps.list_namespaced_controller_revision(NS)
    (history,) = listing.items
    assert history.metadata.name == revision and history.revision == 1
    assert history.metadata.owner_references[0].uid == sts["metadata"]["uid"]
    assert history.data["spec"]["template"]["$patch"] == "replace"
    assert history.data["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"

    table = empty.kubectl("get", "statefulsets").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "AGE"]
    assert table[1].split()[:2] == ["web", "3/3"]
    wide = empty.kubectl("get", "sts", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    revisions = empty.kubectl("get", "controllerrevisions").stdout.splitlines()
    assert revisions[1].split()[:3] == [revision, "statefulset.apps/web", "1"]
    assert "statefulset.apps/web" in empty.kubectl("get", "all").stdout


def test_rollout_restart_replaces_pods_highest_ordinal_first(empty: EmptyCluster) -> None:
    empty.apply(statefulset())
    _rolled_out(empty)
    since = empty.core.list_namespaced_pod(NS).metadata.resource_version
    deleted: list[str] = []

    def record() -> None:
        for event in watch.Watch().stream(
            empty.core.list_namespaced_pod,
            NS,
            label_selector="app=web",
            resource_version=since,
            timeout_seconds=60,
        ):
            if event["type"] == "DELETED":
                deleted.append(event["object"].metadata.name)
                if len(deleted) == 3:
                    return

    watcher = threading.Thread(target=record)
    watcher.start()
    assert "restarted" in empty.kubectl("rollout", "restart", "statefulset/web").stdout
    assert "3 new pods have been updated" in _rolled_out(empty)
    watcher.join(timeout=60)
    assert deleted == ["web-2", "web-1", "web-0"]
    sts = empty.get("statefulset", "web")
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", annotations["kubectl.kubernetes.io/restartedAt"]
    )
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in empty.pods("app=web")} == {
        sts["status"]["updateRevision"]
    }
    assert _revisions(empty) == [1, 2]


def test_rollout_undo_reuses_the_old_revision(empty: EmptyCluster) -> None:
    empty.apply(statefulset())
    _rolled_out(empty)
    empty.kubectl("set", "image", "statefulset/web", "app=nginx:1.28")
    _rolled_out(empty)
    assert set(_images(empty).values()) == {"nginx:1.28"}
    assert _revisions(empty) == [1, 2]
    detail = empty.kubectl("rollout", "history", "statefulset/web", "--revision=1").stdout
    assert "nginx:1.27" in detail

    assert "rolled back" in empty.kubectl("rollout", "undo", "statefulset/web").stdout
    _rolled_out(empty)
    assert set(_images(empty).values()) == {"nginx:1.27"}
    assert _revisions(empty) == [2, 3]  # revision 1 came back as 3
    assert len(empty.get("controllerrevisions")["items"]) == 2

    same = empty.kubectl("rollout", "undo", "statefulset/web", "--to-revision=3").stdout
    assert "skipped rollback (current template already matches revision 3)" in same
    missing = empty.kubectl("rollout", "undo", "statefulset/web", "--to-revision=9", check=False)
    assert missing.returncode == 1
    assert "unable to find specified revision 9 in history" in missing.stderr
    empty.kubectl("rollout", "undo", "statefulset/web", "--to-revision=2")
    _rolled_out(empty)
    assert set(_images(empty).values()) == {"nginx:1.28"}
    assert _revisions(empty) == [3, 4]


def test_rollback_leaves_a_crash_looping_pod_until_it_is_deleted(empty: EmptyCluster) -> None:
    empty.apply(statefulset())
    _rolled_out(empty)
    empty.kubectl("set", "image", "statefulset/web", f"app={CRASHING}")

    def waiting_reason(pod: str) -> str:
        statuses = empty.get("pod", pod)["status"].get("containerStatuses") or [{}]
        return str(((statuses[0].get("state") or {}).get("waiting") or {}).get("reason", ""))

    empty.wait_for(lambda: waiting_reason("web-2") == "CrashLoopBackOff", what="crash loop")
    stuck = empty.kubectl("rollout", "status", "statefulset/web", "--timeout=2s", check=False)
    assert stuck.returncode == 1 and "Waiting for 1 pods to be ready" in stuck.stdout
    assert _images(empty) == {"web-0": "nginx:1.27", "web-1": "nginx:1.27", "web-2": CRASHING}

    empty.kubectl("rollout", "undo", "statefulset/web")
    # OrderedReady waits for the broken pod to become ready, which it never does.
    empty.wait_for(lambda: "restartCount" in json.dumps(empty.get("pod", "web-2")), what="status")
    assert _images(empty)["web-2"] == CRASHING
    empty.kubectl("delete", "pod", "web-2")
    _rolled_out(empty)
    assert set(_images(empty).values()) == {"nginx:1.27"}


def test_scale_with_kubectl_and_the_scale_subresource(empty: EmptyCluster) -> None:
    empty.apply(statefulset())
    _rolled_out(empty)
    assert "scaled" in empty.kubectl("scale", "statefulset/web", "--replicas=5").stdout
    _rolled_out(empty)
    assert list(_images(empty)) == [f"web-{i}" for i in range(5)]
    scale = empty.apps.read_namespaced_stateful_set_scale("web", NS)
    assert scale.spec.replicas == 5 and scale.status.selector == "app=web"
    empty.apps.patch_namespaced_stateful_set_scale("web", NS, {"spec": {"replicas": 1}})
    empty.wait_for(lambda: list(_images(empty)) == ["web-0"], what="scale down to 1")
    deletes = [
        e["message"]
        for e in empty.get("events", "--field-selector", "reason=SuccessfulDelete")["items"]
    ]
    assert sorted(deletes) == [
        f"delete Pod web-{i} in StatefulSet web successful" for i in (1, 2, 3, 4)
    ]
    # the claims stay (whenScaled: Retain)
    assert len(empty.get("pvc")["items"]) == 5
    _rolled_out(empty)
    assert empty.get("statefulset", "web")["status"]["replicas"] == 1


def test_rest_verbs_patches_status_and_delete(empty: EmptyCluster) -> None:
    created = empty.apps.create_namespaced_stateful_set(NS, statefulset(replicas=1))
    assert created.metadata.generation == 1
    assert created.spec.update_strategy.rolling_update.partition == 0
    assert created.spec.pod_management_policy == "OrderedReady"
    stream = watch.Watch().stream(empty.apps.list_namespaced_stateful_set, NS, timeout_seconds=5)
    assert next(stream)["object"].metadata.name == "web"
    stream.close()
    assert [s.metadata.name for s in empty.apps.list_namespaced_stateful_set(NS).items] == ["web"]

    empty.kubectl("patch", "sts", "web", "-p", '{"metadata":{"labels":{"team":"db"}}}')
    empty.kubectl("patch", "sts", "web", "--type=merge", "-p", '{"spec":{"replicas":2}}')
    empty.kubectl(
        "patch",
        "sts",
        "web",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.28"}]',
    )
    # Read, modify, replace: the controller's status writes move the resourceVersion in
    # between, and the API answers 409 as a real one does; a client reads again and retries.
    for _ in range(20):
        current = empty.apps.read_namespaced_stateful_set("web", NS)
        assert current.metadata.labels == {"team": "db"}
        assert current.spec.replicas == 2 and current.metadata.generation == 3
        current.spec.min_ready_seconds = 0
        current.spec.template.spec.containers[0].image = "nginx:1.29"
        try:
            replaced = empty.apps.replace_namespaced_stateful_set("web", NS, current)
            break
        except ApiException as exc:
            assert exc.status == 409, exc
    else:
        raise AssertionError("every replace met a newer resourceVersion")
    assert replaced.metadata.generation == 4

    current = empty.apps.read_namespaced_stateful_set("web", NS)
    current.spec.service_name = "other"
    with pytest.raises(ApiException) as refused:
        empty.apps.replace_namespaced_stateful_set("web", NS, current)
    assert (
        refused.value.status == 422
        and "Forbidden: updates to statefulset spec" in refused.value.body
    )
    bad = statefulset(name="bad")
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(ApiException) as invalid:
        empty.apps.create_namespaced_stateful_set(NS, bad)
    assert invalid.value.status == 422 and "does not match template" in invalid.value.body

    status = empty.apps.read_namespaced_stateful_set_status("web", NS)
    assert status.status.update_revision
    # a write to /status keeps only the status (the controller owns it and rewrites it)
    url = f"{empty.sb.api_url}/apis/apps/v1/namespaces/{NS}/statefulsets/web/status"
    sent = {"spec": {"replicas": 9}, "status": {"replicas": 2, "availableReplicas": 0}}
    answer = httpx.patch(
        url, content=json.dumps(sent), headers={"Content-Type": "application/merge-patch+json"}
    )
    assert answer.status_code == 200 and answer.json()["spec"]["replicas"] == 2
    assert httpx.delete(url).status_code == 405
    empty.wait_for(lambda: len(empty.pods("app=web")) == 2, what="two pods")
    assert empty.get("controllerrevisions")["items"]
    out = empty.kubectl("delete", "statefulset", "web").stdout
    assert 'statefulset.apps "web" deleted' in out
    empty.wait_for(lambda: not empty.pods("app=web"), what="pods collected")
    assert empty.get("controllerrevisions")["items"] == []
    assert len(empty.get("pvc")["items"]) == 2  # whenDeleted: Retain
    missing = empty.kubectl("get", "sts", "web", check=False)
    assert 'statefulsets.apps "web" not found' in missing.stderr
