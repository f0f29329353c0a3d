"""The whole demo clinic (``ketacare demo``): its records, its pages, its example policy.

The clinic is seeded once for the module (about ten seconds of CPU at the suite's
password cost) through the same entry the command uses, and once more for the
determinism check.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tomllib
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from conftest import DEMO_NOW
from ketacare.clinic import demo
from ketacare.clinic.demo_policy import (
    DEMO_CLINIC_HOURS_FILE,
    DEMO_OUTCOME_POLICY_FILE,
    DEMO_OUTCOME_SETTINGS_FILE,
    DEMO_PROTOCOL_POLICY_FILE,
    DEMO_SESSION_POLICY_FILE,
    DEMO_SITE_POLICY_FILE,
    demo_settings,
)
from ketacare.infra.db import make_engine, make_sessionmaker, unit_of_work
from ketacare.infra.migrate import upgrade
from ketacare.infra.settings import load_settings

NOW = DEMO_NOW  # 2026-03-02 09:00 UTC: the instant the demo clinic is seeded at


def _seed(path: Path) -> None:
    """Seed the whole demo clinic into a new SQLite file (its speed: bench/demo_seed.py)."""
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    with unit_of_work(make_sessionmaker(engine)) as session:
        demo.seed(session=session, now=NOW, settings=load_settings(database_url=url), history=True)
    engine.dispose()


@pytest.fixture(scope="module")
def seeded(seeded_demo: Path) -> dict[str, Any]:
    """The whole demo clinic seeded at NOW (tests/conftest.py: once per worker)."""
    return {"path": seeded_demo}


def _rows(path: Path, sql: str) -> list[Any]:
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        rows = list(conn.execute(text(sql)))
    engine.dispose()
    return rows


def test_thirty_patients_in_the_four_condition_groups(seeded: dict[str, Any]) -> None:
    # the first-recorded diagnosis of each patient, grouped as the demo lists them:
    # CRPS (G90.5x, G56.4x, G57.7x), fibromyalgia (M79.7), depression (F32.x, F33.x),
    # neuropathic pain (every other code of the demo: B02.23, E11.42, G54.6, G89.x)
    first = _rows(
        seeded["path"],
        "SELECT patient_id, icd10_code FROM conditions c WHERE id = "
        "(SELECT min(id) FROM conditions WHERE patient_id = c.patient_id)",
    )
    assert len(first) == 30

    def group(code: str) -> str:
        if code.startswith(("G90.5", "G56.4", "G57.7")):
            return "crps"
        if code == "M79.7":
            return "fibromyalgia"
        if code.startswith(("F32", "F33")):
            return "depression"
        return "neuropathic"

    assert Counter(group(code) for _, code in first) == {
        "crps": 8,
        "fibromyalgia": 7,
        "neuropathic": 7,
        "depression": 8,
    }
    names = _rows(seeded["path"], "SELECT given_name, family_name FROM patients WHERE id = 1")
    assert tuple(names[0]) == ("Maria", "Jansen")  # patient1's record


def test_accounts_two_physicians_and_patient_accounts(seeded: dict[str, Any]) -> None:
    roles = Counter(r for (r,) in _rows(seeded["path"], "SELECT role FROM users"))
    assert roles == {
        "physician": 2,
        "nurse": 1,
        "therapist": 1,
        "researcher": 1,
        "admin": 1,
        "patient": 4,
    }


def test_plans_signed_by_one_physician_and_cosigned_by_the_other(
    seeded: dict[str, Any],
) -> None:
    rows = _rows(
        seeded["path"],
        "SELECT p.status, p.requires_review, s.username, c.username FROM plans p "
        "LEFT JOIN users s ON s.id = p.signed_by LEFT JOIN users c ON c.id = p.cosigned_by",
    )
    assert len(rows) > 30 and not [r for r in rows if r[0] in ("draft", "awaiting_cosign")]
    for _status, review, signer, cosigner in rows:
        assert signer == "physician"
        # every demo plan leaves a soft limit to the clinic, so every one needs review
        assert review and cosigner == "physician2"


def test_every_plan_goal_has_a_measure_and_a_target(seeded: dict[str, Any]) -> None:
    # the plan page shows "measure: target"; goals of another shape showed as ":"
    import json

    goals = [json.loads(g) for (g,) in _rows(seeded["path"], "SELECT goals FROM plans")]
    every = [goal for g in goals for goal in g]
    assert len(every) > 20
    assert all(set(goal) == {"measure", "target"} and goal["target"] for goal in every)


def test_sessions_completed_with_vitals_and_scores_before_and_after(
    seeded: dict[str, Any],
) -> None:
    path = seeded["path"]
    states = dict(_rows(path, "SELECT state, count(*) FROM dosing_sessions GROUP BY state"))
    assert set(states) == {"discharged"} and states["discharged"] > 200
    per_session = _rows(
        path,
        "SELECT session_id, sum(kind = 'Vitals'), sum(kind = 'Discharge') FROM session_events "
        "GROUP BY session_id",
    )
    assert all(vitals >= 4 and discharged == 1 for _, vitals, discharged in per_session)
    contexts = dict(_rows(path, "SELECT context, count(*) FROM assessments GROUP BY context"))
    # a score before and after every session of a first course (a booster course is two
    # sessions without them), and follow-ups after the courses
    iv_plans, iv_patients = _rows(
        path,
        "SELECT count(*), count(DISTINCT patient_id) FROM plans WHERE protocol_id != "
        "'oral-followon'",
    )[0]
    boosters = iv_plans - iv_patients
    assert boosters > 0
    expected = states["discharged"] - 2 * boosters
    assert contexts["pre_session"] == expected
    # the score the day after a session given in the last day is not due yet
    assert expected - 3 <= contexts["post_session"] <= expected
    assert contexts["follow_up"] > 100
    alerts = _rows(path, "SELECT session_id IS NULL, acknowledged_at IS NULL FROM clinical_alerts")
    assert any(not s for s, _ in alerts) and any(s for s, _ in alerts)  # chair and questionnaire
    assert _rows(path, "SELECT count(*) FROM booster_decisions")[0][0] > 0
    assert _rows(path, "SELECT count(*) FROM take_home_dispenses")[0][0] > 0
    assert _rows(path, "SELECT count(*) FROM appointments WHERE status = 'booked'")[0][0] > 0


def _local(value: str, zone: ZoneInfo) -> datetime:
    """A stored UTC instant (naive text) in the clinic's zone."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC).astimezone(zone)


