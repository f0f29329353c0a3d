"""Take-home supplies through the application: refused until the clinic sets its limits,
the limits, early refills with a reason, voids that keep the record, the screening's
'no take-home doses' safeguard, and the page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from plan_helpers import screened_patient
from take_home_helpers import oral_plan as _oral_plan
from take_home_helpers import set_limits as _limits

SUPPLY = {
    "form": "oral solution",
    "strength_mg": 50,
    "units": 14,
    "days_supply": 14,
    "directions": "50 mg by mouth once daily",
    "lot": "OS-118",
    "pdmp_checked": True,
}


def _count(app: Any) -> int:
    from ketacare.clinic.safeguards.orm import TakeHomeDispense

    with app.state.ctx.sessions() as s:
        return int(s.scalar(select(func.count(TakeHomeDispense.id))))


def _dispense(client: Any, team: dict[str, Any], plan_id: int, **change: Any) -> Any:
    return client.post(
        f"/api/v1/plans/{plan_id}/take-home", headers=team["physician"], json={**SUPPLY, **change}
    )


def test_nothing_is_dispensed_until_the_clinic_sets_its_limits(
    app: Any, client: Any, clinic: dict[str, Any]
) -> None:
    team = clinic["team"]
    plan_id = _oral_plan(client, team, clinic["pid"])
    r = _dispense(client, team, plan_id)
    assert r.status_code == 422
    assert "needs the clinic's own limits first" in r.json()["detail"]
    assert _count(app) == 0


def test_limits_early_refill_reason_and_void(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, tmp_path: Any, login_api: Any
) -> None:
    _limits(app, tmp_path)
    team, pid = clinic["team"], clinic["pid"]
    plan_id = _oral_plan(client, team, pid)
    # the PDMP check the clinic requires, then the limits: nothing stored on a refusal
    r = _dispense(client, team, plan_id, pdmp_checked=False)
    assert r.status_code == 422 and "monitoring programme" in r.json()["detail"]
    r = _dispense(client, team, plan_id, units=15, days_supply=15)
    assert r.status_code == 422
    assert "15 days' supply exceeds the clinic's limit of 14 days" in r.json()["detail"]
    assert "15 x 50 mg = 750 mg exceeds" in r.json()["detail"]
    assert _count(app) == 0
    first = _dispense(client, team, plan_id)
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["total_mg"], body["findings"]) == (700.0, [])
    assert body["runs_out"].startswith((clock.now + timedelta(days=14)).date().isoformat())
    # day 9: 5 days early, 700 * (1 - 9/14) = 250 mg expected on hand: a reason is needed
    clock.now += timedelta(days=9)
    team["physician"], team["nurse"] = login_api("physician"), login_api("nurse")
    r = _dispense(client, team, plan_id)
    assert r.status_code == 409
    detail = r.json()["detail"]
    assert "5 days before the supply on hand" in detail and "250 mg" in detail
    assert _count(app) == 1
    refill = _dispense(client, team, plan_id, reason="supply spilt; patient brought the bottle")
    assert refill.status_code == 201, refill.text
    assert refill.json()["findings"][0]["severity"] == "needs_reason"
    # the refill was entered in error: voided, kept on record
    r = client.post(
        f"/api/v1/take-home/{refill.json()['id']}/void",
        headers=team["physician"],
        json={"reason": "charted on the wrong patient"},
    )
    assert r.status_code == 200 and r.json()["voided"] is True
    again = client.post(
        f"/api/v1/take-home/{refill.json()['id']}/void",
        headers=team["physician"],
        json={"reason": "twice"},
    )
    assert again.status_code == 409
    listed = client.get(f"/api/v1/patients/{pid}/take-home", headers=team["nurse"]).json()
    assert [(d["id"], d["voided"]) for d in listed] == [
        (body["id"], False),
        (refill.json()["id"], True),
    ]
    # the database itself refuses to change or remove a supply
    for statement in (
        "UPDATE take_home_dispenses SET units = 1",
        "DELETE FROM take_home_dispenses",
    ):
        with pytest.raises(Exception, match="append-only"), app.state.engine.begin() as conn:
            conn.execute(text(statement))
    # nurses read but do not dispense
    assert _dispense(client, {"physician": team["nurse"]}, plan_id).status_code == 403


def test_the_screenings_no_take_home_safeguard_and_chair_only_routes(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Any
) -> None:
    _limits(app, tmp_path)
    team = clinic["team"]
    pid = screened_patient(client, team, "Risk")
    # ORT: personal history of illegal drug use (4 points): moderate risk, whose screening
    # requires the safeguard "no take-home doses"
    ort = [False] * 10
    ort[4] = True
    client.post(
        f"/api/v1/patients/{pid}/assessments",
        headers=team["nurse"],
        json={"instrument": "ort", "answers": ort},
    ).raise_for_status()
    required = ["no_take_home_doses", "abuse_misuse_monitoring", "urine_drug_screens"]
    plan_id = _oral_plan(client, team, pid, required + ["defined_course"])
    r = _dispense(client, team, plan_id)
    assert r.status_code == 422 and "no take-home doses" in r.json()["detail"]
    # an infusion plan cannot be taken home
    from plan_helpers import _signed

    iv = _signed(client, clinic)
    r = _dispense(client, team, iv["id"])
    assert r.status_code == 422 and "only oral, sublingual, intranasal" in r.json()["detail"]
    assert _count(app) == 0


def test_the_page_dispenses_and_shows_a_refusal_with_the_form_kept(
    app: Any, client: Any, clinic: dict[str, Any], login_page: Any, tmp_path: Any
) -> None:
    _limits(app, tmp_path)
    team, pid = clinic["team"], clinic["pid"]
    plan_id = _oral_plan(client, team, pid)
    csrf = login_page("physician")
    page = client.get(f"/patients/{pid}/cumulative-dose")
    assert 'data-testid="take-home-form"' in page.text and "test clinic board" in page.text
    form = {**{k: str(v) for k, v in SUPPLY.items()}, "pdmp_checked": "yes"}
    form.update(plan_id=str(plan_id), csrf_token=csrf, units="20")
    r = client.post(f"/patients/{pid}/take-home", data=form)
    assert r.status_code == 422 and "1000 mg exceeds" in r.text and 'value="20"' in r.text
    form["units"] = "14"
    r = client.post(f"/patients/{pid}/take-home", data=form, follow_redirects=False)
    assert r.status_code == 303
    shown = client.get(f"/patients/{pid}/cumulative-dose").text
    assert "14 × 50 mg oral solution = 700 mg" in shown


def test_esketamine_is_never_taken_home(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, tmp_path: Any
) -> None:
    from plan_helpers import esketamine_course_with_one_dose

    plan_id = esketamine_course_with_one_dose(client, clinic["team"], clock)
    _limits(app, tmp_path)
    r = _dispense(client, clinic["team"], plan_id)
    assert r.status_code == 422 and "certified (REMS) treatment setting" in r.json()["detail"]
    assert _count(app) == 0


def test_a_supply_charted_after_the_fact_before_one_on_record_needs_a_reason(
    app: Any, client: Any, clinic: dict[str, Any], clock: Any, tmp_path: Any
) -> None:
    _limits(app, tmp_path)
    team = clinic["team"]
    plan_id = _oral_plan(client, team, clinic["pid"])
    assert _dispense(client, team, plan_id).status_code == 201
    # a second 14-day supply charted as handed over the day before: no early refill
    # check would see it without looking at the supply after it
    earlier = (clock.now - timedelta(days=1)).isoformat()
    r = _dispense(client, team, plan_id, dispensed_at=earlier)
    assert r.status_code == 409, r.text
    assert "13 days left when the next supply" in r.json()["detail"]
    assert _count(app) == 1
    r = _dispense(client, team, plan_id, dispensed_at=earlier, reason="charted late: given")
    assert r.status_code == 201 and r.json()["findings"][0]["kind"] == "early_refill"
