"""The Endpoints controller: one Endpoints object per Service, listing the pods it selects."""

from __future__ import annotations

from oncall_sandbox.events import NODE_NAME
from oncall_sandbox.selectors import matches_labels
from oncall_sandbox.services import is_ready
from oncall_sandbox.store import Obj, Store


class EndpointsController:
    """Keeps one Endpoints object per Service, listing the pods its selector picks."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def reconcile(self) -> None:
        """Rewrite every Service's Endpoints from the pods as they are now."""
        for service in self._store.list("services"):
            self._sync(service)
        for endpoints in self._store.list("endpoints"):
            meta = endpoints["metadata"]
            if self._store.find("services", meta["namespace"], meta["name"]) is None:
                self._store.delete("endpoints", meta["namespace"], meta["name"])

    def _sync(self, service: Obj) -> None:
        meta = service["metadata"]
        ns, name = meta["namespace"], meta["name"]
        selector = service["spec"].get("selector") or {}
        pods = self._store.list(
            "pods", ns, lambda p: matches_labels(selector, p["metadata"].get("labels"))
        )
        ready: list[Obj] = []
        not_ready: list[Obj] = []
        for pod in pods:
            if not pod["status"].get("podIP"):
                continue
            address = {
                "ip": pod["status"]["podIP"],
                "nodeName": pod["spec"].get("nodeName") or NODE_NAME,
                "targetRef": {
                    "kind": "Pod",
                    "namespace": ns,
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            }
            (ready if is_ready(pod) else not_ready).append(address)
        ports = [
            {"name": p["name"], "port": p.get("targetPort", p["port"]), "protocol": "TCP"}
            if p.get("name")
            else {"port": p.get("targetPort", p["port"]), "protocol": "TCP"}
            for p in service["spec"].get("ports", [])
        ]
        subset: Obj = {"ports": ports}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        endpoints: Obj = {
            "kind": "Endpoints",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "labels": meta.get("labels", {})},
        }
        if ready or not_ready:
            endpoints["subsets"] = [subset]
        current = self._store.find("endpoints", ns, name)
        if current is None:
            self._store.create("endpoints", ns, endpoints)
            return
        if current.get("subsets") != endpoints.get("subsets"):
            current["subsets"] = endpoints.get("subsets")
            if current["subsets"] is None:
                del current["subsets"]
            self._store.update("endpoints", ns, current, check_rv=False)
