"""Esketamine nasal-spray devices are grouped into doses however they were charted.

Perez-Ruixo 2021 (Table 3): FRn 0.54 for the first 28-mg device of a dose, x 0.62 for the
second and later devices of the same dose. The label (spravatohcp.com, Dosing and
Administration) gives 28 mg per device, 5 minutes after each device, and at least 2 hours of
observation after each treatment; ketacare takes devices within 2 h of the previous one as
one dose, and a whole-dose entry as its devices 5 minutes apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ketacare.core.pharmacology import Patient, load_model, parse_regimen, simulate
from ketacare.core.pharmacology.population import simulate_population
from ketacare.core.pharmacology.simulate import device_doses

MODEL = load_model(model_id="perez-ruixo-2021")
PATIENT = Patient(weight_kg=74, age_years=45)
FIVE_MIN = 5 / 60


def _sim(doses, hours=24.0, step_min=1.0):
    regimen = parse_regimen({"doses": doses}, weight_kg=74)
    return simulate(model=MODEL, patient=PATIENT, regimen=regimen, hours=hours, step_min=step_min)


def _nasal(start_h, mg):
    return {"route": "intranasal", "start_h": start_h, "amount_mg": mg}


@pytest.mark.parametrize(("mg", "table_4_cmax"), [(56, 72.5), (84, 101.0)])
def test_one_entry_and_devices_five_minutes_apart_give_the_same_curve(mg, table_4_cmax):
    """84 mg as one entry and as three 28-mg devices 5 min apart (before: 102 vs 131 ng/mL)
    give one curve; its peak is Table 4's (18-60 y, non-Asian: 72.5 and 101.0 ng/mL) within
    0.5%."""
    whole = _sim([_nasal(0.0, mg)])
    devices = _sim([_nasal(k * FIVE_MIN, 28) for k in range(mg // 28)])
    np.testing.assert_allclose(devices.plasma_ng_per_ml, whole.plasma_ng_per_ml, rtol=1e-9)
    np.testing.assert_allclose(devices.metabolite_ng_per_ml, whole.metabolite_ng_per_ml, rtol=1e-9)
    for site, curve in whole.effect_ng_per_ml.items():
        np.testing.assert_allclose(devices.effect_ng_per_ml[site], curve, rtol=1e-9, atol=1e-12)
    assert whole.metrics.cmax_ng_per_ml == pytest.approx(table_4_cmax, rel=0.005)
    assert devices.metrics.cmax_ng_per_ml == pytest.approx(table_4_cmax, rel=0.005)


def test_two_devices_then_one_is_the_same_three_device_dose():
    """56 mg charted at 0 (devices at 0 and 5 min) and 28 mg at 10 min: the 84-mg dose."""
    mixed = _sim([_nasal(0.0, 56), _nasal(2 * FIVE_MIN, 28)])
    whole = _sim([_nasal(0.0, 84)])
    np.testing.assert_allclose(mixed.plasma_ng_per_ml, whole.plasma_ng_per_ml, rtol=1e-9)


def test_bioavailable_nasal_amount_of_84_mg_by_hand():
    """Nasal fraction of 84 mg: 28 x 0.54 + 2 x 28 x 0.54 x 0.62 = 15.12 + 18.7488 = 33.8688 mg,
    i.e. FRn 0.4032 for the dose (nlmixr2lib vignette: 0.4032 at 84 mg), charted either way."""
    from ketacare.core.pharmacology.simulate import dose_inputs
    from ketacare.core.pharmacology.system import typical_parameters

    params = typical_parameters(MODEL, weight_kg=74, age_years=45)
    nasal = MODEL.compartments.index("nasal_depot")
    for doses in ([_nasal(0.0, 84)], [_nasal(k * FIVE_MIN, 28) for k in range(3)]):
        regimen = parse_regimen({"doses": doses}, weight_kg=74)
        inputs = dose_inputs(model=MODEL, regimen=regimen, params=params)
        total = sum(float(i.amount_mg[0]) for i in inputs if i.state == nasal)
        assert total == pytest.approx(33.8688, rel=1e-12)
        assert total / 84 == pytest.approx(0.4032, abs=1e-4)


def test_a_dose_72_hours_later_starts_at_the_first_device_fraction():
    """Linear model: the curve of (56 mg at 0 h + 28 mg at 72 h) minus the curve of 56 mg at
    0 h is a lone 28-mg dose (FRn 0.54, Table 4 Cmax 43.8 ng/mL) shifted by 72 h."""
    both = _sim([_nasal(0.0, 56), _nasal(72.0, 28)], hours=96)
    first = _sim([_nasal(0.0, 56)], hours=96)
    lone = _sim([_nasal(0.0, 28)], hours=24)
    second = both.plasma_ng_per_ml - first.plasma_ng_per_ml
    shift = 72 * 60
    np.testing.assert_allclose(
        second[shift:], lone.plasma_ng_per_ml, rtol=1e-7, atol=1e-9 * lone.metrics.cmax_ng_per_ml
    )
    assert float(second[shift:].max()) == pytest.approx(43.8, rel=0.005)


def test_which_devices_make_one_dose():
    """Label: 5 min after each device; a device charted late (12 min) is still the same dose
    (within the 2-hour observation after a treatment); 3 h later is a new dose."""
    regimen = parse_regimen(
        {
            "doses": [
                _nasal(0.0, 28),
                _nasal(12 / 60, 56),
                _nasal(0.5, 28),
                _nasal(3.5, 28),
                {"route": "iv_bolus", "start_h": 3.55, "amount_mg": 5},
                _nasal(3.6, 28),
                _nasal(72.0, 84),
            ]
        },
        weight_kg=74,
    )
    assert device_doses(model=MODEL, regimen=regimen) == (
        (0,),
        (1, 2),
        (3,),
        (0,),
        (),
        (1,),
        (0, 1, 2),
    )


def test_model_file_states_the_device_rule_with_its_source():
    interval, window = MODEL.parameter("device_interval"), MODEL.parameter("dose_window")
    assert (interval.value, interval.unit, window.value, window.unit) == (5.0, "min", 2.0, "h")
    assert interval.source == window.source == "spravato_label"
    source = next(s for s in MODEL.sources if s.key == "spravato_label")
    assert source.url == "https://www.spravatohcp.com/dosing-and-administration"


def test_population_bands_match_for_devices_and_one_entry():
    """Every virtual patient gets the same per-device fractions either way (same seed)."""
    bands = []
    for doses in ([_nasal(0.0, 84)], [_nasal(k * FIVE_MIN, 28) for k in range(3)]):
        regimen = parse_regimen({"doses": doses}, weight_kg=74)
        pop = simulate_population(
            model=MODEL, patient=PATIENT, regimen=regimen, n=200, seed=7, hours=6, step_min=5
        )
        bands.append(pop.plasma_ng_per_ml)
    np.testing.assert_allclose(bands[1], bands[0], rtol=1e-9)


PEREZ = Path(MODEL.path).read_text()


@pytest.mark.parametrize(
    ("old", "new", "text"),
    [
        # a device route without the rule would silently treat devices as lone doses
        ('dose_window = "dose_window"\n', "", "needs device_interval .* and dose_window"),
        ('device_interval = "device_interval"', 'device_interval = "ka_n"', "unit 1/h"),
        (
            'dose_window = { value = 2.0, unit = "h"',
            'dose_window = { value = 0.0, unit = "h"',
            "positive",
        ),
    ],
)
def test_a_device_route_without_a_valid_grouping_rule_is_refused(tmp_path, old, new, text):
    from ketacare.core.errors import DataFileError
    from ketacare.core.pharmacology.models import load_model_file

    assert old in PEREZ
    path = tmp_path / "bad.toml"
    path.write_text(PEREZ.replace(old, new, 1))
    with pytest.raises(DataFileError, match=text):
        load_model_file(path)
