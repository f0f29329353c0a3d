"""`ketacare personalise FILE.json`: checked against the core computed independently.

The command is registered on a throwaway Typer app, so these tests do not depend on how
the `ketacare` app composes its commands.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from ketacare.commands.personalise import register
from ketacare.core.errors import ClinicalWarning
from ketacare.core.pharmacology import (
    Patient,
    Sample,
    convert_route,
    fit_individual,
    load_model,
    parse_regimen,
    predict_at,
    simulate,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples" / "personalise"
MODEL = "perez-ruixo-2021"

BASE: dict = {
    "model": MODEL,
    "patient": {"weight_kg": 72, "age_years": 46, "sex": "F"},
    "doses": [{"route": "iv_infusion", "start_h": 0, "duration_h": 4, "rate_mg_per_h": 20}],
    "samples": [
        {"time_h": 2.0, "value_ng_per_ml": 62.0},
        {"time_h": 6.0, "value_ng_per_ml": 20.0},
        {"time_h": 6.0, "value_ng_per_ml": 80.0, "analyte": "metabolite"},
        {"time_h": 12.0, "value_ng_per_ml": None, "lloq_ng_per_ml": 5.0},
    ],
    "settings": {"n_draws": 200, "seed": 3, "step_min": 5, "hours": 24},
}


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a group, so `personalise` is a subcommand as in `ketacare`
        pass

    register(app)
    return app


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 always separates stderr
        return CliRunner()


def run(app, runner, tmp_path, doc, *extra):
    path = tmp_path / "input.json"
    path.write_text(json.dumps(doc))
    return runner.invoke(app, ["personalise", str(path), *extra])


def run_json(app, runner, tmp_path, doc, *extra) -> dict:
    result = run(app, runner, tmp_path, doc, "--json", *extra)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def core_fit(doc: dict, samples: list[dict] | None = None):
    """The same fit, built directly from the core (not through the command's parser)."""
    model = load_model(model_id=doc["model"])
    p = doc["patient"]
    patient = Patient(weight_kg=p["weight_kg"], age_years=p.get("age_years"), sex=p.get("sex"))
    regimen = parse_regimen({"doses": doc["doses"]}, weight_kg=p["weight_kg"])
    samples = doc["samples"] if samples is None else samples
    s = doc["settings"]
    return fit_individual(
        model=model,
        patient=patient,
        regimen=regimen,
        samples=[
            Sample(
                time_h=x["time_h"],
                value_ng_per_ml=x["value_ng_per_ml"],
                analyte=x.get("analyte", "plasma"),
                lloq_ng_per_ml=x.get("lloq_ng_per_ml"),
            )
            for x in samples
        ],
        n_draws=s.get("n_draws", 1000),
        seed=s.get("seed", 0),
    )


# --------------------------------------------------------------------------------------
# the fit and the curve
# --------------------------------------------------------------------------------------


def test_fitted_curve_agrees_with_predict_at_on_an_independent_fit(app, runner, tmp_path):
    out = run_json(app, runner, tmp_path, BASE)
    fit = core_fit(BASE)
    # parameters: the same posterior mode
    by_name = {p["name"]: p for p in out["parameters"]}
    for p in fit.parameters:
        assert by_name[p.name]["estimate"] == pytest.approx(p.estimate, rel=1e-9)
        assert by_name[p.name]["informed"] == p.informed
    # at the sample times: exact predictions, per analyte
    for s, row in zip(BASE["samples"], out["samples"], strict=True):
        analyte = s.get("analyte", "plasma")
        expected = predict_at(fit=fit, times_h=[s["time_h"]], analyte=analyte)[0]
        assert row["predicted_ng_per_ml"] == pytest.approx(expected, rel=1e-9)
        band = row["predicted_band"]
        assert band["p05"] <= band["p50"] <= band["p95"]
    # the plotted grid curve passes through the same values (2 h, 6 h, 12 h are grid points)
    pred = out["prediction"]
    t = np.array(pred["time_h"])
    for s in BASE["samples"]:
        i = int(np.argmin(np.abs(t - s["time_h"])))
        assert t[i] == pytest.approx(s["time_h"])
        analyte = s.get("analyte", "plasma")
        key = "plasma_ng_per_ml" if analyte == "plasma" else "metabolite_ng_per_ml"
        expected = predict_at(fit=fit, times_h=[s["time_h"]], analyte=analyte)[0]
        assert pred[key][i] == pytest.approx(expected, rel=1e-6)
    # bands and effect sites are there, ordered
    for band in (pred["plasma_band"], pred["metabolite_band"], *pred["effect_band"].values()):
        assert np.all(np.array(band["p05"]) <= np.array(band["p95"]) + 1e-12)
    assert set(pred["effect_ng_per_ml"]) == {"crps_analgesia", "acute_pain"}
    assert out["fit"]["n_below_lloq"] == 1 and out["fit"]["n_draws"] == 200


def test_below_lloq_sample_is_used_not_dropped(app, runner, tmp_path):
    out = run_json(app, runner, tmp_path, BASE)
    blq = out["samples"][3]
    assert blq["below_lloq"] is True and blq["lloq_ng_per_ml"] == 5.0
    without = core_fit(BASE, samples=BASE["samples"][:3])
    kel = next(p for p in out["parameters"] if p["name"] == "kel")["estimate"]
    assert kel != pytest.approx(without.parameter("kel").estimate, rel=1e-3)


def test_no_samples_gives_the_typical_patient(app, runner, tmp_path):
    doc = copy.deepcopy(BASE)
    doc["samples"] = []
    out = run_json(app, runner, tmp_path, doc)
    for p in out["parameters"]:
        assert p["estimate"] == pytest.approx(p["typical"]) and p["sd_ratio"] == 1.0
    pred = out["prediction"]
    assert pred["plasma_ng_per_ml"] == pytest.approx(pred["typical_plasma_ng_per_ml"])


# --------------------------------------------------------------------------------------
# recommendations, checked with simulate() on this patient's parameters
# --------------------------------------------------------------------------------------


def individual_model(out: dict):
    """The library model with this patient's MAP parameters as its typical values."""
    model = load_model(model_id=out["model"])
    estimates = {p["name"]: p for p in out["parameters"]}
    params = []
    for p in model.parameters:
        e = estimates.get(p.name)
        if e is None:
            params.append(p)
        elif p.logit:
            assert not p.per_kg and p.age_slope is None
            params.append(replace(p, value=e["estimate"]))
        else:
            params.append(replace(p, value=p.value * e["estimate"] / e["typical"]))
    return replace(model, parameters=tuple(params))


def test_recommendations_reach_their_target_by_an_independent_simulation(app, runner, tmp_path):
    doc = copy.deepcopy(BASE)
    del doc["patient"]["age_years"]  # the age covariate is additive: keep the check exact
    doc["settings"]["n_draws"] = 0  # the target is then met by the MAP patient exactly
    doc["target"] = {"auc_ng_h_per_ml": 400}
    doc["options"] = [
        {"route": "iv_infusion", "duration_h": 4},
        {"route": "oral", "interval_h": 24, "n_doses": 1},
    ]
    out = run_json(app, runner, tmp_path, doc)
    model = individual_model(out)
    patient = Patient(weight_kg=72, sex="F")
    assert [r["status"] for r in out["recommendations"]] == ["ok", "ok"]
    for rec in out["recommendations"]:
        assert rec["reached"] is True
        regimen = parse_regimen(rec["regimen"], weight_kg=72)
        assert regimen.total_dose_mg == pytest.approx(rec["dose_mg"])
        with pytest.warns(ClinicalWarning, match="age not given"):
            sim = simulate(
                model=model,
                patient=patient,
                regimen=regimen,
                hours=regimen.end_h + 720,
                step_min=60,
            )
        assert sim.metrics.auc_ng_h_per_ml == pytest.approx(400.0, rel=1e-3)
    iv = out["recommendations"][0]
    assert iv["rate_mg_per_h"] * 4 == pytest.approx(iv["dose_mg"])


def test_steady_state_target_by_an_independent_simulation(app, runner, tmp_path):
    doc = copy.deepcopy(BASE)
    del doc["patient"]["age_years"]
    doc["settings"]["n_draws"] = 0
    doc["target"] = {"concentration_ng_per_ml": 5.0}
    doc["options"] = [{"route": "oral", "interval_h": 12, "n_doses": 20}]
    out = run_json(app, runner, tmp_path, doc)
    (rec,) = out["recommendations"]
    regimen = parse_regimen(rec["regimen"], weight_kg=72)
    with pytest.warns(ClinicalWarning, match="age not given"):
        sim = simulate(
            model=individual_model(out),
            patient=Patient(weight_kg=72, sex="F"),
            regimen=regimen,
            hours=regimen.end_h + 12,
            step_min=1,
        )
    last = sim.time_h >= regimen.end_h
    average = np.trapezoid(sim.plasma_ng_per_ml[last], sim.time_h[last]) / 12.0
    assert average == pytest.approx(5.0, rel=0.02)


def test_ceiling_probability_and_curves_per_recommendation(app, runner, tmp_path):
    doc = copy.deepcopy(BASE)
    doc["target"] = {"auc_ng_h_per_ml": 400}
    doc["options"] = [
        {"route": "iv_infusion", "duration_h": 1},
        {"route": "iv_infusion", "duration_h": 4},
    ]
    doc["ceiling_ng_per_ml"] = 120
    out = run_json(app, runner, tmp_path, doc)
    short, long = out["recommendations"]
    # the same exposure given faster peaks higher: more draws above the ceiling
    assert short["probability_above_ceiling"] > long["probability_above_ceiling"]
    for rec in (short, long):
        pred = rec["prediction"]
        assert {"time_h", "plasma_band", "effect_band", "metabolite_band"} <= pred.keys()
        assert rec["predicted"]["p05"] <= rec["predicted"]["p50"] <= rec["predicted"]["p95"]
    assert out["prediction"]["probability_above_ceiling"] is not None


# --------------------------------------------------------------------------------------
# protocol limits
# --------------------------------------------------------------------------------------


def test_protocol_soft_limit_marks_a_recommendation_for_review(app, runner, tmp_path):
    doc = copy.deepcopy(BASE)
    doc["target"] = {"auc_ng_h_per_ml": 400}
    doc["options"] = [{"route": "iv_infusion", "duration_h": 1}]  # needs far above 22 mg/h
    doc["protocol"] = "crps-continuous"
    out = run_json(app, runner, tmp_path, doc)
    (rec,) = out["recommendations"]
    assert rec["status"] == "soft_limit" and rec["reached"] is True
    assert rec["rate_mg_per_h"] > 22 and rec["protocol_limits_checked"] is True
    # above the guideline's 22 mg/h, and so above the trial's 0.317 mg/kg/h (22.2 mg/h/70 kg)
    by_rate, by_weight = rec["findings"]
    assert by_rate["level"] == by_weight["level"] == "soft"
    assert "22 mg/h" in by_rate["message"] and "crps-continuous" in by_rate["message"]
    assert "0.317 mg/kg/h" in by_weight["message"]
    assert "rate_mg_per_h hard" in out["protocol"]["not_configured"]


def test_protocol_hard_limit_caps_a_recommendation(app, runner, tmp_path):
    doc = copy.deepcopy(BASE)
    doc["doses"] = [{"route": "intranasal", "start_h": 0, "amount_mg": 56}]
    doc["samples"] = [{"time_h": 0.7, "value_ng_per_ml": 61.0}]
    doc["target"] = {"concentration_ng_per_ml": 8.0}
    doc["options"] = [
        {"route": "intranasal", "interval_h": 84, "n_doses": 2},
        {"route": "oral", "interval_h": 24, "n_doses": 3},
    ]
    doc["protocol"] = "esketamine-trd"
    out = run_json(app, runner, tmp_path, doc)
    nasal, oral = out["recommendations"]
    assert nasal["status"] == "capped_at_hard_limit" and nasal["reached"] is False
    assert 0 < nasal["dose_mg"] <= 84.0
    assert nasal["findings"][0]["level"] == "hard" and "84 mg" in nasal["findings"][0]["message"]
    assert nasal["predicted"]["p50"] < 8.0
    # the protocol is intranasal: the oral proposal is outside it, and says so
    assert oral["protocol_limits_checked"] is False and oral["status"] == "ok"
    assert any("not checked for oral" in w for w in out["warnings"])


def test_site_policy_fills_a_hard_limit(app, runner, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text("[crps-continuous.limits.rate_mg_per_h]\nhard = 30\n")
    doc = copy.deepcopy(BASE)
    doc["target"] = {"auc_ng_h_per_ml": 400}
    doc["options"] = [{"route": "iv_infusion", "duration_h": 1}]
    doc["protocol"] = "crps-continuous"
    out = run_json(app, runner, tmp_path, doc, "--site-policy", str(policy))
    (rec,) = out["recommendations"]
    assert rec["status"] == "capped_at_hard_limit"
    assert rec["rate_mg_per_h"] == pytest.approx(30.0, rel=1e-6)


# --------------------------------------------------------------------------------------
# response, conversion, output forms
# --------------------------------------------------------------------------------------


def test_response_fit_is_exploratory_and_predicts_each_recommendation(app, runner, tmp_path):
    doc = copy.deepcopy(BASE)
    doc["response"] = {
        "baseline_nrs": 8,
        "scores": [{"time_h": 4, "nrs": 7.5}, {"time_h": 20, "nrs": 7}],
        "assumptions": {"emax_fraction": 1, "gamma": 1, "nrs_sd": 1, "c50_log_sd": 0.8},
    }
    doc["target"] = {"auc_ng_h_per_ml": 400}
    doc["options"] = [{"route": "iv_infusion", "duration_h": 4}]
    out = run_json(app, runner, tmp_path, doc)
    resp = out["response"]
    assert resp["label"] == "exploratory" and resp["assumed"] and resp["sourced"]
    c50 = resp["c50_ng_per_ml"]
    assert c50["p05"] < c50["p50"] < c50["p95"]
    assert resp["prediction"]["nrs_median"][0] == pytest.approx(8.0)
    assert out["recommendations"][0]["response_prediction"]["nrs_p05"]


def test_route_conversion_matches_the_core(app, runner, tmp_path):
    doc = copy.deepcopy(BASE)
    doc["convert"] = {"to_route": "oral"}
    out = run_json(app, runner, tmp_path, doc)
    (conv,) = out["conversions"]
    fit = core_fit(BASE)
    expected = convert_route(fit=fit, from_dose=fit.regimen.doses[0], to_route="oral")
    assert conv["from"] == {"dose": 1, "route": "iv_infusion", "amount_mg": 80.0, "duration_h": 4}
    assert conv["model_dose_mg"]["p50"] == pytest.approx(expected.model_dose_p50, rel=1e-9)
    assert conv["metabolite_auc_ratio"]["p50"] > 1  # first pass


def test_human_table_and_plot(app, runner, tmp_path):
    doc = copy.deepcopy(BASE)
    doc["target"] = {"auc_ng_h_per_ml": 400}
    doc["options"] = [{"route": "iv_infusion", "duration_h": 4}]
    plot = tmp_path / "fit.png"
    result = run(app, runner, tmp_path, doc, "--plot", str(plot))
    assert result.exit_code == 0, result.stderr
    for text in ("Individual parameters", "Samples against the fit", "Recommendations", "BLQ"):
        assert text in result.stdout
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


@pytest.mark.parametrize("name", ["iv-two-levels", "intranasal-protocol", "crps-response"])
def test_documented_examples_run(app, runner, name):
    result = runner.invoke(app, ["personalise", str(EXAMPLES / f"{name}.json"), "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["model"] == MODEL and out["parameters"]


# --------------------------------------------------------------------------------------
# bad input: exit 2, one line on stderr naming the field
# --------------------------------------------------------------------------------------


def _set(path: str, value):
    def change(doc: dict) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _delete(path: str):
    def change(doc: dict) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return change


BAD = [
    (_set("model", "nope-2020"), "unknown model 'nope-2020'"),
    (_set("model", "domino"), "no published between-patient variability"),
    (_set("samples.0.time_h", -1), "sample 1 time_h: -1 is out of range"),
    (
        _set("doses", [{"route": "iv_bolus", "start_h": 3, "amount_mg": 10}]),
        "sample 1 time_h: 2 h is not after the first dose",
    ),
    (_delete("samples.3.lloq_ng_per_ml"), "sample 4 is below the LLOQ"),
    (_set("samples.1.lloq_ng_per_ml", 25), "sample 2 value_ng_per_ml: 20 is below its lloq"),
    (_set("samples.0.analyte", "ketamine"), "sample 1 analyte: must be plasma"),
    (_set("doses.0.route", "iv_drip"), "unknown route in dose 1 'iv_drip'"),
    (
        _set("doses", [{"route": "sublingual", "start_h": 0, "amount_mg": 50}]),
        "dose 1 route: model perez-ruixo-2021 has no route sublingual",
    ),
    (_set("patient.weight_kg", 700), "patient.weight_kg: 700 is out of range"),
    (_set("patient.sex", "female"), "patient.sex: must be F or M"),
    (_delete("patient"), "input: needs patient"),
    (_set("colour", "blue"), "input: unknown field colour"),
    (_set("target", {"auc_ng_h_per_ml": 400}), "options: a target needs"),
    (
        lambda d: d.update(
            target={"auc_ng_h_per_ml": 400}, options=[{"route": "sublingual", "n_doses": 2}]
        ),
        "option 1 route: model perez-ruixo-2021 has no route sublingual",
    ),
    (_set("target", {"auc": 400}), "target: must be one of"),
    (_set("options", [{"route": "iv_infusion", "duration_h": 4}]), "target: options need"),
    (_set("convert", {"to_route": "rectal"}), "convert to_route: unknown route 'rectal'"),
    (
        _set("convert", {"to_route": "oral", "from_dose": 3}),
        "convert from_dose: must be the number",
    ),
    (
        _set("convert", {"to_route": "oral", "from_dose": {"route": "oral", "start_h": 0}}),
        "convert from_dose: (oral) needs amount_mg",
    ),
    (_set("protocol", "crps-outpatient"), "protocol: protocol crps-outpatient is for racemic"),
    (_set("protocol", "no-such"), "unknown protocol"),
    (
        _set(
            "response",
            {"baseline_nrs": 8, "scores": [{"time_h": 5, "nrs": 6}], "assumptions": {"gamma": 1}},
        ),
        "response.assumptions: must give emax_fraction",
    ),
    (_set("settings", {"n_draws": -5}), "settings.n_draws: -5 is out of range"),
]


@pytest.mark.parametrize(("change", "expected"), BAD, ids=[e for _, e in BAD])
def test_bad_input_exits_2_with_one_line(app, runner, tmp_path, change, expected):
    doc = copy.deepcopy(BASE)
    change(doc)
    result = run(app, runner, tmp_path, doc, "--json")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]


def test_unreadable_and_non_json_files_exit_2(app, runner, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for path in (bad, tmp_path / "missing.json"):
        result = runner.invoke(app, ["personalise", str(path)])
        assert result.exit_code == 2
        assert len(result.stderr.strip().splitlines()) == 1
    result = run(app, runner, tmp_path, BASE, "--plot", str(tmp_path / "fit.jpg"))
    assert result.exit_code == 2 and "--plot must name a .png" in result.stderr
