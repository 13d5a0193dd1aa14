"""Settings: built once from the environment (prefix ``ONCALL_``) and passed down."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from oncall.models import DEFAULT_PAGE_POLICY, PagePolicy, Severity


def secret_file(path: Path, make: Callable[[], str]) -> str:
    """The secret kept at ``path``, written once by whoever comes first (mode 0600)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # written meanwhile by another process
        else:
            with os.fdopen(fd, "w") as out:
                out.write(make())
    return path.read_text().strip()


def _default_home() -> Path:
    return Path.home() / ".oncall"


class OncallSettings(BaseSettings):
    """Where the product keeps its state and which systems it talks to."""

    model_config = SettingsConfigDict(env_prefix="ONCALL_", extra="ignore")

    home: Path = Field(
        default_factory=_default_home,
        description="State directory: SQLite stores, sandbox kubeconfig, drill Prefect home.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the incident store; default: SQLite file under home.",
    )
    kubeconfig: Path | None = Field(
        default=None,
        description="Kubeconfig of the cluster to remediate; default: the sandbox's under home.",
    )
    postgres_dsn: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/test",
        description="PostgreSQL the playbooks probe as a dependency (libpq URL).",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis the playbooks probe as a dependency.",
    )
    probe_timeout_s: float = Field(
        default=3.0, gt=0, description="Timeout of one dependency probe, in seconds."
    )
    prefect_port: int = Field(
        default=4200,
        ge=1,
        le=65535,
        description="Port of the local Prefect server `oncall` starts when none is configured.",
    )
    routes_file: Path | None = Field(
        default=None,
        description="Playbook routes (YAML); default: the packaged oncall/routes.yaml.",
    )
    rotation_file: Path | None = Field(
        default=None,
        description="On-call rotation (YAML); default: the shipped examples/rotation.yaml.",
    )
    services_file: Path | None = Field(
        default=None,
        description="The service catalog (YAML); default: against the sandbox the shipped "
        "examples/services.yaml, against a real cluster none (every subject read-only).",
    )
    sandbox_time_scale: float = Field(
        default=0.02,
        gt=0,
        le=1,
        description="Sandbox clock compression for drills: 0.02 turns 2 minutes into 2.4 s.",
    )
    intake_token: SecretStr | None = Field(
        default=None, description="Bearer token the intake service requires."
    )
    page_policy: dict[Severity, PagePolicy] = Field(
        default_factory=lambda: dict(DEFAULT_PAGE_POLICY),
        description="Severity -> when PagerDuty pages a person (immediately, when_needed, "
        'never), as JSON: {"P2": "immediately"}; severities left out keep the default '
        "(P1 immediately, P2-P3 when_needed, P4 never). A catalog entry may override it.",
    )

    @field_validator("page_policy")
    @classmethod
    def _complete_page_policy(cls, given: dict[Severity, PagePolicy]) -> dict[Severity, PagePolicy]:
        return {**DEFAULT_PAGE_POLICY, **given}

    @property
    def store_url(self) -> str:
        """The incident store's SQLAlchemy URL."""
        return self.database_url or f"sqlite:///{self.home / 'oncall.db'}"

    @property
    def sandbox_kubeconfig(self) -> Path:
        """Where the sandbox writes its kubeconfig."""
        return self.home / "sandbox" / "kubeconfig"

    @property
    def prefect_home(self) -> Path:
        """PREFECT_HOME of the local Prefect server the CLI starts."""
        return self.home / "prefect"
