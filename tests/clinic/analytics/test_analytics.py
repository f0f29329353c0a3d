"""The clinic dashboard: a small cohort whose every figure is worked out by hand below.

The cohort (pain NRS 0-10; the clinic's time zone is Europe/Amsterdam, "now" is
2026-03-02 10:00 UTC; loss of response confirmed by 2 consecutive scores):

========  =========  ===============  ==========================  =======================
patient   diagnosis  protocol         first dose (UTC)            pain scores (UTC days)
========  =========  ===============  ==========================  =======================
A         G90.511    crps-outpatient  2025-11-03 10:00            8 (11-03 09:00 baseline);
                                                                  5 11-10, 4 11-17, 7 11-24,
                                                                  7 12-01
B         M79.7      crps-outpatient  2026-01-05 10:00            6 (01-05 09:00); 4 01-12,
                                                                  4 01-19, 3 02-20
C         G90.512    depression-iv    2026-01-31 23:30            0 (01-31 22:00); 0 02-09
                                      (= 02-01 00:30 local)
D         G90.50     crps-outpatient  2025-12-01 10:00            5 12-08 (no baseline)
E         F33.1      depression-iv    2026-02-16 10:00            7 (02-16 09:00), no follow-up;
                                                                  PHQ-9 20 (02-16 09:00), 4 02-23
F         M79.7      crps-outpatient  session opened, never dosed 8 and 3 (not in the cohort)
G         M79.7      crps-outpatient  2025-10-06 10:00 and 10-13  9 (10-06 09:00); 6 10-07,
                                                                  7 10-14, 6 10-21, 8 10-28,
                                                                  8 11-04
========  =========  ===============  ==========================  =======================

Pain >=30% (pain-30), by hand: treated A B C D E G = 6. D has no baseline; C's baseline
is 0 (no percentage: not assessed); E has no follow-up; A, B, G are judgeable and all
responded (A 8->5, B 6->4, G 9->6): 3/3 of the judgeable, 3/4 of the eligible. At the
last follow-up only B still meets it (A 7, G 8): 1/3. Completeness 3/6. Lost to
follow-up with a 60-day window (no score since 2026-01-01 10:00): A (last 12-01),
D (12-08), G (11-04) = 3, of whom D was not judged.

Durability of pain-30 (2 confirmations): A responds 11-10, 7 and 7 on 11-24 and 12-01:
loss dated 11-24, 14 days. G responds 10-07, 7 on 10-14 then 6 on 10-21 (no loss), 8 and
8 on 10-28 and 11-04: loss dated 10-28, 21 days. B responds 01-12 and still does at
02-20: censored at 39 days. Kaplan-Meier: S = 2/3 from day 14 (3 at risk, 1 event),
1/3 from day 21 (2 at risk, 1 event), censoring at 39.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.analytics import service
from ketacare.clinic.analytics.orm import OutcomeSummary
from ketacare.clinic.assessments.orm import Assessment
from ketacare.clinic.audit.orm import AuditEvent
from ketacare.clinic.audit.service import SYSTEM
from ketacare.clinic.patients.orm import Condition, Patient
from ketacare.clinic.plans.orm import Plan
from ketacare.clinic.sessions.orm import DosingSession, SessionEvent
from ketacare.core.outcomes import STATUS_NAMES
from ketacare.core.sessions import event_to_dict
from ketacare.core.sessions.events import CheckIn, StartInfusion
from ketacare.infra.db import unit_of_work

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


COHORT: dict[str, dict[str, Any]] = {
    "A": {
        "code": "G90.511",
        "protocol": "crps-outpatient",
        "doses": ["2025-11-03 10:00"],
        "pain": [
            ("2025-11-03 09:00", 8),
            ("2025-11-10 09:00", 5),
            ("2025-11-17 09:00", 4),
            ("2025-11-24 09:00", 7),
            ("2025-12-01 09:00", 7),
        ],
    },
    "B": {
        "code": "M79.7",
        "protocol": "crps-outpatient",
        "doses": ["2026-01-05 10:00"],
        "pain": [
            ("2026-01-05 09:00", 6),
            ("2026-01-12 09:00", 4),
            ("2026-01-19 09:00", 4),
            ("2026-02-20 09:00", 3),
        ],
    },
    "C": {
        "code": "G90.512",
        "protocol": "depression-iv",
        "doses": ["2026-01-31 23:30"],
        "pain": [("2026-01-31 22:00", 0), ("2026-02-09 09:00", 0)],
    },
    "D": {
        "code": "G90.50",
        "protocol": "crps-outpatient",
        "doses": ["2025-12-01 10:00"],
        "pain": [("2025-12-08 09:00", 5)],
    },
    "E": {
        "code": "F33.1",
        "protocol": "depression-iv",
        "doses": ["2026-02-16 10:00"],
        "pain": [("2026-02-16 09:00", 7)],
        "phq9": [("2026-02-16 09:00", 20), ("2026-02-23 09:00", 4)],
    },
    "F": {
        "code": "M79.7",
        "protocol": "crps-outpatient",
        "doses": [],
        "opened": ["2026-01-10 10:00"],
        "pain": [("2026-01-10 09:00", 8), ("2026-01-20 09:00", 3)],
    },
    "G": {
        "code": "M79.7",
        "protocol": "crps-outpatient",
        "doses": ["2025-10-06 10:00", "2025-10-13 10:00"],
        "pain": [
            ("2025-10-06 09:00", 9),
            ("2025-10-07 09:00", 6),
            ("2025-10-14 09:00", 7),
            ("2025-10-21 09:00", 6),
            ("2025-10-28 09:00", 8),
            ("2025-11-04 09:00", 8),
        ],
    },
}


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson (1927) score interval, written out here independently of the code."""
    p = k / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
    return (0.0 if k == 0 else centre - half, 1.0 if k == n else centre + half)


