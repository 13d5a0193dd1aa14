"""Decoding the protobuf bodies kubectl's typed clients send (`kubectl create role`, ...)."""
# `kubectl create deployment` and `kubectl create service` send protobuf too: their field
# tables (pod templates among them) are in protobuf_pods.py.

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from oncall_sandbox.protobuf_pods import POD_KINDS, POD_SCHEMAS
from oncall_sandbox.store import ApiError, Obj

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# message -> field number -> (JSON name, type); a list type is a repeated field. Types:
# "s" string, "i" integer, "b" bool (a pointer: false is kept), "b0" bool (false is dropped),
# "map" map<string,string>, "bmap" map<string,bytes>, "q" Quantity, "qmap" map<string,Quantity>,
# "time" meta/v1 Time, "ios" IntOrString, or another message of this table. Field numbers
# are those of k8s.io/api's generated.proto files.
_META = {
    1: ("name", "s"),
    2: ("generateName", "s"),
    3: ("namespace", "s"),
    5: ("uid", "s"),
    6: ("resourceVersion", "s"),
    7: ("generation", "i"),
    8: ("creationTimestamp", "time"),
    11: ("labels", "map"),
    12: ("annotations", "map"),
    13: ("ownerReferences", ["OwnerReference"]),
    14: ("finalizers", ["s"]),
}
_SELECTOR = {1: ("matchLabels", "map"), 2: ("matchExpressions", ["Requirement"])}
_BINDING = {1: ("metadata", "ObjectMeta"), 2: ("subjects", ["Subject"]), 3: ("roleRef", "RoleRef")}
_SCHEMAS: dict[str, dict[int, tuple[Any, ...]]] = {
    "ObjectMeta": _META,
    "OwnerReference": {
        1: ("kind", "s"),
        3: ("name", "s"),
        4: ("uid", "s"),
        5: ("apiVersion", "s"),
        6: ("controller", "b"),
        7: ("blockOwnerDeletion", "b"),
    },
    "LabelSelector": _SELECTOR,
    "Requirement": {1: ("key", "s"), 2: ("operator", "s"), 3: ("values", ["s"])},
    "PolicyRule": {
        1: ("verbs", ["s"]),
        2: ("apiGroups", ["s"]),
        3: ("resources", ["s"]),
        4: ("resourceNames", ["s"]),
        5: ("nonResourceURLs", ["s"]),
    },
    "AggregationRule": {1: ("clusterRoleSelectors", ["LabelSelector"])},
    "Subject": {1: ("kind", "s"), 2: ("apiGroup", "s"), 3: ("name", "s"), 4: ("namespace", "s")},
    "RoleRef": {1: ("apiGroup", "s"), 2: ("kind", "s"), 3: ("name", "s")},
    "ObjectReference": {
        1: ("kind", "s"),
        2: ("namespace", "s"),
        3: ("name", "s"),
        4: ("uid", "s"),
        5: ("apiVersion", "s"),
        6: ("resourceVersion", "s"),
        7: ("fieldPath", "s"),
    },
    "LocalObjectReference": {1: ("name", "s")},
    "NamespaceSpec": {1: ("finalizers", ["s"])},
    "PodDisruptionBudgetSpec": {
        1: ("minAvailable", "ios"),
        2: ("selector", "LabelSelector"),
        3: ("maxUnavailable", "ios"),
        4: ("unhealthyPodEvictionPolicy", "s"),
    },
    # the kinds, by name
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", ["PolicyRule"])},
    "ClusterRole": {
        1: ("metadata", "ObjectMeta"),
        2: ("rules", ["PolicyRule"]),
        3: ("aggregationRule", "AggregationRule"),
    },
    "RoleBinding": _BINDING,
    "ClusterRoleBinding": _BINDING,
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta"),
        2: ("secrets", ["ObjectReference"]),
        3: ("imagePullSecrets", ["LocalObjectReference"]),
        4: ("automountServiceAccountToken", "b"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "bmap"),
        3: ("type", "s"),
        4: ("stringData", "map"),
        5: ("immutable", "b"),
    },
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map"),
        3: ("binaryData", "bmap"),
        4: ("immutable", "b"),
    },
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec")},
    "PodDisruptionBudget": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodDisruptionBudgetSpec")},
    **POD_SCHEMAS,
}

_KINDS = frozenset(
    {
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ServiceAccount",
        "Secret",
        "ConfigMap",
        "Namespace",
        "PodDisruptionBudget",
        *POD_KINDS,
    }
)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, varint or bytes) of each field of one message."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _scalar(kind: str, value: int | bytes) -> Any:
    if kind == "s":
        return value.decode() if isinstance(value, bytes) else str(value)
    if kind in ("i", "b", "b0"):
        number = value if isinstance(value, int) else 0
        if number >= 1 << 63:  # a negative int64 on the wire
            number -= 1 << 64
        return number if kind == "i" else bool(number)
    assert isinstance(value, bytes)
    if kind == "q":
        return _scalar("s", dict(_fields(value)).get(1, b""))
    if kind == "time":
        seconds = dict(_fields(value)).get(1, 0)
        stamp = datetime.fromtimestamp(seconds if isinstance(seconds, int) else 0, UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if seconds else None
    if kind == "ios":
        parts = dict(_fields(value))
        if parts.get(1, 0) == 1:
            return _scalar("s", parts.get(3, b""))
        return parts.get(2, 0)
    return _message(kind, value)


def _message(name: str, data: bytes) -> dict[str, Any]:
    schema, out = _SCHEMAS[name], dict[str, Any]()
    for number, value in _fields(data):
        if number not in schema:
            continue
        key, kind = schema[number][:2]
        if kind in ("map", "bmap", "qmap"):
            assert isinstance(value, bytes)
            entry = dict(_fields(value))
            k, v = _scalar("s", entry.get(1, b"")), entry.get(2, b"")
            assert isinstance(v, bytes)
            if kind == "bmap":
                text = base64.b64encode(v).decode()
            else:
                text = _scalar("q", v) if kind == "qmap" else v.decode()
            out.setdefault(key, {})[k] = text
        elif isinstance(kind, list):
            out.setdefault(key, []).append(_scalar(kind[0], value))
        elif key == "":  # an embedded struct: its fields are the parent's
            out.update(_scalar(kind, value))
        else:
            out[key] = _scalar(kind, value)
    # proto2 carries empty optional fields that JSON omits
    keep = {
        entry[0] for entry in schema.values() if entry[1] in ("ios", "b") or entry[2:] == (True,)
    }
    return {k: v for k, v in out.items() if k in keep or v not in ("", 0, None, {}, [], False)}


def decode(body: bytes) -> Obj:
    """A protobuf-encoded object (runtime.Unknown envelope) as its JSON form, or 415."""
    try:
        if not body.startswith(_MAGIC):
            raise ValueError("missing the k8s protobuf envelope")
        envelope = dict(_fields(body[len(_MAGIC) :]))
        type_meta, raw = envelope.get(1, b""), envelope.get(2, b"")
        assert isinstance(type_meta, bytes) and isinstance(raw, bytes)
        meta = dict(_fields(type_meta))
        api_version, kind = _scalar("s", meta.get(1, b"")), _scalar("s", meta.get(2, b""))
        if kind not in _KINDS:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the sandbox cannot decode {kind or 'this object'} from protobuf; send JSON",
            )
        return {"apiVersion": api_version, "kind": kind, **_message(kind, raw)}
    except (ValueError, AssertionError, UnicodeDecodeError) as exc:
        raise ApiError(400, "BadRequest", f"error decoding protobuf body: {exc}") from exc
