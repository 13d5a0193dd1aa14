"""The `/scale` subresource (autoscaling/v1 Scale) of Deployments and StatefulSets."""

from __future__ import annotations

import json

from oncall_sandbox.patches import apply_patch
from oncall_sandbox.routing import Request, dry_run
from oncall_sandbox.selectors import selector_string
from oncall_sandbox.store import ApiError, Obj, Store


def scale_of(deployment: Obj) -> Obj:
    """The Scale view of a Deployment or StatefulSet."""
    meta = deployment["metadata"]
    match = (deployment["spec"].get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": deployment["spec"].get("replicas", 1)},
        "status": {
            "replicas": (deployment.get("status") or {}).get("replicas", 0),
            "selector": selector_string(match),
        },
    }


def handle_scale(store: Store, req: Request) -> Obj:
    """GET, PUT or PATCH of a Deployment's or StatefulSet's scale."""
    plural = req.resource.plural
    with store.lock:
        deployment = store.get(plural, req.namespace, req.name)
        current = scale_of(deployment)
        if req.method == "GET":
            return current
        if req.method == "PATCH":
            wanted = apply_patch(current, req.content_type, req.body)
        elif req.method == "PUT":
            try:
                wanted = json.loads(req.body or b"{}")
            except ValueError as exc:
                raise ApiError(400, "BadRequest", f"error decoding body: {exc}") from exc
            sent_rv = (wanted.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != deployment["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {plural}.apps "{req.name}": the object '
                    "has been modified; please apply your changes to the latest version and try "
                    "again",
                )
        else:
            raise ApiError(405, "MethodNotAllowed", "method not allowed on scale")
        replicas = (wanted.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(
                422,
                "Invalid",
                f'Scale.autoscaling "{req.name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas!r}: must be greater than or equal to 0",
            )
        deployment["spec"]["replicas"] = replicas
        updated = store.update(
            plural, req.namespace, deployment, check_rv=False, dry_run=dry_run(req)
        )
        return scale_of(updated)
