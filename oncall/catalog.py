"""The service catalog: which team owns what an alert is about, and what may be done to it.

`services.yaml` (``ONCALL_SERVICES_FILE``) lists services: how alerts map to each (the
namespaces its workloads live in, alert labels), its workloads, who is on call for it, its
own dependencies, thresholds and guard policy. A playbook changes a subject only when a
catalog entry owns it, and only the subject or a workload that entry lists; a subject in no
entry gets a read-only diagnosis and an escalation. Secrets are references (an environment
variable or a Kubernetes Secret), never inline values.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from oncall.errors import PermanentError
from oncall.guards import GuardPolicy
from oncall.models import PagePolicy, Severity
from oncall.playbooks import EscalationStep
from oncall.subjects import WORKLOAD_KINDS, Subject, SubjectKind

EXAMPLE_SERVICES = Path(__file__).resolve().parents[1] / "examples" / "services.yaml"


class SecretRef(BaseModel):
    """Where a secret value lives: an environment variable, or a key of a Kubernetes Secret."""

    model_config = ConfigDict(extra="forbid")

    env: str | None = Field(default=None, description="Environment variable holding it.")
    secret: str | None = Field(default=None, description="Kubernetes Secret name.")
    key: str | None = Field(default=None, description="The key in that Secret.")
    namespace: str | None = Field(
        default=None, description="The Secret's namespace; default: the service's first."
    )

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.secret is None):
            raise ValueError("give exactly one of `env` or `secret` (with `key`)")
        if self.secret is not None and not self.key:
            raise ValueError(f"secret {self.secret!r}: `key` is required")
        return self

    def describe(self) -> str:
        """Where it is, never what it is."""
        if self.env:
            return f"env {self.env}"
        return f"secret {self.namespace + '/' if self.namespace else ''}{self.secret}[{self.key}]"

    def from_env(self) -> str | None:
        """The value from the environment (None for a Secret reference or an unset variable)."""
        return os.environ.get(self.env) if self.env else None


class Dependency(BaseModel):
    """One dependency of a service the playbooks probe."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: str = Field(pattern="^(postgres|redis|http)$", description="postgres, redis or http.")
    url: str | None = Field(default=None, description="HTTP health URL (no secret in it).")
    dsn: SecretRef | None = Field(default=None, description="PostgreSQL DSN / Redis URL.")

    @model_validator(mode="after")
    def _has_address(self) -> Dependency:
        if self.kind == "http" and not self.url:
            raise ValueError(f"{self.name}: an http dependency needs `url`")
        if self.kind != "http" and self.dsn is None:
            raise ValueError(f"{self.name}: a {self.kind} dependency needs `dsn` (a reference)")
        return self


class AlertMatch(BaseModel):
    """Which alerts are this service's: the subject's namespace, and alert labels."""

    model_config = ConfigDict(extra="forbid")

    namespaces: list[str] = Field(default_factory=list, description="Subject namespaces.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Alert labels that must all be equal."
    )


class ServiceEntry(BaseModel):
    """One service of the catalog."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    team: str = ""
    rotation_file: Path | None = Field(
        default=None,
        description="Its on-call rotation (YAML), relative to the catalog file; default: "
        "ONCALL_ROTATION_FILE.",
    )
    slack_channel: str = ""
    pagerduty_routing_key: SecretRef | None = None
    match: AlertMatch = Field(default_factory=AlertMatch)
    workloads: list[str] = Field(
        default_factory=list,
        description="`kind/name` (deployment, statefulset, daemonset) in the first namespace, "
        "or `namespace/kind/name`: what a playbook may change.",
    )
    known_good: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="ConfigMap name -> last known-good values of its keys (a crash loop's "
        "fix when no earlier revision explains it).",
    )
    dependencies: list[Dependency] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=dict)
    guard: GuardPolicy | None = Field(
        default=None, description="Its guard policy; allowed_namespaces default to match."
    )
    escalation: list[EscalationStep] | None = None
    severity: dict[str, Severity] = Field(
        default_factory=dict, description="Alert `severity` label value -> P1..P4."
    )
    page_policy: dict[Severity, PagePolicy] = Field(
        default_factory=dict,
        description="Severity -> when PagerDuty pages (immediately, when_needed, never); "
        "severities left out follow ONCALL_PAGE_POLICY.",
    )

    @field_validator("workloads")
    @classmethod
    def _workload_refs(cls, refs: list[str]) -> list[str]:
        for ref in refs:
            parts = ref.split("/")
            if len(parts) not in (2, 3) or parts[-2] not in WORKLOAD_KINDS or not parts[-1]:
                kinds = ", ".join(sorted(WORKLOAD_KINDS))
                raise ValueError(
                    f"{ref!r}: expected [namespace/]kind/name with kind one of {kinds}"
                )
        return refs

    @model_validator(mode="after")
    def _workloads_need_a_namespace(self) -> ServiceEntry:
        if any(len(r.split("/")) == 2 for r in self.workloads) and not self.match.namespaces:
            raise ValueError("workloads without a namespace need match.namespaces")
        return self

    def workload_refs(self) -> set[str]:
        """`namespace/kind/name` of every workload it lists."""
        refs = set()
        for ref in self.workloads:
            parts = ref.split("/")
            refs.add(ref if len(parts) == 3 else f"{self.match.namespaces[0]}/{ref}")
        return refs

    def policy(self) -> GuardPolicy:
        """Its guard policy, limited to its own namespaces unless it says otherwise."""
        policy = self.guard or GuardPolicy()
        if "allowed_namespaces" not in policy.model_fields_set:
            policy = policy.model_copy(update={"allowed_namespaces": list(self.match.namespaces)})
        return policy

    def owns(self, subject: Subject, labels: dict[str, str]) -> bool:
        """True when ``subject`` (an alert with ``labels``) is this service's."""
        if any(labels.get(k) != v for k, v in self.match.labels.items()):
            return False
        if subject.ref in self.workload_refs():
            return True
        return bool(self.match.namespaces) and subject.namespace in self.match.namespaces

    def may_change(self, subject: Subject) -> set[str]:
        """`namespace/kind/name` of what a playbook may change for ``subject``."""
        allowed = self.workload_refs()
        if subject.kind in WORKLOAD_KINDS:
            allowed.add(subject.ref)
        return allowed


