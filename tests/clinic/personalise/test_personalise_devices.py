"""Personalisation from session records: devices charted one at a time fit like devices
charted together (Perez-Ruixo 2021 Table 3 dose effect; label: 5 minutes after each device)."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import Any

import pytest

from plan_helpers import esketamine_course_with_one_dose


class OneDeviceAtATime:
    """The API client, except that a self-administration of n devices is charted as n
    single-device entries 5 minutes apart (the label's interval), as a nurse may chart them;
    the patient it creates gets another family name (same birth date and weight)."""

    def __init__(self, client: Any, clock: Any) -> None:
        self.client, self.clock = client, clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def post(self, url: str, **kwargs: Any) -> Any:
        body = kwargs.get("json") or {}
        if url == "/api/v1/patients":  # a second patient, otherwise the same
            kwargs["json"] = {**body, "family_name": body["family_name"] + " Two"}
            return self.client.post(url, **kwargs)
        event = body.get("event") if isinstance(body, dict) else None
        if not (isinstance(event, dict) and event.get("kind") == "self_administration"):
            return self.client.post(url, **kwargs)
        seq = body["expected_seq"]
        for k in range(event["devices"]):
            if k:
                self.clock.now += timedelta(minutes=5)
            one = {**event, "devices": 1}
            r = self.client.post(url, **{**kwargs, "json": {"expected_seq": seq, "event": one}})
            assert r.status_code == 201, r.text
            # the first dose also enters the screening check read from the record
            seq = r.json().get("last_seq", seq + 1)
        self.clock.now -= timedelta(minutes=5 * (event["devices"] - 1))  # back to the first
        return r


def _level(client: Any, csrf: str, plan_id: int, when: Any, value: str) -> None:
    local = when.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Amsterdam"))
    r = client.post(
        f"/plans/{plan_id}/levels",
        data={
            "sampled_at": local.strftime("%Y-%m-%dT%H:%M"),
            "analyte": "plasma",
            "value": value,
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def _fit(client: Any, plan_id: int) -> tuple[str, list[float]]:
    page = client.get(f"/plans/{plan_id}/personalise").text
    table = re.search(r'data-testid="fit-parameters">(.*?)</table>', page, re.S)
    data = re.search(r'id="fit-data">(.*?)</script>', page, re.S)
    assert table and data, page
    return table.group(1), json.loads(html.unescape(data.group(1)))["map"]


def test_fit_from_devices_charted_one_by_one_equals_devices_charted_together(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    """Two patients alike take 56 mg: one charted as 2 devices at once, the other device by
    device 5 minutes apart (10 minutes later); the same levels 1 h and 4 h after the first
    device give the same fit and curve."""
    team = clinic["team"]
    start = clock.now
    together = esketamine_course_with_one_dose(client, team, clock)
    later = timedelta(minutes=10)
    clock.now = start + later
    one_by_one = esketamine_course_with_one_dose(OneDeviceAtATime(client, clock), team, clock)
    assert clock.now == start + later  # back at the first device
    csrf = login_page("physician")
    for hours, value in ((1, "70"), (4, "20")):
        for plan_id, first in ((together, start), (one_by_one, start + later)):
            clock.now = first + timedelta(hours=hours)
            _level(client, csrf, plan_id, clock.now, value)
    clock.now = start + timedelta(hours=6)
    table_a, curve_a = _fit(client, together)
    clock.now = start + later + timedelta(hours=6)
    table_b, curve_b = _fit(client, one_by_one)
    assert table_b == table_a
    assert curve_b == pytest.approx(curve_a, rel=1e-6, abs=1e-9)


def test_plan_exposure_preview_equals_the_course_charted_as_devices(
    client: Any, clinic: dict[str, Any], clock: Any
) -> None:
    """The plan page's exposure preview (one entry per session) is the course's curve with
    each session charted as 28-mg devices 5 minutes apart (label), each session a new dose."""
    from ketacare.core.pharmacology import Patient, load_model, parse_regimen, simulate
    from ketacare.core.protocols import load_library
    from ketacare.core.protocols.regimen import plan_regimen
    from protocol_policy import build_plan

    team = clinic["team"]
    plan_id = esketamine_course_with_one_dose(client, team, clock)
    r = client.get(
        f"/api/v1/plans/{plan_id}/exposure?model=perez-ruixo-2021", headers=team["physician"]
    )
    body = r.json()
    assert r.status_code == 200 and body["available"] and body["model"] == "perez-ruixo-2021"
    protocol = load_library().get(protocol_id="esketamine-trd")
    sessions = plan_regimen(plan=build_plan(protocol=protocol, weight_kg=70), route=protocol.route)
    devices = [
        {**d, "start_h": d["start_h"] + k * 5 / 60, "amount_mg": 28}
        for d in sessions["doses"]
        for k in range(round(d["amount_mg"] / 28))
    ]
    regimen = parse_regimen({"doses": devices}, weight_kg=70)
    sim = simulate(
        model=load_model(model_id="perez-ruixo-2021"),
        patient=Patient(weight_kg=70, age_years=45, sex="F"),
        regimen=regimen,
        hours=sessions["doses"][-1]["start_h"] + 48.0,
        step_min=1.0,
    )
    # the preview draws the 1-minute curve's envelope: each drawn point is the curve's
    # own at its minute, and the curve's peak is among them
    minutes = [round(t * 60) for t in body["time_h"]]
    assert body["drawn"] == {"step_min": 1.0, "points": len(minutes), "of": sim.time_h.size}
    assert len(minutes) <= 2000 < sim.time_h.size
    assert body["plasma_ng_per_ml"] == pytest.approx(
        [float(sim.plasma_ng_per_ml[m]) for m in minutes], abs=1e-4
    )
    assert max(body["plasma_ng_per_ml"]) == pytest.approx(
        float(sim.plasma_ng_per_ml.max()), abs=1e-4
    )
