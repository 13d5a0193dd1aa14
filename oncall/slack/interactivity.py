"""Slack interactivity: Approve / Reject clicks resume the paused playbook run.

The endpoint verifies Slack's signature (``SignatureVerifier``: bad signatures and
timestamps older than 5 minutes get 401) and answers at once; the decision is taken in
a background thread: is the user an approver, is this request still open, has nobody
claimed it (a row per request makes a double click harmless), then Prefect's resume with
the same input as the UI form, and the message edited to show who decided and when.
Every refusal is an ephemeral answer through the click's ``response_url``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Request, Response
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from oncall.approval import approval_key
from oncall.clients.prefect_api import PrefectApi
from oncall.clients.slack import SlackSettings
from oncall.errors import NotFoundError, PermanentError, TransientError
from oncall.intake.bodies import BodyError, load_json
from oncall.models import utcnow
from oncall.settings import OncallSettings
from oncall.slack.approvers import Approvers
from oncall.slack.blocks import ApprovalButton, mentions
from oncall.slack.ledger import SlackLedger
from oncall.slack.notifier import SlackNotifier, bounded_client
from oncall.store import IncidentStore

log = logging.getLogger("oncall.slack.interactivity")

PATH = "/v1/slack/interactivity"


@dataclass(frozen=True)
class Click:
    """One click on one of our buttons."""

    button: ApprovalButton
    user_id: str
    user_name: str
    response_url: str

    @property
    def approver(self) -> str:
        """The approver as recorded on the incident: ``name (U...)``."""
        return f"{self.user_name} ({self.user_id})"


def parse_click(body: bytes) -> Click | None:
    """Our button's click out of a ``block_actions`` form body; None for anything else.

    ValueError (a 400) for a body that is not what Slack sends: no ``payload`` field, a
    payload that is not a JSON object, a user or an action of the wrong shape.
    """
    form = parse_qs(body.decode("utf-8"))
    if "payload" not in form:
        raise ValueError("no payload field")
    payload: Any = load_json(form["payload"][0].encode("utf-8"))
    if not isinstance(payload, dict):
        raise ValueError("payload is not a JSON object")
    if payload.get("type") != "block_actions":
        return None
    user, actions = payload.get("user"), payload.get("actions") or []
    if not isinstance(user, dict) or not isinstance(user.get("id"), str) or not user["id"]:
        raise ValueError("payload.user.id is missing")
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise ValueError("payload.actions is not a list of objects")
    for action in actions:
        try:
            button = ApprovalButton.parse(str(action.get("action_id")), str(action.get("value")))
        except (ValueError, KeyError, TypeError):
            continue
        name = str(user.get("username") or user.get("name") or user["id"])
        return Click(button, str(user["id"]), name, str(payload.get("response_url") or ""))
    return None


class SlackInteractivity:
    """The interactivity endpoint and the decisions it takes after answering."""

    def __init__(
        self,
        settings: SlackSettings,
        store: Callable[[], IncidentStore],
        prefect: PrefectApi,
        workers: int = 4,
        read_body: Callable[[Request], Awaitable[bytes]] | None = None,
        key: bytes | None = None,
    ) -> None:
        self.settings, self._store, self.prefect = settings, store, prefect
        self.key = key if key is not None else approval_key(OncallSettings())
        self.read_body = read_body or _whole_body
        self.slack = bounded_client(settings)
        self.approvers = Approvers(self.slack, settings.approvers)
        secret = settings.signing_secret.get_secret_value() if settings.signing_secret else ""
        self.verifier = SignatureVerifier(secret) if secret else None
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="slack-click")
        self.pending: list[Future[None]] = []

    @property
    def router(self) -> APIRouter:
        """``POST /v1/slack/interactivity`` (Slack app: Interactivity & Shortcuts, Request URL)."""
        router = APIRouter()

        @router.post(PATH, summary="Slack interactivity (block_actions); signed by Slack.")
        async def interactivity(request: Request) -> Response:
            kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if kind != "application/x-www-form-urlencoded":
                return Response(
                    status_code=415,
                    content="Slack sends application/x-www-form-urlencoded",
                    media_type="text/plain",
                )
            # Capped before the signature is computed: an unsigned body costs no memory.
            body = await self.read_body(request)
            status, text = self.receive(body, request.headers)
            return Response(status_code=status, content=text, media_type="text/plain")

        return router

    def receive(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
        """Verify and parse; the decision runs after the answer (Slack wants one in 3 s)."""
        if self.verifier is None:
            return 503, "Slack interactivity not configured (ONCALL_SLACK_SIGNING_SECRET)"
        try:
            valid = self.verifier.is_valid_request(body, dict(headers))
        except ValueError:  # a timestamp that is not a number
            valid = False
        if not valid:
            log.warning("refused a Slack request: bad signature or stale timestamp")
            return 401, "invalid signature"
        try:
            click = parse_click(body)
        except (BodyError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("refused a signed Slack request: %s", exc)
            return 400, f"malformed payload: {exc}"
        if click is not None:
            self.pending = [f for f in self.pending if not f.done()]
            self.pending.append(self.executor.submit(self.decide, click))
        return 200, ""

    def drain(self, timeout_s: float = 30) -> None:
        """Wait for the decisions under way (tests, shutdown)."""
        wait(list(self.pending), timeout=timeout_s)

    # -- after the answer ----------------------------------------------------------------
    def decide(self, click: Click) -> None:
        """Check, claim and resume; anything refused is answered ephemerally."""
        try:
            refusal = self._decide(click)
        except Exception as exc:  # the clicker hears about it, the log keeps it
            log.exception("Slack click on %s failed", click.button.request)
            refusal = f"Could not take the decision: {exc}"
        if refusal:
            self.answer(click, refusal)

    def _decide(self, click: Click) -> str | None:
        button = click.button
        if not self.approvers.may_approve(click.user_id):
            log.warning("%s may not approve (%s)", click.approver, button.request)
            return "You are not allowed to approve mitigations (ONCALL_SLACK_APPROVERS)."
        store = self._store()
        notifier = SlackNotifier(
            self.slack, self.settings.channel, SlackLedger(store.engine), self.prefect.ui_url
        )
        if (closed := self._closed(store, notifier, button)) is not None:
            return closed
        earlier = notifier.ledger.claim(button.request, click.approver, _verdict(button))
        if earlier is not None:
            who = mentions([earlier.user])
            return f"Already decided: {earlier.decision} by {who} at {earlier.at:%H:%M:%S} UTC."
        try:
            # Slack signed the request and names the user: a verified decision.
            self.prefect.decide(
                UUID(button.flow_run_id),
                self.key,
                approve=button.approve,
                approver=click.approver,
                reason="Slack",
                channel="slack",
            )
        except TransientError:
            notifier.ledger.release(button.request)
            return (
                "Prefect did not take it (unreachable or busy): nothing was decided, "
                "please try again."
            )
        except PermanentError as exc:
            notifier.ledger.settle(button.request, "not_waiting")
            return f"This approval has expired: {exc}."
        notifier.ledger.settle(button.request, "resumed")
        log.info("%s %s %s from Slack", click.approver, _verdict(button), button.request)
        incident = store.get(button.incident_id)
        state = notifier.state(incident)
        state.approval.update(
            status=_verdict(button),
            by=f"<@{click.user_id}>",
            at=utcnow().strftime("%Y-%m-%d %H:%M:%S UTC"),
            reason="Slack",
        )
        state.step = f"Mitigation {_verdict(button)} by <@{click.user_id}>"
        notifier.show(incident, state)
        return None

    def _closed(
        self, store: IncidentStore, notifier: SlackNotifier, button: ApprovalButton
    ) -> str | None:
        """Why this request can no longer be decided, if it cannot."""
        try:
            incident = store.get(button.incident_id)
        except NotFoundError:
            return "This incident is unknown here."
        approval = notifier.state(incident).approval
        if approval.get("flow_run") != button.flow_run_id or int(approval.get("n", 0)) != button.n:
            return "This approval request has been superseded: nothing was done."
        if len(incident.approvals) >= button.n:
            decided = incident.approvals[button.n - 1]
            if decided.decision == "timed_out":
                return "This approval has expired: nothing was changed and the incident escalated."
            when = f"{decided.at:%H:%M:%S} UTC"
            return f"Already decided: {decided.decision} by {decided.approver} at {when}."
        run = self.prefect.read_flow_run(UUID(button.flow_run_id))
        if run.state is None or not run.state.is_paused():
            claim = notifier.ledger.claimed(button.request)
            if claim is not None:
                return f"Already decided: {claim.decision} by {mentions([claim.user])}."
            state = run.state.name if run.state else "unknown"
            return f"This approval has expired: the run is no longer waiting ({state})."
        return None

    def answer(self, click: Click, text: str) -> None:
        """An ephemeral message to the clicking user only (through ``response_url``)."""
        if not click.response_url:
            return
        try:
            response = WebhookClient(click.response_url, timeout=5).send(
                text=text, response_type="ephemeral", replace_original=False
            )
            if response.status_code >= 300:
                log.warning(
                    "ephemeral answer refused: HTTP %d %s", response.status_code, response.body
                )
        except Exception as exc:
            log.warning("could not answer %s: %s", click.approver, exc)


async def _whole_body(request: Request) -> bytes:
    return await request.body()


def _verdict(button: ApprovalButton) -> str:
    return "approved" if button.approve else "rejected"
