"""Playbook configurations: the data half of "a playbook is data plus one flow"."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HighApiErrorRateConfig(BaseModel):
    """GremlinsAI "Critical Alert: HighApiErrorRate": targets, thresholds and guards."""

    namespace: str = Field(default="gremlinsai", description="Namespace of the backend.")
    deployments: list[str] = Field(
        default=["gremlinsai-backend-blue", "gremlinsai-backend-green"],
        description="Deployments behind the API whose recent rollouts are suspects.",
    )
    service_url: str = Field(
        default="http://gremlinsai-service.gremlinsai:8000",
        description="Base URL of the API service (its /health and /metrics).",
    )
    dependency_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Extra HTTP health endpoints to probe (name -> URL), e.g. Weaviate, Ollama.",
    )
    error_rate_threshold: float = Field(
        default=0.05, gt=0, lt=1, description="5xx share above which the API is unhealthy."
    )
    change_window_minutes: float = Field(
        default=60, gt=0, description="A rollout this long before the alert is a suspect."
    )
    require_approval: bool = Field(default=True, description="Pause for a human before rollback.")
    approval_timeout_s: int = Field(
        default=900, ge=1, description="How long to wait for the approval before escalating."
    )
    approval_poll_s: int = Field(default=2, ge=1, description="How often the pause checks in.")
    rollout_timeout_s: float = Field(
        default=300, gt=0, description="How long the rollback's rollout may take."
    )
    verify_checks: int = Field(
        default=3, ge=1, description="Consecutive healthy windows that count as resolved."
    )
    verify_window_s: float = Field(default=30, gt=0, description="Length of one check window.")
    verify_timeout_s: float = Field(
        default=600, gt=0, description="Give up verifying (and escalate) after this long."
    )
    allowed_namespaces: list[str] = Field(
        default=["gremlinsai"], description="Namespaces this playbook may change."
    )
    dry_run: bool = Field(default=False, description="Plan and report, change nothing.")
