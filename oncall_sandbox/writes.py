"""Create, update, patch and delete as the API server does them; `?dryRun=All` saves nothing."""

from __future__ import annotations

import json
from functools import partial

from oncall_sandbox.admission import admit
from oncall_sandbox.discovery import RESOURCES, SUBRESOURCES, Resource, qualified
from oncall_sandbox.patches import apply_patch
from oncall_sandbox.routing import Request, dry_run
from oncall_sandbox.store import ApiError, Obj, Store, now_rfc3339

_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def json_body(body: bytes) -> Obj:
    """The request body as a JSON object, or 400."""
    try:
        obj = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError(400, "BadRequest", f"error decoding body: {exc}") from exc
    if not isinstance(obj, dict):
        raise ApiError(400, "BadRequest", "body must be a JSON object")
    return obj


def qualify(exc: ApiError, resource: Resource) -> ApiError:
    """Name the resource with its group in NotFound/AlreadyExists (`deployments.apps "x"`)."""
    prefix = f'{resource.plural} "'
    if exc.reason in ("NotFound", "AlreadyExists") and exc.message.startswith(prefix):
        return ApiError(
            exc.code, exc.reason, qualified(resource) + exc.message[len(resource.plural) :]
        )
    return exc


def write(store: Store, req: Request) -> Obj:
    """Run one create, update, patch or delete; returns the answer's body."""
    r, ns = req.resource, req.namespace
    verb = _VERBS.get(req.method, "")
    if verb not in r.verbs or req.subresource or bool(req.name) == (verb == "create"):
        raise ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    if r.namespaced != bool(ns):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    dry = dry_run(req)
    if verb == "delete":
        return _delete(store, req, dry)
    with store.lock:
        current = store.get(r.plural, ns, req.name) if req.name else None
        if verb == "patch":
            assert current is not None
            obj = apply_patch(current, req.content_type, req.body)
        else:
            obj = json_body(req.body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if r.namespaced:
            if meta.setdefault("namespace", ns) != ns:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request",
                )
        else:
            meta.pop("namespace", None)
        if verb == "create":
            if ns and store.find("namespaces", "", ns) is None:
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found')
            return store.create(r.plural, ns, admit(r, obj, None), dry_run=dry)
        if meta.get("name", req.name) != req.name:
            raise ApiError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        meta["name"] = req.name
        return store.update(r.plural, ns, admit(r, obj, current), dry_run=dry)


def _owned_by(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"]["uid"]
    return any(o.get("uid") == uid for o in obj["metadata"].get("ownerReferences", []))


def _collect_deployment(store: Store, ns: str, deployment: Obj) -> None:
    """Background cascading deletion, as the garbage collector does."""
    for rs in store.list("replicasets", ns, partial(_owned_by, owner=deployment)):
        store.delete("replicasets", ns, rs["metadata"]["name"])
        for pod in store.list("pods", ns, partial(_owned_by, owner=rs)):
            store.delete("pods", ns, pod["metadata"]["name"])


def _collect_pod_set(store: Store, ns: str, owner: Obj) -> None:
    """A StatefulSet's or DaemonSet's pods and revisions go with it (its claims stay)."""
    for resource in ("pods", "controllerrevisions"):
        for obj in store.list(resource, ns, partial(_owned_by, owner=owner)):
            store.delete(resource, ns, obj["metadata"]["name"])


def write_status(store: Store, req: Request) -> Obj:
    """PUT or PATCH of `/status`: only the status of the sent object is kept."""
    r, ns = req.resource, req.namespace
    allowed = SUBRESOURCES.get((r.plural, "status"), ())
    if _VERBS.get(req.method) not in allowed or req.method not in ("PUT", "PATCH"):
        raise ApiError(405, "MethodNotAllowed", "method not allowed on status")
    with store.lock:
        current = store.get(r.plural, ns, req.name)
        if req.method == "PATCH":
            wanted = apply_patch(current, req.content_type, req.body)
        else:
            wanted = json_body(req.body)
            sent_rv = (wanted.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {qualified(r)} "{req.name}": the object '
                    "has been modified; please apply your changes to the latest version and try "
                    "again",
                )
        status = wanted.get("status") or {}
        if not isinstance(status, dict):
            raise ApiError(400, "BadRequest", "status must be an object")
        if dry_run(req):
            return {**current, "status": status}
        return store.update_status(r.plural, ns, req.name, status)


def _empty_namespace(store: Store, ns: str) -> None:
    """What the namespace controller does before the namespace goes."""
    for resource in RESOURCES:
        if resource.namespaced:
            for obj in store.list(resource.plural, ns):
                store.delete(resource.plural, ns, obj["metadata"]["name"])


def _delete(store: Store, req: Request, dry: bool) -> Obj:
    r, ns = req.resource, req.namespace
    with store.lock:
        obj = store.delete(r.plural, ns, req.name, dry_run=dry)
        if not dry and r.plural == "deployments":
            _collect_deployment(store, ns, obj)
        if not dry and r.plural in ("statefulsets", "daemonsets"):
            _collect_pod_set(store, ns, obj)
        if not dry and r.plural == "namespaces":
            _empty_namespace(store, req.name)
    if r.plural == "pods":
        return obj
    if r.plural == "namespaces":  # answered as it starts terminating
        obj["metadata"]["deletionTimestamp"] = now_rfc3339()
        obj["status"] = {"phase": "Terminating"}
        return obj
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": req.name,
            "group": r.group,
            "kind": r.plural,
            "uid": obj["metadata"]["uid"],
        },
    }
