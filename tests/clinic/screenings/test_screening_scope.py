"""Screenings per molecule and route, and the session's screening check read from the record.

The scenario of issue 14: a patient on a racemic IV ketamine plan is screened and signed
for esketamine nasal spray. Before, that silently ended the IV screening, and the next
IV session opened on a nurse's tick. Now each (molecule, route) has its own screening in
force, and dosing starts only on the record's screening for the plan's treatment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from plan_helpers import ESKETAMINE_IN, IV_CHECKS, KETAMINE_IV, _signed


def _screen_and_sign(
    client: Any, clinic: dict[str, Any], body: dict[str, Any], until: str
) -> dict[str, Any]:
    team = clinic["team"]
    sid = client.post(
        f"/api/v1/patients/{clinic['pid']}/screenings", headers=team["nurse"], json=body
    ).json()["id"]
    r = client.post(
        f"/api/v1/screenings/{sid}/sign",
        headers=team["physician"],
        json={"note": "history reviewed", "valid_until": until},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _screenings(client: Any, clinic: dict[str, Any]) -> dict[int, dict[str, Any]]:
    rows = client.get(
        f"/api/v1/patients/{clinic['pid']}/screenings", headers=clinic["team"]["physician"]
    ).json()
    return {s["id"]: s for s in rows}


class Chair:
    """One session of a signed IV plan, driven through the API as a nurse would."""

    def __init__(self, client: Any, clinic: dict[str, Any], plan_id: int) -> None:
        self.client, self.nurse = client, clinic["team"]["nurse"]
        r = client.post(
            f"/api/v1/plans/{plan_id}/sessions", headers=self.nurse, json={"session_number": 1}
        )
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]

    def read(self) -> dict[str, Any]:
        return dict(self.client.get(f"/api/v1/sessions/{self.id}", headers=self.nurse).json())

    def post(self, event: dict[str, Any]) -> Any:
        return self.client.post(
            f"/api/v1/sessions/{self.id}/events",
            headers=self.nurse,
            json={"expected_seq": self.read()["last_seq"], "event": event},
        )

    def ready(self) -> None:
        """Checked in, baseline vitals, every hand check ticked (the screening is not)."""
        baseline = {"sbp_mmhg": 124, "dbp_mmhg": 78, "hr_per_min": 72}
        for event in (
            {"kind": "check_in"},
            {"kind": "vitals", **baseline, "spo2_pct": 98, "rr_per_min": 14},
            *(
                {"kind": "pre_dose_check", "item": item, "ok": True, "detail": "lot K7"}
                for item in IV_CHECKS
            ),
        ):
            r = self.post(event)
            assert r.status_code == 201, r.text
        assert "screening_valid" not in IV_CHECKS
        assert self.read()["missing_checks"] == ["screening_valid"]


def test_an_esketamine_screening_leaves_the_iv_screening_in_force(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    # the clinic fixture's patient has a signed racemic IV screening, until 2026-12-31
    [iv] = _screenings(client, clinic).values()
    assert (iv["molecule"], iv["route"], iv["status"]) == ("ketamine", "iv_infusion", "signed")
    plan = _signed(client, clinic)
    assert plan["status"] == "signed" and plan["screening_id"] == iv["id"]
    esk = _screen_and_sign(client, clinic, ESKETAMINE_IN, "2026-09-30")
    rows = _screenings(client, clinic)
    assert rows[iv["id"]]["status"] == "signed"  # before: "superseded"
    assert rows[iv["id"]]["superseded_at"] is None
    assert rows[esk["id"]]["status"] == "signed"
    # a newer screening for the same treatment replaces the older one of that treatment only
    clock.now += timedelta(hours=1)
    iv2 = _screen_and_sign(client, clinic, KETAMINE_IV, "2026-12-31")
    rows = _screenings(client, clinic)
    assert rows[iv["id"]]["status"] == "superseded"
    assert rows[iv["id"]]["superseded_by"] == iv2["id"]
    assert datetime.fromisoformat(rows[iv["id"]]["superseded_at"]) == datetime(
        2026, 3, 2, 11, 0, tzinfo=UTC
    )
    assert rows[esk["id"]]["status"] == "signed" and rows[esk["id"]]["superseded_at"] is None
    # the chart shows each screening in force with its molecule, route and expiry
    login_page("nurse")
    chart = client.get(f"/patients/{clinic['pid']}").text
    assert 'data-testid="screenings-in-force"' in chart
    iv_row = chart.split('data-testid="in-force-ketamine-iv_infusion"')[1].split("</tr>")[0]
    esk_row = chart.split('data-testid="in-force-esketamine-intranasal"')[1].split("</tr>")[0]
    assert "IV infusion" in iv_row and "2026-12-31" in iv_row
    assert "nasal spray" in esk_row and "2026-09-30" in esk_row
    # and the session of the IV plan still starts on its own (racemic IV) screening
    chair = Chair(client, clinic, plan["id"])
    chair.ready()
    r = chair.post({"kind": "start_infusion", "rate_mg_per_h": 24.5})
    assert r.status_code == 201, r.text
    [check] = [e for e in chair.read()["events"] if e["kind"] == "pre_dose_check"][-1:]
    assert check["item"] == "screening_valid" and check["ok"] is True
    assert f"screening {iv2['id']} for ketamine by IV infusion" in check["detail"]


def test_the_screening_check_is_read_from_the_record_with_no_tick(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    [iv] = _screenings(client, clinic).values()
    plan = _signed(client, clinic)
    chair = Chair(client, clinic, plan["id"])
    chair.ready()
    before = chair.read()["last_seq"]
    # a hand tick (or a hand correction to one) is refused and nothing is stored
    r = chair.post({"kind": "pre_dose_check", "item": "screening_valid", "ok": True})
    assert r.status_code == 422 and "read from the record" in r.json()["detail"]
    assert chair.read()["last_seq"] == before
    # the chair page offers no tick box for it and shows what the record holds
    login_page("nurse")
    page = client.get(f"/sessions/{chair.id}").text
    assert 'value="screening_valid"' not in page
    assert "Screening, from the record: screening" in page and "2026-12-31" in page
    # dosing starts: the check is entered from the record with the dose (two entries)
    r = chair.post({"kind": "start_infusion", "rate_mg_per_h": 24.5})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "dosing" and r.json()["last_seq"] == before + 2
    log = chair.read()["events"]
    check, start = log[-2], log[-1]
    assert (check["kind"], check["item"], check["ok"], check["by"]) == (
        "pre_dose_check",
        "screening_valid",
        True,
        "nurse",
    )
    assert check["at"] == start["at"]
    decision = iv["decision"].replace("_", " ")  # physician review, signed with a note
    assert check["detail"] == (
        f"from the record: screening {iv['id']} for ketamine by IV infusion: {decision}, "
        "signed 2026-03-02, in force until 2026-12-31"
    )


def test_an_iv_session_cannot_start_without_a_racemic_iv_screening_in_force(
    client: Any, clinic: dict[str, Any], clock: Any, login_api: Any, login_page: Any
) -> None:
    plan = _signed(client, clinic)
    # an esketamine screening in force well past the IV screening's 2026-12-31
    _screen_and_sign(client, clinic, ESKETAMINE_IN, "2027-06-30")
    clock.now = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    clinic["team"]["nurse"] = login_api("nurse")  # a new shift: the March sign-in has expired
    chair = Chair(client, clinic, plan["id"])
    chair.ready()
    before = chair.read()
    r = chair.post({"kind": "start_infusion", "rate_mg_per_h": 24.5})
    assert r.status_code == 422
    assert r.json()["detail"] == (
        "dosing cannot start: the screening for ketamine by IV infusion expired on "
        "2026-12-31: screen the patient again and have a physician sign it"
    )
    after = chair.read()
    assert (after["last_seq"], after["state"]) == (before["last_seq"], "pre_dose_checks")
    assert after["events"] == before["events"]
    login_page("nurse")
    page = client.get(f"/sessions/{chair.id}").text
    assert "Dosing cannot start: the screening for ketamine by IV infusion expired" in page


@pytest.mark.parametrize(
    ("now", "starts"),
    [
        # valid_until 2026-12-31 holds through that whole day (UTC), and not a minute after
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), True),
        (datetime(2027, 1, 1, 0, 1, tzinfo=UTC), False),
    ],
    ids=["last-day", "day-after"],
)
def test_an_expired_screening_blocks_from_the_day_after_its_last_day(
    client: Any,
    clinic: dict[str, Any],
    clock: Any,
    login_api: Any,
    now: datetime,
    starts: bool,
) -> None:
    plan = _signed(client, clinic)
    clock.now = now
    clinic["team"]["nurse"] = login_api("nurse")  # a new shift: the March sign-in has expired
    chair = Chair(client, clinic, plan["id"])
    chair.ready()
    r = chair.post({"kind": "start_infusion", "rate_mg_per_h": 24.5})
    if starts:
        assert r.status_code == 201 and r.json()["state"] == "dosing", r.text
    else:
        assert r.status_code == 422 and "expired on 2026-12-31" in r.json()["detail"]
        assert chair.read()["state"] == "pre_dose_checks"


def test_a_newer_not_eligible_screening_for_the_treatment_blocks_the_session(
    client: Any, clinic: dict[str, Any], clock: Any
) -> None:
    plan = _signed(client, clinic)
    clock.now += timedelta(hours=1)
    # known hypersensitivity to ketamine: a label contraindication (Ketalar prescribing
    # information), so the decision is not eligible
    refused = _screen_and_sign(
        client,
        clinic,
        {**KETAMINE_IV, "history": {"ketamine_hypersensitivity": True}},
        "2026-12-31",
    )
    assert refused["decision"] == "not_eligible"
    chair = Chair(client, clinic, plan["id"])
    chair.ready()
    r = chair.post({"kind": "start_infusion", "rate_mg_per_h": 24.5})
    assert r.status_code == 422
    assert r.json()["detail"] == (
        "dosing cannot start: the screening in force for ketamine by IV infusion says not eligible"
    )


def test_one_signed_screening_per_treatment_is_held_by_the_database(settings: Any) -> None:
    from sqlalchemy.exc import IntegrityError

    from ketacare.clinic.patients.orm import Patient  # noqa: F401  (metadata complete)
    from ketacare.clinic.screenings.orm import Screening
    from ketacare.infra.db import make_engine, make_sessionmaker

    engine = make_engine(settings.effective_database_url)
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def row(molecule: str, route: str) -> Screening:
        return Screening(
            patient_id=1,
            input={},
            result={},
            decision="eligible",
            ruleset_version="test",
            molecule=molecule,
            route=route,
            created_at=at,
            status="signed",
            signed_at=at,
        )

    with make_sessionmaker(engine)() as session:
        session.add_all([row("ketamine", "iv_infusion"), row("esketamine", "intranasal")])
        session.flush()  # two treatments: both in force
        session.add(row("ketamine", "iv_infusion"))
        with pytest.raises(IntegrityError):
            session.flush()
    engine.dispose()


def test_the_chair_banner_shows_the_screening_in_force_and_unset_settings(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    plan = _signed(client, clinic)
    chair = Chair(client, clinic, plan["id"])
    login_page("nurse")
    page = client.get(f"/sessions/{chair.id}").text
    banner = page.split('data-testid="patient-banner"')[1].split("</section>")[0]
    assert "ketamine by IV infusion, in force until 2026-12-31" in banner
    assert "70 kg" in banner
    # the test clinic sets no session policy: every slot is unset, and the page says so
    assert 'data-testid="unset-banner"' in banner and "not set by the clinic" in banner


def test_rate_and_pause_controls_only_for_infusions_and_no_rate_after_stop(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    from plan_helpers import esketamine_course_with_one_dose

    team = clinic["team"]
    spray_plan = esketamine_course_with_one_dose(client, team, clock)
    assert spray_plan
    [spray] = client.get("/api/v1/sessions/board", headers=team["nurse"]).json()
    iv = Chair(client, clinic, _signed(client, clinic)["id"])
    iv.ready()
    assert iv.post({"kind": "start_infusion", "rate_mg_per_h": 24.5}).status_code == 201
    login_page("nurse")
    spray_page = client.get(f"/sessions/{spray['session_id']}").text
    iv_page = client.get(f"/sessions/{iv.id}").text
    for kind in ("rate_change", "pause"):
        assert f'name="kind" value="{kind}"' in iv_page
        assert f'name="kind" value="{kind}"' not in spray_page
    assert 'data-testid="rate">24.5 mg/h' in iv_page
    clock.now += timedelta(hours=1)
    assert iv.post({"kind": "stop", "reason": "completed"}).status_code == 201
    stopped = client.get(f"/sessions/{iv.id}").text
    assert 'data-testid="rate">—' in stopped  # the rate display ends when dosing stops
