"""The sandbox through the real `kubernetes` Python client and raw HTTP: status codes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from sandbox_cluster import BLUE, NAMESPACE, SERVICE, Cluster

from oncall_sandbox import Sandbox


@pytest.fixture
def apps(cluster: Cluster) -> Iterator[client.AppsV1Api]:
    api_client = config.new_client_from_config(config_file=str(cluster.sb.kubeconfig_path))
    yield client.AppsV1Api(api_client)
    api_client.close()


@pytest.fixture
def core(cluster: Cluster) -> Iterator[client.CoreV1Api]:
    api_client = config.new_client_from_config(config_file=str(cluster.sb.kubeconfig_path))
    yield client.CoreV1Api(api_client)
    api_client.close()


def test_missing_deployment_is_404_status(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        apps.read_namespaced_deployment("nope", NAMESPACE)
    assert caught.value.status == 404
    assert '"reason": "NotFound"' in caught.value.body
    assert '"kind": "Status"' in caught.value.body


def test_stale_resource_version_on_replace_is_409(apps: client.AppsV1Api) -> None:
    stale = apps.read_namespaced_deployment(BLUE, NAMESPACE)
    apps.patch_namespaced_deployment(BLUE, NAMESPACE, {"metadata": {"labels": {"team": "ai"}}})
    stale.spec.replicas = 4
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment(BLUE, NAMESPACE, stale)
    assert caught.value.status == 409
    fresh = apps.read_namespaced_deployment(BLUE, NAMESPACE)
    fresh.spec.replicas = 4
    replaced = apps.replace_namespaced_deployment(BLUE, NAMESPACE, fresh)
    assert replaced.metadata.generation == fresh.metadata.generation + 1


def test_bad_patches_are_refused(cluster: Cluster) -> None:
    url = f"{cluster.sb.api_url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{BLUE}"
    cases = [
        ("application/merge-patch+json", b'{"spec": ', 400, "BadRequest"),
        (
            "application/json-patch+json",
            b'[{"op":"remove","path":"/spec/nope"}]',
            400,
            "BadRequest",
        ),
        ("application/merge-patch+json", b'{"spec":{"replicas":-2}}', 422, "Invalid"),
        (
            "application/merge-patch+json",
            b'{"spec":{"selector":{"matchLabels":{"a":"b"}}}}',
            422,
            "Invalid",
        ),
        ("text/plain", b"{}", 415, "UnsupportedMediaType"),
    ]
    for content_type, body, code, reason in cases:
        response = httpx.patch(url, content=body, headers={"Content-Type": content_type})
        assert (response.status_code, response.json()["reason"]) == (code, reason), body
    response = httpx.post(f"{cluster.sb.api_url}/api/v1/namespaces/{NAMESPACE}/pods/x/log")
    assert response.status_code == 405


def test_lists_filter_by_label_and_field(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    blue = core.list_namespaced_pod(
        NAMESPACE, label_selector="app=gremlinsai-backend,version in (blue)"
    )
    assert len(blue.items) == 3
    assert all(p.metadata.owner_references[0].kind == "ReplicaSet" for p in blue.items)
    one = blue.items[0].metadata.name
    by_name = core.list_pod_for_all_namespaces(field_selector=f"metadata.name={one}")
    assert [p.metadata.name for p in by_name.items] == [one]
    events = core.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={one}")
    assert {e.reason for e in events.items} >= {"Scheduled", "Pulled", "Created", "Started"}
    rs = apps.list_namespaced_replica_set(NAMESPACE, label_selector="version=blue")
    assert sorted(
        r.metadata.annotations["deployment.kubernetes.io/revision"] for r in rs.items
    ) == ["1", "2"]
    status = apps.read_namespaced_deployment_status(BLUE, NAMESPACE).status
    assert (status.ready_replicas, status.updated_replicas, status.available_replicas) == (3, 3, 3)
    reasons = {c.type: c.reason for c in status.conditions}
    assert reasons == {
        "Available": "MinimumReplicasAvailable",
        "Progressing": "NewReplicaSetAvailable",
    }


def test_pod_log_options(cluster: Cluster, core: client.CoreV1Api) -> None:
    pod = core.list_namespaced_pod(NAMESPACE, label_selector="version=blue").items[0]
    name = pod.metadata.name
    cluster.wait_for(lambda: "status=" in core.read_namespaced_pod_log(name, NAMESPACE))
    lines = core.read_namespaced_pod_log(name, NAMESPACE, tail_lines=2).splitlines()
    assert len(lines) == 2
    stamped = core.read_namespaced_pod_log(name, NAMESPACE, tail_lines=1, timestamps=True)
    assert stamped.startswith("20") and stamped.count("Z ") >= 2
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod_log(name, NAMESPACE, previous=True)
    assert caught.value.status == 400


def test_watch_streams_the_rollout(apps: client.AppsV1Api) -> None:
    seen: list[str] = []
    stream = watch.Watch().stream(
        apps.list_namespaced_deployment,
        NAMESPACE,
        field_selector=f"metadata.name={BLUE}",
        timeout_seconds=10,
    )
    for event in stream:
        seen.append(event["type"])
        deployment = event["object"]
        if len(seen) == 1:  # the watch is open: now start a rollout it must report
            image = {"name": "backend", "image": "ghcr.io/gremlinsai/backend:1.4.3"}
            body = {"spec": {"template": {"spec": {"containers": [image]}}}}
            generation = apps.patch_namespaced_deployment(BLUE, NAMESPACE, body).metadata.generation
            continue
        status = deployment.status
        if (
            (status.observed_generation or 0) >= generation
            and status.updated_replicas == 3
            and status.available_replicas == 3
            and status.replicas == 3
        ):
            break
    assert seen[0] == "ADDED" and seen[-1] == "MODIFIED"
    assert deployment.spec.template.spec.containers[0].image.endswith(":1.4.3")


def test_service_health_and_selector_patch(cluster: Cluster, core: client.CoreV1Api) -> None:
    assert httpx.get(f"{cluster.service_url}/health").json()["status"] == "ok"
    core.patch_namespaced_service(SERVICE, NAMESPACE, {"spec": {"selector": {"version": "none"}}})
    cluster.wait_for(lambda: httpx.get(f"{cluster.service_url}/health").status_code == 503)
    assert httpx.post(f"{cluster.service_url}/api/v1/chat").status_code == 503


def test_stop_is_idempotent(tmp_path: object) -> None:
    from pathlib import Path

    sb = Sandbox(Path(str(tmp_path)), time_scale=0.01, scenario=None)
    sb.start()
    sb.start()
    assert httpx.get(f"{sb.api_url}/version").json()["minor"] == "32"
    sb.stop()
    sb.stop()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{sb.api_url}/version", timeout=1)
