"""core/v1 Events, recorded and deduplicated the way client-go's recorder does."""

from __future__ import annotations

import secrets

from oncall_sandbox.store import Obj, Store, now_rfc3339

NODE_NAME = "sandbox-node-1"

_API_VERSIONS = {
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ControllerRevision": "apps/v1",
    "Pod": "v1",
    "Service": "v1",
    "Endpoints": "v1",
}


class EventRecorder:
    """Writes Events about objects; a repeat of the same event bumps its count."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._names: dict[tuple[str, str, str, str], str] = {}

    def record(
        self,
        obj: Obj,
        reason: str,
        message: str,
        component: str,
        *,
        event_type: str = "Normal",
        field_path: str | None = None,
        host: str | None = None,
    ) -> None:
        """Record one event about `obj` from `component` (a kubelet's on `host`)."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "default")
        kind = obj.get("kind", "")
        now = now_rfc3339()
        key = (meta.get("uid", ""), reason, message, component)
        with self._store.lock:
            existing = self._names.get(key)
            event = self._store.find("events", namespace, existing) if existing else None
            if event is not None:
                event["count"] = int(event.get("count", 1)) + 1
                event["lastTimestamp"] = now
                self._store.update("events", namespace, event, check_rv=False)
                return
            involved: Obj = {
                "kind": kind,
                "namespace": namespace,
                "name": meta["name"],
                "uid": meta.get("uid", ""),
                "apiVersion": _API_VERSIONS.get(kind, "v1"),
                "resourceVersion": meta.get("resourceVersion", ""),
            }
            if field_path:
                involved["fieldPath"] = field_path
            name = f"{meta['name']}.{secrets.token_hex(8)}"
            source: Obj = {"component": component}
            if component == "kubelet":
                source["host"] = host or NODE_NAME
            self._store.create(
                "events",
                namespace,
                {
                    "kind": "Event",
                    "apiVersion": "v1",
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": involved,
                    "reason": reason,
                    "message": message,
                    "source": source,
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                    "type": event_type,
                    "eventTime": None,
                    "reportingComponent": component,
                    "reportingInstance": source.get("host", ""),
                },
            )
            self._names[key] = name