class ServiceCatalog(BaseModel):
    """Every service; the first whose match fits an alert's subject owns it."""

    model_config = ConfigDict(extra="forbid")

    services: list[ServiceEntry] = Field(default_factory=list)

    @field_validator("services")
    @classmethod
    def _unique(cls, services: list[ServiceEntry]) -> list[ServiceEntry]:
        seen: set[str] = set()
        for entry in services:
            if entry.name in seen:
                raise ValueError(f"service {entry.name!r} is listed twice")
            seen.add(entry.name)
        return services

    @classmethod
    def from_file(cls, path: Path) -> ServiceCatalog:
        """Load and validate a catalog; the error names the file, the entry and the field."""
        try:
            raw: Any = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise PermanentError(f"cannot read services file {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise PermanentError(f"invalid services file {path}: {exc}") from exc
        try:
            catalog = cls.model_validate(raw)
        except ValidationError as exc:
            raise PermanentError(f"invalid services file {path}:\n{_explain(exc, raw)}") from exc
        # A rotation file named relative to the catalog is found next to it.
        for entry in catalog.services:
            if entry.rotation_file is not None and not entry.rotation_file.is_absolute():
                entry.rotation_file = Path(path).resolve().parent / entry.rotation_file
        return catalog

    def __iter__(self) -> Iterator[ServiceEntry]:  # type: ignore[override]
        return iter(self.services)

    def get(self, name: str) -> ServiceEntry:
        """The entry called ``name``."""
        for entry in self.services:
            if entry.name == name:
                return entry
        raise PermanentError(f"no service {name!r} in the catalog")

    def owner_of(self, subject: Subject, labels: dict[str, str]) -> ServiceEntry | None:
        """The entry that owns ``subject``: one listing it as a workload first, else the
        first whose namespaces and labels match; None when no entry does."""
        listed = [e for e in self.services if subject.ref in e.workload_refs()]
        candidates = listed or self.services
        return next((e for e in candidates if e.owns(subject, labels)), None)


def _explain(exc: ValidationError, raw: Any) -> str:
    """Each error as `services[i] (name).field: message`."""
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ".".join(str(p) for p in loc)
        if len(loc) >= 2 and loc[0] == "services" and isinstance(loc[1], int):
            try:
                name = raw["services"][loc[1]].get("name", "?")
            except (KeyError, IndexError, TypeError, AttributeError):
                name = "?"
            rest = ".".join(str(p) for p in loc[2:]) or "(entry)"
            where = f"services[{loc[1]}] ({name}): {rest}"
        # The value is echoed only for a choice (a mistyped action kind): never for a field
        # that could hold a secret pasted inline.
        given = error.get("input")
        got = f" (got {given!r})" if error["type"] in ("enum", "literal_error") else ""
        lines.append(f"  {where}: {error['msg']}{got}")
    return "\n".join(lines)


def is_sandbox(kubeconfig: Path) -> bool:
    """True when ``kubeconfig`` points at the project's local sandbox cluster."""
    try:
        config: Any = yaml.safe_load(Path(kubeconfig).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    if not isinstance(config, dict) or config.get("current-context") != "sandbox":
        return False
    servers = [
        str((c.get("cluster") or {}).get("server", ""))
        for c in config.get("clusters") or []
        if isinstance(c, dict) and c.get("name") == "sandbox"
    ]
    return any(s.startswith(("http://127.0.0.1:", "https://127.0.0.1:")) for s in servers)


def load_catalog(path: Path | None, sandbox: bool) -> ServiceCatalog:
    """The configured catalog; against the sandbox without one, the two seeds' entries;
    against a real cluster without one, an empty catalog (every subject read-only)."""
    if path is not None:
        return ServiceCatalog.from_file(path)
    return ServiceCatalog.from_file(EXAMPLE_SERVICES) if sandbox else ServiceCatalog()


__all__ = [
    "AlertMatch",
    "Dependency",
    "SecretRef",
    "ServiceCatalog",
    "ServiceEntry",
    "SubjectKind",
    "is_sandbox",
    "load_catalog",
]
