"""ControllerRevisions: the pod-template history of StatefulSets and DaemonSets.

Each revision's `data` is the strategic merge patch that restores its pod template,
`{"spec":{"template":{"$patch":"replace",...}}}`, encoded the way Go's `json.Marshal` of a map
encodes it (sorted keys, no spaces). `kubectl rollout undo` compares those bytes with the same
patch computed from the live object to tell a no-op, then sends them back as its patch.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from oncall_sandbox.store import Obj, Store

HASH_LABEL = "controller.kubernetes.io/hash"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028"}


def go_json(value: Any) -> str:
    """`value` as Go's encoding/json writes a map: sorted keys, compact, HTML-escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _HTML_ESCAPES.items():
        text = text.replace(char, escaped)
    return text.replace("\u2029", "\\u2029")


def _fnv32(data: bytes) -> int:
    """FNV-1 (32 bit), the hash Kubernetes names revisions by."""
    value = 2166136261
    for byte in data:
        value = (value * 16777619) & 0xFFFFFFFF
        value ^= byte
    return value


def revision_hash(data: Obj, collision_count: int = 0) -> str:
    """The name suffix of a revision: the safe-encoded decimal FNV hash of its data."""
    raw = go_json(data).encode()
    if collision_count:
        raw += str(collision_count).encode()
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in str(_fnv32(raw)).encode())


def template_patch(template: Obj) -> Obj:
    """The revision data of a pod template, with the fields Go always writes."""
    template = json.loads(json.dumps(template))
    meta = template.setdefault("metadata", {})
    for key in ("labels", "annotations"):
        if key in meta and not meta[key]:
            del meta[key]  # omitempty maps
    meta.setdefault("creationTimestamp", None)
    template.setdefault("spec", {})
    data: Obj = json.loads(go_json({"spec": {"template": {**template, "$patch": "replace"}}}))
    return data


def template_of(revision: Obj) -> Obj:
    """The pod template a revision restores."""
    template: Obj = copy.deepcopy(revision["data"]["spec"]["template"])
    template.pop("$patch", None)
    if template.get("metadata", {}).get("creationTimestamp", "") is None:
        del template["metadata"]["creationTimestamp"]
    return template


def controlled_by(obj: Obj, owner: Obj) -> bool:
    """True when `owner` is the controller of `obj`."""
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") == owner["metadata"]["uid"] for r in refs)


def history_of(store: Store, owner: Obj) -> list[Obj]:
    """The revisions `owner` controls, oldest revision first."""
    ns = owner["metadata"]["namespace"]
    found = store.list("controllerrevisions", ns, lambda r: controlled_by(r, owner))
    return sorted(found, key=lambda r: int(r.get("revision", 0)))


def _owner_reference(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def update_revision(store: Store, owner: Obj, history: list[Obj], hash_label: str) -> Obj:
    """The revision of the owner's template as it is now, created or renumbered as needed.

    A template equal to an older revision's (a rollback, or a restart undone) reuses that
    revision and moves it to the next number, as the StatefulSet and DaemonSet controllers do.
    """
    meta = owner["metadata"]
    ns = meta["namespace"]
    data = template_patch(owner["spec"]["template"])
    latest = max((int(r.get("revision", 0)) for r in history), default=0)
    equal = [r for r in history if go_json(r.get("data")) == go_json(data)]
    if equal:
        found = equal[-1]
        if int(found.get("revision", 0)) < latest:
            found["revision"] = latest + 1
            found = store.update("controllerrevisions", ns, found, check_rv=False)
        return found
    collisions = 0
    while True:
        digest = revision_hash(data, collisions)
        name = f"{meta['name'][:223]}-{digest}"
        if store.find("controllerrevisions", ns, name) is None:
            break
        collisions += 1
    labels = dict((owner["spec"]["template"].get("metadata") or {}).get("labels") or {})
    labels[hash_label] = digest
    revision: Obj = {
        "kind": "ControllerRevision",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [_owner_reference(owner)],
        },
        "data": data,
        "revision": latest + 1,
    }
    if meta.get("annotations"):
        revision["metadata"]["annotations"] = dict(meta["annotations"])
    return store.create("controllerrevisions", ns, revision)


def truncate_history(store: Store, owner: Obj, history: list[Obj], live: set[str]) -> None:
    """Delete the oldest revisions beyond revisionHistoryLimit that no pod still runs."""
    limit = int(owner["spec"].get("revisionHistoryLimit", 10))
    idle = [r for r in history if r["metadata"]["name"] not in live]
    for revision in idle[: max(len(idle) - limit, 0)]:
        meta = revision["metadata"]
        store.delete("controllerrevisions", meta["namespace"], meta["name"])
