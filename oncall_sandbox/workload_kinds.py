"""Defaulting and validation of StatefulSets and DaemonSets, as the API server does them."""

from __future__ import annotations

import json
from collections.abc import Callable

from oncall_sandbox.store import Obj

# The StatefulSet fields an update may change; any other spec change is refused.
_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _show(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _pod_set_causes(spec: Obj) -> list[str]:
    """Selector, template labels and containers: what every pod controller requires."""
    causes: list[str] = []
    selector = spec.get("selector") or {}
    match = selector.get("matchLabels") or {}
    labels = (spec["template"].get("metadata") or {}).get("labels") or {}
    if not match and not selector.get("matchExpressions"):
        causes.append("spec.selector: Required value")
    elif any(labels.get(k) != v for k, v in match.items()):
        causes.append(
            f"spec.template.metadata.labels: Invalid value: {_show(labels)}: `selector` does "
            "not match template `labels`"
        )
    pod_spec = spec["template"].get("spec") or {}
    containers = pod_spec.get("containers") or []
    if not containers:
        causes.append("spec.template.spec.containers: Required value")
    for i, container in enumerate(containers):
        if not isinstance(container, dict):
            causes.append(f"spec.template.spec.containers[{i}]: Invalid value")
            continue
        for field in ("name", "image"):
            if not isinstance(container.get(field), str) or not container.get(field):
                causes.append(f"spec.template.spec.containers[{i}].{field}: Required value")
    if pod_spec.get("restartPolicy", "Always") != "Always":
        causes.append(
            f'spec.template.spec.restartPolicy: Unsupported value: "{pod_spec["restartPolicy"]}"'
            ': supported values: "Always"'
        )
    return causes


def _strategy_causes(strategy: Obj, supported: tuple[str, ...]) -> list[str]:
    kind = strategy.get("type")
    if kind not in supported:
        values = ", ".join(f'"{s}"' for s in sorted(supported))
        return [
            f'spec.updateStrategy.type: Unsupported value: "{kind}": supported values: {values}'
        ]
    if kind != "RollingUpdate" and strategy.get("rollingUpdate"):
        return [
            f"spec.updateStrategy.rollingUpdate: Invalid value: {_show(strategy['rollingUpdate'])}"
            ": only allowed for updateStrategy 'RollingUpdate'"
        ]
    return []


def _replicas_causes(spec: Obj) -> list[str]:
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        return [f"spec.replicas: Invalid value: {replicas!r}: must be greater than or equal to 0"]
    return []


def _claim_template(claim: Obj) -> Obj:
    claim = dict(claim)
    claim.setdefault("apiVersion", "v1")
    claim.setdefault("kind", "PersistentVolumeClaim")
    claim.setdefault("metadata", {})
    spec = claim.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    claim.setdefault("status", {"phase": "Pending"})
    return claim


def statefulset(obj: Obj, current: Obj | None) -> list[str]:
    """Default and validate a StatefulSet (the pod template is defaulted already)."""
    spec = obj["spec"]
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    claims = [_claim_template(c) for c in spec.pop("volumeClaimTemplates", None) or []]
    if claims:
        spec["volumeClaimTemplates"] = claims
    causes = _replicas_causes(spec) + _pod_set_causes(spec)
    causes += _strategy_causes(strategy, ("OnDelete", "RollingUpdate"))
    policy = spec["podManagementPolicy"]
    if policy not in ("OrderedReady", "Parallel"):
        causes.append(
            f'spec.podManagementPolicy: Unsupported value: "{policy}": supported values: '
            '"OrderedReady", "Parallel"'
        )
    if current is not None:
        before = {k: v for k, v in current["spec"].items() if k not in _STS_MUTABLE}
        after = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
        if before != after:
            causes.append(
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
                "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
                "and 'minReadySeconds' are forbidden"
            )
    return causes


def daemonset(obj: Obj, current: Obj | None) -> list[str]:
    """Default and validate a DaemonSet (the pod template is defaulted already)."""
    spec = obj["spec"]
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    causes = _pod_set_causes(spec) + _strategy_causes(strategy, ("OnDelete", "RollingUpdate"))
    if current is not None and spec.get("selector") != current["spec"].get("selector"):
        causes.append(
            f"spec.selector: Invalid value: {_show(spec.get('selector'))}: field is immutable"
        )
    return causes


WORKLOAD_ADMISSION: dict[str, Callable[[Obj, Obj | None], list[str]]] = {
    "statefulsets": statefulset,
    "daemonsets": daemonset,
}