def test_the_history_keeps_the_clinic_hours_and_books_its_sessions(
    seeded: dict[str, Any],
) -> None:
    """Every session and take-home supply of the history falls on a day the demo clinic
    opens (its EXAMPLE hours file, read here on its own), within its hours; the sessions
    were booked and attended; the bookings a stopped plan left were cancelled with its
    reason, and no booking that has passed still waits for a patient."""
    path = seeded["path"]
    zone = load_settings().zone
    with DEMO_CLINIC_HOURS_FILE.open("rb") as handle:
        hours = tomllib.load(handle)
    weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    open_days = {weekdays.index(d) for d in hours["opening"]["days"]}
    closed: set[date] = set()
    for c in hours["closure"]:
        first, last = c.get("date", c.get("from")), c.get("date", c.get("to"))
        closed |= {first + timedelta(days=k) for k in range((last - first).days + 1)}
    opens, closes = (time.fromisoformat(hours["opening"][k]) for k in ("opens", "closes"))

    def on_open_day(at: datetime) -> bool:
        return at.weekday() in open_days and at.date() not in closed

    sessions = _rows(
        path,
        "SELECT s.created_at, s.appointment_id, a.status, a.starts_at, a.ends_at "
        "FROM dosing_sessions s LEFT JOIN appointments a ON a.id = s.appointment_id",
    )
    assert len(sessions) > 200
    for created, appointment, status, starts, ends in sessions:
        opened = _local(created, zone)
        assert on_open_day(opened), f"a session was given on {opened:%a %d %b %Y}"
        assert opens <= opened.time() <= closes
        if appointment is not None:
            assert status == "attended" and _local(starts, zone) == opened
            assert _local(ends, zone).time() <= closes
    booked = [s for s in sessions if s[1] is not None]
    assert len(booked) >= 0.95 * len(sessions)
    supplies = _rows(path, "SELECT dispensed_at FROM take_home_dispenses")
    assert supplies and all(on_open_day(_local(at, zone)) for (at,) in supplies)
    cancelled = _rows(
        path,
        "SELECT e.reason, e.at, a.starts_at FROM appointments a JOIN appointment_events e "
        "ON e.appointment_id = a.id AND e.kind = 'cancelled' WHERE a.status = 'cancelled'",
    )
    assert cancelled and all(
        reason.startswith("plan stopped: ") and at < starts for reason, at, starts in cancelled
    )
    passed = _rows(
        path,
        f"SELECT count(*) FROM appointments WHERE status = 'booked' AND starts_at < "
        f"'{NOW.replace(tzinfo=None).isoformat(sep=' ')}'",
    )
    assert passed == [(0,)]
    moved = _rows(path, "SELECT reason FROM appointment_events WHERE kind = 'booked'")
    # a moved session's booking names the day it was planned for, then why it moved
    assert any(
        r and re.fullmatch(r"planned Sat \d{2} \w{3} \d{4}: closed on Saturdays .*", r)
        for (r,) in moved
    )
    assert not any(r and r.startswith("closed on") for (r,) in moved)


