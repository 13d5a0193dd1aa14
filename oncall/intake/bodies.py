"""Parsing request bodies into models, with errors that name the offending field."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from oncall.errors import PermanentError

M = TypeVar("M", bound=BaseModel)

# Alertmanager nests four levels deep; anything past this is an attack, not an alert.
MAX_DEPTH = 64
# A JSON number longer than this is no count, port or timestamp anybody sends.
MAX_NUMBER_CHARS = 40
_STRINGS = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class BodyError(PermanentError):
    """A body that can never be accepted: 400 (not JSON) or 422 (wrong schema)."""

    def __init__(self, status_code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status_code, self.reason, self.message = status_code, reason, message


def describe(exc: ValidationError, prefix: str = "") -> str:
    """`field.path: problem` for each error (at most five), e.g. `alerts.0.fingerprint: ...`."""
    parts = []
    for error in exc.errors()[:5]:
        head = prefix.split(".") if prefix else []
        path = ".".join(str(p) for p in [*head, *error["loc"]])
        parts.append(f"{path or 'body'}: {error['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """How deep arrays and objects nest (strings skipped), counted up to ``limit + 1``."""
    depth = peak = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > peak:
                peak = depth
                if peak > limit:
                    return peak
        else:
            depth -= 1
    return peak


def _number(text: str) -> None:
    if len(text) > MAX_NUMBER_CHARS:
        raise BodyError(
            400,
            "invalid_json",
            f"body: a number of {len(text)} characters; at most {MAX_NUMBER_CHARS} accepted",
        )


def _int(text: str) -> int:
    _number(text)
    return int(text)


def _float(text: str) -> float:
    _number(text)
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BodyError(400, "invalid_json", f"body: the number {text} overflows a double")
    return value


def _constant(name: str) -> Any:
    raise BodyError(400, "invalid_json", f"body: {name} is not JSON (RFC 8259 has no {name})")


def load_json(raw: bytes) -> Any:
    """The JSON document of a body; BodyError(400) naming where it breaks.

    Bounded before it is parsed: nesting deeper than MAX_DEPTH and numbers longer than
    MAX_NUMBER_CHARS are refused, and NaN/Infinity are not JSON.
    """
    if not raw.strip():
        raise BodyError(400, "empty_body", "body: empty; a JSON object is required")
    try:
        text = raw.decode("utf-8")  # JSON is UTF-8 (RFC 8259): no BOM sniffing
    except UnicodeDecodeError as exc:
        raise BodyError(400, "invalid_json", f"body: not UTF-8 ({exc.reason})") from exc
    if nesting_depth(text) > MAX_DEPTH:
        raise BodyError(
            400, "too_deep", f"body: JSON nested deeper than {MAX_DEPTH} levels is refused"
        )
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError as exc:  # unreachable past the depth check; kept as a backstop
        raise BodyError(400, "too_deep", "body: JSON nested too deep") from exc
    except json.JSONDecodeError as exc:
        raise BodyError(
            400,
            "invalid_json",
            f"body: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
        ) from exc


def printable(text: str) -> str:
    """Text any store keeps: invalid UTF-8 replaced, NUL and lone surrogates escaped."""
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text.replace("\x00", "\\u0000")


def parse(model: type[M], data: Any, prefix: str = "") -> M:
    """Validate a decoded document; BodyError(422) naming each wrong field."""
    if not isinstance(data, dict):
        raise BodyError(
            422,
            "invalid_schema",
            f"{prefix or 'body'}: expected a JSON object, got {type(data).__name__}",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BodyError(422, "invalid_schema", describe(exc, prefix)) from exc
