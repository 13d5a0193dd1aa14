"""JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch."""

from __future__ import annotations

import copy
import json
from typing import Any

from oncall_sandbox.store import ApiError, Obj

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

# patchMergeKey of the list fields the sandbox's kinds carry (from the API's Go struct tags).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "tolerations": "key",
}
# Service ports merge on `port`, container ports on `containerPort`.
_PORT_KEYS = ("containerPort", "port")


def _bad(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def apply_patch(target: Obj, content_type: str, body: bytes) -> Obj:
    """Apply a PATCH body of the given content type to a copy of `target`."""
    kind = content_type.split(";")[0].strip()
    if kind not in PATCH_TYPES:
        raise ApiError(
            415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {kind}"
        )
    try:
        patch = json.loads(body or b"null")
    except ValueError as exc:
        raise _bad(f"error decoding patch: {exc}") from exc
    if kind == JSON_PATCH:
        if not isinstance(patch, list):
            raise _bad("json patch must be a list of operations")
        return _json_patch(copy.deepcopy(target), patch)
    if not isinstance(patch, dict):
        raise _bad("patch body must be a JSON object")
    merge = merge_patch if kind == MERGE_PATCH else strategic_merge
    result = merge(target, patch)
    if not isinstance(result, dict):
        raise _bad("patch replaced the whole object")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field in _MERGE_KEYS:
        return _MERGE_KEYS[field]
    if field == "ports":
        for key in _PORT_KEYS:
            if all(isinstance(i, dict) and key in i for i in items):
                return key
    return None


def strategic_merge(target: Any, patch: Any) -> Any:
    """Strategic merge: like a merge patch, but keyed lists merge element by element."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue  # $setElementOrder/..., $retainKeys: ordering hints only
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        else:
            result[key] = strategic_merge(result.get(key), value)
    return result


def _merge_list(field: str, current: list[Any], patch: list[Any]) -> list[Any]:
    merge_key = _merge_key(field, current + patch)
    if merge_key is None:
        return copy.deepcopy(patch)
    merged = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise _bad(f"map in list {field} does not contain merge key {merge_key}")
        index = next((i for i, c in enumerate(merged) if c.get(merge_key) == item[merge_key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append(strategic_merge({}, item))
        else:
            merged[index] = strategic_merge(merged[index], item)
    return merged


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _bad(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise _bad(f"path not found: /{'/'.join(parts)}") from exc
    return node


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    try:
        return parent[int(parts[-1])] if isinstance(parent, list) else parent[parts[-1]]
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise _bad(f"path not found: /{'/'.join(parts)}") from exc


def _remove(doc: Any, parts: list[str]) -> Any:
    value = _get(doc, parts)
    parent = _parent(doc, parts)
    if isinstance(parent, list):
        parent.pop(int(parts[-1]))
    else:
        del parent[parts[-1]]
    return value


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    if isinstance(parent, list):
        index = len(parent) if parts[-1] == "-" else int(parts[-1])
        if not 0 <= index <= len(parent):
            raise _bad(f"index out of range: {parts[-1]}")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[parts[-1]] = value
    else:
        raise _bad(f"cannot add to /{'/'.join(parts)}")
    return doc


def _json_patch(doc: Any, ops: list[Any]) -> Obj:
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise _bad(f"invalid json patch operation: {op!r}")
        parts = _pointer(op["path"])
        name = op["op"]
        if name in ("add", "replace", "test") and "value" not in op:
            raise _bad(f"missing value for {name} operation")
        if name == "add":
            doc = _add(doc, parts, copy.deepcopy(op["value"]))
        elif name == "remove":
            _remove(doc, parts)
        elif name == "replace":
            _get(doc, parts)  # must exist
            if parts:
                _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(op["value"]))
        elif name == "test":
            if _get(doc, parts) != op["value"]:
                raise ApiError(422, "Invalid", f"test operation failed at {op['path']}")
        elif name in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = _remove(doc, source) if name == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, parts, value)
        else:
            raise _bad(f"unknown json patch operation {name!r}")
    if not isinstance(doc, dict):
        raise _bad("patch replaced the whole object")
    return doc
