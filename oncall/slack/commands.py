"""The ``/oncall`` Slack slash command: who is on call, status, ack, resolve, pause, resume.

Verified like interactivity (Slack's signature, timestamps at most 5 minutes old) and a
signed request is taken once: a replay of the same signature is refused. Slack wants an
answer within 3 s, so the endpoint answers at once; reads (``who``, ``status``, ``help``)
in that answer, actions (``ack``, ``resolve``, ``pause``, ``resume``) after it, through the
command's ``response_url``. Actions are for the people who may approve
(``ONCALL_SLACK_APPROVERS``); anyone in the workspace may read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from oncall import lifecycle
from oncall.clients.prefect_api import PrefectApi
from oncall.clients.slack import SlackSettings
from oncall.errors import OncallError
from oncall.models import IncidentStatus, utcnow
from oncall.pauses import ALL, PauseRequest, Pauses, parse_duration
from oncall.settings import OncallSettings
from oncall.slack.approvers import Approvers
from oncall.store import IncidentStore
from oncall.wiring import Clients

log = logging.getLogger("oncall.slack.commands")

PATH = "/v1/slack/commands"
REPLAY_WINDOW_S = 300.0  # Slack's signatures are valid this long: remember them as long
USAGE = (
    "`/oncall who [SERVICE]` · `/oncall status` · `/oncall ack INCIDENT` · "
    "`/oncall resolve INCIDENT [note]` · `/oncall pause SERVICE|all DURATION reason` · "
    "`/oncall resume SERVICE|all`"
)
ACTIONS = {"ack", "resolve", "pause", "resume"}


@dataclass(frozen=True)
class Command:
    """One ``/oncall`` invocation."""

    user_id: str
    user_name: str
    words: list[str]
    response_url: str

    @property
    def person(self) -> str:
        """Who asked, as recorded on an incident: ``name (U...)``."""
        return f"{self.user_name} ({self.user_id})"

    @property
    def verb(self) -> str:
        """The sub-command (``help`` when none)."""
        return self.words[0].lower() if self.words else "help"


def parse_command(body: bytes) -> Command:
    """The slash command out of Slack's form body; ValueError for one Slack would not send."""
    form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    user_id = (form.get("user_id") or [""])[0]
    if not user_id:
        raise ValueError("user_id is missing")
    if not (form.get("command") or [""])[0]:
        raise ValueError("command is missing")
    return Command(
        user_id=user_id,
        user_name=(form.get("user_name") or [user_id])[0] or user_id,
        words=(form.get("text") or [""])[0].split(),
        response_url=(form.get("response_url") or [""])[0],
    )


