"""Settings of the intake service (prefix ``ONCALL_INTAKE_``); the token is ONCALL_INTAKE_TOKEN."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class IntakeSettings(BaseSettings):
    """How the intake listens, what it accepts, and how its dispatcher paces itself."""

    model_config = SettingsConfigDict(
        env_prefix="ONCALL_INTAKE_", extra="ignore", populate_by_name=True
    )

    host: str = Field(default="127.0.0.1", description="Interface `oncall serve` binds to.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port `oncall serve` binds to.")
    pagerduty_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "ONCALL_INTAKE_PAGERDUTY_SECRET", "ONCALL_PAGERDUTY_WEBHOOK_SECRET", "pagerduty_secret"
        ),
        description="Secret of the PagerDuty V3 webhook subscription (HMAC-SHA256 signatures).",
    )
    post_incident_deployment: str = Field(
        default="post-incident/default",
        pattern=r"^[^/]+/[^/]+$",
        description="Deployment started once an incident's alert resolved and its playbook ended.",
    )
    dead_letter_limit: int = Field(
        default=1000, ge=1, description="Rejected bodies kept for inspection (newest first)."
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Larger alert bodies are refused with 413 (an Alertmanager group of "
        "10,000 alerts is about 3.5 MB).",
    )
    max_signed_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Larger PagerDuty and Slack bodies are refused with 413 before their "
        "signature is computed (neither sends more than a few kilobytes).",
    )
    body_idle_timeout_s: float = Field(
        default=10.0, gt=0, description="An upload that sends nothing for this long gets 408."
    )
    body_timeout_s: float = Field(
        default=60.0, gt=0, description="An upload not complete after this long gets 408."
    )
    retry_after_s: int = Field(
        default=5, ge=1, description="Retry-After of the 503 sent while the store is unavailable."
    )
    poll_interval_s: float = Field(
        default=1.0, gt=0, description="How often the dispatcher looks for work it was not told of."
    )
    backoff_initial_s: float = Field(
        default=0.5, gt=0, description="First wait after the Prefect API failed to answer."
    )
    backoff_max_s: float = Field(
        default=5.0,
        gt=0,
        description="Longest wait between attempts while Prefect is down (so a burst is "
        "dispatched within seconds of its return).",
    )
    run_check_interval_s: float = Field(
        default=5.0, gt=0, description="How often the states of running playbooks are read."
    )
    missing_deployment_grace_s: float = Field(
        default=60.0,
        ge=0,
        description="An alert whose playbook deployment is still missing after this long goes "
        "to the default triage deployment instead.",
    )
    dispatch_behind_s: float = Field(
        default=30.0,
        gt=0,
        description="/readyz reports the dispatcher behind once a flow run is owed this long.",
    )
    prefect_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of one call to the Prefect API."
    )
    dispatch_batch: int = Field(
        default=50, ge=1, description="Inbox entries claimed per dispatcher transaction."
    )
    writers: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Committer threads (PostgreSQL only; SQLite has one writer): more overlap "
        "the round trips of a remote database. Unset: 1.",
    )
