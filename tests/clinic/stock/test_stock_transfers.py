"""Transfers of controlled substances between two sites of the clinic, on SQLite and
PostgreSQL: a transfer out of one site and into the same lot at the other, stored
together, counting once a second person witnesses it; refusals store nothing.

By hand (50 mg/mL 10 mL vials: 500 mg each)::

    main   receipt K-2026A   10 vials                 main 10 (5000 mg)
    main -> north  3 vials, witnessed by nurse2       main 7 (3500 mg), north 3 (1500 mg)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from clinic.stock import test_stock
from clinic.stock.test_stock import RECEIPT, _entries, _post
from clinic.stock.test_stock_reports import _rows

#: the clinic with a second nurse (the witness) and a signed IV plan
stock = test_stock.stock


def _sites(client: Any, who: dict[str, str]) -> dict[tuple[str, str], tuple[int, float]]:
    lots = client.get("/api/v1/stock/lots", headers=who).json()["lots"]
    return {(x["site"], x["lot"]): (x["units_on_hand"], x["mg_on_hand"]) for x in lots}


def _lot_rows(app: Any) -> int:
    from ketacare.clinic.stock.orm import StockLot

    with app.state.ctx.sessions() as s:
        return int(s.scalar(select(func.count(StockLot.id))))


def test_a_witnessed_transfer_moves_the_inventory_of_both_sites(
    app: Any, client: Any, stock: dict[str, Any], tmp_path: Path
) -> None:
    team = stock["team"]
    lot_id = _post(client, team["nurse"], "receipts", RECEIPT).json()["lot_id"]
    move = {"lot_id": lot_id, "units": 3, "to_site": "north", "reference": "TS-2026-004"}
    r = _post(client, team["nurse"], "transfers", move)
    assert r.status_code == 201, r.text
    sent, received = r.json()["transfer_out"], r.json()["transfer_in"]
    assert (sent["kind"], sent["units"], sent["lot_id"]) == ("transfer_out", 3, lot_id)
    assert (received["kind"], received["units"]) == ("transfer_in", 3)
    assert received["target_id"] == sent["id"] and received["lot_id"] != lot_id
    # nothing moves before the witness; the sender cannot witness their own transfer
    lots = client.get("/api/v1/stock/lots", headers=team["nurse"]).json()
    assert lots["awaiting_witness"] == [sent["id"]]
    assert _sites(client, team["nurse"]) == {("main", "K-2026A"): (10, 5000)}
    own = _post(client, team["nurse"], f"entries/{sent['id']}/witness")
    assert own.status_code == 422 and "second person" in own.json()["detail"]
    assert _post(client, team["nurse2"], f"entries/{sent['id']}/witness").status_code == 201
    assert _sites(client, team["nurse"]) == {
        ("main", "K-2026A"): (7, 3500),
        ("north", "K-2026A"): (3, 1500),
    }
    north = next(
        x
        for x in client.get("/api/v1/stock/lots", headers=team["nurse"]).json()["lots"]
        if x["site"] == "north"
    )
    assert (north["received"], north["transferred_in"], north["expiry"]) == (0, 3, "2027-12-31")
    # the transfer in cannot be witnessed or voided on its own
    r = _post(client, team["nurse2"], f"entries/{received['id']}/witness")
    assert r.status_code == 422 and "not witnessed" in r.json()["detail"]
    r = _post(client, team["nurse"], f"entries/{received['id']}/void", {"reason": "wrong site"})
    assert r.status_code == 422 and f"void the transfer out {sent['id']}" in r.json()["detail"]
    # a second transfer back into the existing lot at main
    back = {"lot_id": received["lot_id"], "units": 1, "to_site": "main", "reference": "TS-5"}
    r = _post(client, team["nurse2"], "transfers", back)
    assert r.status_code == 201, r.text
    assert r.json()["transfer_in"]["lot_id"] == lot_id
    assert _post(client, team["nurse"], f"entries/{r.json()['transfer_out']['id']}/witness")
    assert _sites(client, team["nurse"]) == {
        ("main", "K-2026A"): (8, 4000),
        ("north", "K-2026A"): (2, 1000),
    }
    # the inventory report lists both sites
    rows = client.get("/api/v1/stock/reports/inventory", headers=team["admin"]).json()["rows"]
    assert [(x["site"], x["units_on_hand"]) for x in rows] == [("main", 8), ("north", 2)]
    # the log of the day: each lot's balance and both transfers with their witnesses
    day = {"from": "2026-03-02", "to": "2026-03-02"}
    pdf = client.get("/api/v1/stock/reports/log.pdf", headers=team["admin"], params=day).content
    (tmp_path / "log.pdf").write_bytes(pdf)
    log = _rows(pdf)
    assert "K-2026A 3 main north TS-2026-004 nurse nurse2, 2 Mar" in log
    assert "K-2026A 1 north main TS-5 nurse2 nurse, 2 Mar" in log
    assert "K-2026A · main 0 10 0 0 +1 0 8 4000" in log


def test_a_bad_transfer_is_refused_and_stores_nothing(
    app: Any, client: Any, stock: dict[str, Any]
) -> None:
    team = stock["team"]
    lot_id = _post(client, team["nurse"], "receipts", RECEIPT).json()["lot_id"]
    old = {**RECEIPT, "lot": "K-OLD", "expiry": "2026-02-28", "units": 3}
    old_id = _post(client, team["nurse"], "receipts", old).json()["lot_id"]
    entries, lots = _entries(app), _lot_rows(app)
    move = {"lot_id": lot_id, "units": 3, "to_site": "north", "reference": "TS-1"}
    for change, message in (
        ({"units": 11}, "has 10"),
        ({"lot_id": old_id}, "expired on 2026-02-28: an expired lot is not transferred"),
        ({"to_site": "main"}, "a transfer is between two sites"),
        ({"to_site": " main "}, "a transfer is between two sites"),
    ):
        r = _post(client, team["nurse"], "transfers", {**move, **change})
        assert r.status_code == 422 and message in r.json()["detail"], (change, r.text)
    r = _post(client, team["nurse"], "transfers", {**move, "lot_id": 999})
    assert r.status_code == 404
    assert (_entries(app), _lot_rows(app)) == (entries, lots)
    assert _sites(client, team["nurse"]) == {
        ("main", "K-2026A"): (10, 5000),
        ("main", "K-OLD"): (3, 1500),
    }
