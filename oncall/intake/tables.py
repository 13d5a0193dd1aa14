"""The intake's tables, next to the incident store's: occurrences, dispatches, dead letters."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

intake_metadata = MetaData()

# Every alert occurrence (fingerprint@startsAt) ever accepted, committed before the 2xx.
occurrences = Table(
    "intake_occurrences",
    intake_metadata,
    Column("occurrence_key", String(200), primary_key=True),
    Column("incident_id", String(40), nullable=True, index=True),
    Column("role", String(12), nullable=False),  # opened | attached | unlinked
    Column("source", String(20), nullable=False),
    Column("alert_name", String(200), nullable=False),
    Column("service", String(200), nullable=False),
    Column("status", String(10), nullable=False),  # firing | resolved
    Column("alert", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("times_seen", Integer, nullable=False, default=1),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
)

# Incidents the intake opened: which service, whether still open to attach alerts to.
tracked_incidents = Table(
    "intake_incidents",
    intake_metadata,
    Column("incident_id", String(40), primary_key=True),
    Column("service", String(200), nullable=False, index=True),
    Column("deployment", String(400), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("alert_resolved_at", DateTime(timezone=True), nullable=True),
    Column("flow_run_id", String(40), nullable=True),
    Column("run_state", String(40), nullable=True),
    Column("run_finished_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True, index=True),
    Column("post_incident_key", String(250), nullable=True),
)

# Flow runs to create: the durable half of "no alert lost"; `key` is the idempotency key.
dispatches = Table(
    "intake_dispatches",
    intake_metadata,
    Column("key", String(250), primary_key=True),
    Column("kind", String(20), nullable=False),  # playbook | post-incident
    Column("incident_id", String(40), nullable=False, index=True),
    Column("deployment", String(400), nullable=False),
    Column("parameters", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("dispatched_at", DateTime(timezone=True), nullable=True, index=True),
    Column("flow_run_id", String(40), nullable=True),
)

# Bodies refused as malformed, with the reason; pruned to the newest N.
dead_letters = Table(
    "intake_dead_letters",
    intake_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("source", String(20), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("content_type", String(200), nullable=False, default=""),
    Column("body", Text, nullable=False),
)

# Webhook deliveries already handled (PagerDuty's event.id), so a retried delivery is a no-op.
seen_events = Table(
    "intake_seen_events",
    intake_metadata,
    Column("event_id", String(200), primary_key=True),
    Column("source", String(20), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# One row rewritten by /readyz: proves the store takes writes, not only reads.
heartbeat = Table(
    "intake_heartbeat",
    intake_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
