"""The database schema gate and the clinic commands of the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ketacare.clinic.demo import DEMO_PASSWORD
from ketacare.infra.db import make_engine
from ketacare.infra.errors import SchemaBehind
from ketacare.infra.migrate import current_revision, head_revision, upgrade
from ketacare.infra.settings import load_settings

KETACARE = [sys.executable, "-m", "ketacare.cli"]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KETACARE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )


def test_app_refuses_a_database_whose_schema_is_behind(tmp_path: Path) -> None:
    from ketacare.app import create_app

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    with pytest.raises(SchemaBehind, match=r"schema is at empty .* run `ketacare db upgrade`"):
        create_app(load_settings(database_url=url, var_dir=tmp_path))
    engine = make_engine(url)
    assert upgrade(engine) == (None, head_revision())
    assert current_revision(engine) == head_revision()
    create_app(load_settings(database_url=url, var_dir=tmp_path))


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_timestamps_are_stored_utc_and_naive_ones_refused(settings: Any) -> None:
    from datetime import datetime

    from ketacare.clinic.patients.orm import BodyMeasurement
    from ketacare.clinic.system.orm import AppMeta  # noqa: F401  (metadata complete)
    from ketacare.infra.db import make_sessionmaker

    engine = make_engine(settings.effective_database_url)
    with make_sessionmaker(engine)() as session:
        row = BodyMeasurement(patient_id=1, weight_kg=70, measured_at=datetime(2026, 1, 1, 12))
        session.add(row)
        with pytest.raises(Exception, match="naive datetime"):
            session.flush()
    engine.dispose()


def test_cli_upgrade_demo_verify_and_bad_input(tmp_path: Path) -> None:
    env = {"KETACARE_VAR_DIR": str(tmp_path), "KETACARE_DATABASE_URL": ""}
    r = run_cli("demo", "--no-history", env=env)
    assert r.returncode == 2 and "ketacare db upgrade" in r.stderr
    assert run_cli("db", "upgrade", env=env).returncode == 0
    r = run_cli("demo", "--if-empty", "--no-history", env=env)
    assert r.returncode == 0 and DEMO_PASSWORD in r.stdout
    r = run_cli("demo", "--if-empty", "--no-history", env=env)
    assert r.returncode == 0 and "already seeded" in r.stdout and DEMO_PASSWORD in r.stdout
    r = run_cli("audit", "verify", "--json", env=env)
    assert r.returncode == 0
    report = json.loads(r.stdout)
    assert report["ok"] is True and report["rows"] > 50
    r = run_cli(
        "user",
        "create",
        "xy",
        "--role",
        "surgeon",
        env={**env, "KETACARE_NEW_PASSWORD": "long-enough-pw"},
    )
    assert r.returncode == 2 and "role 'surgeon' is not known" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli(
        "user",
        "create",
        "nurse9",
        "--role",
        "nurse",
        env={**env, "KETACARE_NEW_PASSWORD": "long-enough-pw"},
    )
    assert r.returncode == 0 and "created nurse account nurse9" in r.stdout


def test_cli_audit_verify_exits_1_on_a_tampered_trail(tmp_path: Path) -> None:
    env = {"KETACARE_VAR_DIR": str(tmp_path), "KETACARE_DATABASE_URL": ""}
    run_cli("db", "upgrade", env=env)
    run_cli("demo", "--no-history", env=env)
    engine = make_engine(f"sqlite:///{tmp_path / 'ketacare.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_events_no_update"))
        conn.execute(text("UPDATE audit_events SET username = 'mallory' WHERE id = 7"))
    engine.dispose()
    r = run_cli("audit", "verify", env=env)
    assert r.returncode == 1
    assert "BROKEN at event 7" in r.stderr and "altered" in r.stderr


def test_demo_database_is_served_on_loopback_only(tmp_path: Path) -> None:
    env = {"KETACARE_VAR_DIR": str(tmp_path), "KETACARE_DATABASE_URL": ""}
    run_cli("db", "upgrade", env=env)
    run_cli("demo", "--no-history", env=env)
    r = run_cli("serve", "--host", "0.0.0.0", env=env)
    assert r.returncode == 2
    assert "served on 127.0.0.1 only" in r.stderr


def test_every_command_has_help() -> None:
    from typer.testing import CliRunner

    from ketacare.cli import app

    runner = CliRunner()
    for args in (["serve"], ["demo"], ["db", "upgrade"], ["user", "create"], ["audit", "verify"]):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, args
        assert "Usage" in result.output
