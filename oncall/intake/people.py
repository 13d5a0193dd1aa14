"""People steering incidents over the intake's API: declare, acknowledge, resolve, reopen,
escalate, and pause or resume the automation.

Each request is made as a person: ``Authorization: Bearer <approver token>`` (``oncall
approvers add NAME``), and that name is recorded. Bodies are JSON, validated by pydantic;
a wrong one gets 422 naming the field, an unknown incident 404, a step that does not fit
the incident's state (resolving a resolved one) 409.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field
from starlette.concurrency import run_in_threadpool

from oncall import lifecycle
from oncall.approvers import ApproverTokens
from oncall.clients.prefect_api import PrefectApi
from oncall.errors import NotFoundError, OncallError, TransientError
from oncall.intake.bodies import load_json, parse
from oncall.intake.receiving import is_json
from oncall.models import Severity
from oncall.pauses import MAX_PAUSE, PauseRequest, Pauses, parse_duration
from oncall.settings import OncallSettings
from oncall.store import IncidentStore
from oncall.wiring import Clients


def _duration(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return parse_duration(value)
    except OncallError as exc:
        raise ValueError(str(exc)) from exc


class DeclareRequest(BaseModel):
    """`POST /v1/incidents`: an incident no alert raised."""

    service: str = Field(min_length=1, max_length=200)
    severity: Severity = Severity.P2
    title: str = Field(min_length=1, max_length=500)


class NoteRequest(BaseModel):
    """A note for acknowledge, resolve and reopen."""

    note: str = Field(default="", max_length=2000)


class EscalateRequest(BaseModel):
    """`POST /v1/incidents/{id}/escalate`: to whom, and why."""

    to: Literal["secondary", "manager", "vp"]
    reason: str = Field(default="", max_length=2000)


class PauseBody(BaseModel):
    """`POST /v1/pauses`: the automation of a service (``*``: all) off for a while."""

    service: str = Field(min_length=1, max_length=200)
    duration: Annotated[timedelta, BeforeValidator(_duration)] = Field(
        gt=timedelta(0), le=MAX_PAUSE, description="2h, 30m, 1h30m, 1d or seconds."
    )
    reason: str = Field(min_length=1, max_length=1000)


def people_router(
    store: Callable[[], IncidentStore],
    prefect: PrefectApi,
    read_body: Callable[[Request], Awaitable[bytes]],
) -> APIRouter:
    """The routes; ``store`` and ``prefect`` are the intake's."""
    router = APIRouter()

    async def person(request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return await run_in_threadpool(ApproverTokens(store()).who, token.strip())

    async def body(request: Request, model: type[Any]) -> Any:
        raw = await read_body(request)
        if not is_json(request.headers.get("content-type", "")):
            return JSONResponse(status_code=415, content={"detail": "send application/json"})
        return parse(model, load_json(raw) if raw.strip() else {})

    def refused(status: int, detail: str) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)

    async def act(request: Request, model: type[Any], do: Callable[[str, Any], Any]) -> Any:
        who = await person(request)
        if who is None:
            return refused(401, "missing or unknown approver token (`oncall approvers add NAME`)")
        asked = await body(request, model)
        if isinstance(asked, JSONResponse):
            return asked
        try:
            return JSONResponse(content=await run_in_threadpool(do, who, asked))
        except NotFoundError as exc:
            return refused(404, str(exc))
        except TransientError as exc:
            return refused(503, str(exc))
        except OncallError as exc:
            return refused(409, str(exc))

    def clients() -> Clients:
        return Clients(OncallSettings())

    @router.post("/v1/incidents", summary="Declare an incident no alert raised (as a person).")
    async def declare(request: Request) -> Any:
        def do(who: str, asked: DeclareRequest) -> dict[str, Any]:
            incident = lifecycle.declare(
                store(), clients().notifier, asked.service, asked.severity, asked.title, who
            )
            return {"incident": incident.id, "acknowledged_by": who}

        return await act(request, DeclareRequest, do)

    @router.post("/v1/incidents/{incident_id}/acknowledge", summary="Take an incident.")
    async def acknowledge(incident_id: str, request: Request) -> Any:
        def do(who: str, asked: NoteRequest) -> dict[str, Any]:
            done = lifecycle.acknowledge(store(), prefect, clients().notifier, incident_id, who)
            return {
                "incident": incident_id,
                "acknowledged_by": done.incident.acknowledged_by,
                "timers_cancelled": done.cancelled,
            }

        return await act(request, NoteRequest, do)

    @router.post("/v1/incidents/{incident_id}/resolve", summary="Resolve an incident.")
    async def resolve(incident_id: str, request: Request) -> Any:
        def do(who: str, asked: NoteRequest) -> dict[str, Any]:
            incident, run = lifecycle.close(
                store(), prefect, clients().notifier, incident_id, who, asked.note
            )
            return {
                "incident": incident.id,
                "status": incident.status,
                "post_incident_flow_run_id": str(run.id) if run else None,
            }

        return await act(request, NoteRequest, do)

    @router.post("/v1/incidents/{incident_id}/reopen", summary="Reopen a resolved incident.")
    async def reopen(incident_id: str, request: Request) -> Any:
        def do(who: str, asked: NoteRequest) -> dict[str, Any]:
            reason = asked.note or "reopened"
            incident = lifecycle.reopen(store(), clients().notifier, incident_id, who, reason)
            return {"incident": incident.id, "status": incident.status}

        return await act(request, NoteRequest, do)

    @router.post("/v1/incidents/{incident_id}/escalate", summary="Hand an incident on.")
    async def escalate(incident_id: str, request: Request) -> Any:
        def do(who: str, asked: EscalateRequest) -> dict[str, Any]:
            role = lifecycle.ESCALATE_TO[asked.to]
            c = clients()
            contacts = c.contacts_for(role, store().get(incident_id))
            incident = lifecycle.escalate(
                store(), c.notifier, incident_id, role, contacts, who, asked.reason
            )
            return {"incident": incident.id, "status": incident.status, "contacts": contacts}

        return await act(request, EscalateRequest, do)

    @router.post("/v1/pauses", summary="Pause the automation of a service (`*`: all).")
    async def pause(request: Request) -> Any:
        def do(who: str, asked: PauseBody) -> dict[str, Any]:
            request_ = PauseRequest(
                service=asked.service, duration=asked.duration, reason=asked.reason, by=who
            )
            done = Pauses(store()).pause(request_)
            return {**done.model_dump(mode="json"), "describe": done.describe()}

        return await act(request, PauseBody, do)

    @router.delete("/v1/pauses/{service}", summary="End the running pauses of a service.")
    async def resume(service: str, request: Request) -> Any:
        who = await person(request)
        if who is None:
            return refused(401, "missing or unknown approver token (`oncall approvers add NAME`)")
        ended = await run_in_threadpool(Pauses(store()).resume, service, who)
        if not ended:
            return refused(404, f"no running pause of {service}")
        return JSONResponse(content={"ended": len(ended), "by": who})

    @router.get("/v1/pauses", summary="The running pauses (as a person).")
    async def pauses(request: Request) -> Any:
        if await person(request) is None:
            return refused(401, "missing or unknown approver token (`oncall approvers add NAME`)")
        running = await run_in_threadpool(Pauses(store()).active)
        return JSONResponse(content=[p.model_dump(mode="json") for p in running])

    return router
