"""The intake service: FastAPI app with the webhook receivers, incidents, health and metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from oncall.approval import approval_key
from oncall.approvers import ApproverTokens
from oncall.clients.notify import Notifications
from oncall.clients.prefect_api import API_RESUME_BUSY_S, PrefectApi
from oncall.clients.slack import SlackSettings
from oncall.errors import NotFoundError, OncallError, PermanentError, TransientError
from oncall.intake import pagerduty
from oncall.intake.auth import BearerAuth, pagerduty_signature_valid
from oncall.intake.bodies import BodyError, load_json, parse
from oncall.intake.committer import GroupCommitter
from oncall.intake.dispatcher import Dispatcher
from oncall.intake.generic import GenericWebhook
from oncall.intake.inbox import Inbox
from oncall.intake.messages import from_alertmanager, from_generic, from_pagerduty
from oncall.intake.metrics import IntakeMetrics
from oncall.intake.pagerduty_events import on_pagerduty_webhook
from oncall.intake.people import people_router
from oncall.intake.prefect_runs import PrefectRuns
from oncall.intake.queue import DispatchQueue
from oncall.intake.receiving import Receiver, is_json
from oncall.intake.settings import IntakeSettings
from oncall.intake.views import IncidentView, incident_view, incident_views
from oncall.models import AlertmanagerWebhook
from oncall.prefect_auth import client_auth_string
from oncall.routing import PlaybookRouter
from oncall.settings import OncallSettings
from oncall.slack.commands import SlackCommands
from oncall.slack.interactivity import SlackInteractivity

log = logging.getLogger(__name__)

ALERTMANAGER = "alertmanager"
PAGERDUTY = "pagerduty"
GENERIC = "generic"


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI of a body the endpoint parses itself (it must read the raw bytes first)."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)  # registered as components by _register_schemas
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class ApprovalRequest(BaseModel):
    """`POST /v1/approvals/{flow_run_id}`: the decision; the token says who takes it."""

    approve: bool = Field(description="true approves the proposed mitigation, false rejects it.")
    reason: str = Field(default="", max_length=2000, description="Kept on the incident.")
    via: Literal["api", "cli"] = Field(default="api", description="Recorded as the channel.")


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"detail": {"type": "string"}}}
            }
        },
    }


_ACCEPTED = {
    "description": "Committed to the store. `rejected` (present only if some alerts were "
    "invalid) names each refused alert by index; those are kept as dead letters.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["new", "deduplicated", "attached", "resolved", "incidents"],
                "properties": {
                    "new": {"type": "integer"},
                    "deduplicated": {"type": "integer"},
                    "attached": {"type": "integer"},
                    "resolved": {"type": "integer"},
                    "duplicate_event": {"type": "boolean"},
                    "incidents": {"type": "array", "items": {"type": "string"}},
                    "rejected": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "index": {"type": "integer"},
                                "detail": {"type": "string"},
                            },
                        },
                    },
                },
            }
        }
    },
}

# Every answer a webhook endpoint gives; none of them is a 5xx for anything a client sends.
WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: _ACCEPTED,
    400: _problem("Not JSON, not UTF-8, nested deeper than 64 levels or a number too long."),
    401: _problem("Missing or wrong bearer token."),
    408: _problem("The upload stalled or took too long; nothing was accepted."),
    413: _problem("Body larger than the endpoint accepts; nothing was accepted."),
    415: _problem("Content-Type is not application/json."),
    422: _problem(
        "Wrong schema, or every alert invalid: `detail` names each field (`alerts.3.labels`)."
    ),
    503: _problem("The store is unavailable: retry after `Retry-After` seconds."),
}


def _others_than_pagerduty(settings: OncallSettings) -> Notifications:
    """The configured channels but PagerDuty: what it told us, it need not be told."""
    from oncall.wiring import Clients

    return Clients(settings).notifier.without("pagerduty")


def create_app(
    settings: OncallSettings,
    intake: IntakeSettings | None = None,
    *,
    prefect_api_url: str | None = None,
    router: PlaybookRouter | None = None,
    dispatch: bool = True,
) -> FastAPI:
    """The intake app; with ``dispatch`` it also runs the dispatcher while it serves."""
    intake = intake or IntakeSettings()
    if settings.intake_token is None or not settings.intake_token.get_secret_value():
        raise PermanentError("ONCALL_INTAKE_TOKEN is not set: the intake refuses to run open")
    inbox = Inbox(settings.store_url)
    metrics = IntakeMetrics()
    router = router or PlaybookRouter.from_file(settings.routes_file)
    prefect = PrefectRuns(
        _prefect_api(settings, prefect_api_url),
        intake.prefect_timeout_s,
        auth_string=client_auth_string(),
    )
    queue = DispatchQueue(inbox)
    dispatcher = Dispatcher(queue, prefect, router.default, intake, metrics)
    committer = GroupCommitter(inbox, router.route, writers=intake.writers)
    receiver = Receiver(inbox, router, metrics, intake, committer, dispatcher if dispatch else None)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if dispatch:
            dispatcher.start()
        try:
            yield
        finally:
            dispatcher.stop()
            committer.close()
            prefect.close()
            inbox.close()

    app = FastAPI(
        title="oncall intake",
        summary="Alertmanager, PagerDuty and generic alerts in; playbook runs out.",
        lifespan=lifespan,
    )
    app.state.receiver, app.state.dispatcher = receiver, dispatcher
    incident_api = PrefectApi(prefect.api_url)
    key = approval_key(settings)  # attests verified decisions (Slack, approver tokens)
    app.state.slack = SlackInteractivity(
        SlackSettings(),
        lambda: inbox.store,
        incident_api,
        read_body=lambda request: receiver.read_body(request, intake.max_signed_body_bytes),
        key=key,
    )
    app.include_router(app.state.slack.router)  # POST /v1/slack/interactivity
    app.state.slack_commands = SlackCommands(
        SlackSettings(),
        lambda: inbox.store,
        incident_api,
        app.state.slack.approvers,
        read_body=lambda request: receiver.read_body(request, intake.max_signed_body_bytes),
    )
    app.include_router(app.state.slack_commands.router)  # POST /v1/slack/commands
    app.include_router(  # people steering: declare, ack, resolve, reopen, escalate, pause
        people_router(
            lambda: inbox.store,
            incident_api,
            lambda request: receiver.read_body(request, intake.max_signed_body_bytes),
        )
    )
    authorized = [
        Depends(
            BearerAuth(
                settings.intake_token.get_secret_value(),
                lambda request, reason: receiver.reject(_source(request), reason),
            )
        )
    ]

    @app.exception_handler(BodyError)
    async def _body_error(request: Request, exc: BodyError) -> JSONResponse:
        return await receiver.refuse(request, _source(request), b"", exc)

    @app.post(
        "/v1/alerts/alertmanager",
        status_code=202,
        dependencies=authorized,
        openapi_extra=_json_body(AlertmanagerWebhook),
        responses=WEBHOOK_RESPONSES,
        summary="Alertmanager webhook v4 (webhook_configs with http_config.authorization).",
    )
    async def alertmanager(request: Request) -> JSONResponse:
        raw = await receiver.read_body(request)
        return await receiver.receive(request, ALERTMANAGER, raw, from_alertmanager)

    @app.post(
        "/v1/alerts/pagerduty",
        status_code=202,
        dependencies=authorized,
        openapi_extra=_json_body(pagerduty.PagerDutyWebhook),
        responses={
            **WEBHOOK_RESPONSES,
            403: _problem("X-PagerDuty-Signature does not match the body."),
            503: _problem("The store is unavailable, or the PagerDuty secret is not set."),
        },
        summary="PagerDuty V3 webhook; X-PagerDuty-Signature verified (HMAC-SHA256).",
    )
    async def pagerduty_webhook(request: Request) -> JSONResponse:
        raw = await receiver.read_body(request, intake.max_signed_body_bytes)
        if intake.pagerduty_secret is None:
            receiver.reject(PAGERDUTY, "not_configured")
            return JSONResponse(
                status_code=503,
                content={
                    "detail": "PagerDuty intake not configured (ONCALL_INTAKE_PAGERDUTY_SECRET)"
                },
            )
        secret = intake.pagerduty_secret.get_secret_value()
        if not pagerduty_signature_valid(request.headers.get("x-pagerduty-signature"), secret, raw):
            receiver.reject(PAGERDUTY, "bad_signature")
            return JSONResponse(status_code=403, content={"detail": "signature mismatch"})
        response = await receiver.receive(request, PAGERDUTY, raw, from_pagerduty)
        # Human acknowledgements stop the escalation timers; resolutions close the incident.
        if response.status_code == 202 and not await on_pagerduty_webhook(
            raw, inbox.store, incident_api, notifier=lambda: _others_than_pagerduty(settings)
        ):
            return JSONResponse(status_code=503, content={"detail": "event not applied; retry"})
        return response

    @app.post(
        "/v1/alerts/generic",
        status_code=202,
        dependencies=authorized,
        openapi_extra=_json_body(GenericWebhook),
        responses=WEBHOOK_RESPONSES,
        summary="Alerts from any other source, in the documented generic schema.",
    )
    async def generic(request: Request) -> JSONResponse:
        raw = await receiver.read_body(request)
        return await receiver.receive(request, GENERIC, raw, from_generic)

    @app.post(
        "/v1/approvals/{flow_run_id}",
        summary="Approve or reject a paused playbook as the approver whose token this is.",
        responses={
            200: {"description": "The run was resumed with a verified decision."},
            401: _problem("Missing or unknown approver token (`oncall approvers add NAME`)."),
            404: _problem("No such flow run."),
            409: _problem("The run is not waiting for a decision."),
            415: _problem("Content-Type is not application/json."),
            422: _problem("Wrong body: `approve` (boolean) is required."),
            503: _problem("Prefect or the store is unavailable: retry."),
        },
        openapi_extra=_json_body(ApprovalRequest),
    )
    async def approvals(flow_run_id: UUID, request: Request) -> JSONResponse:
        """A decision by a verified approver: the token names the person, the run resumes."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        tokens = ApproverTokens(inbox.store)
        name = None
        if scheme.lower() == "bearer" and token.strip():
            name = await run_in_threadpool(tokens.who, token.strip())
        if name is None:
            receiver.reject("api", "unknown_approver")
            return JSONResponse(
                status_code=401,
                content={"detail": "missing or unknown approver token"},
                headers={"WWW-Authenticate": "Bearer"},
            )
        raw = await receiver.read_body(request, intake.max_signed_body_bytes)
        if not is_json(request.headers.get("content-type", "")):
            return JSONResponse(status_code=415, content={"detail": "send application/json"})
        asked = parse(ApprovalRequest, load_json(raw))
        try:
            await run_in_threadpool(
                incident_api.decide,
                flow_run_id,
                key,
                approve=asked.approve,
                approver=name,
                reason=asked.reason,
                channel=asked.via,
                busy_for_s=API_RESUME_BUSY_S,
            )
        except TransientError as exc:
            # Nothing was changed: the same decision may be sent again.
            return JSONResponse(
                status_code=503, content={"detail": str(exc)}, headers={"Retry-After": "10"}
            )
        except PermanentError as exc:
            code = 404 if "no flow run" in str(exc) or isinstance(exc, NotFoundError) else 409
            return JSONResponse(status_code=code, content={"detail": str(exc)})
        verdict = "approved" if asked.approve else "rejected"
        log.info("%s %s flow run %s via %s", name, verdict, flow_run_id, asked.via)
        return JSONResponse(
            content={
                "flow_run_id": str(flow_run_id),
                "approver": name,
                "decision": verdict,
                "channel": asked.via,
            }
        )

    @app.get("/v1/incidents", dependencies=authorized, response_model=list[IncidentView])
    async def list_incidents(
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[IncidentView]:
        """Incidents, newest first: status, timestamps, flow run, alert occurrences."""
        return await run_in_threadpool(incident_views, inbox, limit)

    @app.get("/v1/incidents/{incident_id}", dependencies=authorized, response_model=IncidentView)
    async def show_incident(incident_id: str) -> IncidentView | JSONResponse:
        """One incident."""
        try:
            return await run_in_threadpool(incident_view, inbox, incident_id)
        except NotFoundError as exc:
            return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.get("/v1/dead-letters", dependencies=authorized)
    async def list_dead_letters(
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> list[dict[str, Any]]:
        """Refused bodies with the reason, newest first."""
        return await run_in_threadpool(inbox.list_dead_letters, limit)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready when the store takes a write and the Prefect API answers; says how far
        behind the dispatcher is (`dispatch`) without failing on it."""
        checks: dict[str, str] = {}
        try:
            await run_in_threadpool(inbox.beat)
            checks["store"] = "ok"
        except OncallError as exc:
            checks["store"] = f"unavailable: {exc}"
        healthy = await run_in_threadpool(prefect.healthy)
        checks["prefect"] = "ok" if healthy else f"unreachable: {prefect.api_url}"
        ready = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = dict(checks)
        if checks["store"] == "ok":
            # Said, not failed on: a backlog must not take the intake out of its Service,
            # or the alerts that would be dispatched once Prefect catches up are refused.
            owed, age = await run_in_threadpool(dispatcher.behind)
            late = age > intake.dispatch_behind_s
            body["dispatch"] = f"behind: {owed} runs owed, oldest {age:.0f}s" if late else "ok"
            body["dispatch_pending"], body["dispatch_oldest_s"] = owed, round(age, 1)
        return JSONResponse(status_code=200 if ready else 503, content=body)

    @app.get("/metrics", dependencies=authorized)
    async def prometheus_metrics() -> Response:
        """Prometheus exposition of the intake's metrics."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    _register_schemas(app, [AlertmanagerWebhook, pagerduty.PagerDutyWebhook, GenericWebhook])
    return app


def _source(request: Request) -> str:
    path = request.url.path.rstrip("/")
    if path.startswith("/v1/slack/"):
        return "slack"
    return path.rsplit("/", 1)[-1] if path.startswith("/v1/alerts/") else "api"


def _prefect_api(settings: OncallSettings, explicit: str | None) -> str:
    if explicit:
        return explicit
    from prefect.settings import get_current_settings

    configured = get_current_settings().api.url
    return str(configured) if configured else f"http://127.0.0.1:{settings.prefect_port}/api"


def _register_schemas(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Put the nested models of the hand-parsed bodies into the OpenAPI components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                full = model.model_json_schema(
                    by_alias=True, ref_template="#/components/schemas/{model}"
                )
                components.update(full.get("$defs", {}))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
