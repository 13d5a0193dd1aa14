"""The intake service: FastAPI app with the webhook receivers, incidents, health and metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from oncall.clients.pagerduty import on_pagerduty_webhook
from oncall.clients.prefect_api import PrefectApi
from oncall.clients.slack import SlackSettings
from oncall.errors import NotFoundError, OncallError, PermanentError
from oncall.intake import pagerduty
from oncall.intake.auth import BearerAuth, pagerduty_signature_valid
from oncall.intake.bodies import BodyError, parse
from oncall.intake.committer import GroupCommitter
from oncall.intake.dispatcher import Dispatcher
from oncall.intake.generic import GenericWebhook
from oncall.intake.inbox import Inbox
from oncall.intake.metrics import IntakeMetrics
from oncall.intake.prefect_runs import PrefectRuns
from oncall.intake.queue import DispatchQueue
from oncall.intake.receiving import Receiver
from oncall.intake.settings import IntakeSettings
from oncall.intake.views import IncidentView, incident_view, incident_views
from oncall.models import Alert, AlertmanagerWebhook
from oncall.routing import PlaybookRouter
from oncall.settings import OncallSettings
from oncall.slack.interactivity import SlackInteractivity

log = logging.getLogger(__name__)

ALERTMANAGER = "alertmanager"
PAGERDUTY = "pagerduty"
GENERIC = "generic"


def _from_alertmanager(doc: Any) -> tuple[list[Alert], str | None]:
    message = parse(AlertmanagerWebhook, doc)
    if message.truncated_alerts:
        log.warning(
            "Alertmanager truncated %d alerts of %s", message.truncated_alerts, message.group_key
        )
    return [Alert.from_alertmanager(a) for a in message.alerts], None


def _from_pagerduty(doc: Any) -> tuple[list[Alert], str | None]:
    webhook = parse(pagerduty.PagerDutyWebhook, doc)
    return pagerduty.alerts_of(webhook), webhook.event.id


def _from_generic(doc: Any) -> tuple[list[Alert], str | None]:
    return [a.to_alert() for a in parse(GenericWebhook, doc).alerts], None


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI of a body the endpoint parses itself (it must read the raw bytes first)."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)  # registered as components by _register_schemas
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


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
    prefect = PrefectRuns(_prefect_api(settings, prefect_api_url), intake.prefect_timeout_s)
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
    app.state.slack = SlackInteractivity(SlackSettings(), lambda: inbox.store, incident_api)
    app.include_router(app.state.slack.router)  # POST /v1/slack/interactivity
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
        summary="Alertmanager webhook v4 (webhook_configs with http_config.authorization).",
    )
    async def alertmanager(request: Request) -> JSONResponse:
        raw = await receiver.read_body(request)
        return await receiver.receive(request, ALERTMANAGER, raw, _from_alertmanager)

    @app.post(
        "/v1/alerts/pagerduty",
        status_code=202,
        dependencies=authorized,
        openapi_extra=_json_body(pagerduty.PagerDutyWebhook),
        summary="PagerDuty V3 webhook; X-PagerDuty-Signature verified (HMAC-SHA256).",
    )
    async def pagerduty_webhook(request: Request) -> JSONResponse:
        raw = await receiver.read_body(request)
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
        response = await receiver.receive(request, PAGERDUTY, raw, _from_pagerduty)
        # Human acknowledgements stop the escalation timers; resolutions close the incident.
        if response.status_code == 202 and not await on_pagerduty_webhook(
            raw, inbox.store, incident_api
        ):
            return JSONResponse(status_code=503, content={"detail": "event not applied; retry"})
        return response

    @app.post(
        "/v1/alerts/generic",
        status_code=202,
        dependencies=authorized,
        openapi_extra=_json_body(GenericWebhook),
        summary="Alerts from any other source, in the documented generic schema.",
    )
    async def generic(request: Request) -> JSONResponse:
        raw = await receiver.read_body(request)
        return await receiver.receive(request, GENERIC, raw, _from_generic)

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
        """Ready when the store takes a write and the Prefect API answers."""
        checks: dict[str, str] = {}
        try:
            await run_in_threadpool(inbox.beat)
            checks["store"] = "ok"
        except OncallError as exc:
            checks["store"] = f"unavailable: {exc}"
        healthy = await run_in_threadpool(prefect.healthy)
        checks["prefect"] = "ok" if healthy else f"unreachable: {prefect.api_url}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(status_code=200 if ready else 503, content=checks)

    @app.get("/metrics", dependencies=authorized)
    async def prometheus_metrics() -> Response:
        """Prometheus exposition of the intake's metrics."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    _register_schemas(app, [AlertmanagerWebhook, pagerduty.PagerDutyWebhook, GenericWebhook])
    return app


def _source(request: Request) -> str:
    path = request.url.path.rstrip("/")
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
