"""The cluster's nodes: two general workers and a GPU node, and where a new pod is placed."""

from __future__ import annotations

from dataclasses import dataclass, field

from oncall_sandbox.store import Obj, Store, now_rfc3339

KUBELET_VERSION = "v1.32.0"
GPU_RESOURCE = "nvidia.com/gpu"
# kube-scheduler's default spreading is not simulated: a pod no constraint places elsewhere
# lands on the first node (where every seeded workload has always run).
DEFAULT_NODE = "sandbox-node-1"


@dataclass(frozen=True)
class NodeSpec:
    """One node: its name, address, size and labels."""

    name: str
    ip: str
    cpu: str = "4"
    memory_ki: int = 16_393_244
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    def manifest(self) -> Obj:
        """The Node object as its kubelet registers it."""
        capacity = {
            "cpu": self.cpu,
            "ephemeral-storage": "102626232Ki",
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
            "memory": f"{self.memory_ki}Ki",
            "pods": "110",
        }
        if self.gpus:
            capacity[GPU_RESOURCE] = str(self.gpus)
        # The kubelet reserves some memory and disk for the system.
        allocatable = {
            **capacity,
            "ephemeral-storage": "94580335255",
            "memory": f"{self.memory_ki - 102_400}Ki",
        }
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            **self.labels,
        }
        return {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {
                "name": self.name,
                "labels": labels,
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {"podCIDR": _pod_cidr(self.ip), "podCIDRs": [_pod_cidr(self.ip)]},
            "status": {
                "capacity": capacity,
                "allocatable": allocatable,
                "conditions": _conditions(now_rfc3339()),
                "addresses": [
                    {"type": "InternalIP", "address": self.ip},
                    {"type": "Hostname", "address": self.name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "machineID": _machine_id(self.name),
                    "systemUUID": _machine_id(self.name),
                    "bootID": _machine_id(self.name[::-1]),
                    "kernelVersion": "6.1.0-28-amd64",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "containerRuntimeVersion": "containerd://1.7.22",
                    "kubeletVersion": KUBELET_VERSION,
                    "kubeProxyVersion": KUBELET_VERSION,
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        }


NODES = (
    NodeSpec(DEFAULT_NODE, "10.0.0.10"),
    NodeSpec("sandbox-node-2", "10.0.0.11"),
    NodeSpec(
        "sandbox-gpu-1",
        "10.0.0.12",
        cpu="8",
        memory_ki=65_842_024,
        gpus=1,
        labels={
            "node-role.kubernetes.io/gpu": "",
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": "NVIDIA-L4",
        },
    ),
)
_CONDITIONS = (
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def _conditions(now: str) -> list[Obj]:
    return [
        {
            "type": kind,
            "status": status,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
        for kind, status, reason, message in _CONDITIONS
    ]


def _pod_cidr(ip: str) -> str:
    return f"10.244.{int(ip.rsplit('.', 1)[1]) - 10}.0/24"


def _machine_id(seed: str) -> str:
    return (seed.encode().hex() * 4)[:32]


def seed_nodes(store: Store) -> None:
    """Register every node."""
    for node in NODES:
        store.create("nodes", "", node.manifest())


def host_ip(node: str) -> str:
    """The InternalIP of a node."""
    return next((n.ip for n in NODES if n.name == node), NODES[0].ip)


def is_schedulable(node: Obj) -> bool:
    """Ready and not cordoned."""
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )
    return ready and not (node.get("spec") or {}).get("unschedulable")


def fits(pod_spec: Obj, node: Obj) -> bool:
    """True when the node satisfies the pod's nodeSelector, required node affinity and GPUs."""
    labels = node["metadata"].get("labels") or {}
    selector = pod_spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(_term_matches(t, node) for t in terms):
        return False
    wanted = sum(
        int(((c.get("resources") or {}).get("limits") or {}).get(GPU_RESOURCE, 0))
        for c in pod_spec.get("containers") or []
    )
    has = int((node.get("status") or {}).get("allocatable", {}).get(GPU_RESOURCE, 0))
    return wanted <= has


def _term_matches(term: Obj, node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    checks = [(e, labels.get(e.get("key", ""))) for e in term.get("matchExpressions") or []]
    checks += [
        (e, node["metadata"]["name"] if e.get("key") == "metadata.name" else None)
        for e in term.get("matchFields") or []
    ]
    for expression, value in checks:
        operator, values = expression.get("operator"), expression.get("values") or []
        ok = {
            "In": value in values,
            "NotIn": value not in values,
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }.get(operator, False)
        if not ok:
            return False
    return bool(checks)


def place(store: Store, pod: Obj) -> str | None:
    """The node a pending pod is bound to, or None when no node fits it."""
    spec = pod["spec"]
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    candidates = [n for n in store.list("nodes") if is_schedulable(n) and fits(spec, n)]
    names = [n["metadata"]["name"] for n in candidates]
    if DEFAULT_NODE in names:
        return DEFAULT_NODE
    return names[0] if names else None
