"""The research registry: consent decides who is in an export; no identifier leaves;
profiles, the data use agreement, the audit, the roles, the pages and the command."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from plan_helpers import IV_CHECKS, _signed


def _consent(client: Any, team: dict[str, Any], pid: int, decision: str) -> Any:
    return client.post(
        f"/api/v1/patients/{pid}/research-consent",
        headers=team["nurse"],
        json={"decision": decision, "note": "registry consent form v2"},
    )


def _give_one_session(client: Any, team: dict[str, Any], plan_id: int, clock: Any) -> None:
    sid = client.post(
        f"/api/v1/plans/{plan_id}/sessions", headers=team["nurse"], json={"session_number": 1}
    ).json()["id"]
    events = [
        {"kind": "check_in"},
        {
            "kind": "vitals",
            "sbp_mmhg": 120,
            "dbp_mmhg": 75,
            "hr_per_min": 70,
            "spo2_pct": 98,
            "rr_per_min": 14,
        },
        *[
            {
                "kind": "pre_dose_check",
                "item": i,
                "ok": True,
                "detail": "lot K1" if i == "medication_lot" else "",
            }
            for i in IV_CHECKS
        ],
        {"kind": "start_infusion", "rate_mg_per_h": 24.5},
    ]
    for event in events:
        seq = client.get(f"/api/v1/sessions/{sid}", headers=team["nurse"]).json()["last_seq"]
        r = client.post(
            f"/api/v1/sessions/{sid}/events",
            headers=team["nurse"],
            json={"expected_seq": seq, "event": event},
        )
        assert r.status_code == 201, r.text
    clock.now += timedelta(hours=4)
    seq = client.get(f"/api/v1/sessions/{sid}", headers=team["nurse"]).json()["last_seq"]
    client.post(
        f"/api/v1/sessions/{sid}/events",
        headers=team["nurse"],
        json={"expected_seq": seq, "event": {"kind": "side_effects", "nausea": True}},
    ).raise_for_status()
    seq += 1
    client.post(
        f"/api/v1/sessions/{sid}/events",
        headers=team["nurse"],
        json={"expected_seq": seq, "event": {"kind": "stop", "reason": "completed"}},
    ).raise_for_status()


def _tables(content: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        out = {
            name.removesuffix(".csv"): list(csv.DictReader(io.StringIO(z.read(name).decode())))
            for name in z.namelist()
            if name.endswith(".csv")
        }
        out["README"] = [{"text": z.read("README.txt").decode()}]
    return out


@pytest.fixture
def registry(client: Any, clinic: dict[str, Any], clock: Any) -> dict[str, Any]:
    team, pid = clinic["team"], clinic["pid"]
    client.post(
        f"/api/v1/patients/{pid}/assessments",
        headers=team["nurse"],
        json={"instrument": "nrs_pain", "answers": [8]},
    ).raise_for_status()
    clock.now += timedelta(minutes=10)  # the baseline score, then the first dose
    plan = _signed(client, clinic)
    _give_one_session(client, team, plan["id"], clock)
    assert _consent(client, team, pid, "granted").status_code == 201
    # demo patient 2 consented, then withdrew; patient 3 never decided
    assert _consent(client, team, 2, "granted").status_code == 201
    clock.now += timedelta(minutes=1)
    assert _consent(client, team, 2, "withdrawn").status_code == 201
    return {**clinic, "plan": plan}


def test_only_consenting_patients_and_no_identifier_leave(
    app: Any, client: Any, registry: dict[str, Any], login_api: Any
) -> None:
    from ketacare.clinic.audit.orm import AuditEvent
    from ketacare.clinic.patients.orm import Patient

    researcher = login_api("researcher")
    r = client.get("/api/v1/research/export", headers=researcher)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    t = _tables(r.content)
    [patient] = t["patients"]
    assert patient["sex"] == "female" and patient["conditions"] == ""
    # born 1980-05-05, first dose 2 March 2026: 45 years
    assert patient["age_at_first_dose"] == "45" and patient["first_dose_year"] == "2026"
    [session] = t["sessions"]
    assert (session["session"], session["mg"], session["adverse"]) == ("1", "98.0", "nausea")
    assert "day" not in session
    [score] = [row for row in t["scores"] if row["instrument"] == "nrs_pain"]
    assert (score["total"], score["after_session"]) == ("8.0", "0")
    assert {row["instrument"] for row in t["scores"]} == {"nrs_pain", "ort", "dast10"}
    everything = json.dumps(t)
    with app.state.ctx.sessions() as s:
        p = s.get(Patient, registry["pid"])
        for identifier in (p.family_name, p.given_name, p.mrn, p.birth_date.isoformat(), "2026-03"):
            assert identifier not in everything, identifier
        export = s.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "export", AuditEvent.resource_type == "registry"
            )
        ).one()
    assert export.username == "researcher"
    assert (
        export.detail["patients"] == [registry["pid"]] and export.detail["profile"] == "year_only"
    )
    # a code is drawn anew for every export
    again = _tables(client.get("/api/v1/research/export", headers=researcher).content)
    assert again["patients"][0]["code"] != patient["code"]


def test_the_limited_profile_needs_a_data_use_agreement_and_counts_days(
    client: Any, registry: dict[str, Any], login_api: Any
) -> None:
    researcher = login_api("researcher")
    r = client.get("/api/v1/research/export?profile=limited", headers=researcher)
    assert r.status_code == 422 and "data use agreement" in r.json()["detail"]
    r = client.get(
        "/api/v1/research/export",
        params={"profile": "limited", "data_use_agreement": "DUA-2026-04 (university registry)"},
        headers=researcher,
    )
    assert r.status_code == 200
    t = _tables(r.content)
    assert t["sessions"][0]["day"] == "0"
    # days are whole 24-hour periods from the first dose: the baseline pain score, taken
    # ten minutes before it, falls in day -1
    assert {row["day"] for row in t["scores"] if row["instrument"] == "nrs_pain"} == {"-1"}
    assert "DUA-2026-04" in t["README"][0]["text"] and "164.514(e)" in t["README"][0]["text"]


def test_the_page_export_refused_shows_the_dashboard_with_the_reason(
    client: Any, registry: dict[str, Any], login_page: Any
) -> None:
    """Downloaded from the dashboard's form without its agreement, the limited export is
    refused on the dashboard itself, its form there to fill in, not on a bare error page."""
    login_page("researcher")
    r = client.get("/research/export.zip", params={"profile": "limited"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/html")
    assert "data use agreement" in r.text and 'data-testid="registry-export"' in r.text
    assert "Clinic outcomes" in r.text
    ok = client.get(
        "/research/export.zip", params={"profile": "limited", "data_use_agreement": "DUA-7"}
    )
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/zip"


def test_roles_and_the_append_only_consent(
    app: Any, client: Any, registry: dict[str, Any], login_api: Any
) -> None:
    pid = registry["pid"]
    for who in ("nurse", "physician", "admin", "patient1"):
        assert client.get("/api/v1/research/export", headers=login_api(who)).status_code == 403
    r = client.post(
        f"/api/v1/patients/{pid}/research-consent",
        headers=login_api("researcher"),
        json={"decision": "granted", "note": "x"},
    )
    assert r.status_code == 403
    history = client.get(
        "/api/v1/patients/2/research-consent", headers=registry["team"]["nurse"]
    ).json()
    assert [h["decision"] for h in history] == ["withdrawn", "granted"]
    r = client.post(
        f"/api/v1/patients/{pid}/research-consent",
        headers=registry["team"]["nurse"],
        json={"decision": "maybe", "note": "x"},
    )
    assert r.status_code == 422
    with pytest.raises(Exception, match="append-only"), app.state.engine.begin() as conn:
        conn.execute(text("UPDATE research_consents SET decision = 'granted'"))


def test_the_chart_records_a_decision_and_the_dashboard_offers_the_export(
    client: Any, registry: dict[str, Any], login_page: Any
) -> None:
    csrf = login_page("nurse")
    chart = client.get("/patients/3")
    assert "No decision recorded: the patient is in no export." in chart.text
    r = client.post(
        "/patients/3/research-consent",
        data={"decision": "granted", "note": "registry consent form v2", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    chart = client.get("/patients/3").text
    assert "Consent <strong>granted</strong>" in chart
    # the treatment-consent panel's research line names the same decision, not a bare
    # "none" beside a registry that exports the patient
    research = chart.split('data-testid="standing-research"')[1].split("</li>")[0]
    assert "not signed" in research
    note = research.split('data-testid="research-registry-note">')[1].split("</small>")[0]
    assert "the registry follows the decision" in note and "granted on " in note
    assert "registry consent form v2" in note
    login_page("researcher")
    dashboard = client.get("/dashboard")
    assert 'data-testid="registry-export"' in dashboard.text
    r = client.get("/research/export.zip?profile=year_only")
    assert r.status_code == 200
    assert len(_tables(r.content)["patients"]) == 2  # the clinic's patient and patient 3


def test_a_patient_sees_their_registry_decision_and_withdraws_it_themselves(
    app: Any, client: Any, clinic: dict[str, Any], login_page: Any, login_api: Any
) -> None:
    """Patient 1 (the demo's patient1 account) reads the decision on their own record in
    their words and withdraws it there; nobody else can use that button for them."""
    from ketacare.clinic.research.orm import ResearchConsent

    csrf = login_page("patient1")
    own = client.get("/patients/1").text
    assert "You have not been asked to join the research registry" in own
    assert 'data-testid="withdraw-research"' not in own
    assert _consent(client, clinic["team"], 1, "granted").status_code == 201
    own = client.get("/patients/1").text
    assert "You agreed on " in own and "You can withdraw at any time" in own
    r = client.post(
        "/patients/1/research-consent/withdraw",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "You withdrew your agreement on " in client.get("/patients/1").text
    with app.state.ctx.sessions() as s:
        rows = s.scalars(
            select(ResearchConsent)
            .where(ResearchConsent.patient_id == 1)
            .order_by(ResearchConsent.id)
        ).all()
    assert [(c.decision, c.note) for c in rows] == [
        ("granted", "registry consent form v2"),
        ("withdrawn", "withdrawn by the patient from their own record"),
    ]
    # nothing in force: refused, nothing stored
    again = client.post(
        "/patients/1/research-consent/withdraw", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert again.status_code == 409 and "no research consent in force" in again.text
    # another patient's record, and a nurse: refused
    assert client.post(
        "/patients/2/research-consent/withdraw", data={"csrf_token": csrf}
    ).status_code in (403, 404)
    nurse_csrf = login_page("nurse")
    assert (
        client.post(
            "/patients/1/research-consent/withdraw", data={"csrf_token": nurse_csrf}
        ).status_code
        == 403
    )
    with app.state.ctx.sessions() as s:
        assert len(s.scalars(select(ResearchConsent)).all()) == 2


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ketacare.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )


def test_the_command_writes_the_export(tmp_path: Path) -> None:
    env = {"KETACARE_VAR_DIR": str(tmp_path), "KETACARE_DATABASE_URL": ""}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    assert run_cli("demo", "--if-empty", "--no-history", env=env).returncode == 0
    r = run_cli("export", "registry", "--out", str(tmp_path / "r.zip"), "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["patients"] == 0  # no demo patient has consented
    r = run_cli(
        "export", "registry", "--profile", "limited", "--out", str(tmp_path / "r.zip"), env=env
    )
    assert r.returncode == 2 and "data use agreement" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
