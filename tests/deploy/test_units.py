"""The systemd units in deploy/ run commands that exist, with options that exist, and
every variable they use is in the example settings file.

A unit whose command was renamed fails only on the server, at night; this reads each
`ExecStart=` and asks the command line itself (`--help` after the same arguments).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ketacare.cli import app

DEPLOY = Path(__file__).parents[2] / "deploy"
KETACARE = "/opt/ketacare/.venv/bin/ketacare"
runner = CliRunner()


def _exec_lines() -> list[tuple[str, str]]:
    lines = []
    for unit in sorted(DEPLOY.glob("*.service")):
        for line in unit.read_text(encoding="utf-8").splitlines():
            if line.startswith(("ExecStart=", "ExecStartPre=")):
                lines.append((unit.name, line.split("=", 1)[1]))
    return lines


def _example_variables() -> set[str]:
    text = (DEPLOY / "ketacare.env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


EXECS = _exec_lines()


def test_every_timer_has_its_service() -> None:
    timers = {p.stem for p in DEPLOY.glob("*.timer")}
    assert timers >= {"ketacare-anchor", "ketacare-backup", "ketacare-remind", "ketacare-outbox"}
    assert all((DEPLOY / f"{name}.service").exists() for name in timers)


@pytest.mark.parametrize(("unit", "command"), EXECS, ids=[u for u, _ in EXECS])
def test_each_unit_runs_a_command_the_cli_has(unit: str, command: str) -> None:
    words = shlex.split(command)
    if words[0] != KETACARE:
        pytest.skip(f"{unit} runs {words[0]}")
    variables = {v for w in words for v in re.findall(r"\$\{([A-Z0-9_]+)\}", w)}
    assert variables <= _example_variables(), f"{unit}: not in ketacare.env.example"
    args = [re.sub(r"\$\{[A-Z0-9_]+\}", "https://clinic.example.org", w) for w in words[1:]]
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"{unit}: ketacare {' '.join(args)}: {result.output}"


def test_the_reminder_units_run_remind_then_send() -> None:
    from ketacare.clinic.followup.schedules import CHANNELS

    commands = dict(EXECS)
    words = shlex.split(commands["ketacare-remind.service"])
    channel = words[words.index("--channel") + 1]
    # a production channel: files on the server reach no patient
    assert channel in CHANNELS and channel != "file"
    assert commands["ketacare-outbox.service"].endswith("ketacare outbox send")


def test_the_morning_reminders_run_in_the_clinics_time_zone() -> None:
    timer = (DEPLOY / "ketacare-remind.timer").read_text(encoding="utf-8")
    [when] = re.findall(r"^OnCalendar=(.+)$", timer, flags=re.MULTILINE)
    example = (DEPLOY / "ketacare.env.example").read_text(encoding="utf-8")
    [zone] = re.findall(r"^KETACARE_TIMEZONE=(.+)$", example, flags=re.MULTILINE)
    assert when.split()[-1] == zone  # not the server's zone, often UTC
