"""Label and field selectors, parsed the way the API server reads query strings."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from oncall_sandbox.store import ApiError, Obj

Predicate = Callable[[Obj], bool]

_SET_EXPR = re.compile(r"^\s*(!?)\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_EXPR = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")
_EXISTS_EXPR = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return [t for t in terms if t.strip()]


def _label_term(term: str) -> Callable[[dict[str, str]], bool]:
    if m := _SET_EXPR.match(term):
        key, op = m.group(2), m.group(3)
        values = {v.strip() for v in m.group(4).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EQ_EXPR.match(term):
        key, op, value = m.group(1), m.group(2), m.group(3)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS_EXPR.match(term):
        negate, key = m.group(1) == "!", m.group(2)
        return lambda labels: (key in labels) != negate
    raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")


def label_selector(selector: str | None) -> Predicate:
    """A predicate on an object's metadata.labels from a `labelSelector` string."""
    if not selector:
        return lambda _obj: True
    checks = [_label_term(term) for term in _split_terms(selector)]

    def match(obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return match


def _field_value(obj: Obj, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    return str(node).lower() if isinstance(node, bool) else str(node)


def field_selector(selector: str | None) -> Predicate:
    """A predicate from a `fieldSelector` string (dotted paths into the object)."""
    if not selector:
        return lambda _obj: True
    checks: list[tuple[str, bool, str]] = []
    for term in _split_terms(selector):
        m = _EQ_EXPR.match(term)
        if m is None:
            raise ApiError(400, "BadRequest", f"invalid field selector: {term!r}")
        checks.append((m.group(1), m.group(2) == "!=", m.group(3)))

    def match(obj: Obj) -> bool:
        return all((_field_value(obj, path) == value) != negate for path, negate, value in checks)

    return match


def matches_labels(selector: dict[str, str], labels: dict[str, str] | None) -> bool:
    """True when every key/value of a map selector is in `labels` (empty matches nothing)."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def selector_string(selector: dict[str, str]) -> str:
    """A `matchLabels` map rendered as a label selector string."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
