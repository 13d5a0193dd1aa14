"""Parsing API request paths into resource, namespace, name and subresource."""

from __future__ import annotations

import json
from dataclasses import dataclass

from oncall_sandbox import discovery, openapi
from oncall_sandbox.discovery import Resource
from oncall_sandbox.store import ApiError, Obj


@dataclass
class Request:
    """One parsed API call."""

    method: str
    group: str
    resource: Resource
    namespace: str
    name: str
    subresource: str
    query: dict[str, str]
    accept: str
    content_type: str
    body: bytes


def parse_path(path: str, host: str) -> tuple[str, list[str]] | Obj:
    """Split off the group; answer discovery documents directly."""
    parts = [p for p in path.split("/") if p]
    if parts == ["api"]:
        return discovery.api_versions(host)
    if parts == ["version"]:
        return discovery.KUBERNETES_VERSION
    if parts == ["apis"]:
        return discovery.api_group_list()
    if parts[:2] == ["api", "v1"]:
        return ("", parts[2:]) if parts[2:] else discovery.resource_list("")
    if len(parts) == 2 and parts[0] == "apis":
        group = discovery.api_group(parts[1])
        if group is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return group
    if parts[:2] == ["openapi", "v3"]:
        return openapi.document("/".join(parts[2:]))
    if len(parts) >= 3 and parts[0] == "apis" and parts[2] == "v1" and parts[1] in discovery.GROUPS:
        return (parts[1], parts[3:]) if parts[3:] else discovery.resource_list(parts[1])
    if parts in (["healthz"], ["livez"], ["readyz"]):
        return {"status": "ok"}
    raise ApiError(404, "NotFound", "the server could not find the requested resource")


def dry_run(req: Request) -> bool:
    """True for `?dryRun=All`: run every check, answer as if saved, save nothing."""
    value = req.query.get("dryRun", "")
    if req.method == "DELETE" and req.body:  # kubectl sends DeleteOptions{dryRun: [All]}
        try:
            sent = json.loads(req.body).get("dryRun") or []
        except (ValueError, AttributeError):
            sent = []
        value = value or ",".join(sent)
    if value not in ("", "All"):
        raise ApiError(
            400,
            "BadRequest",
            f'dryRun: Unsupported value: "{value}": supported values: "All"',
        )
    return value == "All"


def route(group: str, rest: list[str]) -> tuple[Resource, str, str, str]:
    """(resource, namespace, name, subresource) from the path after the group version."""
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    plural, name, sub = rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
    resource = discovery.find_resource(group, plural)
    if resource is None or len(rest) > 3 or (sub and (plural, sub) not in discovery.SUBRESOURCES):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return resource, namespace, name, sub