def build_cohort(app: Any) -> dict[str, int]:
    """Write the cohort straight into the record; returns patient ids by letter."""
    ids: dict[str, int] = {}
    with unit_of_work(app.state.ctx.sessions) as s:
        physician = s.scalar(select(User.id).where(User.username == "physician"))
        made = at("2025-09-01 08:00")
        for letter, p in COHORT.items():
            patient = Patient(
                mrn=f"AN-{letter}",
                given_name=letter,
                family_name="Cohort",
                birth_date=date(1970, 1, 1),
                sex="female",
                created_at=made,
            )
            s.add(patient)
            s.flush()
            ids[letter] = patient.id
            s.add(
                Condition(
                    patient_id=patient.id,
                    icd10_code=p["code"],
                    display="as recorded",
                    recorded_at=made,
                )
            )
            plan = Plan(
                patient_id=patient.id,
                protocol_id=p["protocol"],
                status="active",
                weight_kg=70,
                weight_measured_at=made,
                schedule={},
                total_dose_mg=100,
                created_by=physician,
                created_at=made,
            )
            s.add(plan)
            s.flush()
            for number, when in enumerate(p["doses"] + p.get("opened", []), start=1):
                dosed = when in p["doses"]
                row = DosingSession(
                    plan_id=plan.id,
                    patient_id=patient.id,
                    session_number=number,
                    state="discharged" if dosed else "checked_in",
                    last_seq=2,
                    created_at=at(when),
                    updated_at=at(when),
                )
                s.add(row)
                s.flush()
                check_in = CheckIn(at=at(when), by="nurse", seq=1)
                s.add(
                    SessionEvent(
                        session_id=row.id,
                        seq=1,
                        kind=type(check_in).__name__,
                        at=check_in.at,
                        data=event_to_dict(check_in),
                    )
                )
                if dosed:
                    start = StartInfusion(at=at(when), by="nurse", seq=2, rate_mg_per_h=20)
                    s.add(
                        SessionEvent(
                            session_id=row.id,
                            seq=2,
                            kind=type(start).__name__,
                            at=start.at,
                            data=event_to_dict(start),
                        )
                    )
            for instrument in ("pain", "phq9"):
                for when, value in p.get(instrument, []):
                    s.add(
                        Assessment(
                            patient_id=patient.id,
                            instrument_id="nrs_pain" if instrument == "pain" else "phq9",
                            instrument_version="1",
                            answers={},
                            total=float(value),
                            flags=[],
                            subscores={},
                            missing=[],
                            context="follow_up",
                            source="staff",
                            completed_at=at(when),
                        )
                    )
    return ids


NOW = at("2026-03-02 10:00")


@pytest.fixture
def cohort(app: Any, clock: Any) -> dict[str, int]:
    assert clock.now == NOW
    app.state.ctx.settings.outcome_loss_confirmations = 2
    ids = build_cohort(app)
    with unit_of_work(app.state.ctx.sessions) as s:
        report = service.refresh_clinic(session=s, actor=SYSTEM, now=NOW, loss_confirmations=2)
    assert (report.patients, report.rows) == (6, 6 * 4)  # F was never dosed: not in the cohort
    return ids


