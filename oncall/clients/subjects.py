"""Resolve what an alert names against the cluster: up the ownerReferences to the workload.

A pod is followed to its controller (Pod -> ReplicaSet -> Deployment, Pod -> StatefulSet,
Pod -> DaemonSet, Pod -> Job); a Service to the pods its selector matches and their owner;
a workload is read as it is. The subject keeps the chain it followed, its pods and the
Service that selects them, for the diagnosis and the approver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client

from oncall.clients.kube import T_OUT, KubeClient
from oncall.errors import NotFoundError
from oncall.subjects import Subject, SubjectKind, SubjectRef, SubjectUnresolved

Obj = dict[str, Any]
# ownerReference kinds this resolver follows, and the subject kind each becomes.
_OWNER_KINDS = {
    "ReplicaSet": "replicaset",
    "Deployment": SubjectKind.DEPLOYMENT,
    "StatefulSet": SubjectKind.STATEFULSET,
    "DaemonSet": SubjectKind.DAEMONSET,
    "Job": SubjectKind.JOB,
}
_MAX_OWNER_HOPS = 5  # Pod -> ReplicaSet -> Deployment is two; a loop never ends


def _controller(obj: Obj) -> Obj | None:
    refs = obj["metadata"].get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), None)


def _match_labels(obj: Obj) -> dict[str, str]:
    selector = (obj.get("spec") or {}).get("selector") or {}
    labels: dict[str, str] = selector.get("matchLabels") or {}
    return dict(labels)


class SubjectResolver:
    """Reads the objects a subject reference leads to, through the product's kube client."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.batch = client.BatchV1Api(kube.api_client)

    def _read(self, what: str, thunk: Callable[[], Any]) -> Obj:
        return self.kube._raw(what, thunk)  # the client's error mapping and JSON form

    def read(self, kind: str, namespace: str, name: str) -> Obj:
        """One object by kind (`pod`, `replicaset`, `deployment`, ...) and name."""
        apps, core, what = self.kube.apps, self.kube.core, f"get {kind} {namespace}/{name}"
        readers: dict[str, Callable[[], Any]] = {
            "pod": lambda: core.read_namespaced_pod(name, namespace, _request_timeout=T_OUT),
            "replicaset": lambda: apps.read_namespaced_replica_set(
                name, namespace, _request_timeout=T_OUT
            ),
            SubjectKind.DEPLOYMENT: lambda: apps.read_namespaced_deployment(
                name, namespace, _request_timeout=T_OUT
            ),
            SubjectKind.STATEFULSET: lambda: apps.read_namespaced_stateful_set(
                name, namespace, _request_timeout=T_OUT
            ),
            SubjectKind.DAEMONSET: lambda: apps.read_namespaced_daemon_set(
                name, namespace, _request_timeout=T_OUT
            ),
            SubjectKind.JOB: lambda: self.batch.read_namespaced_job(
                name, namespace, _request_timeout=T_OUT
            ),
            SubjectKind.SERVICE: lambda: core.read_namespaced_service(
                name, namespace, _request_timeout=T_OUT
            ),
            SubjectKind.NODE: lambda: core.read_node(name, _request_timeout=T_OUT),
        }
        return self._read(what, readers[kind])

    def resolve(self, ref: SubjectRef) -> Subject:
        """The subject ``ref`` leads to; SubjectUnresolved when the cluster has no such object."""
        try:
            if ref.kind == SubjectKind.NODE:
                return self._node(ref)
            if ref.kind == SubjectKind.SERVICE:
                return self._service(ref)
            if ref.kind == SubjectKind.POD:
                return self._owner_of(self.read("pod", ref.namespace, ref.name), ref)
            return self._workload(self.read(ref.kind, ref.namespace, ref.name), ref.kind, ref)
        except NotFoundError as exc:
            raise SubjectUnresolved(f"{ref} (label {ref.label}): {exc}") from exc

    def _owner_of(self, pod: Obj, ref: SubjectRef, via: list[str] | None = None) -> Subject:
        """Follow a pod's controller ownerReferences up to the top owner."""
        chain = [*(via or []), f"pod/{pod['metadata']['name']}"]
        obj, kind = pod, "pod"
        for _ in range(_MAX_OWNER_HOPS):
            owner = _controller(obj)
            owner_kind = _OWNER_KINDS.get(owner["kind"]) if owner else None
            if owner is None or owner_kind is None:
                break
            obj, kind = self.read(owner_kind, ref.namespace, owner["name"]), owner_kind
            chain.append(f"{kind}/{owner['name']}")
        if kind == "pod":  # a bare pod: it is its own subject
            labels = dict(pod["metadata"].get("labels") or {})
            return self._finish(pod, SubjectKind.POD, ref, chain, labels)
        if kind == "replicaset":
            raise SubjectUnresolved(
                f"{ref}: owned by replicaset {obj['metadata']['name']}, which no deployment owns"
            )
        return self._finish(obj, SubjectKind(kind), ref, chain, _match_labels(obj))

    def _workload(self, obj: Obj, kind: SubjectKind, ref: SubjectRef) -> Subject:
        chain = [f"{kind}/{obj['metadata']['name']}"]
        labels = _match_labels(obj)
        if kind == SubjectKind.JOB and not labels:
            labels = {"job-name": obj["metadata"]["name"]}
        return self._finish(obj, kind, ref, chain, labels)

    def _service(self, ref: SubjectRef) -> Subject:
        try:
            svc = self.read(SubjectKind.SERVICE, ref.namespace, ref.name)
        except NotFoundError:
            # `service` often names the application rather than its Service object: a
            # workload of that name is what it means.
            for kind in (SubjectKind.DEPLOYMENT, SubjectKind.STATEFULSET, SubjectKind.DAEMONSET):
                try:
                    return self._workload(self.read(kind, ref.namespace, ref.name), kind, ref)
                except NotFoundError:
                    continue
            raise
        selector = (svc.get("spec") or {}).get("selector") or {}
        via = [f"service/{ref.name}"]
        pods = self.kube.pod_objects(ref.namespace, selector) if selector else []
        if pods:
            subject = self._owner_of(sorted(pods, key=lambda p: p["metadata"]["name"])[0], ref, via)
            return subject.model_copy(update={"service": ref.name})
        return Subject(
            kind=SubjectKind.SERVICE,
            name=ref.name,
            namespace=ref.namespace,
            named=f"{ref.label}/{ref.name}",
            chain=via,
            selector=dict(selector),
            service=ref.name,
        )

    def _node(self, ref: SubjectRef) -> Subject:
        try:
            node = self.read(SubjectKind.NODE, "", ref.name)
        except NotFoundError:
            if ref.label != "instance":
                raise
            node = self._node_with_address(ref.name)
        name = node["metadata"]["name"]
        return Subject(
            kind=SubjectKind.NODE,
            name=name,
            named=f"{ref.label}/{ref.name}",
            chain=[f"node/{name}"],
        )

    def _node_with_address(self, address: str) -> Obj:
        listing = self._read("list nodes", lambda: self.kube.core.list_node(_request_timeout=T_OUT))
        for node in listing.get("items", []):
            addresses = (node.get("status") or {}).get("addresses") or []
            if any(a.get("address") == address for a in addresses):
                return dict(node)
        raise NotFoundError(f"no node has the address {address}")

    def _finish(
        self, obj: Obj, kind: SubjectKind, ref: SubjectRef, chain: list[str], labels: dict[str, str]
    ) -> Subject:
        namespace = ref.namespace
        pods = self.kube.pod_objects(namespace, labels) if labels else []
        pod_labels = [p["metadata"].get("labels") or {} for p in pods] or [labels]
        return Subject(
            kind=kind,
            name=obj["metadata"]["name"],
            namespace=namespace,
            named=f"{ref.kind}/{ref.name}",
            chain=chain,
            selector=labels,
            pods=sorted(p["metadata"]["name"] for p in pods),
            service=self._service_selecting(namespace, pod_labels),
        )

    def _service_selecting(self, namespace: str, pod_labels: list[dict[str, str]]) -> str | None:
        """The first Service (by name) whose selector matches the subject's pods."""
        listing = self._read(
            f"list services in {namespace}",
            lambda: self.kube.core.list_namespaced_service(namespace, _request_timeout=T_OUT),
        )
        for svc in sorted(listing.get("items", []), key=lambda s: s["metadata"]["name"]):
            selector = (svc.get("spec") or {}).get("selector") or {}
            if selector and any(
                all(labels.get(k) == v for k, v in selector.items()) for labels in pod_labels
            ):
                return str(svc["metadata"]["name"])
        return None
