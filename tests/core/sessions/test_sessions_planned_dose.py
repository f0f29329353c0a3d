"""A dose charted at the chair above the signed plan's session dose is refused.

Expected figures are worked by hand from the plan (the protocol's dose rule) and the
rates charted; no figure is read back from the code under test.
"""

from __future__ import annotations

import pytest

from core.sessions.session_helpers import Chair, at, setup_for
from ketacare.core.errors import DoseLimitExceeded
from ketacare.core.protocols import load_library
from ketacare.core.sessions import (
    Bolus,
    LimitOverride,
    Pause,
    RateChange,
    Resume,
    SelfAdministration,
)
from protocol_policy import build_plan

#: 22 mg/h at 60 kg is 0.367 mg/kg/h, above the soft 0.35 (a reason and co-signature)
REVIEWED = LimitOverride(reason="pain 8/10", cosigned_by="dr_a")


def crps_chair_60kg() -> Chair:
    """crps-outpatient at 60 kg: 0.35 x 60 = 21 mg/h for 240 min, so 21 x 4 = 84 mg."""
    plan = build_plan(protocol=load_library().get(protocol_id="crps-outpatient"), weight_kg=60)
    setup = setup_for("crps-outpatient", weight_kg=60, planned=plan.sessions[0])
    assert (setup.planned_rate_mg_per_h, setup.planned_duration_min) == (21.0, 240.0)
    assert setup.planned_dose_mg == 84.0
    return Chair(setup).infusing(rate=21, minute=10)


def test_a_faster_rate_that_would_pass_the_planned_dose_is_refused() -> None:
    c = crps_chair_60kg()
    # 10 min at 21 mg/h = 3.5 mg, then 230 min at 22 mg/h = 84.33 mg: 87.83 mg > 84 mg;
    # a co-signed soft-limit override does not lift it (a new plan version would)
    with pytest.raises(DoseLimitExceeded, match=r"would be 87\.83 mg.*planned dose of 84 mg"):
        c.add(
            RateChange(
                at=at(20), by="nurse1", rate_mg_per_h=22, override=REVIEWED, reason="titration"
            )
        )
    assert c.state.rate_mg_per_h == 21  # nothing taken from the refused entry


def test_a_bolus_on_top_of_the_planned_infusion_is_refused() -> None:
    c = crps_chair_60kg()
    # the infusion will give 84 mg by its planned end; 5 mg more is 89 mg
    with pytest.raises(DoseLimitExceeded, match=r"would be 89 mg.*planned dose of 84 mg"):
        c.add(Bolus(at=at(40), by="nurse1", amount_mg=5, reason="breakthrough pain"))


def test_a_paused_infusion_still_counts_its_remaining_time() -> None:
    c = crps_chair_60kg()
    c.add(Pause(at=at(70), by="nurse1", reason="nausea"))  # 60 min at 21 = 21 mg given
    # paused, the infusion resumes at 21 mg/h for its remaining 180 min: 21 + 63 = 84
    with pytest.raises(DoseLimitExceeded, match=r"would be 85 mg"):
        c.add(Bolus(at=at(80), by="nurse1", amount_mg=1, reason="pain"))
    c.add(Resume(at=at(90), by="nurse1"))


def test_slower_rates_and_a_catch_up_within_the_plan_are_accepted() -> None:
    c = crps_chair_60kg()
    c.add(
        RateChange(at=at(70), by="nurse1", rate_mg_per_h=15, reason="titration")
    )  # 60 min at 21 = 21 mg
    # 60 min at 15 = 15 mg (36 mg in 120 min); 120 min left at 22 mg/h = 44 mg: 80 <= 84
    c.add(
        RateChange(at=at(130), by="nurse1", rate_mg_per_h=22, override=REVIEWED, reason="titration")
    )
    assert c.state.rate_mg_per_h == 22
    assert c.state.rate_above_plan  # still flagged: faster than the plan's rate
    # back at 21 mg/h is the plan's own rate: never refused by this rule
    c.add(RateChange(at=at(140), by="nurse1", rate_mg_per_h=21, reason="titration"))


def test_esketamine_devices_beyond_the_planned_dose_are_refused() -> None:
    protocol = load_library().get(protocol_id="esketamine-trd")
    plan = build_plan(protocol=protocol, weight_kg=70)
    first = plan.sessions[0]
    assert first.dose_mg == 56  # label: day 1 is 56 mg (two 28-mg devices)
    c = Chair(setup_for("esketamine-trd", planned=first)).ready()
    c.add(SelfAdministration(at=at(10), by="nurse1", devices=1))
    c.add(SelfAdministration(at=at(15), by="nurse1", devices=1))
    with pytest.raises(DoseLimitExceeded, match=r"would be 84 mg.*planned dose of 56 mg"):
        c.add(SelfAdministration(at=at(20), by="nurse1", devices=1))