def outcomes(client: Any, headers: Any, **params: Any) -> dict[str, Any]:
    r = client.get("/api/v1/analytics/outcomes", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return {d["definition"]["id"]: d for d in r.json()["definitions"]}


def test_rates_denominators_lost_and_completeness_match_the_hand_count(
    client: Any, login_api: Any, cohort: dict[str, int]
) -> None:
    found = outcomes(client, login_api("physician"), lost_after_days=60)
    pain30 = found["pain-30"]["overall"]
    assert {k: pain30[k] for k in ("treated", "no_baseline", "not_eligible", "no_follow_up")} == {
        "treated": 6,
        "no_baseline": 1,
        "not_eligible": 1,
        "no_follow_up": 1,
    }
    assert (pain30["eligible"], pain30["judgeable"], pain30["responders"]) == (4, 3, 3)
    assert (pain30["lost_to_follow_up"], pain30["lost_unjudged"]) == (3, 1)
    for name, (k, n) in {
        "rate_judgeable": (3, 3),
        "rate_eligible": (3, 4),
        "rate_at_last": (1, 3),
        "completeness": (3, 6),
    }.items():
        rate = pain30[name]
        assert (rate["numerator"], rate["denominator"]) == (k, n), name
        assert rate["value"] == pytest.approx(k / n)
        lo, hi = wilson(k, n)
        assert (rate["lower"], rate["upper"]) == (pytest.approx(lo), pytest.approx(hi)), name
    # pain >=50%: A (8->4) and B (6->3) responded, G (best 6 of 9) did not
    pain50 = found["pain-50"]["overall"]
    assert (pain50["judgeable"], pain50["responders"], pain50["at_last"]) == (3, 2, 1)
    # PHQ-9: only E has scores (20 -> 4): response and remission; the others have no baseline
    phq = found["phq9-remission"]["overall"]
    assert (phq["treated"], phq["no_baseline"], phq["judgeable"], phq["responders"]) == (6, 5, 1, 1)

    by_condition = {g["key"]: g for g in found["pain-30"]["by_condition"]}
    assert sorted(by_condition) == sorted(["crps-1", "M79.7", "mdd"])
    crps = by_condition["crps-1"]  # A, C and D: G90.511, G90.512 and G90.50 counted together
    assert (crps["treated"], crps["judgeable"], crps["responders"]) == (3, 1, 1)
    assert (crps["no_baseline"], crps["not_eligible"], crps["lost_to_follow_up"]) == (1, 1, 2)
    fibro = by_condition["M79.7"]  # B and G
    assert (fibro["treated"], fibro["responders"], fibro["lost_to_follow_up"]) == (2, 2, 1)
    assert fibro["label"] == "M79.7 Fibromyalgia"
    assert (by_condition["mdd"]["treated"], by_condition["mdd"]["no_follow_up"]) == (1, 1)
    by_protocol = {g["key"]: g["treated"] for g in found["pain-30"]["by_protocol"]}
    assert by_protocol == {"crps-outpatient": 4, "depression-iv": 2}


def test_without_a_follow_up_window_nobody_is_called_lost(
    client: Any, login_api: Any, cohort: dict[str, int]
) -> None:
    r = client.get("/api/v1/analytics/outcomes", headers=login_api("physician"))
    body = r.json()
    pain30 = body["definitions"][0]["overall"]
    assert pain30["lost_to_follow_up"] is None and pain30["treated"] == 6
    assert any("Lost to follow-up is not computed" in n for n in body["parameters"]["notes"])


def test_the_clinics_follow_up_window_applies_when_the_reader_gives_none(
    app: Any, client: Any, login_api: Any, cohort: dict[str, int]
) -> None:
    app.state.ctx.settings.outcome_lost_after_days = 60
    clinic = outcomes(client, login_api("physician"))["pain-30"]["overall"]
    # the same hand count as the reader's 60-day filter above: 3 lost, 1 of them unjudged
    assert (clinic["lost_to_follow_up"], clinic["lost_unjudged"]) == (3, 1)
    # a reader's own window still wins over the clinic's
    wide = outcomes(client, login_api("physician"), lost_after_days=36500)["pain-30"]
    assert wide["overall"]["lost_to_follow_up"] == 0


def test_the_date_range_is_on_cohort_entry_in_the_clinics_days(
    client: Any, login_api: Any, cohort: dict[str, int]
) -> None:
    headers = login_api("physician")
    # from 2026-01-01: B (01-05), C (01-31 23:30 UTC = 02-01 local) and E (02-16)
    since = outcomes(client, headers, started_from="2026-01-01")["pain-30"]["overall"]
    assert (since["treated"], since["judgeable"], since["not_eligible"]) == (3, 1, 1)
    assert since["no_follow_up"] == 1
    # C's first dose is on 1 February in Amsterdam, though 31 January in UTC
    feb = outcomes(client, headers, started_from="2026-02-01")["pain-30"]["overall"]
    assert (feb["treated"], feb["not_eligible"], feb["no_follow_up"]) == (2, 1, 1)
    jan = outcomes(client, headers, started_from="2026-01-01", started_to="2026-01-31")
    assert jan["pain-30"]["overall"]["treated"] == 1  # B only: C is out, "to" is inclusive
    one_day = outcomes(client, headers, started_from="2026-01-05", started_to="2026-01-05")
    assert one_day["pain-30"]["overall"]["responders"] == 1
    crps = outcomes(client, headers, condition="crps-1", protocol="crps-outpatient")
    assert crps["pain-30"]["overall"]["treated"] == 2  # A and D (C is on depression-iv)


def km_by_hand() -> dict[str, list[float]]:
    """Kaplan-Meier of durations 14 (loss), 21 (loss), 39 (censored), with log-log bands."""
    s14, s21 = 2 / 3, 1 / 3
    g14 = 1 / (3 * 2)  # Greenwood sum d/(n(n-d)) at day 14
    g21 = g14 + 1 / (2 * 1)

    def band(s: float, g: float) -> tuple[float, float]:
        se = math.sqrt(g) / abs(math.log(s))
        return s ** math.exp(Z95 * se), s ** math.exp(-Z95 * se)

    (l14, u14), (l21, u21) = band(s14, g14), band(s21, g21)
    return {
        "time_days": [0, 14, 21, 39],
        "at_risk": [3, 3, 2, 1],
        "survival": [1, s14, s21, s21],
        "lower": [1, l14, l21, l21],
        "upper": [1, u14, u21, u21],
    }


def test_the_durability_curve_from_the_summary_is_the_hand_computed_one(
    client: Any, login_api: Any, cohort: dict[str, int]
) -> None:
    r = client.get("/api/v1/analytics/durability", headers=login_api("physician"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["parameters"]["durability_computed"] is True
    curves = {d["definition_id"]: d["curves"] for d in body["definitions"]}
    (curve,) = curves["pain-30"]
    expected = km_by_hand()
    for name, values in expected.items():
        assert curve[name] == pytest.approx(values), name
    assert (curve["n"], curve["events"], curve["median_days"]) == (3, 2, 21)
    # pain >=50%: A 11-17 to the loss on 11-24 (7 days); B from 02-20, censored the same day
    # (day 0), so only A is at risk at day 7 and S drops to 0 there
    (p50,) = curves["pain-50"]
    assert p50["time_days"] == [0, 7] and p50["survival"] == pytest.approx([1, 0])
    assert p50["at_risk"] == [2, 1]
    # split by protocol: G and A and B are all on crps-outpatient, so one group curve
    r = client.get(
        "/api/v1/analytics/durability",
        headers=login_api("physician"),
        params={"split": "protocol"},
    )
    split = {d["definition_id"]: d["curves"] for d in r.json()["definitions"]}["pain-30"]
    assert [c["key"] for c in split] == [None, "crps-outpatient"]
    assert split[1]["survival"] == pytest.approx(expected["survival"])


def test_durability_waits_for_the_clinics_setting_and_a_refresh(
    app: Any, client: Any, login_api: Any, cohort: dict[str, int]
) -> None:
    headers = login_api("physician")
    app.state.ctx.settings.outcome_loss_confirmations = None
    body = client.get("/api/v1/analytics/durability", headers=headers).json()
    assert body["parameters"]["durability_computed"] is False
    assert all(d["curves"] == [] for d in body["definitions"])
    assert any("has not set" in n for n in body["parameters"]["notes"])
    app.state.ctx.settings.outcome_loss_confirmations = 3  # changed, summary still judged with 2
    body = client.get("/api/v1/analytics/durability", headers=headers).json()
    assert body["parameters"]["durability_computed"] is False
    assert any("ketacare analytics refresh" in n for n in body["parameters"]["notes"])
    with unit_of_work(app.state.ctx.sessions) as s:
        service.refresh_clinic(session=s, actor=SYSTEM, now=NOW, loss_confirmations=3)
    body = client.get("/api/v1/analytics/durability", headers=headers).json()
    (curve,) = {d["definition_id"]: d["curves"] for d in body["definitions"]}["pain-30"]
    # with 3 confirmations nobody's loss is confirmed: A and G are censored at their last score
    assert curve["events"] == 0 and curve["survival"] == [1.0] * len(curve["survival"])


def test_a_new_score_refreshes_the_patients_summary(
    client: Any, login_api: Any, cohort: dict[str, int]
) -> None:
    physician = login_api("physician")
    before = outcomes(client, physician)["pain-30"]["overall"]
    assert (before["judgeable"], before["no_follow_up"]) == (3, 1)
    r = client.post(
        f"/api/v1/patients/{cohort['E']}/assessments",
        headers=login_api("nurse"),
        json={"instrument": "nrs_pain", "answers": [3]},
    )
    assert r.status_code == 201, r.text
    after = outcomes(client, physician)["pain-30"]["overall"]
    # E: 7 -> 3 is a 57% reduction, so E is now judgeable and responded (at the last score)
    assert (after["judgeable"], after["no_follow_up"], after["responders"]) == (4, 0, 4)
    assert after["at_last"] == 2
    curves = client.get("/api/v1/analytics/durability", headers=physician).json()
    (curve,) = {d["definition_id"]: d["curves"] for d in curves["definitions"]}["pain-30"]
    # E joins at day 0, censored (first response = last score): 4 at risk at day 0
    assert curve["time_days"][:2] == [0, 14] and curve["at_risk"][:2] == [4, 3]


def test_the_per_patient_and_whole_clinic_paths_agree(app: Any, cohort: dict[str, int]) -> None:
    columns = [c.name for c in OutcomeSummary.__table__.columns if c.name not in ("id",)]

    def snapshot() -> dict[tuple[int, str], tuple[Any, ...]]:
        with app.state.ctx.sessions() as s:
            return {
                (r.patient_id, r.definition_id): tuple(getattr(r, c) for c in columns)
                for r in s.scalars(select(OutcomeSummary))
            }

    whole = snapshot()
    with unit_of_work(app.state.ctx.sessions) as s:
        for pid in cohort.values():
            service.refresh_patient(session=s, patient_id=pid, now=NOW)
    assert snapshot() == whole
    a = whole[(cohort["A"], "pain-30")]
    row = dict(zip(columns, a, strict=True))
    assert (STATUS_NAMES[row["status"]], row["durability_days"], row["durability_event"]) == (
        "responder",
        14,
        True,
    )
    assert row["loss_at"] == at("2025-11-24 09:00") and row["last_contact"] == at(
        "2025-12-01 09:00"
    )


def test_only_physicians_and_researchers_see_the_dashboard(
    client: Any, login_api: Any, login_page: Any, app: Any, cohort: dict[str, int]
) -> None:
    for role, status in (("researcher", 200), ("physician", 200), ("nurse", 403)):
        assert client.get("/api/v1/analytics/outcomes", headers=login_api(role)).status_code == (
            status
        )
    assert client.get(
        "/api/v1/analytics/durability", headers=login_api("patient1")
    ).status_code == (403)
    login_page("physician")
    page = client.get("/dashboard", params={"lost_after_days": "60"})
    assert page.status_code == 200
    assert 'id="km-pain-30"' in page.text and "/static/dashboard.js" in page.text
    assert "<script>" not in page.text  # data travels in JSON blocks only
    assert "3/4" in page.text and "Complex regional pain syndrome I (G90.5x)" in page.text
    login_page("nurse")
    assert client.get("/dashboard").status_code == 403
    login_page("patient1")
    assert client.get("/dashboard").status_code == 403
    with app.state.ctx.sessions() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.resource_type == "analytics")).all()
    assert rows and all(e.patient_id is None for e in rows)  # aggregates: no patient named
    assert {e.role for e in rows if e.action == "read"} == {"researcher", "physician"}
    assert [e.detail["patients"] for e in rows if e.action == "refresh"] == [6]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"started_from": "2026-13-01"}, "started_from"),
        ({"started_to": "yesterday"}, "started_to"),
        ({"started_from": "2026-03-01", "started_to": "2026-01-01"}, "started_from"),
        ({"lost_after_days": "0"}, "lost_after_days"),
        ({"lost_after_days": "ninety"}, "lost_after_days"),
        ({"split": "sex"}, "split"),
        ({"condition": "G90.5; drop table"}, "condition"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(
    client: Any, login_api: Any, login_page: Any, params: dict[str, str], named: str
) -> None:
    r = client.get("/api/v1/analytics/outcomes", headers=login_api("physician"), params=params)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"].startswith(named)
    login_page("physician")
    page = client.get("/dashboard", params=params)
    assert page.status_code == 422 and f"{named} " in page.text


def test_the_refresh_command_rebuilds_the_summary(tmp_path: Any) -> None:
    def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ketacare.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
        )

    env = {"KETACARE_VAR_DIR": str(tmp_path), "KETACARE_DATABASE_URL": ""}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    r = run_cli("analytics", "refresh", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert '"patients": 0' in r.stdout and '"loss_confirmations": null' in r.stdout
