"""A bad rotation file gets an error naming its line and field; the CLI reads the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from oncall.rotation import RotationFileError, load_rotation, parse_rotation
from oncall.rotation.cli import app
from oncall.rotation.settings import EXAMPLE_ROTATION

EXAMPLE = EXAMPLE_ROTATION.read_text()


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _error(text: str) -> RotationFileError:
    with pytest.raises(RotationFileError) as caught:
        parse_rotation(text, "rotation.yaml")
    return caught.value


@pytest.mark.parametrize(
    ("old", "new", "field", "problem"),
    [
        (
            "    timezone: America/Chicago ",
            "    timezone: CST ",
            "people.david.kim.timezone",
            "unknown time zone 'CST'",
        ),
        (
            "escalation_manager: lisa.wang}\n  - {primary: alex.chen",
            "escalation_manager: lisa.wong}\n  - {primary: alex.chen",
            "weeks.2.escalation_manager",
            "unknown person 'lisa.wong'",
        ),
        ('  time: "09:00"', "  time: 9:00", "handoff.time", "write the time quoted"),
        ("cycle_start: 2026-01-05", "cycle_start: 2026-01-06", "cycle_start", "is a Tuesday"),
        (
            "    email: david.kim@company.com",
            "    email: david.kim",
            "people.david.kim.email",
            "not an e-mail address",
        ),
        (
            "    slack_user_id: U07GA0SARA2",
            "    slack_user_id: sarah",
            "people.sarah.johnson.slack_user_id",
            "should match pattern",
        ),
        (
            "  primary: S07GAONCALLP",
            "  primary: S07GAONCALLP\n  tertiary: S07GAONCALLT",
            "usergroups.tertiary.[key]",
            "Input should be",
        ),
    ],
)
def test_errors_name_line_and_field(old: str, new: str, field: str, problem: str) -> None:
    assert old in EXAMPLE
    text = EXAMPLE.replace(old, new, 1)
    error = _error(text)
    assert error.field == field
    assert problem in error.problem
    changed = next(line for line in new.splitlines() if line not in old.splitlines())
    assert error.line == _line_of(text, changed)
    assert str(error).startswith(f"rotation.yaml:{error.line}: {field}: ")


def test_yaml_syntax_error_names_the_line() -> None:
    error = _error("handoff:\n  weekday: monday\n  time: [09:00\n")
    assert error.line == 4 and "not valid YAML" in error.problem


def test_missing_field_points_at_its_parent() -> None:
    text = EXAMPLE.replace('    phone: "+1-555-0103"\n', "", 1)
    error = _error(text)
    assert error.field == "people.david.kim.phone"
    assert error.line == _line_of(text, "  david.kim:") + 1  # the mapping under david.kim


def test_cli_who_prints_roles_contacts_and_week(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["who", "--at", "2026-03-09T09:30:00-07:00"])
    assert result.exit_code == 0, result.output
    assert "week 2 of 4" in result.output
    lines = result.output.splitlines()
    primary = next(line for line in lines if line.startswith("Primary:"))
    assert "Sarah Johnson" in primary and "+1-555-0102" in primary and "12:30 EDT" in primary
    assert "David Kim" in next(line for line in lines if line.startswith("Secondary:"))
    assert "Mike Rodriguez" in next(line for line in lines if line.startswith("Escalation"))


def test_cli_who_reads_the_file_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    custom = tmp_path / "rotation.yaml"
    custom.write_text(EXAMPLE.replace("name: David Kim", "name: David K. Kim"))
    monkeypatch.setenv("ONCALL_ROTATION_FILE", str(custom))
    result = CliRunner().invoke(app, ["who", "--at", "2026-01-19T12:00"])  # local time
    assert result.exit_code == 0, result.output
    assert "David K. Kim" in result.output and "week 3 of 4" in result.output


def test_cli_check_exits_2_with_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "rotation.yaml"
    bad.write_text(EXAMPLE.replace("    timezone: America/Chicago", "    timezone: CST", 1))
    result = CliRunner().invoke(app, ["check", str(bad)])
    assert result.exit_code == 2
    line = _line_of(bad.read_text(), "timezone: CST")
    assert f"rotation.yaml:{line}: people.david.kim.timezone" in result.output.replace("\n", "")
    ok = CliRunner().invoke(app, ["check", str(EXAMPLE_ROTATION)])
    assert ok.exit_code == 0 and "OK" in ok.output


def test_example_loads() -> None:
    rotation = load_rotation(EXAMPLE_ROTATION)
    assert len(rotation.weeks) == 4 and rotation.cycle_start.isoformat() == "2026-01-05"


def test_cli_check_shows_bracketed_fields_and_overrides(tmp_path: Path) -> None:
    bad = tmp_path / "rotation.yaml"
    bad.write_text(EXAMPLE.replace("  primary: S07GAONCALLP", "  primary: S07\n  tertiary: S1", 1))
    result = CliRunner().invoke(app, ["check", str(bad)])
    assert result.exit_code == 2 and "usergroups.tertiary.[key]" in result.output
    override = tmp_path / "override.yaml"
    override.write_text(
        EXAMPLE.replace(
            "overrides: []",
            "overrides:\n  - {role: secondary, person: lisa.wang, start: 2026-01-20T00:00:00,"
            " end: 2026-01-21T00:00:00, reason: cover}",
        )
    )
    who = CliRunner().invoke(app, ["who", "--file", str(override), "--at", "2026-01-20T12:00"])
    assert who.exit_code == 0, who.output
    assert "Secondary:          Lisa Wang (override: cover)" in who.output
