"""Published figures reproduced by the shipped models."""

from __future__ import annotations

import numpy as np
import pytest

from ketacare.core.pharmacology import Patient, load_model, make_regimen, simulate
from ketacare.core.pharmacology.regimen import Dose


def auc(route, mg, hours=2000.0):
    sim = simulate(
        model=load_model(model_id="perez-ruixo-2021"),
        patient=Patient(weight_kg=74, age_years=45),
        regimen=make_regimen((Dose(route, 0.0, mg),)),
        hours=hours,
        step_min=60,
    )
    return sim.metrics.auc_ng_h_per_ml


@pytest.mark.parametrize(("mg", "published"), [(56, 0.54), (84, 0.51)])
def test_perez_ruixo_intranasal_absolute_bioavailability(mg, published):
    """Abstract: absolute bioavailability of the nasal spray 54% (56 mg) and 51% (84 mg),
    reported to the percent; reproduced as AUC(IN) / AUC(IV bolus) of the typical patient."""
    f = auc("intranasal", mg) / auc("iv_bolus", mg)
    assert abs(f - published) < 0.005 + 0.005  # rounding of the published figure + 0.5 point


def test_perez_ruixo_swallowed_fraction_reaching_circulation():
    """Abstract: 18.6% of the swallowed dose reaches the systemic circulation (oral F);
    Table 3 gives Fgut 0.64 and a well-stirred liver with E = CLint / (Qh + CLint)."""
    f = auc("oral", 100) / auc("iv_bolus", 100)
    assert abs(f - 0.186) < 0.01


def test_domino_values_match_the_reference_survey():
    """The survey's exact reference (0.5 mg/kg over 40 min, 70 kg): peak 240.3, Cp(2 h) 35.8,
    Cp(6 h) 8.39 ng/mL (computed there independently with numpy eig, opentiva and PyTCI)."""
    with pytest.warns(Warning):
        sim = simulate(
            model=load_model(model_id="domino"),
            patient=Patient(weight_kg=70),
            regimen=make_regimen((Dose("iv_infusion", 0.0, 35.0, 40 / 60),)),
            hours=24,
            step_min=1,
        )
    assert round(sim.metrics.cmax_ng_per_ml, 1) == 240.3
    assert round(float(sim.plasma_ng_per_ml[120]), 1) == 35.8
    assert round(float(sim.plasma_ng_per_ml[360]), 2) == 8.39


# Perez-Ruixo 2021 Table 4 (model-based typical exposure after one intranasal dose), rows for
# non-Asian subjects, as transcribed in the nlmixr2lib vignette PerezRuixo_2020_esketamine:
# (age group, dose mg): esketamine Cmax ng/mL, AUC0-24 ng*h/mL; noresketamine Cmax ng/mL, AUC0-24.
# The vignette simulates the "18-60 y" group at 45 years and the "> 60 y" group at 70 years.
TABLE_4 = {
    (45, 28): (43.8, 147.3, 59.1, 274.4),
    (45, 56): (72.5, 254.7, 119.7, 516.3),
    (45, 84): (101.0, 362.2, 180.0, 758.0),
    (70, 28): (44.6, 160.4, 57.3, 277.9),
    (70, 56): (73.8, 275.8, 117.2, 522.0),
    (70, 84): (102.7, 391.2, 177.0, 765.9),
}


@pytest.mark.parametrize(("age", "mg"), list(TABLE_4))
def test_perez_ruixo_table_4_exposure(age, mg):
    """Esketamine Cmax and AUC0-24 and noresketamine Cmax of the typical patient match Table 4
    (Cmax and AUC within 0.5%, each dose given as its 28-mg devices 5 minutes apart as the
    label says; metabolite Cmax within 1%).
    The metabolite Cmax match also shows that no esketamine -> noresketamine molar-mass
    factor belongs in the model (it would lower the metabolite by about 6%).
    Noresketamine AUC0-24 is over-predicted by the literal Table 3 encoding, as nlmixr2lib
    reports (factor 1.38-1.46 for these rows); the model notes say so, and this pins it."""
    cmax, auc24, nesk_cmax, nesk_auc24 = TABLE_4[(age, mg)]
    sim = simulate(
        model=load_model(model_id="perez-ruixo-2021"),
        patient=Patient(weight_kg=74, age_years=age),
        regimen=make_regimen((Dose("intranasal", 0.0, float(mg)),)),
        hours=24,
        step_min=1,
    )
    assert sim.metrics.cmax_ng_per_ml == pytest.approx(cmax, rel=0.005)
    assert sim.metrics.auc_ng_h_per_ml == pytest.approx(auc24, rel=0.005)
    assert sim.metabolite_ng_per_ml is not None
    assert float(sim.metabolite_ng_per_ml.max()) == pytest.approx(nesk_cmax, rel=0.01)
    nesk_auc = float(np.trapezoid(sim.metabolite_ng_per_ml, sim.time_h))
    assert 1.3 < nesk_auc / nesk_auc24 < 1.5


def test_perez_ruixo_abstract_volumes_and_clearances():
    """Abstract: esketamine Vss 752 L and CL 114 L/h; noresketamine Vss 185 L and CL/F 38 L/h.
    Vss excludes the hepato-portal volume (Vc + Vp1 + Vp2 = 752). The typical well-stirred
    clearance Qh * CLint / (Qh + CLint), CLint = Vh (kel + kmet), is 109 L/h: within 5% of the
    abstract's 114, which is not derived from the typical values in a way we could read."""
    m = load_model(model_id="perez-ruixo-2021")
    p = {name: m.parameter(name).value for name in ("Vc", "Vp1", "Vp2", "Vcn", "Vpn", "CLn")}
    assert p["Vc"] + p["Vp1"] + p["Vp2"] == pytest.approx(752.0)
    assert p["Vcn"] + p["Vpn"] == pytest.approx(185.0)
    assert p["CLn"] == pytest.approx(38.0)
    qh, vh = m.parameter("Qh").value, m.parameter("Vh").value
    clint = vh * (m.parameter("kel").value + m.parameter("kmet").value)
    assert qh * clint / (qh + clint) == pytest.approx(114.0, rel=0.05)


@pytest.mark.parametrize("model_id", ["domino", "clements-250"])
def test_racemic_ke0_gives_the_one_minute_time_to_peak_opentiva_states(model_id):
    """opentiva's comment on both ke0 values is "from tpeak 1 min": after a bolus the
    effect-site concentration must peak at 1 minute (to the second)."""
    with pytest.warns(Warning):
        sim = simulate(
            model=load_model(model_id=model_id),
            patient=Patient(weight_kg=70),
            regimen=make_regimen((Dose("iv_bolus", 0.0, 10.0),)),
            hours=0.1,
            step_min=1 / 60,
        )
    ce = sim.effect_ng_per_ml["tpeak_1min"]
    assert abs(float(sim.time_h[int(np.argmax(ce))]) * 60 - 1.0) <= 1.5 / 60
