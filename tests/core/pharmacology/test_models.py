"""The model library as data: every model loads, every parameter is sourced, bad files fail."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from ketacare.core.errors import ClinicalWarning, DataFileError, UnknownItem
from ketacare.core.pharmacology import Patient, list_bioavailability, list_models, load_model
from ketacare.core.pharmacology.engine import evaluate, make_plan
from ketacare.core.pharmacology.models import MODELS_DIR, load_model_file
from ketacare.core.pharmacology.regimen import Dose, make_regimen
from ketacare.core.pharmacology.simulate import dose_inputs
from ketacare.core.pharmacology.system import build_matrices, typical_parameters


def test_library_lists_required_models():
    ids = {m.id for m in list_models()}
    assert {"domino", "clements-250", "perez-ruixo-2021"} <= ids
    assert load_model(model_id="perez-ruixo-2021").metabolite == "noresketamine"
    with pytest.raises(UnknownItem):
        load_model(model_id="fanta-2015")  # full parameter table not available: not shipped


@pytest.mark.parametrize("model", list_models(), ids=lambda m: m.id)
def test_every_parameter_has_unit_and_citation(model):
    keys = {s.key for s in model.sources}
    for p in model.parameters:
        assert p.unit and p.source in keys and p.where
    for s in model.sources:
        assert s.authors and s.year and s.journal and (s.doi or s.url)
        if s.doi:
            assert re.fullmatch(r"10\.\d{4,}/\S+", s.doi)
    assert model.notes


def test_unverified_primary_papers_are_flagged():
    for model_id in ("domino", "clements-250"):
        model = load_model(model_id=model_id)
        assert model.verified is False
        assert any(not s.verified for s in model.sources)


def test_race_effects_left_out_are_said_each_time_the_model_is_used():
    # Perez-Ruixo 2021 Table 3 (through nlmixr2lib): Asian kel x0.36 and CLn/F x0.81, Japanese
    # FRn x1.34. The record has no race field, so every use of the model must say so; the
    # other models estimated no race effect and say nothing of it.
    from ketacare.core.pharmacology.simulate import check_patient

    patient = Patient(weight_kg=70, age_years=40)
    with pytest.warns(ClinicalWarning, match="race effects") as caught:
        messages = check_patient(model=load_model(model_id="perez-ruixo-2021"), patient=patient)
    (race,) = [m for m in messages if "race" in m]
    assert "Asian: esketamine kel x0.36 and noresketamine CLn/F x0.81" in race
    assert "Japanese: FRn x1.34" in race and "no race field" in race
    assert len(caught) == len(messages)
    for model_id in ("domino", "clements-250"):
        with pytest.warns(ClinicalWarning):  # their unverified source
            others = check_patient(model=load_model(model_id=model_id), patient=patient)
        assert not any("race" in m for m in others)


GOOD = (MODELS_DIR / "clements_250.toml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "text"),
    [
        (
            'k10 = { value = 0.0109, unit = "1/min"',
            'k10 = { value = -0.0109, unit = "1/min"',
            "field 'parameters.k10.value': must be a positive number",
        ),
        (
            'k10 = { value = 0.0109, unit = "1/min"',
            'k10 = { value = 0.0109, unit = "per minute"',
            "field 'parameters.k10.unit': 'per minute' is not one of 1/day",
        ),
        (
            'source = "opentiva", where = "k21',
            'source = "nobody", where = "k21',
            "field 'parameters.k21.source': unknown source 'nobody'",
        ),
        (
            'to = "peripheral"\nrate = "k12"',
            'to = "nowhere"\nrate = "k12"',
            "'flows\\[1\\].to': 'nowhere' is not one",
        ),
        ("[routes.iv_bolus]", "[routes.smoke]", "unknown route"),
        (
            'molecule = "racemic ketamine"',
            'molecule = "racemic ketamine"\ncolour = "blue"',
            "field 'colour': unknown field \\(allowed: ",
        ),
        ('[[flows]]\nfrom = "central"\nrate = "k10"\n', "", "drain"),
        ('id = "clements-250"', "id = ", "is not valid TOML"),
    ],
)
def test_bad_model_files_raise_data_file_error(tmp_path, old, new, text):
    assert old in GOOD
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(DataFileError, match=text):
        load_model_file(path)


# A synthetic two-compartment model with sublingual and IM absorption routes, to check the
# generic absorption machinery (first-order depot, fraction, zero-order input) on every route.
SYNTHETIC = """
id = "synthetic"
name = "synthetic test model"
molecule = "racemic ketamine"
verified = false
time_unit = "h"
notes = "test only"
[sources.test]
authors = "test"
year = 2020
title = "test"
journal = "test"
url = "https://example.org"
verified = false
[population]
description = "test"
[compartments]
central = { volume = "V" }
peripheral = {}
sl_depot = {}
im_depot = {}
[parameters]
V = { value = 1.5, unit = "L/kg", scale = "weight", source = "test", where = "-" }
CL = { value = 70.0, unit = "L/h", source = "test", where = "-" }
Q = { value = 2.0, unit = "L/min", source = "test", where = "-" }
k21 = { value = 0.9, unit = "1/h", source = "test", where = "-" }
ka_sl = { value = 3.0, unit = "1/h", source = "test", where = "-" }
ka_im = { value = 5.0, unit = "1/h", source = "test", where = "-" }
F_sl = { value = 0.29, unit = "fraction", source = "test", where = "-" }
F_im = { value = 0.41, unit = "fraction", source = "test", where = "-" }
T_sl = { value = 10, unit = "min", source = "test", where = "-" }
[[flows]]
from = "central"
clearance = "CL"
[[flows]]
from = "central"
to = "peripheral"
clearance = "Q"
[[flows]]
from = "peripheral"
to = "central"
rate = "k21"
[[flows]]
from = "sl_depot"
to = "central"
rate = "ka_sl"
[[flows]]
from = "im_depot"
to = "central"
rate = "ka_im"
[outputs]
plasma = "central"
[routes.iv_bolus]
parts = [{ to = "central" }]
[routes.sublingual]
parts = [
  { to = "sl_depot", fraction = ["F_sl"], duration = "T_sl" },
  { to = "central", fraction = ["1-F_sl", "F_im"] },
]
[routes.im]
parts = [{ to = "im_depot", fraction = ["F_im"] }]
"""


def test_generic_absorption_routes_match_ode(tmp_path):
    path = tmp_path / "synthetic.toml"
    path.write_text(SYNTHETIC)
    model = load_model_file(path)
    regimen = make_regimen(
        (Dose("sublingual", 0.0, 25.0), Dose("im", 3.0, 50.0), Dose("iv_bolus", 5.0, 5.0))
    )
    params = typical_parameters(model, weight_kg=80.0, age_years=None)
    system = build_matrices(model, params)
    plan = make_plan(
        a=system.a, c=system.c, inputs=dose_inputs(model=model, regimen=regimen, params=params)
    )
    times = np.linspace(0, 24, 600)
    ours = evaluate(plan, times)[0, 0]
    # independent ODE: states central, peripheral, sl_depot, im_depot
    v, cl, q, k21 = 1.5 * 80, 70.0, 120.0, 0.9

    def rhs(t, y, sl_rate):
        c, p, sl, im = y
        return [
            -(cl + q) / v * c + k21 * p + 3.0 * sl + 5.0 * im,
            q / v * c - k21 * p,
            -3.0 * sl + sl_rate,
            -5.0 * im,
        ]

    t_sl = 10 / 60
    pieces = [(0.0, t_sl, 25 * 0.29 / t_sl), (t_sl, 3.0, 0.0), (3.0, 5.0, 0.0), (5.0, 25.0, 0.0)]
    x = np.array([25 * 0.71 * 0.41, 0, 0, 0])
    ref = np.zeros(times.size)
    for t0, t1, rate in pieces:
        if t0 == 3.0:
            x[3] += 50 * 0.41
        if t0 == 5.0:
            x[0] += 5.0
        mask = (times >= t0) & (times < t1)
        sol = solve_ivp(
            rhs,
            (t0, t1),
            x,
            args=(rate,),
            method="Radau",
            rtol=1e-11,
            atol=1e-14,
            t_eval=np.append(times[mask], t1),
        )
        ref[mask] = sol.y[0, :-1] / v * 1000
        x = sol.y[:, -1]
    keep = ref > 0.01 * ref.max()
    assert np.max(np.abs(ours[keep] - ref[keep]) / ref[keep]) < 1e-6


def test_bioavailability_distributions_span_their_sources():
    entries = {b.id: b for b in list_bioavailability()}
    assert {
        "oral_racemic",
        "oral_esketamine",
        "sublingual_racemic",
        "intranasal_racemic",
        "intranasal_esketamine",
    } <= entries.keys()
    nasal = entries["intranasal_racemic"]
    assert (nasal.low, nasal.high) == (0.11, 0.45)
    assert abs(nasal.quantile(0.05) - 0.11) < 1e-12 and abs(nasal.quantile(0.95) - 0.45) < 1e-12
    # no adult IM figure was found in a primary source: no IM entry (not a child's 41%)
    assert not any(b.route == "im" for b in entries.values())
    # sublingual and oral: the spread between patients (Chong 2009 interquartile ranges),
    # not the 90% CI of a median (Rolan 2014), nor a prolonged-release tablet (Hasan 2021)
    assert (entries["sublingual_racemic"].low, entries["sublingual_racemic"].high) == (0.19, 0.49)
    assert (entries["oral_racemic"].low, entries["oral_racemic"].high) == (0.17, 0.27)
    draws = entries["oral_esketamine"].sample(rng=np.random.default_rng(0), n=50_000)
    assert abs(np.quantile(draws, 0.95) - 0.186) < 0.005
    for b in entries.values():
        for e in b.estimates:
            assert "doi:" in e.citation or "http" in e.citation


def test_patient_dataclass_is_frozen():
    with pytest.raises(AttributeError):
        Patient(weight_kg=70).weight_kg = 80  # type: ignore[misc]


def test_model_files_are_one_per_model():
    files = sorted(Path(MODELS_DIR).glob("*.toml"))
    assert len(files) == len(list_models())
