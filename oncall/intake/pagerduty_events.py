"""What a verified PagerDuty V3 webhook event means for our incident.

A person's ``incident.acknowledged`` stops the escalation timers; ``incident.resolved``
closes the incident. The signature was checked, and the body kept, by the intake.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from oncall import lifecycle
from oncall.clients.notify import Notifier
from oncall.clients.prefect_api import PrefectApi
from oncall.errors import NotFoundError, OncallError, TransientError
from oncall.intake.pagerduty import PagerDutyWebhook, alerts_of
from oncall.models import Incident, IncidentStatus
from oncall.store import IncidentStore

log = logging.getLogger("oncall.pagerduty")


def handle_pagerduty_event(
    event: dict[str, Any],
    store: IncidentStore,
    prefect: PrefectApi,
    notifier: Notifier | None = None,
) -> str:
    """Apply one V3 webhook event to our incident; returns what was done (for the log).

    ``incident.acknowledged`` by a person stops the escalation timers;
    ``incident.resolved`` closes the incident. Both are idempotent (PagerDuty re-delivers).
    ``notifier`` tells the other channels (Slack), never PagerDuty back.
    """
    event_type = str(event.get("event_type", ""))
    if event_type not in ("incident.acknowledged", "incident.resolved"):
        return "ignored"
    incident = _our_incident(event, store)
    if incident is None:
        return "not ours"
    who = _person(event.get("agent"))
    if event_type == "incident.acknowledged":
        if who is None:
            # An acknowledge from an integration is not a person answering.
            return "acknowledged by an integration: ignored"
        # PagerDuty already knows: no acknowledge goes back to it; Slack is told.
        done = lifecycle.acknowledge(store, prefect, notifier, incident.id, who)
        log.info(
            "%s acknowledged in PagerDuty by %s; %d timer(s) cancelled",
            incident.id,
            who,
            done.cancelled,
        )
        return f"acknowledged by {who}; {done.cancelled} escalation timer(s) cancelled"
    note = f"resolved in PagerDuty by {who or 'PagerDuty'}"
    was_open = incident.status is not IncidentStatus.RESOLVED
    resolved = lifecycle.resolve(store, prefect, incident.id, note)
    if was_open and notifier is not None:
        notifier.resolved(resolved, note)
    return "resolved"


def _our_incident(event: dict[str, Any], store: IncidentStore) -> Incident | None:
    """Our incident: the dedup key we sent (``incident_key``), else the one the intake opened."""
    data = event.get("data")
    data = data if isinstance(data, dict) else {}
    candidates = [str(data.get("incident_key") or "")]
    try:
        # An incident that started in PagerDuty: the intake named it after its occurrence.
        as_trigger = {**event, "event_type": "incident.triggered"}
        candidates += [Incident.id_for(a) for a in alerts_of(PagerDutyWebhook(event=as_trigger))]
    except Exception:  # a partial event simply has no such incident
        pass
    for incident_id in filter(None, candidates):
        try:
            return store.get(incident_id)
        except NotFoundError:
            continue
    return None


def _person(agent: Any) -> str | None:
    """Who did it, if a person (a ``user_reference``); None for services and integrations."""
    if not isinstance(agent, dict) or agent.get("type") != "user_reference":
        return None
    name = str(agent.get("summary") or agent.get("id") or "someone")
    return f"{name} (PagerDuty {agent['id']})" if agent.get("id") else name


async def on_pagerduty_webhook(
    raw: bytes,
    store: IncidentStore,
    prefect: PrefectApi,
    timeout_s: float = 4.0,
    notifier: Callable[[], Notifier] | None = None,
) -> bool:
    """Apply a verified V3 webhook body; False if it could not be now (answer 5xx: redelivery).

    PagerDuty wants a 2xx within 5 s, so the work is bounded by ``timeout_s``; ``notifier``
    makes the channels to tell (built in the worker thread: it may open connections).
    """
    try:
        event = json.loads(raw)["event"]
        if not isinstance(event, dict):
            return True
    except (ValueError, KeyError, TypeError):
        return True  # the intake has already refused or dead-lettered a malformed body
    try:
        done = await asyncio.wait_for(
            asyncio.to_thread(
                lambda: handle_pagerduty_event(
                    event, store, prefect, notifier() if notifier else None
                )
            ),
            timeout_s,
        )
    except (TransientError, TimeoutError) as exc:
        log.warning("PagerDuty event %s not applied yet: %r", event.get("id"), exc)
        return False
    except OncallError as exc:
        log.error("PagerDuty event %s cannot be applied: %s", event.get("id"), exc)
        return True
    log.info("PagerDuty event %s (%s): %s", event.get("id"), event.get("event_type"), done)
    return True
