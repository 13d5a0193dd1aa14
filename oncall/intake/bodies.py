"""Parsing request bodies into models, with errors that name the offending field."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from oncall.errors import PermanentError

M = TypeVar("M", bound=BaseModel)


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


def load_json(raw: bytes) -> Any:
    """The JSON document of a body; BodyError(400) naming where it breaks."""
    if not raw.strip():
        raise BodyError(400, "empty_body", "body: empty; a JSON object is required")
    try:
        return json.loads(raw.decode("utf-8"))  # JSON is UTF-8 (RFC 8259): no BOM sniffing
    except UnicodeDecodeError as exc:
        raise BodyError(400, "invalid_json", f"body: not UTF-8 ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise BodyError(
            400,
            "invalid_json",
            f"body: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
        ) from exc


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
