"""Every path that builds intranasal esketamine regimens gives the charted-as-devices form the
curve of the single-entry form (Perez-Ruixo 2021 Table 3 dose effect; label: 28-mg devices,
5 minutes after each). The simulation page, `ketacare simulate --regimen`, plan previews
(the plan's sessions as regimen entries) and personalisation (individual fits and
`ketacare personalise`) are checked here; the chair's live estimate in
tests/core/sessions/test_live_devices.py."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from ketacare.cli import app
from ketacare.clinic.simulation.service import SimulationRequest, run
from ketacare.core.pharmacology import Patient, load_model, parse_regimen, simulate
from ketacare.core.pharmacology.individual.fit import fit_individual
from ketacare.core.pharmacology.individual.inputs import Sample
from ketacare.core.protocols import load_library
from ketacare.core.protocols.regimen import plan_regimen
from protocol_policy import build_plan
from protocol_policy import test_policy as policy_for_tests

MODEL = load_model(model_id="perez-ruixo-2021")
PATIENT = Patient(weight_kg=74, age_years=45)
FIVE_MIN = 5 / 60


def as_devices(doses):
    """Each intranasal entry of n x 28 mg charted as n 28-mg entries 5 minutes apart."""
    out = []
    for d in doses:
        n = round(d["amount_mg"] / 28)
        assert n * 28 == d["amount_mg"]
        out += [{**d, "start_h": d["start_h"] + k * FIVE_MIN, "amount_mg": 28} for k in range(n)]
    return out


def _sim(doses, hours, step_min):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate(
            model=MODEL,
            patient=PATIENT,
            regimen=parse_regimen({"doses": doses}, weight_kg=74),
            hours=hours,
            step_min=step_min,
        )


@pytest.fixture(scope="module")
def runner():
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


def test_simulation_page_84_mg_equals_three_devices():
    """Page: 84 mg intranasal over 24 h on a 1-minute grid; Table 4 Cmax 101.0 ng/mL."""
    page = run(
        SimulationRequest(
            model_id=MODEL.id, weight_kg=74, age_years=45, route="intranasal", amount_mg=84
        )
    )
    devices = _sim(as_devices([{"route": "intranasal", "start_h": 0, "amount_mg": 84}]), 24, 1)
    np.testing.assert_allclose(page["plasma_ng_per_ml"], devices.plasma_ng_per_ml, atol=1e-4)
    assert page["metrics"]["cmax_ng_per_ml"] == pytest.approx(101.0, rel=0.005)


@pytest.mark.parametrize("protocol_id", ["esketamine-trd", "esketamine-mdd-si"])
def test_plan_preview_and_protocol_page_equal_the_course_charted_as_devices(protocol_id):
    """A plan's sessions (one entry per session, days apart) simulate as the same sessions
    charted device by device; each session is a new dose, so every session peaks alike."""
    protocol = load_library().get(protocol_id=protocol_id)
    plan = build_plan(protocol=protocol, weight_kg=74)
    doses = plan_regimen(plan=plan, route=protocol.route)["doses"]
    hours = doses[-1]["start_h"] + 24
    whole = _sim(doses, hours, 5)
    devices = _sim(as_devices(doses), hours, 5)
    np.testing.assert_allclose(devices.plasma_ng_per_ml, whole.plasma_ng_per_ml, rtol=1e-9)
    page = run(
        SimulationRequest(
            model_id=MODEL.id, weight_kg=74, protocol_id=protocol_id, site_policy=policy_for_tests()
        )
    )
    assert page["metrics"]["total_dose_mg"] == pytest.approx(sum(d["amount_mg"] for d in doses))


def test_cli_simulate_regimen_file_devices_equal_one_entry(runner, tmp_path):
    """`ketacare simulate --regimen FILE --json` (design-document regimen and JSON output)."""
    docs = []
    for doses in (
        [{"route": "intranasal", "start_h": 0, "amount_mg": 84}],
        [{"route": "intranasal", "start_h": k * FIVE_MIN, "amount_mg": 28} for k in range(3)],
    ):
        path = tmp_path / f"r{len(docs)}.json"
        path.write_text(json.dumps({"doses": doses}))
        args = ["simulate", "--model", MODEL.id, "--weight", "74", "--age", "45"]
        result = runner.invoke(app, [*args, "--regimen", str(path), "--hours", "24", "--json"])
        assert result.exit_code == 0, result.output
        docs.append(json.loads(result.stdout))
    one, three = docs
    np.testing.assert_allclose(three["plasma_ng_per_ml"], one["plasma_ng_per_ml"], rtol=1e-9)
    np.testing.assert_allclose(
        three["norketamine_ng_per_ml"], one["norketamine_ng_per_ml"], rtol=1e-9
    )
    assert three["metrics"]["total_dose_mg"] == one["metrics"]["total_dose_mg"] == 84.0
    assert one["metrics"]["cmax_ng_per_ml"] == pytest.approx(101.0, rel=0.005)  # Table 4


SAMPLES = (Sample(time_h=0.75, value_ng_per_ml=120.0), Sample(time_h=6.0, value_ng_per_ml=22.0))


def test_individual_fit_from_devices_equals_fit_from_one_entry():
    """The same levels after the same 84 mg give the same individual parameters."""
    fits = []
    for doses in (
        [{"route": "intranasal", "start_h": 0, "amount_mg": 84}],
        as_devices([{"route": "intranasal", "start_h": 0, "amount_mg": 84}]),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(
                fit_individual(
                    model=MODEL,
                    patient=PATIENT,
                    regimen=parse_regimen({"doses": doses}, weight_kg=74),
                    samples=SAMPLES,
                    n_draws=0,
                )
            )
    one, three = fits
    np.testing.assert_allclose(three.eta, one.eta, rtol=1e-6, atol=1e-9)
    assert three.objective == pytest.approx(one.objective, rel=1e-9)


def test_cli_personalise_devices_equal_one_entry(runner, tmp_path):
    outs = []
    for doses in (
        [{"route": "intranasal", "start_h": 0, "amount_mg": 84}],
        as_devices([{"route": "intranasal", "start_h": 0, "amount_mg": 84}]),
    ):
        doc = {
            "model": MODEL.id,
            "patient": {"weight_kg": 74, "age_years": 45},
            "doses": doses,
            "samples": [
                {"time_h": 0.75, "value_ng_per_ml": 120.0},
                {"time_h": 6.0, "value_ng_per_ml": 22.0},
            ],
            "settings": {"n_draws": 100, "seed": 3, "step_min": 5, "hours": 24},
        }
        path = tmp_path / f"p{len(outs)}.json"
        path.write_text(json.dumps(doc))
        result = runner.invoke(app, ["personalise", str(path), "--json"])
        assert result.exit_code == 0, result.output
        outs.append(json.loads(result.stdout))
    one, three = outs
    assert len(three["doses"]) == 3 and len(one["doses"]) == 1
    for key in ("fit", "parameters", "prediction"):
        assert _numbers(three[key]) == pytest.approx(_numbers(one[key]), rel=1e-6, abs=1e-9)


def _numbers(doc):
    """Every number in a JSON document, in document order."""
    if isinstance(doc, dict):
        return [x for k in sorted(doc) for x in _numbers(doc[k])]
    if isinstance(doc, list):
        return [x for v in doc for x in _numbers(v)]
    if isinstance(doc, bool) or not isinstance(doc, int | float):
        return []
    return [float(doc)]
