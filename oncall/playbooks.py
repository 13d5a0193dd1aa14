"""Playbook configurations: the data half of "a playbook is data plus one flow"."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from oncall.guards import GuardPolicy


class EscalationStep(BaseModel):
    """One rung of the escalation ladder: who is paged how long after the alert."""

    after_minutes: float = Field(gt=0, description="Minutes after the incident opened.")
    role: str = Field(description="Who is paged: a rotation role or an escalation contact (rotation file).")


# GremlinsAI seed, "Escalation Timeline": 15 min secondary, 30 min manager, 1 h VP.
SEED_LADDER = [
    EscalationStep(after_minutes=15, role="secondary"),
    EscalationStep(after_minutes=30, role="escalation_manager"),
    EscalationStep(after_minutes=60, role="vp_engineering"),
]


class PlaybookConfig(BaseModel):
    """What every playbook has: guards, the approval wait and the verification windows."""

    namespace: str = Field(description="Namespace of the workload the playbook works on.")
    guard: GuardPolicy = Field(default_factory=GuardPolicy, description="Limits on actions.")
    approval_timeout_s: int = Field(
        default=900, ge=1, description="How long to wait for an approval before escalating."
    )
    approval_poll_s: int = Field(default=2, ge=1, description="How often the pause checks in.")
    rollout_timeout_s: float = Field(
        default=300, gt=0, description="How long a mitigation's rollout may take."
    )
    verify_checks: int = Field(
        default=3, ge=1, description="Consecutive healthy windows that count as resolved."
    )
    verify_window_s: float = Field(default=30, gt=0, description="Length of one check window.")
    verify_timeout_s: float = Field(
        default=600, gt=0, description="Give up verifying (and escalate) after this long."
    )
    dependency_urls: dict[str, str] = Field(
        default_factory=dict,
        description="HTTP health endpoints of dependencies to probe (name -> URL).",
    )
    escalation: list[EscalationStep] = Field(
        default_factory=lambda: list(SEED_LADDER),
        description="Escalation timers, started when the incident opens.",
    )
    escalation_time_scale: float = Field(
        default=1.0, gt=0, le=1, description="Compress the ladder's minutes (drills only)."
    )


class HighApiErrorRateConfig(PlaybookConfig):
    """GremlinsAI "Critical Alert: HighApiErrorRate": targets, thresholds and guards."""

    namespace: str = Field(default="gremlinsai", description="Namespace of the backend.")
    guard: GuardPolicy = Field(
        default_factory=lambda: GuardPolicy(allowed_namespaces=["gremlinsai"])
    )
    deployments: list[str] = Field(
        default=["gremlinsai-backend-blue", "gremlinsai-backend-green"],
        description="Deployments behind the API whose recent rollouts are suspects.",
    )
    service: str = Field(default="gremlinsai-service", description="The API's Service.")
    service_url: str = Field(
        default="http://gremlinsai-service.gremlinsai:8000",
        description="Base URL of the API service (its /health and /metrics).",
    )
    error_rate_threshold: float = Field(
        default=0.05, gt=0, lt=1, description="5xx share above which the API is unhealthy."
    )
    change_window_minutes: float = Field(
        default=60, gt=0, description="A rollout this long before the alert is a suspect."
    )
    mitigation: Literal["rollback", "switch"] = Field(
        default="rollback",
        description="Seed step 7's alternatives: roll the bad deployment back, or switch the "
        "Service to the other colour.",
    )
