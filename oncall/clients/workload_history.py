"""A workload's earlier revisions: which one last differed in substance from what runs now.

A crash loop that started with a release is fixed by going back to the revision before it.
"Before it" means the newest earlier revision whose pod template differs from the current
one in what the containers run (image, command, env, resources, ...): a `rollout restart`
only stamps an annotation and makes a new revision of the same thing, so it is skipped.
Deployments keep revisions as ReplicaSets; StatefulSets and DaemonSets as ControllerRevisions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from oncall.clients.kube import HASH_LABEL, RESTARTED_AT, KubeClient, _revision, _without_nulls
from oncall.errors import PermanentError

Obj = dict[str, Any]
_STS_HASH_LABEL = "controller-revision-hash"


@dataclass(frozen=True)
class RevisionCandidate:
    """The revision to go back to, and what differs between it and the current one."""

    kind: str
    name: str
    namespace: str
    current_revision: int
    revision: int
    current_images: list[str]
    images: list[str]
    differences: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for findings and the approval form."""
        what = "; ".join(self.differences) or "template"
        return (
            f"{self.kind}/{self.name} revision {self.current_revision} -> {self.revision} ({what})"
        )


def substance(template: Obj) -> Obj:
    """A pod template without what a restart or the controller stamps on it."""
    clean = copy.deepcopy(template)
    clean.pop("$patch", None)
    meta = clean.setdefault("metadata", {})
    for label in (HASH_LABEL, _STS_HASH_LABEL):
        (meta.get("labels") or {}).pop(label, None)
    (meta.get("annotations") or {}).pop(RESTARTED_AT, None)
    for key in ("labels", "annotations"):
        if not meta.get(key):
            meta.pop(key, None)
    if not meta:
        clean.pop("metadata", None)
    result: Obj = _without_nulls(clean)
    return result


def _containers(template: Obj) -> dict[str, Obj]:
    return {c["name"]: c for c in (template.get("spec") or {}).get("containers") or []}


def differences(current: Obj, earlier: Obj) -> list[str]:
    """What the earlier template's containers had that the current one's do not."""
    out: list[str] = []
    now, then = _containers(current), _containers(earlier)
    for name in sorted(set(now) | set(then)):
        a, b = now.get(name), then.get(name)
        if a is None or b is None:
            out.append(f"container {name} {'added' if b is None else 'removed'}")
            continue
        if a.get("image") != b.get("image"):
            out.append(f"{name} image {a.get('image')} -> {b.get('image')}")
        env_a = {e["name"]: e.get("value") for e in a.get("env") or []}
        env_b = {e["name"]: e.get("value") for e in b.get("env") or []}
        for key in sorted(set(env_a) | set(env_b)):
            if env_a.get(key) != env_b.get(key):
                out.append(
                    f"{name} env {key} {env_a.get(key, '(unset)')} -> {env_b.get(key, '(unset)')}"
                )
        for key in ("command", "args", "resources", "envFrom", "volumeMounts"):
            if a.get(key) != b.get(key):
                out.append(f"{name} {key} changed")
    if not out and current != earlier:
        out.append("pod template changed")
    return out


def _images(template: Obj) -> list[str]:
    return [c["image"] for c in (template.get("spec") or {}).get("containers") or []]


def last_different_revision(
    kube: KubeClient, namespace: str, kind: str, name: str
) -> RevisionCandidate | None:
    """The newest earlier revision that differs in substance from the current one, or None."""
    if kind == "deployment":
        dep = kube.deployment(namespace, name)
        current_template = dep["spec"]["template"]
        current_rev = _revision(dep)
        history = sorted(
            ((_revision(rs), rs["spec"]["template"]) for rs in kube.replicasets_of(dep)),
            key=lambda item: item[0],
        )
    elif kind in ("statefulset", "daemonset"):
        workload = kube._workload(namespace, kind, name)
        current_template = workload["spec"]["template"]
        revisions = kube.controller_revisions(namespace, kind, name)
        history = [(int(r.get("revision", 0)), r["data"]["spec"]["template"]) for r in revisions]
        current_rev = max((rev for rev, _ in history), default=0)
    else:
        raise PermanentError(f"{kind}/{name}: only workloads have revisions")
    now = substance(current_template)
    for rev, template in reversed(history):
        if rev >= current_rev:
            continue
        earlier = substance(template)
        if earlier != now:
            return RevisionCandidate(
                kind=kind,
                name=name,
                namespace=namespace,
                current_revision=current_rev,
                revision=rev,
                current_images=_images(current_template),
                images=_images(template),
                differences=differences(now, earlier),
            )
    return None


def config_maps_of(workload: Obj) -> list[str]:
    """The ConfigMaps a workload's pods read (envFrom, env valueFrom, volumes), in order."""
    spec = (workload.get("spec") or {}).get("template", {}).get("spec") or {}
    names: list[str] = []
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for source in container.get("envFrom") or []:
            ref = source.get("configMapRef") or {}
            names.append(ref.get("name", ""))
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("configMapKeyRef") or {}
            names.append(ref.get("name", ""))
    for volume in spec.get("volumes") or []:
        names.append((volume.get("configMap") or {}).get("name", ""))
    return list(dict.fromkeys(n for n in names if n))