class SlackCommands:
    """The slash-command endpoint and the actions it takes after answering."""

    def __init__(
        self,
        settings: SlackSettings,
        store: Callable[[], IncidentStore],
        prefect: PrefectApi,
        approvers: Approvers,
        read_body: Callable[[Request], Awaitable[bytes]],
        workers: int = 2,
    ) -> None:
        self.settings, self._store, self.prefect = settings, store, prefect
        self.approvers, self.read_body = approvers, read_body
        secret = settings.signing_secret.get_secret_value() if settings.signing_secret else ""
        self.verifier = SignatureVerifier(secret) if secret else None
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="slack-command")
        self.pending: list[Future[None]] = []
        self._seen: dict[str, float] = {}
        self._seen_lock = threading.Lock()

    @property
    def router(self) -> APIRouter:
        """``POST /v1/slack/commands`` (Slack app: Slash Commands, Request URL)."""
        router = APIRouter()

        @router.post(PATH, summary="The /oncall slash command; signed by Slack.")
        async def command(request: Request) -> Response:
            kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if kind != "application/x-www-form-urlencoded":
                return Response(
                    status_code=415,
                    content="Slack sends application/x-www-form-urlencoded",
                    media_type="text/plain",
                )
            body = await self.read_body(request)
            status, answer = self.receive(body, request.headers)
            if status != 200:
                return Response(status_code=status, content=answer, media_type="text/plain")
            return JSONResponse({"response_type": "ephemeral", "text": answer})

        return router

    def _replayed(self, signature: str) -> bool:
        now = time.monotonic()
        with self._seen_lock:
            self._seen = {s: t for s, t in self._seen.items() if now - t < REPLAY_WINDOW_S}
            if signature in self._seen:
                return True
            self._seen[signature] = now
            return False

    def receive(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
        """Verify, parse, answer a read at once or queue an action; (status, text)."""
        if self.verifier is None:
            return 503, "Slack commands not configured (ONCALL_SLACK_SIGNING_SECRET)"
        try:
            valid = self.verifier.is_valid_request(body, dict(headers))
        except ValueError:  # a timestamp that is not a number
            valid = False
        if not valid:
            log.warning("refused a Slack command: bad signature or stale timestamp")
            return 401, "invalid signature"
        signature = {k.lower(): v for k, v in headers.items()}.get("x-slack-signature", "")
        if self._replayed(signature):
            log.warning("refused a replayed Slack command")
            return 401, "replayed request"
        try:
            command = parse_command(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return 400, f"malformed command: {exc}"
        if command.verb not in ACTIONS:
            return 200, self.read(command)
        if not self.approvers.may_approve(command.user_id):
            log.warning("%s may not act through /oncall %s", command.person, command.verb)
            return 200, "You are not allowed to act on incidents (ONCALL_SLACK_APPROVERS)."
        self.pending = [f for f in self.pending if not f.done()]
        self.pending.append(self.executor.submit(self.act, command))
        return 200, f"Working on it: `/oncall {' '.join(command.words)}`"

    def drain(self, timeout_s: float = 30) -> None:
        """Wait for the actions under way (tests, shutdown)."""
        wait(list(self.pending), timeout=timeout_s)

    # -- reads, answered at once ---------------------------------------------------------
    def read(self, command: Command) -> str:
        """``who``, ``status``, or the usage."""
        try:
            if command.verb == "who":
                return self._who(command.words[1] if len(command.words) > 1 else None)
            if command.verb == "status":
                return self._status()
        except OncallError as exc:
            return f"Could not answer: {exc}"
        return f"Usage: {USAGE}"

    def _who(self, service: str | None) -> str:
        from oncall.rotation.loader import load_rotation
        from oncall.rotation.model import Role

        clients = Clients(OncallSettings())
        path = clients.rotation_file()
        if service is not None:
            entry = clients.catalog.get(service)
            path = entry.rotation_file or path
        shift = load_rotation(path).on_call(utcnow())
        people = [
            f"{role.value}: {shift.holder(role).name} (<@{shift.holder(role).slack_user_id}>)"
            for role in Role
        ]
        return f"On call{f' for {service}' if service else ''}: " + " · ".join(people)

    def _status(self) -> str:
        store = self._store()
        open_ = [i for i in store.list(limit=200) if i.status is not IncidentStatus.RESOLVED]
        lines = [f"{len(open_)} open incident(s)"]
        lines += [f"• `{i.id}` {i.title}: {i.status}" for i in open_[:20]]
        lines += [f"• {p.describe()}" for p in Pauses(store).active()]
        return "\n".join(lines)

    # -- actions, after the answer -------------------------------------------------------
    def act(self, command: Command) -> None:
        """Take the action; say what happened where the command was typed."""
        try:
            text, public = self._act(command)
        except (OncallError, ValidationError) as exc:
            text, public = f"Could not `{command.verb}`: {_short(exc)}", False
        except Exception as exc:  # the person hears about it, the log keeps it
            log.exception("/oncall %s failed", command.verb)
            text, public = f"Could not `{command.verb}`: {exc}", False
        self.answer(command, text, public)

    def _act(self, command: Command) -> tuple[str, bool]:
        words, who = command.words, command.person
        store = self._store()
        if command.verb in ("ack", "resolve") and len(words) < 2:
            return f"Usage: `/oncall {command.verb} INCIDENT`", False
        if command.verb == "ack":
            clients = Clients(OncallSettings())
            done = lifecycle.acknowledge(store, self.prefect, clients.notifier, words[1], who)
            return (
                f"`{words[1]}` acknowledged by <@{command.user_id}>; "
                f"{done.cancelled} escalation timer(s) cancelled.",
                True,
            )
        if command.verb == "resolve":
            clients = Clients(OncallSettings())
            note = " ".join(words[2:])
            incident, _ = lifecycle.close(
                store, self.prefect, clients.notifier, words[1], who, note
            )
            return f"`{incident.id}` {incident.transitions[-1].note}.", True
        if command.verb == "pause":
            if len(words) < 4:
                return "Usage: `/oncall pause SERVICE|all DURATION reason`", False
            service = ALL if words[1].lower() == "all" else words[1]
            request = PauseRequest(
                service=service,
                duration=parse_duration(words[2]),
                reason=" ".join(words[3:]),
                by=who,
            )
            return Pauses(store).pause(request).describe(), True
        if len(words) < 2:
            return "Usage: `/oncall resume SERVICE|all`", False
        service = ALL if words[1].lower() == "all" else words[1]
        ended = Pauses(store).resume(service, who)
        if not ended:
            return f"No running pause of {words[1]}.", False
        return f"Automation resumed for {words[1]} by <@{command.user_id}>.", True

    def answer(self, command: Command, text: str, public: bool) -> None:
        """Post the outcome through ``response_url``: in the channel when something was
        done, to the person only when it was refused."""
        if not command.response_url:
            return
        try:
            response = WebhookClient(command.response_url, timeout=5).send(
                text=text, response_type="in_channel" if public else "ephemeral"
            )
            if response.status_code >= 300:
                log.warning("command answer refused: HTTP %d", response.status_code)
        except Exception as exc:
            log.warning("could not answer /oncall %s: %s", command.verb, exc)


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)
