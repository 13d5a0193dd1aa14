"""The playbook router: alert name and labels -> the Prefect deployment that works it."""

from __future__ import annotations

import re
from functools import cached_property
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from oncall.errors import PermanentError
from oncall.models import Alert


class Route(BaseModel):
    """One rule: every label in ``match`` equal, every pattern in ``match_re`` full-matching."""

    deployment: str = Field(pattern=r"^[^/]+/[^/]+$", description="'<flow>/<deployment>'")
    match: dict[str, str] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)

    @field_validator("match_re")
    @classmethod
    def _compiles(cls, patterns: dict[str, str]) -> dict[str, str]:
        for label, pattern in patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"match_re.{label}: bad regular expression: {exc}") from exc
        return patterns

    @cached_property
    def _compiled(self) -> dict[str, re.Pattern[str]]:
        return {label: re.compile(p) for label, p in self.match_re.items()}

    def matches(self, labels: dict[str, str]) -> bool:
        """True when the alert's labels satisfy this route."""
        if any(labels.get(k) != v for k, v in self.match.items()):
            return False
        return all(
            p.fullmatch(labels.get(label, "")) is not None for label, p in self._compiled.items()
        )


class PlaybookRouter(BaseModel):
    """Routes in order; the first match wins; no match goes to the default triage flow."""

    default: str = Field(default="default-triage/default", pattern=r"^[^/]+/[^/]+$")
    routes: list[Route] = Field(default_factory=list)

    @classmethod
    def from_file(cls, path: Path | None = None) -> PlaybookRouter:
        """Load a routes file (YAML); the packaged `routes.yaml` when no path is given."""
        if path is None:
            text = resources.files("oncall").joinpath("routes.yaml").read_text()
            where = "oncall/routes.yaml"
        else:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise PermanentError(f"cannot read routes file {path}: {exc}") from exc
            where = str(path)
        try:
            return cls.model_validate(yaml.safe_load(text) or {})
        except (yaml.YAMLError, ValidationError) as exc:
            raise PermanentError(f"invalid routes file {where}: {exc}") from exc

    def route(self, alert: Alert) -> str:
        """The deployment ('<flow>/<deployment>') that works ``alert``."""
        labels = {"alertname": alert.name, **alert.labels}
        return next((r.deployment for r in self.routes if r.matches(labels)), self.default)
