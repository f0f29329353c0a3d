"""Take-home supplies drawn from stock, on SQLite and PostgreSQL: products the clinic
registers from its supplier's label, receipts of them, a supply that names its lot,
the refusals that store nothing, the void that reverses the draw, the reports and pages.

The hand-worked example (a compounded ketamine oral solution, 10 mg/mL in 10 mL
bottles: 10 x 10 = 100 mg per bottle, as the clinic reads the supplier's label)::

    receipt       10 bottles                             10 bottles  1000 mg
    take-home      3 bottles = 3 x 100 mg = 300 mg        7 bottles   700 mg
    void of the supply (entered in error): the draw is
    voided in the ledger, both entries kept              10 bottles  1000 mg
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from take_home_helpers import oral_plan, set_limits

SOLUTION = {
    "molecule": "racemic_ketamine",
    "label": "ketamine HCl oral solution 10 mg/mL, 10 mL bottle",
    "form": "oral_solution",
    "unit": "bottle",
    "strength_mg_per_ml": 10,
    "volume_ml": 10,
    "supplier": "Example Compounding Pharmacy",
    "statement": "bottle label of lot OS-1 and its certificate of analysis, read 2026-03-01",
}
TROCHE = {
    **SOLUTION,
    "label": "ketamine HCl 100 mg troche",
    "form": "sublingual_troche",
    "unit": "troche",
    "strength_mg_per_ml": None,
    "volume_ml": None,
    "mg_per_unit": 100,
}
SUPPLY = {
    "form": "oral solution",
    "strength_mg": 100,
    "units": 3,
    "days_supply": 3,
    "directions": "100 mg by mouth once daily",
    "pdmp_checked": True,
    # each test dispenses more than once on the same day: an early refill, with its reason
    "reason": "test: supplies charted the same day",
}


def _receive(client: Any, who: dict[str, str], product: str, lot: str, **change: Any) -> int:
    body = {
        "site": "main",
        "product": product,
        "lot": lot,
        "expiry": "2027-06-30",
        "units": 10,
        "supplier": "Example Compounding Pharmacy",
        "reference": f"INV-{lot}",
        **change,
    }
    r = client.post("/api/v1/stock/receipts", headers=who, json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["lot_id"])


def _register(client: Any, who: dict[str, str], body: dict[str, Any]) -> str:
    r = client.post("/api/v1/stock/clinic-products", headers=who, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["product"]["id"])


def _dispense(client: Any, team: dict[str, Any], plan_id: int, **change: Any) -> Any:
    body = {k: v for k, v in {**SUPPLY, **change}.items() if v is not None}
    return client.post(f"/api/v1/plans/{plan_id}/take-home", headers=team["physician"], json=body)


def _counts(app: Any) -> tuple[int, int]:
    from ketacare.clinic.safeguards.orm import TakeHomeDispense
    from ketacare.clinic.stock.orm import StockEntry

    with app.state.ctx.sessions() as s:
        return (
            int(s.scalar(select(func.count(TakeHomeDispense.id)))),
            int(s.scalar(select(func.count(StockEntry.id)))),
        )


def _lot(client: Any, who: dict[str, str], lot_id: int) -> dict[str, Any]:
    lots = client.get("/api/v1/stock/lots", headers=who).json()["lots"]
    found: dict[str, Any] = next(b for b in lots if b["lot_id"] == lot_id)
    return found


@pytest.fixture
def kept(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Any, clock: Any
) -> dict[str, Any]:
    """The clinic's limits, an oral plan, the solution registered and ten bottles received."""
    set_limits(app, tmp_path)
    team = clinic["team"]
    plan_id = oral_plan(client, team, clinic["pid"])
    product = _register(client, team["physician"], SOLUTION)
    lot_id = _receive(client, team["nurse"], product, "OS-1")
    return {**clinic, "plan": plan_id, "product": product, "lot": lot_id}


