"""The sandbox driven with the real kubectl, as an on-call engineer would (seed playbook)."""

from __future__ import annotations

import json
import re

from sandbox_cluster import BLUE, SERVICE, Cluster

OLD, GOOD, BAD = (f"ghcr.io/gremlinsai/backend:{v}" for v in ("1.4.1", "1.4.2", "1.5.0"))


def _revisions(cluster: Cluster) -> list[int]:
    out = cluster.kubectl("rollout", "history", f"deployment/{BLUE}").stdout
    return [int(line.split()[0]) for line in out.splitlines() if re.match(r"^\d+\s", line)]


def _blue_replicasets(cluster: Cluster) -> dict[str, str]:
    """Revision -> image of blue's ReplicaSets."""
    items = json.loads(cluster.kubectl("get", "rs", "-l", "version=blue", "-o", "json").stdout)
    return {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["spec"]["template"][
            "spec"
        ]["containers"][0]["image"]
        for rs in items["items"]
    }


def test_discovery_lets_kubectl_get_every_kind(cluster: Cluster) -> None:
    out = cluster.kubectl("get", "deploy,po,svc,rs,ep").stdout
    for name in (
        "deployment.apps/gremlinsai-backend-blue",
        "deployment.apps/weaviate",
        "service/gremlinsai-service",
        "service/ollama",
        "endpoints/gremlinsai-service",
    ):
        assert name in out
    assert len(re.findall(r"pod/gremlinsai-backend-\w+-\w+-\w+\s+1/1\s+Running", out)) == 6
    api = cluster.kubectl("api-resources").stdout
    for short in ("po", "svc", "deploy", "rs", "ev", "ns", "ep"):
        assert re.search(rf"\s{short}\s", api)


def test_seeded_history_has_two_revisions(cluster: Cluster) -> None:
    assert _revisions(cluster) == [1, 2]
    assert _blue_replicasets(cluster) == {"1": OLD, "2": GOOD}


def test_rollout_undo_after_bad_release_restores_error_rate(cluster: Cluster) -> None:
    assert cluster.error_rate() < 0.03
    cluster.sb.inject_fault()
    assert _revisions(cluster) == [1, 2, 3]
    assert cluster.error_rate() > 0.15

    logs = cluster.kubectl("logs", f"deployment/{BLUE}", "--tail=200").stdout
    errors = [line for line in logs.splitlines() if "ERROR" in line]
    assert errors and all(re.search(r"status=(500|502|503|504)", line) for line in errors)

    assert "rolled back" in cluster.kubectl("rollout", "undo", f"deployment/{BLUE}").stdout
    cluster.kubectl("rollout", "status", f"deployment/{BLUE}", "--timeout=30s")
    # the 1.4.2 ReplicaSet is reused and moves to the new, highest revision
    assert _revisions(cluster) == [1, 3, 4]
    assert _blue_replicasets(cluster) == {"1": OLD, "3": BAD, "4": GOOD}
    images = cluster.kubectl(
        "get", "pods", "-l", "version=blue", "-o", "jsonpath={.items[*].spec.containers[0].image}"
    ).stdout.split()
    assert images == [GOOD] * 3
    assert cluster.error_rate() < 0.03


def test_service_selector_patch_reroutes_to_green(cluster: Cluster) -> None:
    cluster.sb.inject_fault()
    assert cluster.error_rate() > 0.15
    cluster.kubectl("patch", "svc", SERVICE, "-p", '{"spec":{"selector":{"version":"green"}}}')
    assert cluster.error_rate() < 0.03
    blue = cluster.kubectl(
        "get", "deploy", BLUE, "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    ).stdout
    assert blue == BAD
    green_ips = cluster.kubectl(
        "get", "pods", "-l", "version=green", "-o", "jsonpath={.items[*].status.podIP}"
    ).stdout.split()
    endpoints = json.loads(cluster.kubectl("get", "ep", SERVICE, "-o", "json").stdout)
    assert sorted(a["ip"] for a in endpoints["subsets"][0]["addresses"]) == sorted(green_ips)


def test_deleted_pod_is_replaced(cluster: Cluster) -> None:
    def pods() -> list[str]:
        return cluster.kubectl("get", "pods", "-l", "version=green", "-o", "name").stdout.split()

    victim = pods()[0]
    cluster.kubectl("delete", victim)
    cluster.wait_for(lambda: victim not in pods() and len(pods()) == 3, what="replacement")
    cluster.kubectl("wait", "--for=condition=Ready", "pods", "-l", "version=green", "--timeout=20s")
    events = cluster.kubectl(
        "get", "events", "--field-selector", "reason=SuccessfulCreate", "-o", "json"
    ).stdout
    created = [e["message"] for e in json.loads(events)["items"]]
    assert any(m.startswith("Created pod: gremlinsai-backend-green-") for m in created)


def test_kubectl_sees_api_errors(cluster: Cluster) -> None:
    missing = cluster.kubectl("get", "deploy", "nope", check=False)
    assert missing.returncode == 1
    assert 'deployments.apps "nope" not found' in missing.stderr or "not found" in missing.stderr
    bad = cluster.kubectl(
        "patch",
        "deploy",
        BLUE,
        "--type=json",
        "-p",
        '[{"op":"explode","path":"/spec"}]',
        check=False,
    )
    assert bad.returncode == 1 and "BadRequest" in bad.stderr
    previous = cluster.kubectl("logs", f"deployment/{BLUE}", "--previous", check=False)
    assert previous.returncode == 1 and "previous terminated container" in previous.stderr


def test_set_image_and_restart_roll_out(cluster: Cluster) -> None:
    cluster.kubectl(
        "set", "image", "deployment/weaviate", "weaviate=semitechnologies/weaviate:1.25.0"
    )
    cluster.kubectl("rollout", "restart", "deployment/ollama")
    for name in ("weaviate", "ollama"):
        out = cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=30s").stdout
        assert "successfully rolled out" in out
    restarted = cluster.kubectl("get", "deploy", "ollama", "-o", "json").stdout
    annotations = json.loads(restarted)["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
