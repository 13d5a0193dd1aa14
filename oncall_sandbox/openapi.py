"""`/openapi/v3`: a root and, per group version, the operations and their query parameters."""

# kubectl's validation (`--validate`, default strict) only asks whether the server checks
# fields itself (the `fieldValidation` query parameter on each kind's PATCH operation); when it
# does, kubectl leaves validation to the server and needs no schemas. The PATCH operations do
# not offer `application/strategic-merge-patch+json` here, so `kubectl apply` computes its
# strategic merge patches from its built-in types, not from schemas this document lacks.

from __future__ import annotations

from oncall_sandbox.discovery import GROUPS, KUBERNETES_VERSION, RESOURCES, Resource
from oncall_sandbox.store import ApiError, Obj

_QUERY = {
    "dryRun": "When present, indicates that modifications should not be persisted.",
    "fieldManager": "A name associated with the actor or entity that is making these changes.",
    "fieldValidation": "How the server handles unknown or duplicate fields: Ignore, Warn or "
    "Strict.",
}
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json")


def _api_path(group: str) -> str:
    return f"apis/{group}/v1" if group else "api/v1"


def root() -> Obj:
    """`GET /openapi/v3`: where each group version's document is."""
    return {
        "paths": {
            path: {"serverRelativeURL": f"/openapi/v3/{path}"}
            for path in (_api_path(g) for g in ("", *GROUPS))
        }
    }


def _parameters(*names: str) -> list[Obj]:
    return [
        {"name": n, "in": "query", "description": _QUERY[n], "schema": {"type": "string"}}
        for n in names
    ]


def _operation(resource: Resource, action: str, *query: str) -> Obj:
    op: Obj = {
        "operationId": f"{action}{resource.kind}",
        "parameters": _parameters(*query),
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": resource.group,
            "version": "v1",
            "kind": resource.kind,
        },
    }
    if action in ("post", "put", "patch"):
        types = _PATCH_TYPES if action == "patch" else ("application/json",)
        op["requestBody"] = {"content": {t: {"schema": {"type": "object"}} for t in types}}
    return op


def _paths(resource: Resource) -> Obj:
    base = f"/{_api_path(resource.group)}"
    if resource.namespaced:
        base += "/namespaces/{namespace}"
    collection: Obj = {"get": _operation(resource, "list")}
    item: Obj = {"get": _operation(resource, "get")}
    writes = ("dryRun", "fieldManager", "fieldValidation")
    if "create" in resource.verbs:
        collection["post"] = _operation(resource, "post", *writes)
    if "update" in resource.verbs:
        item["put"] = _operation(resource, "put", *writes)
    if "patch" in resource.verbs:
        item["patch"] = _operation(resource, "patch", *writes)
    if "delete" in resource.verbs:
        item["delete"] = _operation(resource, "delete", "dryRun")
    return {f"{base}/{resource.plural}": collection, f"{base}/{resource.plural}/{{name}}": item}


def group_version(group: str) -> Obj:
    """`GET /openapi/v3/api/v1` or `/openapi/v3/apis/<group>/v1`."""
    paths: Obj = {}
    for resource in RESOURCES:
        if resource.group == group:
            paths.update(_paths(resource))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }


def document(path: str) -> Obj:
    """The document at `/openapi/v3/<path>`, or 404."""
    if path == "":
        return root()
    for group in ("", *GROUPS):
        if path == _api_path(group):
            return group_version(group)
    raise ApiError(404, "NotFound", "the server could not find the requested resource")