def test_the_hand_worked_supply_drawn_and_its_void_reversed(
    app: Any, client: Any, kept: dict[str, Any], clock: Any
) -> None:
    team, lot_id, pid = kept["team"], kept["lot"], kept["pid"]
    assert (_lot(client, team["nurse"], lot_id)["units_on_hand"], _counts(app)) == (10, (0, 1))
    assert _lot(client, team["nurse"], lot_id)["mg_on_hand"] == 1000.0
    r = _dispense(client, team, kept["plan"], lot_id=lot_id)
    assert r.status_code == 201, r.text
    supply = r.json()
    assert (supply["total_mg"], supply["lot"], supply["lot_id"], supply["lot_units"]) == (
        300.0,
        "OS-1",
        lot_id,
        3,
    )
    after = _lot(client, team["nurse"], lot_id)
    assert (after["units_on_hand"], after["mg_on_hand"], after["drawn"]) == (7, 700.0, 3)
    # the dispensing log: patient, lot, mg, who, when
    rows = client.get("/api/v1/stock/reports/dispensing", headers=team["physician"]).json()["rows"]
    assert [
        (r["take_home_supply"], r["patient"], r["lot"], r["units"], r["mg_opened"], r["by"])
        for r in rows
    ] == [(supply["id"], pid, "OS-1", 3, 300.0, "physician")]
    assert rows[0]["at"].startswith(clock.now.isoformat()[:16])
    assert "registered by the clinic from the supplier's label" in rows[0]["product_label"]
    csv = client.get("/api/v1/stock/reports/dispensing?format=csv", headers=team["physician"]).text
    assert f",OS-1,{kept['product']}," in csv and ",300.0," in csv
    # void the supply, entered in error, an hour later: the draw is voided in the ledger
    dispensed_at = clock.now
    clock.now += timedelta(hours=1)
    r = client.post(
        f"/api/v1/take-home/{supply['id']}/void",
        headers=team["physician"],
        json={"reason": "charted on the wrong plan"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["voided"], r.json()["lot_id"]) == (True, None)
    back = _lot(client, team["nurse"], lot_id)
    assert (back["units_on_hand"], back["mg_on_hand"]) == (10, 1000.0)
    from ketacare.clinic.stock.orm import StockEntry

    with app.state.ctx.sessions() as s:
        ledger = [
            (e.kind, e.units, e.take_home_id, e.target_id, e.reason)
            for e in s.scalars(select(StockEntry).order_by(StockEntry.id))
        ]
    draw_id = supply["stock_draw_id"]
    assert ledger == [
        ("receipt", 10, None, None, None),
        ("draw", 3, supply["id"], None, None),
        (
            "void",
            None,
            None,
            draw_id,
            f"take-home supply {supply['id']} voided: charted on the wrong plan",
        ),
    ]
    # the log of the day and the dispensing report at the dispense keep the draw
    at = (dispensed_at + timedelta(minutes=1)).isoformat()
    then = client.get(
        "/api/v1/stock/reports/dispensing", params={"at": at}, headers=team["physician"]
    ).json()["rows"]
    assert [r["take_home_supply"] for r in then] == [supply["id"]]
    assert (
        client.get("/api/v1/stock/reports/dispensing", headers=team["physician"]).json()["rows"]
        == []
    )


def test_each_refusal_stores_nothing(
    app: Any, client: Any, kept: dict[str, Any], clock: Any
) -> None:
    team, plan_id = kept["team"], kept["plan"]
    physician = team["physician"]
    troche = _register(client, physician, TROCHE)
    troches = _receive(client, team["nurse"], troche, "TR-1")
    vials = _receive(client, team["nurse"], "ketamine-100mg-ml-5ml-vial", "V-1")
    devices = _receive(client, team["nurse"], "esketamine-28mg-device", "E-1")
    yesterday = (clock.now - timedelta(days=1)).date().isoformat()
    expired = _receive(client, team["nurse"], kept["product"], "OS-OLD", expiry=yesterday)
    short = _receive(client, team["nurse"], kept["product"], "OS-2", units=2)
    before = _counts(app)
    refusals = [
        ({}, 422, "the clinic keeps stock of racemic ketamine: a take-home supply names the lot"),
        ({"lot_id": expired}, 422, "lot OS-OLD expired on"),
        ({"lot_id": short}, 422, "lot OS-2 has 2 bottle(s) on hand: 3 cannot be dispensed"),
        ({"lot_id": devices}, 422, "(esketamine): the plan is racemic ketamine"),
        ({"lot_id": troches}, 422, "not given by the plan's route (by mouth)"),
        ({"lot_id": vials}, 422, "a form (injection, solution) not given by the plan's route"),
        (
            {"lot_id": kept["lot"], "strength_mg": 50},
            422,
            "the supply is 150 mg but 3 bottle(s) of lot OS-1 (100 mg each) hold 300 mg",
        ),
        (
            {"lot_id": kept["lot"], "lot_units": 2},
            422,
            "the supply is 300 mg but 2 bottle(s) of lot OS-1 (100 mg each) hold 200 mg",
        ),
        ({"lot_id": kept["lot"], "lot": "OS-9"}, 422, "lot 'OS-9' is not the number of lot"),
        ({"lot_id": 999}, 404, "lot 999 has not been received"),
    ]
    for change, status, message in refusals:
        r = _dispense(client, team, plan_id, **change)
        assert r.status_code == status, (change, r.text)
        assert message in r.json()["detail"], (change, r.json()["detail"])
        assert _counts(app) == before, change
    # a lot's units may differ from the supply's when their mg agree: 1 troche of 100 mg
    # is not a bottle; 3 bottles = 300 mg = 6 x 50 mg doses
    r = _dispense(client, team, plan_id, lot_id=kept["lot"], strength_mg=50, units=6, lot_units=3)
    assert r.status_code == 201, r.text
    assert (r.json()["total_mg"], r.json()["lot_units"]) == (300.0, 3)
    # a take-home supply is never drawn afterwards through the stock API
    r = client.post(
        "/api/v1/stock/draws",
        headers=team["nurse"],
        json={
            "lot_id": kept["lot"],
            "units": 1,
            "prepared_mg": 100,
            "take_home_id": r.json()["id"],
        },
    )
    assert r.status_code == 409 and "never afterwards" in r.json()["detail"]


def test_a_lot_is_required_only_once_stock_of_the_molecule_is_kept(
    app: Any, client: Any, clinic: dict[str, Any], tmp_path: Any
) -> None:
    set_limits(app, tmp_path)
    team = clinic["team"]
    plan_id = oral_plan(client, team, clinic["pid"])
    # no stock kept: the lot number as before, no draw
    r = _dispense(client, team, plan_id, lot="OS-118")
    assert r.status_code == 201, r.text
    assert (r.json()["lot"], r.json()["stock_draw_id"]) == ("OS-118", None)
    # stock of esketamine only: racemic supplies still need no lot from stock
    _receive(client, team["nurse"], "esketamine-28mg-device", "E-1")
    assert _dispense(client, team, plan_id, lot="OS-119").status_code == 201
    # a racemic product registered but not yet received: still no stock of the molecule
    product = _register(client, team["physician"], SOLUTION)
    assert _dispense(client, team, plan_id, lot="OS-120").status_code == 201
    # its first lot received: from now on the supply names its lot
    lot_id = _receive(client, team["nurse"], product, "OS-1")
    before = _counts(app)
    r = _dispense(client, team, plan_id, lot="OS-121")
    assert r.status_code == 422 and "keeps stock of racemic ketamine" in r.json()["detail"]
    assert _counts(app) == before
    r = _dispense(client, team, plan_id, lot_id=lot_id)
    assert r.status_code == 201 and r.json()["lot"] == "OS-1"


def test_clinic_products_register_amend_retire_and_permissions(
    app: Any, client: Any, clinic: dict[str, Any], login_api: Any
) -> None:
    team = clinic["team"]
    admin, physician, nurse = login_api("admin"), team["physician"], team["nurse"]
    # nurses and therapists do not register products; physicians and admins do
    for who in (nurse, team["therapist"]):
        r = client.post("/api/v1/stock/clinic-products", headers=who, json=SOLUTION)
        assert r.status_code == 403
    # refused, nothing stored: no source statement; strengths that disagree; a form or
    # unit outside the vocabulary
    from ketacare.clinic.stock.orm import ClinicProduct

    def stored() -> int:
        with app.state.ctx.sessions() as s:
            return int(s.scalar(select(func.count(ClinicProduct.id))))

    bad = [
        ({"statement": " "}, "source statement"),
        ({"mg_per_unit": 50}, "mg per unit 50 disagrees with 10 mg/mL x 10 mL = 100 mg"),
        ({"form": "suppository"}, "form 'suppository' is not known: allowed injection_solution"),
        ({"unit": "jar"}, "unit 'jar' is not known"),
        ({"strength_mg_per_ml": None}, "give mg per unit, or strength (mg/mL) and volume"),
    ]
    for change, message in bad:
        body = {k: v for k, v in {**SOLUTION, **change}.items() if v is not None}
        r = client.post("/api/v1/stock/clinic-products", headers=physician, json=body)
        assert r.status_code == 422 and message in r.text, (change, r.text)
    assert stored() == 0
    r = client.post("/api/v1/stock/clinic-products", headers=admin, json=TROCHE)
    assert r.status_code == 201, r.text
    troche = r.json()
    assert troche["product"]["id"].startswith("clinic-")
    assert (troche["product"]["mg_per_unit"], troche["product"]["routes"]) == (
        100.0,
        ["sublingual"],
    )
    assert (troche["registered_by"], troche["marking"]) == (
        "admin",
        "registered by the clinic from the supplier's label",
    )
    reg = troche["product"]["id"].removeprefix("clinic-")
    # every product listed; only the clinic's are marked so; the shipped ones are not
    listed = client.get("/api/v1/stock/products", headers=nurse).json()
    assert {p["id"]: p["registered_by_clinic"] for p in listed} == {
        "ketamine-10mg-ml-20ml-vial": False,
        "ketamine-50mg-ml-10ml-vial": False,
        "ketamine-100mg-ml-5ml-vial": False,
        "esketamine-28mg-device": False,
        troche["product"]["id"]: True,
    }
    # an amendment of the label while no lot is on record; of the strength once one is: no
    amended = {**TROCHE, "label": "ketamine HCl 100 mg troche (mint)", "reason": "label misread"}
    r = client.post(f"/api/v1/stock/clinic-products/{reg}/amend", headers=physician, json=amended)
    assert r.status_code == 201, r.text
    assert [e["action"] for e in r.json()["entries"]] == ["registered", "amended"]
    assert r.json()["product"]["label"] == "ketamine HCl 100 mg troche (mint)"
    tr1 = _receive(client, nurse, troche["product"]["id"], "TR-1")
    # nor is a troche drawn for an infusion at the chair
    from plan_helpers import _signed

    iv = _signed(client, clinic)
    r = client.post(f"/api/v1/plans/{iv['id']}/sessions", headers=nurse, json={"session_number": 1})
    assert r.status_code == 201, r.text
    draw = {"lot_id": tr1, "units": 1, "prepared_mg": 100, "dosing_session_id": r.json()["id"]}
    r = client.post("/api/v1/stock/draws", headers=nurse, json=draw)
    assert r.status_code == 422, r.text
    assert "not given by the session's route (iv infusion)" in r.json()["detail"]
    stronger = {**amended, "mg_per_unit": 200, "reason": "strength misread"}
    r = client.post(f"/api/v1/stock/clinic-products/{reg}/amend", headers=physician, json=stronger)
    assert r.status_code == 409 and "has lots on record (TR-1)" in r.json()["detail"]
    # retired: its lots stay, no new receipt of it
    r = client.post(
        f"/api/v1/stock/clinic-products/{reg}/retire",
        headers=physician,
        json={"reason": "no longer stocked"},
    )
    assert r.status_code == 201 and r.json()["retired"] is True
    body = {
        "site": "main",
        "product": troche["product"]["id"],
        "lot": "TR-2",
        "expiry": "2027-06-30",
        "units": 5,
        "supplier": "x",
        "reference": "y",
    }
    r = client.post("/api/v1/stock/receipts", headers=nurse, json=body)
    assert r.status_code == 409 and "is retired: it takes no new receipt" in r.json()["detail"]
    lots = client.get("/api/v1/stock/lots", headers=nurse).json()["lots"]
    assert [(b["lot"], b["units_on_hand"], b["mg_on_hand"]) for b in lots] == [("TR-1", 10, 1000.0)]
    assert stored() == 3
    # the database itself refuses to change or remove an entry
    for statement in ("UPDATE clinic_products SET mg_per_unit = 1", "DELETE FROM clinic_products"):
        with pytest.raises(Exception, match="append-only"), app.state.engine.begin() as conn:
            conn.execute(text(statement))


def test_the_pages_offer_the_lots_that_fit_and_mark_the_clinics_products(
    app: Any, client: Any, kept: dict[str, Any], login_page: Any, clock: Any
) -> None:
    team, pid = kept["team"], kept["pid"]
    troche = _register(client, team["physician"], TROCHE)
    _receive(client, team["nurse"], troche, "TR-1")
    yesterday = (clock.now - timedelta(days=1)).date().isoformat()
    _receive(client, team["nurse"], kept["product"], "OS-OLD", expiry=yesterday)
    _receive(client, team["nurse"], "ketamine-100mg-ml-5ml-vial", "V-1")
    csrf = login_page("physician")
    page = client.get(f"/patients/{pid}/cumulative-dose").text
    start = page.index('data-testid="take-home-lot"')
    offered = page[start : page.index("</select>", start)]
    assert '<option value="" selected>choose the lot' in offered  # none pre-selected
    assert "lot OS-1 · ketamine HCl oral solution 10 mg/mL, 10 mL bottle" in offered
    assert "registered by the clinic from the supplier&#39;s label" in offered
    assert "10 on hand" in offered
    for absent in ("OS-OLD", "TR-1", "V-1"):
        assert absent not in offered
    form = {
        **{k: str(v) for k, v in SUPPLY.items()},
        "pdmp_checked": "yes",
        "plan_id": str(kept["plan"]),
        "lot_id": str(kept["lot"]),
        "csrf_token": csrf,
    }
    r = client.post(f"/patients/{pid}/take-home", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    shown = client.get(f"/patients/{pid}/cumulative-dose").text
    assert "drawn from stock: 3 unit(s)" in shown
    # no lot chosen: refused with the reason, the form kept
    r = client.post(f"/patients/{pid}/take-home", data={**form, "lot_id": ""})
    assert r.status_code == 422 and "keeps stock of racemic ketamine" in r.text
    # the stock page lists the clinic's products with their source statement
    stock = client.get("/stock").text
    assert 'data-testid="clinic-product-list"' in stock
    assert "Example Compounding Pharmacy: bottle label of lot OS-1" in stock
    assert "registered by the clinic from the supplier&#39;s label" in stock
    # a physician registers from the page
    r = client.post(
        "/stock/clinic-products",
        data={
            **{k: str(v) for k, v in TROCHE.items() if v is not None},
            "label": "ketamine HCl 50 mg troche",
            "mg_per_unit": "50",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert "ketamine HCl 50 mg troche" in client.get("/stock").text
    # the log of the day, typeset, lists the take-home draw with the patient's MRN
    from pdf_text import flat

    day = clock.now.date().isoformat()
    pdf = client.get(
        "/api/v1/stock/reports/log.pdf",
        params={"from": day, "to": day},
        headers=team["physician"],
    )
    assert pdf.status_code == 200
    text_of = flat(pdf.content)
    assert "take-home supply" in text_of and "registered by the clinic" in text_of
