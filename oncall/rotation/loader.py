"""Load a rotation file; a bad file gets an error naming its line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from oncall.errors import PermanentError
from oncall.rotation.model import Rotation, RotationReferenceError

Loc = tuple[str | int, ...]


class RotationFileError(PermanentError):
    """The rotation file cannot be used: ``path:line: field: problem``."""

    def __init__(self, path: str, line: int | None, field: str, problem: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")
        self.path, self.line, self.field, self.problem = path, line, field, problem


def load_rotation(path: Path | str) -> Rotation:
    """Read and validate a rotation file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RotationFileError(str(path), None, "", f"cannot read: {exc.strerror}") from exc
    return parse_rotation(text, str(path))


def parse_rotation(text: str, source: str = "<rotation>") -> Rotation:
    """Validate rotation YAML text; ``source`` names it in errors."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise RotationFileError(source, line, "", f"not valid YAML: {exc.problem}") from exc
    if not isinstance(data, dict):
        raise RotationFileError(source, 1, "", "expected a mapping at the top level")
    try:
        return Rotation.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc: Loc = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        message = error["msg"].removeprefix("Value error, ")
        if isinstance(cause, RotationReferenceError):
            loc, message = loc + cause.loc, str(cause)
        more = len(exc.errors()) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        field = ".".join(str(part) for part in loc)
        raise RotationFileError(source, line_of(root, loc), field, message) from None


def line_of(root: yaml.Node | None, loc: Loc) -> int:
    """1-based line of the deepest YAML node on the path ``loc`` (pydantic's error location)."""
    node: Any = root
    if node is None:
        return 1
    line = int(node.start_mark.line) + 1
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
        line = int(node.start_mark.line) + 1
    return line


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
        for key, value in pairs:
            if str(key.value) == str(part):
                # A missing or null value has no useful position of its own: use the key's.
                return key if value.tag.endswith(":null") else value
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        items: list[yaml.Node] = node.value
        return items[part] if 0 <= part < len(items) else None
    return None
