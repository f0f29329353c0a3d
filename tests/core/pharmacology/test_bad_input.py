"""Bad input gets a clear error; a patient outside a model's population gets a warning."""

from __future__ import annotations

import pytest

from ketacare.core.errors import ClinicalWarning, InvalidInput, OutOfRange, UnknownItem
from ketacare.core.pharmacology import (
    Patient,
    load_model,
    parse_regimen,
    simulate,
    simulate_population,
)

pytestmark = pytest.mark.filterwarnings("ignore:model .* unverified")


def regimen(*doses, weight=70.0):
    return parse_regimen({"doses": list(doses)}, weight_kg=weight)


@pytest.mark.parametrize(
    ("doses", "error", "text"),
    [
        ([{"route": "iv_bolus", "start_h": 0, "amount_mg": -5}], OutOfRange, "amount_mg -5"),
        ([{"route": "iv_bolus", "start_h": 0, "amount_mg": 0}], OutOfRange, "amount_mg 0"),
        (
            [{"route": "iv_infusion", "start_h": 0, "duration_h": 2, "rate_mg_per_h": -1}],
            OutOfRange,
            "rate_mg_per_h",
        ),
        ([{"route": "rectal", "start_h": 0, "amount_mg": 5}], UnknownItem, "unknown route"),
        (
            [
                {"route": "iv_infusion", "start_h": 0, "duration_h": 4, "rate_mg_per_h": 10},
                {"route": "iv_infusion", "start_h": 3, "duration_h": 1, "rate_mg_per_h": 10},
            ],
            InvalidInput,
            "overlaps dose 1",
        ),
        (
            [
                {"route": "iv_bolus", "start_h": 5, "amount_mg": 5},
                {"route": "iv_bolus", "start_h": 1, "amount_mg": 5},
            ],
            InvalidInput,
            "time order",
        ),
        (
            [
                {
                    "route": "iv_infusion",
                    "start_h": 0,
                    "duration_h": 1,
                    "rate_mg_per_h": 1,
                    "amount_mg": 5,
                }
            ],
            InvalidInput,
            "exactly one of",
        ),
        (
            [{"route": "iv_bolus", "start_h": 0, "amount_mg": 5, "dose": 3}],
            InvalidInput,
            "unknown field dose",
        ),
        ([{"route": "iv_bolus", "start_h": -1, "amount_mg": 5}], OutOfRange, "start_h"),
        ([{"route": "oral", "start_h": 0, "amount_mg": "ten"}], InvalidInput, "finite number"),
        ([], InvalidInput, "at least one dose"),
    ],
)
def test_bad_regimens_are_refused(doses, error, text):
    with pytest.raises(error, match=text):
        regimen(*doses)


def test_stepped_infusions_back_to_back_are_allowed():
    r = regimen(
        {"route": "iv_infusion", "start_h": 0, "duration_h": 1, "rate_mg_per_h": 5},
        {"route": "iv_infusion", "start_h": 1, "duration_h": 1, "rate_mg_per_h": 10},
    )
    assert r.total_dose_mg == 15


def test_route_not_in_model():
    with pytest.raises(UnknownItem, match="route for model domino 'oral'"):
        simulate(
            model=load_model(model_id="domino"),
            patient=Patient(weight_kg=70),
            regimen=regimen({"route": "oral", "start_h": 0, "amount_mg": 50}),
            hours=4,
        )


@pytest.mark.parametrize(
    ("patient", "text"),
    [
        (Patient(weight_kg=-3), "weight_kg"),
        (Patient(weight_kg=500), "weight_kg"),
        (Patient(weight_kg=70, age_years=150), "age_years"),
    ],
)
def test_implausible_patient_is_refused(patient, text):
    with pytest.raises(OutOfRange, match=text):
        simulate(
            model=load_model(model_id="perez-ruixo-2021"),
            patient=patient,
            regimen=regimen({"route": "iv_bolus", "start_h": 0, "amount_mg": 5}),
            hours=4,
        )


@pytest.mark.parametrize(
    ("patient", "text"),
    [
        (Patient(weight_kg=30, age_years=40), "weight 30 kg is outside"),
        (Patient(weight_kg=70, age_years=90), "age 90 years is outside"),
    ],
)
def test_patient_outside_population_warns(patient, text):
    with pytest.warns(ClinicalWarning, match=text):
        simulate(
            model=load_model(model_id="perez-ruixo-2021"),
            patient=patient,
            regimen=regimen({"route": "iv_bolus", "start_h": 0, "amount_mg": 5}),
            hours=4,
        )


def test_unverified_model_warns():
    with pytest.warns(ClinicalWarning, match="unverified primary source"):
        simulate(
            model=load_model(model_id="domino"),
            patient=Patient(weight_kg=70),
            regimen=regimen({"route": "iv_bolus", "start_h": 0, "amount_mg": 5}),
            hours=1,
        )


def test_population_needs_published_variability():
    with pytest.raises(InvalidInput, match="no published inter-individual variability"):
        simulate_population(
            model=load_model(model_id="domino"),
            patient=Patient(weight_kg=70),
            regimen=regimen({"route": "iv_bolus", "start_h": 0, "amount_mg": 5}),
            n=10,
            seed=1,
            hours=2,
        )


@pytest.mark.parametrize(
    ("hours", "step", "text"),
    [(0, 1, "hours"), (24, 0, "step_min"), (24 * 400, 0.001, "grid points")],
)
def test_bad_grid(hours, step, text):
    with pytest.raises(OutOfRange, match=text):
        simulate(
            model=load_model(model_id="perez-ruixo-2021"),
            patient=Patient(weight_kg=70),
            regimen=regimen({"route": "iv_bolus", "start_h": 0, "amount_mg": 5}),
            hours=hours,
            step_min=step,
        )