def test_an_esketamine_course_under_the_rems_with_forms_submitted_and_one_due(
    seeded: dict[str, Any],
) -> None:
    path = seeded["path"]
    sessions = _rows(
        path,
        "SELECT s.id FROM dosing_sessions s JOIN plans p ON p.id = s.plan_id "
        "WHERE p.protocol_id = 'esketamine-trd' ORDER BY s.id",
    )
    assert len(sessions) >= 4
    kinds = dict(_rows(path, "SELECT kind, count(*) FROM rems_form_entries GROUP BY kind"))
    # every session's form answered and ready; all but the newest submitted three days on
    assert kinds["answers"] == kinds["ready"] == len(sessions)
    assert 1 <= len(sessions) - kinds["submitted"] <= 2
    devices = _rows(
        path,
        "SELECT count(*) FROM session_events e JOIN dosing_sessions s ON s.id = e.session_id "
        "JOIN plans p ON p.id = s.plan_id WHERE p.protocol_id = 'esketamine-trd' "
        "AND e.kind = 'SelfAdministration'",
    )[0][0]
    assert devices == len(sessions)
    assert _rows(path, "SELECT count(*) FROM rems_certifications")[0][0] == 1
    assert _rows(path, "SELECT count(*) FROM rems_enrolments")[0][0] == 1


def test_every_planned_therapy_session_has_the_patient_s_psychotherapy_consent(
    seeded: dict[str, Any],
) -> None:
    """A demo patient with a therapy session planned signed the psychotherapy consent
    (countersigned, not withdrawn) before the session's day: the demo's therapist
    and plan pages carry no missing-consent warning."""
    from ketacare.clinic.consent.service import program_problem

    path = seeded["path"]
    planned = _rows(
        path,
        "SELECT patient_id, planned_date FROM therapy_sessions",
    )
    assert planned, "the demo plans integration sessions"
    engine = make_engine(f"sqlite:///{path}")
    with make_sessionmaker(engine)() as session:
        problems = {
            pid: program_problem(session=session, patient_id=pid, program_id="psychotherapy")
            for pid, _ in planned
        }
    engine.dispose()
    assert problems == dict.fromkeys(problems)
    signed = dict(
        _rows(
            path,
            "SELECT c.patient_id, min(c.signed_at) FROM consents c "
            "JOIN consent_templates t ON t.id = c.template_id "
            "WHERE t.program = 'psychotherapy' GROUP BY c.patient_id",
        )
    )
    assert all(str(signed[pid])[:10] < str(day) for pid, day in planned)


