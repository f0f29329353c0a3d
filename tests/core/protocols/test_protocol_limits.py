"""Soft and hard limits, site policy and the co-signature rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from ketacare.core.errors import DataFileError, DoseLimitExceeded, SoftLimitNeedsReview
from ketacare.core.protocols import (
    Plan,
    SitePolicy,
    load_library,
    load_site_policy,
    resolve_limits,
    review_plan,
)
from ketacare.core.protocols.limits import review_lines
from ketacare.core.protocols.model import Protocol
from protocol_policy import build_plan  # under the test policy unless a test gives its own

LIB = load_library()


def proto(protocol_id: str) -> Protocol:
    return LIB.get(protocol_id=protocol_id)


# The audited table of every sourced limit value. A change to a data file that
# adds, removes or changes a sourced number must change this table on purpose.
SOURCED = {
    ("crps-outpatient", "rate_mg_per_kg_per_h", "soft"): (0.35, "Schwartzman 2009"),
    ("crps-outpatient", "rate_mg_per_kg_per_h", "hard"): (1.0, "Pennsylvania 2020"),
    ("crps-outpatient", "rate_mg_per_h", "hard"): (25.0, "Schwartzman 2009"),
    ("crps-outpatient", "dose_mg", "hard"): (100.0, "NCT00579085 (trial registry)"),
    ("crps-continuous", "rate_mg_per_h", "soft"): (22.0, "ASRA 2018 (Cohen et al.)"),
    ("crps-continuous", "rate_mg_per_kg_per_h", "soft"): (0.317, "Sigtermans 2009"),
    ("depression-iv", "dose_mg_per_kg", "soft"): (0.5, "Sanacora 2017 (APA consensus)"),
    ("depression-iv", "dose_mg_per_kg", "hard"): (0.75, "Andrade 2017"),
    ("depression-iv", "rate_mg_per_kg_per_h", "soft"): (1.0, "Pennsylvania 2020"),
    ("esketamine-trd", "dose_mg", "hard"): (84.0, "Spravato label, TRD schedule"),
    ("esketamine-mdd-si", "dose_mg", "hard"): (84.0, "Spravato label, MDSI dose"),
}


def test_sourced_limits_match_the_audited_table() -> None:
    found = {}
    for protocol in LIB.protocols:
        for bound in resolve_limits(protocol=protocol):
            if bound.basis == "sourced":
                found[(protocol.id, bound.key, bound.level)] = (bound.value, bound.source)
    assert found == SOURCED


def test_every_other_limit_is_site_policy_and_not_configured_by_default() -> None:
    for protocol in LIB.protocols:
        for bound in resolve_limits(protocol=protocol):
            if (protocol.id, bound.key, bound.level) not in SOURCED:
                assert bound.basis == "not_configured"
                assert bound.value is None
                assert "site policy" in bound.text


def test_every_sourced_bound_quotes_a_source_with_url() -> None:
    for protocol in LIB.protocols:
        for spec in protocol.limits:
            for bound in (spec.soft, spec.hard):
                if not bound.is_site_policy:
                    source = protocol.source(bound.source_key or "")
                    assert source.url.startswith("http") and source.quote and bound.basis


# --- hard limits: always refused, message names dose, limit and protocol ---


def test_hard_rate_per_kg_message() -> None:
    with pytest.raises(DoseLimitExceeded) as caught:
        build_plan(protocol=proto("crps-outpatient"), weight_kg=70, dose_mg_per_kg_per_h=2.1)
    assert str(caught.value).startswith(
        "dose 2.1 mg/kg/h exceeds the hard limit 1.0 mg/kg/h of protocol crps-outpatient"
    )
    assert "Pennsylvania 2020" in str(caught.value)


def test_hard_rate_mg_per_h_is_not_silently_capped_for_an_override() -> None:
    # override 0.5 mg/kg/h x 70 kg = 35 mg/h: not capped to 25, refused (0.5 <= 1.0 mg/kg/h)
    with pytest.raises(DoseLimitExceeded, match=r"dose 35\.0 mg/h exceeds the hard limit 25\.0"):
        build_plan(protocol=proto("crps-outpatient"), weight_kg=70, dose_mg_per_kg_per_h=0.5)


def test_hard_dose_mg() -> None:
    # 101 mg over 4 h = 25.25 mg/h -> the ordered dose is named first
    with pytest.raises(
        DoseLimitExceeded, match=r"dose 101\.0 mg exceeds the hard limit 100\.0 mg of protocol"
    ):
        build_plan(protocol=proto("crps-outpatient"), weight_kg=70, dose_mg=101)


def test_hard_dose_per_kg_depression() -> None:
    # 56 mg / 70 kg = 0.8 mg/kg > 0.75 mg/kg (Andrade 2017)
    with pytest.raises(
        DoseLimitExceeded,
        match=r"dose 0\.8 mg/kg exceeds the hard limit 0\.75 mg/kg of protocol depression-iv",
    ):
        build_plan(protocol=proto("depression-iv"), weight_kg=70, dose_mg=56)


def test_hard_esketamine_dose() -> None:
    with pytest.raises(DoseLimitExceeded, match=r"dose 112\.0 mg exceeds the hard limit 84\.0 mg"):
        build_plan(protocol=proto("esketamine-trd"), weight_kg=70, dose_mg=112)


def test_value_equal_to_a_limit_is_allowed() -> None:
    # 100 mg over 4 h = 25 mg/h: equal to both hard limits, not above
    plan = build_plan(protocol=proto("crps-outpatient"), weight_kg=100, dose_mg=100)
    assert plan.sessions[0].rate_mg_per_h == 25.0


# --- soft limits: allowed with a finding that needs a reason and a co-signature ---


def test_soft_finding_on_every_session() -> None:
    # 0.4 mg/kg/h x 50 kg = 20 mg/h (< 25); 0.4 > 0.35 soft -> one finding per session (10)
    plan = build_plan(protocol=proto("crps-outpatient"), weight_kg=50, dose_mg_per_kg_per_h=0.4)
    assert len(plan.soft_findings) == 10
    finding = plan.soft_findings[0]
    assert (finding.key, finding.value, finding.limit, finding.day) == (
        "rate_mg_per_kg_per_h",
        0.4,
        0.35,
        1,
    )
    assert finding.message.startswith(
        "dose 0.4 mg/kg/h exceeds the soft limit 0.35 mg/kg/h of protocol crps-outpatient"
    )
    assert finding.to_dict()["requires"] == ["reason", "cosignature"]
    assert plan.requires_review


def test_two_soft_findings_per_session_depression() -> None:
    # 1.05 mg/kg/h x 70 = 73.5 mg/h; x 2/3 h = 49 mg = 0.7 mg/kg: above soft 0.5 mg/kg and
    # soft 1.0 mg/kg/h, below hard 0.75 mg/kg -> 2 findings x 12 sessions
    plan = build_plan(protocol=proto("depression-iv"), weight_kg=70, dose_mg_per_kg_per_h=1.05)
    assert plan.sessions[0].dose_mg == 49.0
    assert len(plan.soft_findings) == 24
    assert {f.key for f in plan.soft_findings} == {"dose_mg_per_kg", "rate_mg_per_kg_per_h"}


# --- the co-signature rule ---


def _soft_plan() -> Plan:
    return build_plan(protocol=proto("crps-outpatient"), weight_kg=50, dose_mg_per_kg_per_h=0.4)


@pytest.mark.parametrize(
    ("reason", "prescriber", "cosigner", "message"),
    [
        (None, "dr-a", "dr-b", "a documented reason is required"),
        ("   ", "dr-a", "dr-b", "a documented reason is required"),
        ("partial response", "dr-a", None, "co-signature is required"),
        ("partial response", "dr-a", "", "co-signature is required"),
        ("partial response", None, "dr-b", "the prescriber must be named"),
        ("partial response", "dr-a", " dr-a ", "must be a second clinician"),
    ],
    ids=repr,
)
def test_review_needs_reason_and_a_second_clinician(
    reason: str | None, prescriber: str | None, cosigner: str | None, message: str
) -> None:
    with pytest.raises(SoftLimitNeedsReview, match=message) as caught:
        review_plan(
            plan=_soft_plan(), reason=reason, prescriber_id=prescriber, cosigner_id=cosigner
        )
    assert "crps-outpatient" in str(caught.value)


def test_review_accepted() -> None:
    plan = _soft_plan()
    review = review_plan(
        plan=plan, reason=" partial response at 0.35 ", prescriber_id="dr-a", cosigner_id="dr-b"
    )
    assert (review.reason, review.prescriber_id, review.cosigner_id) == (
        "partial response at 0.35",
        "dr-a",
        "dr-b",
    )
    assert review.findings == plan.soft_findings
    # soft slots only (an unset hard one refuses the plan); the per-kg and per-course
    # kinds came with the absolute ceilings
    assert review.not_configured == (
        "dose_mg soft",
        "dose_mg_per_kg soft",
        "rate_mg_per_h soft",
        "course_mg soft",
    )


# --- site policy ---


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_site_policy_fills_slots_and_clears_review(tmp_path: Path) -> None:
    # TEST VALUES: every slot of esketamine-trd filled (soft and hard)
    path = _policy(
        tmp_path,
        "[esketamine-trd.limits.dose_mg]\nsoft = 84\n"
        "[esketamine-trd.limits.dose_mg_per_kg]\nsoft = 5\nhard = 5\n"
        "[esketamine-trd.limits.course_mg]\nsoft = 1100\nhard = 1100\n",
    )
    policy = load_site_policy(path=path, library=LIB)
    plan = build_plan(protocol=proto("esketamine-trd"), weight_kg=70, site_policy=policy)
    assert plan.not_configured == ()
    assert not plan.requires_review
    soft = [b for b in plan.limits if b.level == "soft"][0]
    assert (soft.value, soft.basis) == (84.0, "site_policy")


def test_site_policy_soft_limit_finding(tmp_path: Path) -> None:
    # site soft 20 mg/h; 0.35 x 70 = 24.5 mg/h > 20 -> soft finding marked site policy
    # TEST VALUES: the soft rate, plus the hard ceilings no source gives
    path = _policy(
        tmp_path,
        "[crps-outpatient.limits.rate_mg_per_h]\nsoft = 20\n"
        "[crps-outpatient.limits.dose_mg_per_kg]\nhard = 2\n"
        "[crps-outpatient.limits.course_mg]\nhard = 1000\n",
    )
    plan = build_plan(
        protocol=proto("crps-outpatient"),
        weight_kg=70,
        site_policy=load_site_policy(path=path, library=LIB),
    )
    assert {(f.key, f.basis) for f in plan.soft_findings} == {("rate_mg_per_h", "site_policy")}
    assert "(site policy; day 1)" in plan.soft_findings[0].message


@pytest.mark.parametrize(
    ("course_soft", "needs_review"), [(900, True), (979.9, True), (980, False)]
)
def test_a_course_above_the_site_s_soft_course_limit_needs_review(
    tmp_path: Path, course_soft: float, needs_review: bool
) -> None:
    # 0.35 mg/kg/h x 70 kg = 24.5 mg/h x 4 h = 98 mg a session, x 10 sessions = 980 mg.
    # Every other soft slot is filled above the plan's values, so only the course can ask
    # for review. TEST VALUES, not clinical ones.
    path = _policy(
        tmp_path,
        "[crps-outpatient.limits.dose_mg]\nsoft = 100\n"
        "[crps-outpatient.limits.dose_mg_per_kg]\nsoft = 1.5\nhard = 2\n"
        "[crps-outpatient.limits.rate_mg_per_h]\nsoft = 25\n"
        f"[crps-outpatient.limits.course_mg]\nsoft = {course_soft}\nhard = 1000\n",
    )
    plan = build_plan(
        protocol=proto("crps-outpatient"),
        weight_kg=70,
        site_policy=load_site_policy(path=path, library=LIB),
    )
    assert plan.total_dose_mg == 980.0 and plan.not_configured == ()
    assert plan.requires_review is needs_review
    if needs_review:
        (finding,) = plan.soft_findings
        assert (finding.key, finding.day, finding.value, finding.limit) == (
            "course_mg",
            None,
            980.0,
            course_soft,
        )
        assert review_lines(findings=plan.soft_findings, not_configured=()) == (
            f"course total (mg) 980 mg above the soft limit {course_soft:g} mg (site policy) "
            "for the whole course",
        )
    else:
        assert plan.soft_findings == ()


def test_one_review_line_per_limit_naming_every_day() -> None:
    # 0.4 mg/kg/h x 50 kg = 20 mg/h on each of the 10 days: above the 0.35 soft limit
    # (Schwartzman 2009) every day; one line, days 1-10, and none dropped
    plan = _soft_plan()
    lines = review_lines(findings=plan.soft_findings, not_configured=plan.not_configured)
    assert lines[0] == (
        "infusion rate (mg/kg/h) 0.4 mg/kg/h above the soft limit 0.35 mg/kg/h "
        "(source: Schwartzman 2009) on days 1-10"
    )
    assert set(lines[1:]) == {
        f"{name} soft limit not configured (site policy)"
        for name in (
            "session dose (mg)",
            "session dose (mg/kg)",
            "infusion rate (mg/h)",
            "course total (mg)",
        )
    }


def test_site_policy_hard_limit_refuses(tmp_path: Path) -> None:
    path = _policy(tmp_path, "[crps-continuous.limits.rate_mg_per_h]\nhard = 30\n")
    policy = load_site_policy(path=path, library=LIB)
    # 0.5 mg/kg/h x 70 kg = 35 mg/h > 30 mg/h (site policy)
    with pytest.raises(DoseLimitExceeded, match=r"dose 0\.5 mg/kg/h|dose 35\.0 mg/h") as caught:
        build_plan(
            protocol=proto("crps-continuous"),
            weight_kg=70,
            dose_mg_per_kg_per_h=0.5,
            site_policy=policy,
        )
    assert "hard limit 30.0 mg/h of protocol crps-continuous (site policy" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[nope.limits.dose_mg]\nsoft = 1\n", "unknown protocol 'nope'"),
        ("[esketamine-trd.limits.rate_mg_per_h]\nsoft = 1\n", "declares no such limit"),
        ("[esketamine-trd.limits.dose_mg]\nhard = 100\n", r"is sourced \(Spravato label"),
        ("[esketamine-trd.limits.dose_mg]\nsoft = 0\n", "must be a positive number"),
        ("[esketamine-trd.limits.dose_mg]\nsoft = 'a'\n", "must be a positive number, got 'a'"),
        ("[esketamine-trd.limits.dose_mg]\nsoft = 90\n", "soft limit 90 is above hard limit 84"),
        ("[esketamine-trd.limits.dose_mg]\nwarn = 90\n", "only 'soft' and/or 'hard'"),
        ("[esketamine-trd]\nmonitoring = 1\n", "only a 'limits' table"),
        ("not toml [", "is not valid TOML"),
    ],
    ids=repr,
)
def test_site_policy_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _policy(tmp_path, text)
    with pytest.raises(DataFileError, match=message) as caught:
        load_site_policy(path=path, library=LIB)
    assert str(path) in str(caught.value)


def test_site_policy_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="cannot be read"):
        load_site_policy(path=tmp_path / "absent.toml", library=LIB)


def test_empty_site_policy_is_default() -> None:
    assert SitePolicy().value(protocol_id="x", key="dose_mg", level="soft") is None


@pytest.mark.parametrize(("weight_kg", "needs_review"), [(50, True), (70, False), (90, False)])
def test_the_fixed_22_mg_per_h_needs_review_for_a_patient_lighter_than_the_trial_dosed(
    weight_kg: float, needs_review: bool
) -> None:
    # Sigtermans 2009: "at the end of infusion, the ketamine dose was 22.2 +/- 2.0 mg/h/70 kg",
    # i.e. 22.2 / 70 = 0.317 mg/kg/h. The guideline's fixed 22 mg/h is 22 / 50 = 0.44 mg/kg/h
    # for a 50 kg patient (above it: a reason and a second clinician), 22 / 70 = 0.314 and
    # 22 / 90 = 0.244 mg/kg/h for the others (below it).
    plan = build_plan(protocol=proto("crps-continuous"), weight_kg=weight_kg)
    assert plan.sessions[0].rate_mg_per_h == 22
    keys = {f.key for f in plan.soft_findings}
    assert ("rate_mg_per_kg_per_h" in keys) is needs_review
    if needs_review:
        [finding] = [f for f in plan.soft_findings if f.key == "rate_mg_per_kg_per_h"]
        assert "0.44" in finding.message and "0.317" in finding.message
