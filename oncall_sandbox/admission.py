"""Defaulting and validation of writes, as the API server does before storing."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from oncall_sandbox.discovery import Resource
from oncall_sandbox.kinds import INITIAL_STATUS, KIND_ADMISSION, NO_STATUS, name_causes
from oncall_sandbox.store import ApiError, Obj
from oncall_sandbox.workload_kinds import WORKLOAD_ADMISSION


def _invalid(resource: Resource, name: str, causes: list[str]) -> ApiError:
    kind = f"{resource.kind}.{resource.group}" if resource.group else resource.kind
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {"; ".join(causes)}')


def default_pod_template(template: Obj) -> Obj:
    """Fill the pod template defaults the API server adds."""
    template = copy.deepcopy(template)
    spec = template.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in spec.get("containers") or []:
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("resources", {})
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
    return template


def _default_deployment(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy["type"] = "RollingUpdate"
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxSurge", "25%")
        rolling.setdefault("maxUnavailable", "25%")
    spec["template"] = default_pod_template(spec.get("template") or {})


def _validate_deployment(obj: Obj) -> list[str]:
    spec, causes = obj["spec"], []
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        causes.append(
            f"spec.replicas: Invalid value: {replicas!r}: must be greater than or equal to 0"
        )
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = (spec["template"].get("metadata") or {}).get("labels") or {}
    if not selector:
        causes.append("spec.selector: Required value")
    elif any(labels.get(k) != v for k, v in selector.items()):
        causes.append(
            f"spec.template.metadata.labels: Invalid value: {labels!r}: `selector` "
            "does not match template `labels`"
        )
    containers = spec["template"]["spec"].get("containers") or []
    if not containers:
        causes.append("spec.template.spec.containers: Required value")
    for i, container in enumerate(containers):
        if not isinstance(container, dict):
            causes.append(f"spec.template.spec.containers[{i}]: Invalid value")
            continue
        for field in ("name", "image"):
            if not isinstance(container.get(field), str) or not container.get(field):
                causes.append(f"spec.template.spec.containers[{i}].{field}: Required value")
    return causes


def _default_service(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    digest = hashlib.sha256(obj["metadata"].get("name", "").encode()).digest()
    if "clusterIP" not in spec:
        spec["clusterIP"] = f"10.96.{digest[0]}.{max(digest[1], 2)}"
    spec["clusterIPs"] = [spec["clusterIP"]]
    for i, port in enumerate(spec.get("ports") or []):
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
                port["nodePort"] = 30000 + (int.from_bytes(digest[2:4]) + i) % 2768


def _validate_service(obj: Obj) -> list[str]:
    spec, causes = obj["spec"], []
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None" or spec.get("type") == "ExternalName"
    if not ports and not headless:
        causes.append("spec.ports: Required value")
    for i, port in enumerate(ports):
        if not isinstance(port, dict) or not isinstance(port.get("port"), int):
            causes.append(f"spec.ports[{i}].port: Required value")
    selector = spec.get("selector")
    if selector is not None and (
        not isinstance(selector, dict) or not all(isinstance(v, str) for v in selector.values())
    ):
        causes.append("spec.selector: Invalid value: must be a map of strings")
    return causes


def drop_nulls(value: Any) -> Any:
    """Drop null fields, as the API server's decode/encode round trip does."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def admit(resource: Resource, obj: Obj, current: Obj | None) -> Obj:
    """Default and validate an object about to be created (`current` None) or replaced."""
    obj = drop_nulls(obj)
    if not isinstance(obj.get("metadata"), dict) or not isinstance(obj.get("spec", {}), dict):
        raise ApiError(400, "BadRequest", "object has no valid metadata or spec")
    obj["kind"], obj["apiVersion"] = resource.kind, resource.group_version
    name = obj["metadata"].get("name", "")
    causes: list[str] = name_causes(resource.plural, name) if current is None else []
    if resource.plural in KIND_ADMISSION:
        causes += KIND_ADMISSION[resource.plural](obj, current)
    elif resource.plural == "deployments":
        if not isinstance(obj.get("spec", {}).get("template", {}), dict):
            raise _invalid(resource, name, ["spec.template: Invalid value"])
        _default_deployment(obj)
        causes += _validate_deployment(obj)
        if current is not None and obj["spec"].get("selector") != current["spec"].get("selector"):
            causes.append("spec.selector: Invalid value: field is immutable")
    elif resource.plural in WORKLOAD_ADMISSION:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec.get("template", {}), dict):
            raise _invalid(resource, name, ["spec.template: Invalid value"])
        spec["template"] = default_pod_template(spec.get("template") or {})
        causes += WORKLOAD_ADMISSION[resource.plural](obj, current)
    elif resource.plural == "configmaps":
        data = obj.get("data") or {}
        if not isinstance(data, dict):
            causes.append("data: Invalid value: must be a map of strings")
        else:
            causes += [
                f"data[{k}]: Invalid value: must be a string"
                for k, v in data.items()
                if not isinstance(v, str)
            ]
    elif resource.plural == "services":
        if current is not None:
            obj["spec"].setdefault("clusterIP", current["spec"].get("clusterIP"))
        _default_service(obj)
        causes += _validate_service(obj)
    if causes:
        raise _invalid(resource, name, causes)
    # status is written by controllers only; the main resource ignores it
    if resource.plural in NO_STATUS:
        obj.pop("status", None)
    else:
        status: Any = (
            current.get("status", {}) if current else INITIAL_STATUS.get(resource.plural, {})
        )
        obj["status"] = copy.deepcopy(status)
    if isinstance(obj.get("metadata"), dict):
        obj["metadata"].pop("deletionTimestamp", None)
    return obj
