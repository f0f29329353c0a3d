"""Recommendations reach their targets (checked by independent simulation); route conversion."""

from __future__ import annotations

import numpy as np
import pytest

from ketacare.core.errors import InvalidInput, UnknownItem
from ketacare.core.pharmacology import (
    AucTarget,
    AverageConcentrationTarget,
    Dose,
    IvOption,
    LimitFinding,
    Patient,
    RepeatedOption,
    Sample,
    SimpleLimits,
    WindowTarget,
    convert_route,
    fit_individual,
    load_model,
    make_regimen,
    parse_regimen,
    predict_at,
    recommend,
    simulate,
)

MODEL = load_model(model_id="perez-ruixo-2021")
PATIENT = Patient(weight_kg=70, age_years=45)
IV = parse_regimen(
    {"doses": [{"route": "iv_infusion", "start_h": 0, "duration_h": 4, "rate_mg_per_h": 20}]},
    weight_kg=70,
)


def _population(n_draws=0):
    return fit_individual(model=MODEL, patient=PATIENT, regimen=IV, samples=[], n_draws=n_draws)


def _auc(regimen, hours=24 * 30):
    sim = simulate(model=MODEL, patient=PATIENT, regimen=regimen, hours=hours, step_min=60)
    return sim.metrics.auc_ng_h_per_ml


def test_auc_target_is_reached_checked_by_simulate():
    (rec,) = recommend(
        fit=_population(),
        target=AucTarget(auc_ng_h_per_ml=500.0),
        options=[IvOption(duration_h=2.0)],
    )
    assert rec.status == "ok" and rec.reached
    assert rec.duration_h == 2.0 and rec.rate_mg_per_h == pytest.approx(rec.dose_mg / 2)
    assert _auc(rec.regimen) == pytest.approx(500.0, rel=1e-3)


def test_average_and_window_targets_checked_by_simulate():
    fit = _population()
    (avg,) = recommend(
        fit=fit,
        target=AverageConcentrationTarget(concentration_ng_per_ml=40.0),
        options=[IvOption(duration_h=4.0)],
    )
    sim = simulate(model=MODEL, patient=PATIENT, regimen=avg.regimen, hours=4, step_min=1)
    assert sim.metrics.auc_ng_h_per_ml / 4 == pytest.approx(40.0, rel=1e-3)
    (win,) = recommend(
        fit=fit,
        target=WindowTarget(low_ng_per_ml=50.0, high_ng_per_ml=200.0),
        options=[IvOption(duration_h=4.0)],
    )
    sim = simulate(model=MODEL, patient=PATIENT, regimen=win.regimen, hours=4, step_min=60)
    assert float(sim.plasma_ng_per_ml[-1]) == pytest.approx(100.0, rel=1e-3)  # geometric middle
    (oral,) = recommend(
        fit=fit,
        target=AverageConcentrationTarget(concentration_ng_per_ml=15.0),
        options=[RepeatedOption(route="oral", interval_h=24.0, n_doses=7)],
    )
    sim = simulate(model=MODEL, patient=PATIENT, regimen=oral.regimen, hours=24 * 7, step_min=5)
    last_day = sim.metrics.auc_by_day_ng_h_per_ml[-1] / 24
    assert last_day == pytest.approx(15.0, rel=0.05)  # near steady state after a week


def test_an_individual_gets_a_different_dose_that_reaches_their_target():
    # this patient clears esketamine faster than typical: levels at half the typical
    typical = predict_at(fit=_population(), times_h=[2.0, 6.0])
    samples = [
        Sample(time_h=t, value_ng_per_ml=float(c) * 0.5)
        for t, c in zip([2.0, 6.0], typical, strict=True)
    ]
    fit = fit_individual(model=MODEL, patient=PATIENT, regimen=IV, samples=samples, n_draws=0)
    target = AucTarget(auc_ng_h_per_ml=500.0)
    (pop,) = recommend(fit=_population(), target=target, options=[IvOption(duration_h=2.0)])
    (ind,) = recommend(fit=fit, target=target, options=[IvOption(duration_h=2.0)])
    assert ind.dose_mg > pop.dose_mg * 1.3
    # independent check: exact AUC of this patient's MAP curve under the proposed regimen
    times = np.linspace(0, 24 * 30, 24 * 30 * 4 + 1)
    curve = predict_at(fit=fit, times_h=times, regimen=ind.regimen)
    assert np.trapezoid(curve, times) == pytest.approx(500.0, rel=0.01)


