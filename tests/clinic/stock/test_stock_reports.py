"""Controlled-substance stock reports as typeset PDF, on SQLite and PostgreSQL, read back
with pdftotext: the inventory at a date and the log of a period, for a known ledger.

The ledger, worked by hand (50 mg/mL 10 mL vials: 500 mg each; Spravato devices: 28 mg)::

    28 Feb  receipt   K-2026A  10 vials              10 vials  5000 mg
    28 Feb  receipt   S-1       6 devices             6 devices  168 mg
     2 Mar  draw      1 vial for session A: 100 mg in 100 mL
            given     24.5 mg/h x 2 h = 49 mg
            waste     500 - 49 = 451 mg, witnessed by nurse2
            disposal  1 vial destroyed (damaged), witnessed      8 vials
            count     7 vials, witnessed: expected 8, -1
            loss      resolved by the physician, DEA Form 106 ref  7 vials  3500 mg

    inventory at the close of 1 March: K-2026A 10 vials 5000 mg; S-1 6 devices 168 mg
    log of 2 March, K-2026A: opening 10, received 0, opened 1, disposed 1, adjusted -1,
    closing 7 (3500 mg)
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from clinic.stock import test_stock
from clinic.stock.test_stock import RECEIPT, _infuse, _post
from pdf_text import flat, pages_of, words_outside_the_margins

#: the clinic with a second nurse (the witness) and a signed IV plan
stock = test_stock.stock

DEVICES = {**RECEIPT, "product": "esketamine-28mg-device", "lot": "S-1", "units": 6}


def _ledger(client: Any, s: dict[str, Any], clock: Any) -> dict[str, Any]:
    """The hand-worked ledger above; the ids of its entries."""
    team = s["team"]
    early = {"received_at": "2026-02-28T10:00:00+00:00"}
    r = _post(client, team["nurse"], "receipts", {**RECEIPT, **early})
    assert r.status_code == 201, r.text
    lot_id = r.json()["lot_id"]
    assert _post(client, team["nurse"], "receipts", {**DEVICES, **early}).status_code == 201
    sid = _infuse(client, s, clock, 1, 2)
    d = _post(
        client,
        team["nurse"],
        "draws",
        {
            "lot_id": lot_id,
            "units": 1,
            "prepared_mg": 100,
            "prepared_ml": 100,
            "dosing_session_id": sid,
        },
    )
    assert d.status_code == 201, d.text
    w = _post(
        client,
        team["nurse"],
        "wastes",
        {"draw_id": d.json()["id"], "mg": 451, "method": "drug-waste container"},
    )
    assert _post(client, team["nurse2"], f"entries/{w.json()['id']}/witness").status_code == 201
    clock.now += timedelta(minutes=10)
    x = _post(
        client,
        team["nurse"],
        "disposals",
        {
            "lot_id": lot_id,
            "units": 1,
            "disposal": "destroyed",
            "reason": "vial cracked",
            "reference": "DEA Form 41 #77",
        },
    )
    assert x.status_code == 201, x.text
    assert _post(client, team["nurse2"], f"entries/{x.json()['id']}/witness").status_code == 201
    clock.now += timedelta(minutes=10)
    c = _post(client, team["nurse2"], "counts", {"lot_id": lot_id, "units_counted": 7})
    assert _post(client, team["nurse"], f"entries/{c.json()['id']}/witness").status_code == 201
    r = _post(
        client,
        team["physician"],
        f"counts/{c.json()['id']}/resolve",
        {"outcome": "loss", "reason": "not found", "report_reference": "DEA-106-2026-0001"},
    )
    assert r.status_code == 201, r.text
    return {"lot_id": lot_id, "session": sid, "draw": d.json()["id"]}


def _save(pdf: bytes, folder: Path, name: str) -> None:
    """Keep the PDF in the test's folder, to look at its pages."""
    (folder / f"{name}.pdf").write_bytes(pdf)


def _rows(pdf: bytes) -> str:
    """The lines of the pages laid out as printed (a table row's first line is one line)."""
    text = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def _numbered(pdf: bytes) -> list[str]:
    """Every page numbered, its running head naming the ledger and no patient."""
    pages = pages_of(pdf)
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in " ".join(text.split())
        head = " ".join([line for line in text.splitlines() if line.strip()][:2])
        assert "Schedule III controlled substances" in head and "MRN" not in head, head
    return pages


