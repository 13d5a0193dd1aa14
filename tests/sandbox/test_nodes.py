"""The sandbox's nodes: `kubectl get nodes`, conditions and resources, where pods land."""

from __future__ import annotations

from empty_cluster import NS, EmptyCluster, empty

__all__ = ["empty"]  # the fixture


def _pod(name: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "nginx:1.27"}], **spec},
            },
        },
    }


def test_kubectl_get_nodes(empty: EmptyCluster) -> None:
    table = empty.kubectl("get", "nodes").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert set(rows) == {"sandbox-node-1", "sandbox-node-2", "sandbox-gpu-1"}
    assert {r[1] for r in rows.values()} == {"Ready"}
    assert rows["sandbox-gpu-1"][2] == "gpu" and rows["sandbox-node-1"][2] == "<none>"
    assert rows["sandbox-node-1"][4] == "v1.32.0"
    wide = empty.kubectl("get", "nodes", "-o", "wide").stdout.splitlines()
    assert "INTERNAL-IP" in wide[0] and "CONTAINER-RUNTIME" in wide[0]
    assert any("10.0.0.10" in line for line in wide[1:])
    assert "sandbox-node-2" in empty.kubectl("get", "no").stdout


def test_node_conditions_and_resources(empty: EmptyCluster) -> None:
    nodes = {n.metadata.name: n for n in empty.core.list_node().items}
    for node in nodes.values():
        conditions = {c.type: c for c in node.status.conditions}
        assert conditions["Ready"].status == "True"
        assert conditions["Ready"].reason == "KubeletReady"
        assert conditions["MemoryPressure"].status == "False"
        assert conditions["DiskPressure"].status == "False"
        assert node.status.capacity["cpu"] and node.status.allocatable["memory"].endswith("Ki")
        assert node.status.allocatable["pods"] == "110"
        assert node.metadata.labels["kubernetes.io/hostname"] == node.metadata.name
    gpu = nodes["sandbox-gpu-1"]
    assert gpu.status.capacity["nvidia.com/gpu"] == "1"
    assert gpu.status.allocatable["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in nodes["sandbox-node-1"].status.allocatable
    one = empty.core.read_node("sandbox-node-2")
    assert one.status.addresses[0].address == "10.0.0.11"
    assert one.status.node_info.kubelet_version == "v1.32.0"


def test_pods_are_bound_to_the_node_that_fits_them(empty: EmptyCluster) -> None:
    gpu_limits = {"limits": {"nvidia.com/gpu": "1"}}
    llm = _pod("llm")
    llm["spec"]["template"]["spec"]["containers"][0]["resources"] = gpu_limits  # type: ignore[index]
    empty.apply(llm)
    empty.apply(_pod("web"))
    empty.apply(_pod("pinned", nodeSelector={"kubernetes.io/hostname": "sandbox-node-2"}))
    empty.apply(_pod("nowhere", nodeSelector={"disktype": "ssd"}))
    for name in ("llm", "web", "pinned"):
        empty.kubectl("rollout", "status", f"deployment/{name}", "--timeout=30s")

    def node_of(app: str) -> str:
        (pod,) = empty.pods(f"app={app}")
        return str(pod["spec"].get("nodeName", ""))

    assert node_of("llm") == "sandbox-gpu-1"
    assert node_of("web") == "sandbox-node-1"
    assert node_of("pinned") == "sandbox-node-2"
    (pod,) = empty.pods("app=pinned")
    assert pod["status"]["hostIP"] == "10.0.0.11"

    def unschedulable() -> bool:
        (pod,) = empty.pods("app=nowhere")
        conditions = pod["status"].get("conditions") or []
        return any(c["reason"] == "Unschedulable" for c in conditions if "reason" in c)

    empty.wait_for(unschedulable, what="an unschedulable pod")
    assert node_of("nowhere") == ""
    events = empty.get("events", "--field-selector", "reason=FailedScheduling")["items"]
    assert events and "didn't match Pod's node affinity/selector" in events[0]["message"]
    table = empty.kubectl("get", "pods", "-l", "app=nowhere").stdout
    assert "Pending" in table
    scheduled = empty.get("events", "--field-selector", "reason=Scheduled", "-n", NS)["items"]
    assert any("to sandbox-gpu-1" in e["message"] for e in scheduled)
