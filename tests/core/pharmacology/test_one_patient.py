"""The one-patient path of ``simulate()`` against the population engine it replaced.

``simulate()`` computes one patient's closed form with a decomposition kept per model and
covariates; ``simulate_reference()`` computes the same with the population engine
(``make_plan`` and ``evaluate_grid`` with a patient axis, ``integrate`` for the AUC), the
path ``simulate()`` took before. Both are checked against independent solutions elsewhere
(``test_exact_vs_ode.py``, ``test_opentiva.py``, ``test_published.py``); here every model,
route and grid shape must give the same curves and metrics from both, and the kept
patients must never change a result or skip a check.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings

import numpy as np
import pytest

from ketacare.core.errors import ClinicalWarning, OutOfRange
from ketacare.core.pharmacology import Patient, list_models, load_model, parse_regimen, simulate

one = sys.modules["ketacare.core.pharmacology.simulate"]


def doses_for(model_id: str) -> list[dict[str, object]]:
    """A regimen on every route the model has: boluses, infusions that overlap, a second
    dose while the first is absorbed, and a dose between two grid points."""
    model = load_model(model_id=model_id)
    doses: list[dict[str, object]] = []
    for k, route in enumerate(model.routes):
        start = 0.25 * k
        if route == "iv_infusion":
            doses.append(
                {"route": route, "start_h": start, "duration_h": 2.0 / 3.0, "amount_mg": 35}
            )
            doses.append({"route": route, "start_h": 30.0, "duration_h": 4.0, "amount_mg": 98})
        elif route == "intranasal":
            doses.append({"route": route, "start_h": start, "amount_mg": 56})
            doses.append({"route": route, "start_h": 26.01, "amount_mg": 28})
        else:
            doses.append({"route": route, "start_h": start, "amount_mg": 20})
            doses.append({"route": route, "start_h": 24.0 + 1.0 / 7.0, "amount_mg": 10})
    return sorted(doses, key=lambda dose: float(str(dose["start_h"])))


GRIDS = [
    (48.0, 1.0),  # every dose on the grid but one
    (48.0, 7.0),  # most doses between grid points
    (29.0, 0.5),  # ends before the last dose
    (0.1, 0.25),  # a few minutes: within the first infusion
    (240.0, 60.0),  # coarse, long
]


def assert_same(fast: one.Simulation, reference: one.Simulation) -> None:
    peak = max(float(reference.plasma_ng_per_ml.max()), 1e-300)
    np.testing.assert_array_equal(fast.time_h, reference.time_h)
    np.testing.assert_allclose(
        fast.plasma_ng_per_ml, reference.plasma_ng_per_ml, rtol=0, atol=1e-9 * peak
    )
    assert fast.effect_ng_per_ml.keys() == reference.effect_ng_per_ml.keys()
    for site, curve in reference.effect_ng_per_ml.items():
        scale = max(float(curve.max()), 1e-300)
        np.testing.assert_allclose(fast.effect_ng_per_ml[site], curve, rtol=0, atol=1e-9 * scale)
    if reference.metabolite_ng_per_ml is None:
        assert fast.metabolite_ng_per_ml is None
    else:
        assert fast.metabolite_ng_per_ml is not None
        scale = float(reference.metabolite_ng_per_ml.max())
        np.testing.assert_allclose(
            fast.metabolite_ng_per_ml, reference.metabolite_ng_per_ml, rtol=0, atol=1e-9 * scale
        )
    f, r = fast.metrics, reference.metrics
    assert f.cmax_ng_per_ml == pytest.approx(r.cmax_ng_per_ml, rel=1e-9)
    assert f.tmax_h == r.tmax_h
    assert f.auc_ng_h_per_ml == pytest.approx(r.auc_ng_h_per_ml, rel=1e-9)
    assert f.auc_by_day_ng_h_per_ml == pytest.approx(r.auc_by_day_ng_h_per_ml, rel=1e-9)
    assert (f.time_above_h, f.threshold_ng_per_ml, f.total_dose_mg) == (
        r.time_above_h,
        r.threshold_ng_per_ml,
        r.total_dose_mg,
    )
    assert fast.warnings == reference.warnings


@pytest.mark.parametrize("model_id", [m.id for m in list_models()])
@pytest.mark.parametrize(("hours", "step_min"), GRIDS)
def test_every_model_route_and_grid_agrees_with_the_population_engine(
    model_id: str, hours: float, step_min: float
) -> None:
    model = load_model(model_id=model_id)
    regimen = parse_regimen({"doses": doses_for(model_id)}, weight_kg=70)
    patient = Patient(weight_kg=70, age_years=45)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClinicalWarning)
        reference = one.simulate_reference(
            model=model,
            patient=patient,
            regimen=regimen,
            hours=hours,
            step_min=step_min,
            threshold_ng_per_ml=50.0,
        )
        for _ in range(2):  # the second call reuses the kept patient and grid table
            fast = simulate(
                model=model,
                patient=patient,
                regimen=regimen,
                hours=hours,
                step_min=step_min,
                threshold_ng_per_ml=50.0,
            )
            assert_same(fast, reference)


def test_a_bolus_at_time_zero_is_in_the_first_point() -> None:
    # 35 mg into Domino's V1 = 0.063 L/kg x 70 kg = 4.41 L: 7936.5 ng/mL at t = 0
    model = load_model(model_id="domino")
    regimen = parse_regimen(
        {"doses": [{"route": "iv_bolus", "start_h": 0, "amount_mg": 35}]}, weight_kg=70
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClinicalWarning)
        sim = simulate(model=model, patient=Patient(weight_kg=70), regimen=regimen, hours=1)
    assert sim.plasma_ng_per_ml[0] == pytest.approx(35 / 4.41 * 1000, rel=1e-12)


def test_a_kept_patient_still_warns_on_every_call() -> None:
    model = load_model(model_id="domino")  # unverified primary source: always warns
    regimen = parse_regimen(
        {"doses": [{"route": "iv_bolus", "start_h": 0, "amount_mg": 35}]}, weight_kg=70
    )
    for _ in range(3):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            simulate(model=model, patient=Patient(weight_kg=71), regimen=regimen, hours=1)
        assert [str(w.message) for w in caught if w.category is ClinicalWarning] == [
            "model domino comes from an unverified primary source: see its notes"
        ]


def test_a_refused_patient_is_refused_every_time_and_never_kept() -> None:
    model = load_model(model_id="domino")
    regimen = parse_regimen(
        {"doses": [{"route": "iv_bolus", "start_h": 0, "amount_mg": 35}]}, weight_kg=70
    )
    for _ in range(2):
        with pytest.raises(OutOfRange, match="weight_kg"):
            simulate(model=model, patient=Patient(weight_kg=400), regimen=regimen, hours=1)
    assert not any(key[1] == 400 for key in one._TYPICAL)


def test_another_model_object_with_the_same_patient_is_not_confused() -> None:
    domino = load_model(model_id="domino")
    # the same model with a slower elimination: a different object, a different curve
    k10 = domino.parameter("k10")
    slower = dataclasses.replace(
        domino,
        parameters=tuple(
            dataclasses.replace(p, value=p.value / 2) if p is k10 else p for p in domino.parameters
        ),
    )
    regimen = parse_regimen(
        {"doses": [{"route": "iv_bolus", "start_h": 0, "amount_mg": 35}]}, weight_kg=70
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClinicalWarning)
        patient = Patient(weight_kg=72)
        a = simulate(model=domino, patient=patient, regimen=regimen, hours=6)
        b = simulate(model=slower, patient=patient, regimen=regimen, hours=6)
        b_ref = one.simulate_reference(model=slower, patient=patient, regimen=regimen, hours=6)
    assert b.plasma_ng_per_ml[-1] > 1.5 * a.plasma_ng_per_ml[-1]
    assert_same(b, b_ref)


def test_the_kept_patients_are_bounded() -> None:
    model = load_model(model_id="clements-250")
    regimen = parse_regimen(
        {"doses": [{"route": "iv_bolus", "start_h": 0, "amount_mg": 17.5}]}, weight_kg=70
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClinicalWarning)
        for i in range(one._TYPICAL_KEPT + 20):
            simulate(model=model, patient=Patient(weight_kg=40 + i / 10), regimen=regimen, hours=1)
    assert len(one._TYPICAL) <= one._TYPICAL_KEPT


def test_the_kept_arrays_cannot_be_changed() -> None:
    model = load_model(model_id="domino")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClinicalWarning)
        typical = one._typical(model, Patient(weight_kg=70))
    with pytest.raises(ValueError, match="read-only"):
        typical.system.a[0, 0, 0] = 1.0
    table = typical.modes.table(1 / 60, 10)
    with pytest.raises(ValueError, match="read-only"):
        table[0, 0] = 2.0
