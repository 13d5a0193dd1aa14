"""`kubectl create deployment` and `kubectl create service` send protobuf: the sandbox reads it."""

from __future__ import annotations

from empty_cluster import EmptyCluster, empty

__all__ = ["empty"]  # the fixture


def test_create_deployment_runs_its_pods(empty: EmptyCluster) -> None:
    out = empty.kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2").stdout
    assert out.strip() == "deployment.apps/web created"
    empty.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    deployment = empty.get("deployment", "web")
    assert deployment["metadata"]["labels"] == {"app": "web"}
    spec = deployment["spec"]
    assert spec["replicas"] == 2 and spec["selector"] == {"matchLabels": {"app": "web"}}
    (container,) = spec["template"]["spec"]["containers"]
    assert container["name"] == "nginx" and container["image"] == "nginx:1.27"
    assert "stdin" not in container and "paused" not in spec  # Go's zero values are omitted
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert [p["status"]["phase"] for p in empty.pods("app=web")] == ["Running", "Running"]


def test_create_deployment_with_port_command_and_zero_replicas(empty: EmptyCluster) -> None:
    empty.kubectl(
        "create",
        "deployment",
        "api",
        "--image=registry.example.com/team/api:2.1@sha256:" + "a" * 64,
        "--port=8080",
    )
    empty.kubectl(
        "create", "deployment", "idle", "--image=busybox", "--replicas=0", "--", "sleep", "3600"
    )
    api = empty.get("deployment", "api")["spec"]["template"]["spec"]["containers"][0]
    assert api["name"] == "api"
    assert api["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    idle = empty.get("deployment", "idle")["spec"]
    assert idle["replicas"] == 0
    assert idle["template"]["spec"]["containers"][0]["command"] == ["sleep", "3600"]
    again = empty.kubectl("create", "deployment", "api", "--image=nginx", check=False)
    assert again.returncode == 1 and 'deployments.apps "api" already exists' in again.stderr


def test_create_services(empty: EmptyCluster) -> None:
    empty.kubectl("create", "deployment", "web", "--image=nginx:1.27", "--port=8080")
    assert (
        "service/web created"
        in empty.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080").stdout
    )
    empty.kubectl("create", "service", "clusterip", "peers", "--clusterip=None")
    empty.kubectl("create", "service", "nodeport", "edge", "--tcp=80:8080")
    web = empty.get("service", "web")
    assert web["spec"]["ports"] == [
        {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}
    ]
    assert web["spec"]["selector"] == {"app": "web"} and web["spec"]["type"] == "ClusterIP"
    assert empty.get("service", "peers")["spec"]["clusterIP"] == "None"
    node_port = empty.get("service", "edge")["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    table = empty.kubectl("get", "svc").stdout
    assert f"80:{node_port}/TCP" in table
    empty.kubectl("rollout", "status", "deployment/web", "--timeout=30s")

    def endpoints() -> list[str]:
        subsets = empty.get("endpoints", "web").get("subsets") or [{}]
        return [f"{a['ip']}" for a in subsets[0].get("addresses", [])]

    empty.wait_for(lambda: len(endpoints()) == 1, what="the pod behind the Service")