def test_hard_limits_cap_soft_limits_are_reported_and_ceiling_probability():
    fit = _population(n_draws=400)
    target = AverageConcentrationTarget(concentration_ng_per_ml=100.0)
    (capped,) = recommend(
        fit=fit,
        target=target,
        options=[IvOption(duration_h=4.0)],
        limits=SimpleLimits(max_mg_per_h=20.0),
    )
    assert capped.status == "capped_at_hard_limit" and not capped.reached
    assert capped.rate_mg_per_h == pytest.approx(20.0, rel=1e-6)
    assert any("20 mg/h" in f.message for f in capped.findings)

    def soft(regimen):
        return (
            [LimitFinding("soft", "above the site's usual dose")]
            if regimen.total_dose_mg > 10
            else []
        )

    (review,) = recommend(fit=fit, target=target, options=[IvOption(duration_h=4.0)], limits=soft)
    assert review.status == "soft_limit" and review.reached

    low, high = (
        recommend(fit=fit, target=target, options=[IvOption(duration_h=4.0)], ceiling_ng_per_ml=c)[
            0
        ].probability_above_ceiling
        for c in (80.0, 400.0)
    )
    assert 0.0 <= high < low <= 1.0
    pred = review.prediction
    assert pred.plasma_band is not None and pred.metabolite_band is not None
    assert "crps_analgesia" in pred.effect_band


def test_intranasal_recommendations_come_in_whole_sprays():
    fit = _population(n_draws=200)
    (rec,) = recommend(
        fit=fit,
        target=AucTarget(auc_ng_h_per_ml=300.0),
        options=[RepeatedOption(route="intranasal", interval_h=84.0, n_doses=2)],
    )
    assert rec.dose_mg % 28 == 0 and rec.n_doses == 2
    with pytest.raises(UnknownItem):
        recommend(
            fit=fit,
            target=AucTarget(auc_ng_h_per_ml=300.0),
            options=[RepeatedOption(route="sublingual", interval_h=24.0)],
        )
    with pytest.raises(InvalidInput):
        recommend(
            fit=fit,
            target=WindowTarget(low_ng_per_ml=50, high_ng_per_ml=10),
            options=[IvOption(duration_h=1.0)],
        )


def test_route_conversion_matches_parent_auc_and_reports_first_pass():
    fit = _population()
    iv = Dose("iv_infusion", 0.0, 30.0, 1.0)
    c = convert_route(fit=fit, from_dose=iv, to_route="oral")
    oral = make_regimen((Dose("oral", 0.0, c.model_dose_p50),))
    assert _auc(oral) == pytest.approx(_auc(make_regimen((iv,))), rel=1e-3)
    assert c.metabolite_auc_ratio_p50 > 2  # hepatic first pass: more noresketamine per AUC
    assert c.literature_dose_p05 < c.literature_dose_p50 < c.literature_dose_p95
    assert any("Fanta" in s for s in c.literature_sources)
    back = convert_route(
        fit=fit,
        from_dose=Dose("oral", 0.0, c.model_dose_p50),
        to_route="iv_infusion",
        to_duration_h=1.0,
    )
    assert back.model_dose_p50 == pytest.approx(30.0, rel=1e-3)
    nasal = convert_route(fit=fit, from_dose=iv, to_route="intranasal")
    assert any("sprays" in n for n in nasal.notes)
    assert 30.0 < nasal.model_dose_p50 < 30.0 / 0.4


def test_racemic_conversion_uses_published_bioavailability_only():
    c = convert_route(
        from_dose=Dose("iv_bolus", 0.0, 20.0), to_route="intranasal", molecule="racemic ketamine"
    )
    assert c.model_dose_p50 is None and c.metabolite_auc_ratio_p50 is None
    assert c.literature_dose_p05 == pytest.approx(20 / 0.45, rel=0.02)
    assert c.literature_dose_p95 == pytest.approx(20 / 0.11, rel=0.02)
    with pytest.raises(InvalidInput):
        convert_route(from_dose=Dose("iv_bolus", 0.0, 20.0), to_route="oral")