def test_no_dose_is_given_while_a_self_harm_answer_is_open(seeded: dict[str, Any]) -> None:
    """The demo shows the practice the product asks for: a PHQ-9 item 9 above 0 is
    acknowledged (what the physician did) before the patient's next dose; an alert still
    open belongs to a patient not dosed since it was raised."""
    path = seeded["path"]
    alerts = _rows(
        path,
        "SELECT patient_id, raised_at, acknowledged_at FROM clinical_alerts "
        "WHERE kind = 'phq9_item9_positive'",
    )
    assert alerts, "the demo has a patient who answered item 9 above 0"
    for pid, raised, acknowledged in alerts:
        end = acknowledged or NOW.replace(tzinfo=None).isoformat(sep=" ")
        doses = _rows(
            path,
            "SELECT e.at FROM session_events e JOIN dosing_sessions s ON s.id = e.session_id "
            f"WHERE s.patient_id = {int(pid)} "
            "AND e.kind IN ('StartInfusion', 'SelfAdministration') "
            f"AND e.at >= '{raised}' AND e.at < '{end}'",
        )
        assert doses == [], (pid, raised, acknowledged)


def test_every_vitals_set_at_the_chair_is_a_whole_news2_set(seeded: dict[str, Any]) -> None:
    """The demo's chair records the seven NEWS2 parameters (RCP 2017), so its sessions
    show a score, not "incomplete set" on every row."""
    import json

    from sqlalchemy import select

    from ketacare.clinic.sessions.cache import state_for
    from ketacare.clinic.sessions.orm import DosingSession

    rows = _rows(seeded["path"], "SELECT data FROM session_events WHERE kind = 'Vitals'")
    assert rows
    needed = ("rr_per_min", "spo2_pct", "supplemental_oxygen", "temperature_c", "sbp_mmhg")
    needed += ("hr_per_min", "consciousness")
    for (data,) in rows:
        values = json.loads(data) if isinstance(data, str) else data
        assert all(values.get(k) is not None for k in needed), values
        assert 35.0 < values["temperature_c"] < 38.0 and values["consciousness"] == "alert"
    # and the chair scores them: a given session's every set has its NEWS2
    engine = make_engine(f"sqlite:///{seeded['path']}")
    with make_sessionmaker(engine)() as session:
        discharged = select(DosingSession).where(DosingSession.state == "discharged")
        row = session.scalars(discharged.limit(1)).first()
        assert row is not None
        state = state_for(session=session, row=row)
        assert state.vitals and len(state.news2) == len(state.vitals)
    engine.dispose()


def test_the_same_clock_gives_the_same_records(seeded: dict[str, Any], tmp_path: Path) -> None:
    again = tmp_path / "again.sqlite3"
    _seed(again)

    def digest(path: Path) -> str:
        h = hashlib.sha256()
        for sql in (
            "SELECT id, given_name, family_name, birth_date FROM patients ORDER BY id",
            "SELECT id, patient_id, protocol_id, status, total_dose_mg FROM plans ORDER BY id",
            "SELECT session_id, seq, kind, at, data FROM session_events ORDER BY id",
            "SELECT patient_id, instrument_id, total, completed_at FROM assessments ORDER BY id",
            "SELECT patient_id, decision FROM research_consents ORDER BY id",
        ):
            for row in _rows(path, sql):
                h.update(repr(tuple(row)).encode())
        return h.hexdigest()

    assert digest(again) == digest(seeded["path"])