def test_the_inventory_and_the_log_as_pdf(
    app: Any, client: Any, stock: dict[str, Any], clock: Any, tmp_path: Path, login_page: Any
) -> None:
    team = stock["team"]
    ids = _ledger(client, stock, clock)
    # the page of the clinic: the inventory at the close of 1 March (Amsterdam), before
    # the day's movements
    login_page("admin")
    page = client.get("/stock/reports/inventory.pdf", params={"at": "2026-03-01"})
    assert page.status_code == 200 and page.headers["content-type"] == "application/pdf"
    _save(page.content, tmp_path, "inventory")
    _numbered(page.content)
    text = flat(page.content)
    assert "Controlled-substance inventory" in text
    assert "At the close of business on 1 March 2026" in text
    assert "K-2026A 31 Dec 2027 10 vials 5000 mg" in text
    assert "NDC" in text and "50458-028" in text
    assert "S-1 31 Dec 2027 6 devices 168 mg" in text
    assert "Total racemic ketamine at main 10 5000 mg" in text
    assert words_outside_the_margins(page.content) == []
    # the API's, now: after the loss, 7 vials
    r = client.get("/api/v1/stock/reports/inventory.pdf", headers=team["admin"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    _save(r.content, tmp_path, "inventory-api")
    text = flat(r.content)
    assert "At 2 Mar 2026 13:20" in text
    assert "K-2026A 31 Dec 2027 7 vials 3500 mg" in text
    # the log of 2 March
    r = client.get(
        "/api/v1/stock/reports/log.pdf",
        headers=team["admin"],
        params={"from": "2026-03-02", "to": "2026-03-02"},
    )
    assert r.status_code == 200, r.text
    _save(r.content, tmp_path, "log")
    _numbered(r.content)
    text = flat(r.content)
    assert words_outside_the_margins(r.content) == []
    rows = _rows(r.content)
    # balance of K-2026A: opening 10, received 0, opened 1, disposed 1, transferred 0, -1,
    # closing 7
    assert "K-2026A · main 10 0 1 1 0 -1 7 3500" in rows
    assert "No receipt in this period." in text
    mrn = client.get(f"/api/v1/patients/{stock['pid']}", headers=team["nurse"]).json()["patient"][
        "mrn"
    ]
    draw = f"{ids['draw']} 2 Mar 2026 K-2026A 1 500 100 mg in 100 session {ids['session']} {mrn}"
    assert draw + " nurse" in rows
    assert f"2 Mar 2026 #{ids['draw']}, lot K-2026A 451 drug-waste container nurse nurse2" in rows
    assert "2 Mar 2026 K-2026A 7 8 -1 nurse2 nurse, 2 Mar loss (not found); DEA" in rows
    assert "DEA Form 106 DEA-106-2026-0001; physician" in text
    assert "2 Mar 2026 K-2026A 1 destroyed vial cracked nurse nurse2, 2 Mar" in rows
    assert "ref. DEA Form 41 #77" in text
    # a nurse does not print reports; a period that ends before it starts is refused
    assert (
        client.get(
            "/api/v1/stock/reports/log.pdf",
            headers=team["nurse"],
            params={"from": "2026-03-02", "to": "2026-03-02"},
        ).status_code
        == 403
    )
    bad = client.get(
        "/api/v1/stock/reports/log.pdf",
        headers=team["admin"],
        params={"from": "2026-03-02", "to": "2026-03-01"},
    )
    assert bad.status_code == 422 and "ends (2026-03-01) before it starts" in bad.json()["detail"]


def test_the_inventory_command_writes_the_pdf(
    app: Any, client: Any, stock: dict[str, Any], clock: Any, settings: Any, tmp_path: Path
) -> None:
    _ledger(client, stock, clock)
    out = tmp_path / "inventory.pdf"
    env = {
        "KETACARE_DATABASE_URL": settings.effective_database_url,
        "KETACARE_VAR_DIR": str(tmp_path / "var"),
        "KETACARE_TIMEZONE": "Europe/Amsterdam",
    }
    r = subprocess.run(
        [sys.executable, "-m", "ketacare.cli", "inventory", "report", "--at", "2026-03-01"]
        + ["--json", "--pdf", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    import json

    assert json.loads(r.stdout)["totals"]["units_on_hand"] == 16  # the JSON is unchanged
    text = flat(out.read_bytes())
    assert "At the close of business on 1 March 2026" in text
    assert "K-2026A 31 Dec 2027 10 vials 5000 mg" in text
