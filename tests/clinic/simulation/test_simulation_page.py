"""The simulation page: right numbers, clear refusals, no patient data."""

from __future__ import annotations

from typing import Any

import pytest

from ketacare.clinic.simulation.service import SimulationRequest, run
from ketacare.core.errors import InvalidInput


def test_crps_course_peak_matches_the_independent_reference() -> None:
    # Domino, 70 kg, 0.35 mg/kg/h for 4 h daily x 10 days: an independent exact numpy
    # solution gives a peak of 181.8 ng/mL at the end of each infusion (reference notes)
    from protocol_policy import test_policy

    result = run(
        SimulationRequest(
            model_id="domino",
            weight_kg=70,
            protocol_id="crps-outpatient",
            site_policy=test_policy(),
        )
    )
    assert result["metrics"]["cmax_ng_per_ml"] == pytest.approx(181.8, abs=0.05)
    assert result["metrics"]["total_dose_mg"] == pytest.approx(980.0)
    assert result["population"] is None


def test_a_long_course_draws_every_one_minute_peak() -> None:
    # esketamine-trd over 50 days: the band is computed at a 30-minute step (at most 3,000
    # points), but a nasal spray peaks within minutes, between two such points. The
    # typical patient is simulated at every minute and drawn as its envelope: the
    # metrics equal a 1-minute simulation's, every drawn point is that simulation's own,
    # and its peak is drawn (the 30-minute grid alone under-reads it by more than 1 %)
    from ketacare.clinic.simulation.service import regimen_document
    from ketacare.core.pharmacology import Patient, load_model, parse_regimen, simulate
    from protocol_policy import test_policy

    request = SimulationRequest(
        model_id="perez-ruixo-2021",
        weight_kg=70,
        age_years=40,
        protocol_id="esketamine-trd",
        site_policy=test_policy(),
    )
    result = run(request)
    assert result["step_min"] == 30
    regimen = parse_regimen(regimen_document(request), weight_kg=70)
    fine = simulate(
        model=load_model(model_id="perez-ruixo-2021"),
        patient=Patient(weight_kg=70, age_years=40),
        regimen=regimen,
        hours=result["time_h"][-1],
        step_min=1,
    )
    assert result["metrics"]["cmax_ng_per_ml"] == pytest.approx(fine.metrics.cmax_ng_per_ml)
    assert result["drawn"]["of"] == fine.time_h.size and len(result["time_h"]) <= 3000
    minutes = [round(t * 60) for t in result["time_h"]]
    assert result["plasma_ng_per_ml"] == pytest.approx(
        [float(fine.plasma_ng_per_ml[m]) for m in minutes], abs=1e-4
    )
    assert max(result["plasma_ng_per_ml"]) == pytest.approx(fine.metrics.cmax_ng_per_ml, abs=1e-4)
    coarse = fine.plasma_ng_per_ml[::30]
    assert fine.metrics.cmax_ng_per_ml > float(coarse.max()) * 1.01


def test_population_band_brackets_the_median() -> None:
    result = run(
        SimulationRequest(
            model_id="perez-ruixo-2021",
            weight_kg=70,
            age_years=40,
            route="intranasal",
            amount_mg=56,
            population=200,
            seed=7,
        )
    )
    band = result["population"]
    assert band["n"] == 200
    # the band has its own time axis (the page's step), the typical curves theirs
    assert len(band["time_h"]) == len(band["p05"]) == len(band["p95"])
    assert all(
        lo <= mid <= hi for lo, mid, hi in zip(band["p05"], band["p50"], band["p95"], strict=True)
    )
    assert max(band["p95"]) > max(band["p50"]) > max(band["p05"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"route": "iv_infusion", "amount_mg": 35}, "an infusion needs duration_h"),
        ({"route": "oral"}, "a oral dose needs amount_mg"),
        (
            {},
            r"route is missing: choose a protocol, or a route for a single dose "
            r"\(allowed: iv_infusion, iv_bolus, intranasal, oral\)",
        ),
        ({"amount_mg": 35, "duration_h": 1}, "route is missing"),
        ({"route": "sublingual", "amount_mg": 10}, "route 'sublingual' is not offered"),
        (
            {"route": "iv_bolus", "amount_mg": 10, "population": 5000},
            "population 5000 is out of range",
        ),
        (  # crps-continuous gives esketamine (S-ketamine); domino is a racemic model
            {"protocol_id": "crps-continuous"},
            r"model domino simulates racemic ketamine \(iv bolus, iv infusion\); protocol "
            r"crps-continuous gives esketamine by IV infusion: choose one of perez-ruixo-2021",
        ),
    ],
)
def test_bad_requests_are_refused_with_the_reason(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        run(SimulationRequest(model_id="domino", weight_kg=70, **kwargs))


def test_page_shows_metrics_and_refuses_bad_input(client: Any, login_page: Any) -> None:
    login_page("researcher")
    r = client.get(
        "/simulate", params={"model": "domino", "weight_kg": "70", "protocol": "crps-outpatient"}
    )
    assert r.status_code == 200 and "Peak plasma <strong>181.8 ng/mL</strong>" in r.text
    r = client.get(
        "/simulate",
        params={"model": "domino", "weight_kg": "700", "route": "iv_bolus", "amount_mg": "10"},
    )
    assert r.status_code == 422 and "weight" in r.text


def test_effect_sites_are_named_in_words_from_the_model_file() -> None:
    result = run(
        SimulationRequest(
            model_id="perez-ruixo-2021",
            weight_kg=70,
            age_years=40,
            route="intranasal",
            amount_mg=56,
        )
    )
    assert set(result["effect_labels"]) == set(result["effect_ng_per_ml"])
    assert result["effect_labels"]["crps_analgesia"] == "CRPS analgesia effect site"
    assert not [label for label in result["effect_labels"].values() if "_" in label]


def test_fresh_page_preselects_no_route_and_an_empty_route_is_refused(
    client: Any, login_page: Any
) -> None:
    import re

    login_page("researcher")
    page = client.get("/simulate")
    assert page.status_code == 200
    route_select = re.search(r'<select name="route">(.*?)</select>', page.text, re.S)
    assert route_select is not None
    options = re.findall(r"<option[^>]*>", route_select.group(1))
    # the empty choice comes first and is the only one selected
    assert options[0] == '<option value="" selected>'
    assert [o for o in options if "selected" in o] == ['<option value="" selected>']
    assert "— choose a route —" in route_select.group(1)
    # a single dose with no route: refused, nothing simulated, the allowed routes named
    r = client.get(
        "/simulate",
        params={"model": "domino", "weight_kg": "70", "route": "", "amount_mg": "35"},
    )
    assert r.status_code == 422
    assert "route is missing" in r.text
    assert "allowed: iv_infusion, iv_bolus, intranasal, oral" in r.text
    assert "Peak plasma" not in r.text
    # the chosen route stays selected when the page comes back
    r = client.get(
        "/simulate",
        params={"model": "domino", "weight_kg": "70", "route": "iv_bolus", "amount_mg": "35"},
    )
    assert r.status_code == 200 and "Peak plasma" in r.text
    assert '<option value="iv_bolus" selected>' in r.text
    assert '<option value="" selected>' not in r.text
    # a protocol brings its own route: no route needed
    r = client.get(
        "/simulate",
        params={"model": "domino", "weight_kg": "70", "protocol": "crps-outpatient", "route": ""},
    )
    assert r.status_code == 200 and "Peak plasma <strong>181.8 ng/mL</strong>" in r.text