@pytest.fixture(scope="module")
def demo_client(
    seeded: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    from ketacare.app import create_app

    folder = tmp_path_factory.mktemp("demo-app")
    shutil.copy(seeded["path"], folder / "demo.sqlite3")
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'demo.sqlite3'}",
        var_dir=folder / "var",
        secret_key="d" * 40,
        totp_required_roles="",
    )
    app = create_app(settings, clock=lambda: NOW)
    yield TestClient(app)
    app.state.engine.dispose()


def _token(client: TestClient, username: str) -> dict[str, str]:
    r = client.post(
        "/api/v1/auth/token", data={"username": username, "password": demo.DEMO_PASSWORD}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_the_server_applies_the_example_policy_to_the_demo_database(
    demo_client: TestClient,
) -> None:
    settings = demo_client.app.state.ctx.settings  # type: ignore[attr-defined]
    assert settings.session_policy_file == DEMO_SESSION_POLICY_FILE
    assert settings.outcome_policy_file == DEMO_OUTCOME_POLICY_FILE
    assert settings.site_policy_file == DEMO_SITE_POLICY_FILE
    assert settings.outcome_loss_confirmations == 2
    assert settings.outcome_lost_after_days == 90


def test_dashboard_kaplan_meier_and_outcome_panel_have_data(demo_client: TestClient) -> None:
    physician = _token(demo_client, "physician")
    outcomes = demo_client.get("/api/v1/analytics/outcomes", headers=physician).json()
    assert outcomes["parameters"]["durability_computed"] is True
    durability = demo_client.get("/api/v1/analytics/durability", headers=physician).json()
    curves = {d["definition_id"]: d["curves"] for d in durability["definitions"]}
    pain = curves["pain-30"][0]
    assert d_computed(durability, "pain-30") and pain["n"] >= 10 and pain["events"] >= 1
    assert len(pain["time_days"]) == len(pain["survival"]) > 3
    panel = demo_client.get("/api/v1/patients/1/outcomes", headers=physician).json()
    assert panel["status"]["computed"] is True and "responder" in panel["status"]["text"]
    page = demo_client.get("/dashboard", headers=physician)
    assert page.status_code == 200
    assert "EXAMPLE site policy" in page.text and "not clinical recommendations" in page.text


def d_computed(durability: dict[str, Any], definition: str) -> bool:
    return any(
        d["definition_id"] == definition and d["computed"] for d in durability["definitions"]
    )


def test_the_registry_export_holds_the_consenting_patients(demo_client: TestClient) -> None:
    consenting = demo_client.app.state.ctx.sessions  # type: ignore[attr-defined]
    with consenting() as session:
        granted = session.execute(
            text(
                "SELECT count(*) FROM research_consents r WHERE decision = 'granted' AND id = "
                "(SELECT max(id) FROM research_consents WHERE patient_id = r.patient_id)"
            )
        ).scalar_one()
    assert granted > 10
    r = demo_client.get("/api/v1/research/export", headers=_token(demo_client, "researcher"))
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        names = archive.namelist()
        patients_csv = next(n for n in names if n.endswith("patients.csv"))
        lines = archive.read(patients_csv).decode().strip().splitlines()
    assert len(lines) - 1 == granted


def test_a_database_not_seeded_with_history_gets_no_example_session_policy(
    settings: Any,
) -> None:
    # the test suite's fixture database is a demo without history: protocol policy only
    assert demo_settings(settings).session_policy_file is None
    bare = load_settings(protocol_policy_file=None)
    applied = demo_settings(bare)
    assert applied.protocol_policy_file == DEMO_PROTOCOL_POLICY_FILE
    assert applied.session_policy_file is None and applied.outcome_loss_confirmations is None
    # an operator's own file is never replaced
    own = load_settings(session_policy_file=Path("/clinic/session.toml"))
    assert demo_settings(own, example_policy=True).session_policy_file == Path(
        "/clinic/session.toml"
    )


def test_the_app_on_the_fixture_database_applies_no_example_session_policy(app: Any) -> None:
    assert app.state.ctx.settings.session_policy_file is None
    assert app.state.demo_example_policy is False


POLICY_FILES = (
    DEMO_PROTOCOL_POLICY_FILE,
    DEMO_SITE_POLICY_FILE,
    DEMO_SESSION_POLICY_FILE,
    DEMO_OUTCOME_POLICY_FILE,
    DEMO_OUTCOME_SETTINGS_FILE,
)


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_every_example_value_is_marked_as_an_example(path: Path) -> None:
    """Each number of a demo policy file has EXAMPLE in a comment on its line, or in the
    comment block of its table (or the block just above it)."""
    tomllib.loads(path.read_text())  # a valid TOML file
    block: list[str] = []  # comment lines since the last table header or value
    table_note = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            block.append(stripped)
            continue
        if not stripped:
            continue
        if stripped.startswith("["):
            table_note = " ".join(block)
            block = []
            continue
        key, _, value = stripped.partition("=")
        if re.match(r"^\s*(-?[\d.]+|\{)", value):
            note = " ".join(block) + " " + line + " " + table_note
            assert "EXAMPLE" in note, f"{path.name}: {key.strip()} is not marked as an EXAMPLE"
        block = []
    assert "not a clinical recommendation" in path.read_text() or (
        "not a recommendation" in path.read_text()
    )


def test_courses_going_on_after_today_have_questionnaires_coming_due(
    seeded: dict[str, Any],
) -> None:
    """Each course carries the demo's outcome schedule (its measure before each session
    and the morning after), which the demo's patients keep: at the seeding instant some
    are due before a coming session, and none is overdue."""
    from ketacare.clinic.audit.service import Actor
    from ketacare.clinic.followup import schedules

    engine = make_engine(f"sqlite:///{seeded['path']}")
    with make_sessionmaker(engine)() as session:
        assert session.scalar(text("SELECT count(*) FROM outcome_schedules")) >= 20
        rows = schedules.overview(
            session=session, actor=Actor(2, "physician", "physician"), now=NOW
        )
    engine.dispose()
    assert sum(r.due for r in rows) >= 1
    assert sum(r.overdue for r in rows) == 0
    for row in rows:
        for _, status in row.items:
            assert status.item.when == "before_each_session", status.reason


def test_a_patient_reads_their_own_record_in_their_own_words(demo_client: TestClient) -> None:
    """Staff wording (a PDF's hash, the capacity of a countersignature, why ketacare has no
    CADSS score, the clinic's registry note) is for staff; the patient reads plain words."""
    from conftest import page_login

    def chart(username: str) -> str:
        client = TestClient(demo_client.app)
        page_login(client, username)
        return client.get("/patients/1").text

    own, staff = chart("patient1"), chart("physician")
    assert "Your signed copy (PDF)" in own and 'title="SHA-256"' not in own
    assert 'title="SHA-256"' in staff and ">Signed PDF</a>" in staff
    assert "countersigned by Dr Priya Physician" in own and "(clinician)" not in own

    def shown(html: str, testid: str) -> str:
        return html.split(f'data-testid="{testid}">')[1].split("</")[0]

    note = shown(own, "dissociation-note")
    assert re.fullmatch(
        r"The nurse noted at (\d+) of your sessions whether you had dissociation \(feeling "
        r"detached or unreal\): present at (\d+), absent at (\d+)\. There is no score for it\.",
        note,
    ), note
    assert "has no sourced scoring in ketacare" in shown(staff, "dissociation-note")
    note = shown(own, "research-registry-note")
    assert re.search(r"registry: you agreed on \d{4}-\d\d-\d\d, under", note), note
    assert "clinic recorded" not in note
    # one status, not "not signed" beside "you agreed": the unsigned thing is the form
    line = own.split('data-testid="standing-research"')[1].split("</li>")[0]
    assert "the written form is not signed" in line and ">not signed<" not in line
