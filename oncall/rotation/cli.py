"""`oncall rotation ...`: who is on call."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from oncall.rotation.loader import RotationFileError, load_rotation
from oncall.rotation.model import Role, Rotation
from oncall.rotation.settings import RotationSettings

app = typer.Typer(help="The on-call rotation.", no_args_is_help=True)
console = Console()


def _instant(value: str | None, rotation: Rotation) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO-8601 time: {value!r}", param_hint="--at") from None
    # A time without an offset means wall-clock time where the hand-off happens.
    return at if at.tzinfo else at.replace(tzinfo=rotation.zone)


def _load(path: Path) -> Rotation:
    try:
        return load_rotation(path)
    except RotationFileError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc


@app.command()
def who(
    at: Annotated[
        str | None,
        typer.Option(help="ISO-8601 instant, e.g. 2026-03-09T09:30-07:00 (default: now)."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(help="Rotation file (default: ONCALL_ROTATION_FILE, else the example)."),
    ] = None,
) -> None:
    """Print who is primary, secondary and escalation manager at an instant."""
    rotation = _load(file or RotationSettings().path)
    instant = _instant(at, rotation)
    on_call = rotation.on_call(instant)
    zone = rotation.zone
    console.print(
        f"On call at {instant.astimezone(zone):%Y-%m-%d %H:%M %Z}: "
        f"week {on_call.week_number} of {len(rotation.weeks)} "
        f"({on_call.week_start:%a %Y-%m-%d %H:%M %Z} to {on_call.week_end:%a %Y-%m-%d %H:%M %Z})",
        soft_wrap=True,
    )
    for role in Role:
        person = on_call.holder(role)
        override = on_call.overridden.get(role)
        note = f" (override: {override.reason or 'no reason given'})" if override else ""
        local = instant.astimezone(person.zone_info)
        console.print(
            f"{role.label + ':':<20}{person.name}{note}, {person.phone}, "
            f"{person.slack_handle or 'Slack'} ({person.slack_user_id}), {person.email}, "
            f"local time {local:%a %H:%M %Z}",
            soft_wrap=True,
            highlight=False,
        )


@app.command()
def check(file: Annotated[Path, typer.Argument(help="The rotation file to validate.")]) -> None:
    """Validate a rotation file; exit 2 with the line and field of the first problem."""
    rotation = _load(file)
    console.print(
        f"{file}: OK: {len(rotation.people)} people, {len(rotation.weeks)}-week cycle from "
        f"{rotation.cycle_start}, hand-off {rotation.handoff.weekday.value.title()} "
        f"{rotation.handoff.time:%H:%M} {rotation.handoff.timezone} "
        f"(cron '{rotation.cron()}'), {len(rotation.overrides)} overrides.",
        soft_wrap=True,
        highlight=False,
    )
