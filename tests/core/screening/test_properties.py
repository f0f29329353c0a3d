"""Hypothesis properties: decisions are monotone in thresholds and severities."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ketacare.core.screening import DECISIONS, SitePolicy, screen_document

from .conftest import clean_doc

RANK = {d: i for i, d in enumerate(DECISIONS)}


def _ketamine(systolic: float, limit: float) -> str:
    doc = clean_doc("ketamine")
    doc["vitals"] = {"systolic_mmhg": systolic, "diastolic_mmhg": 30}
    policy = SitePolicy(
        values={"screening_systolic_max_mmhg": limit, "screening_diastolic_max_mmhg": 100}
    )
    return screen_document(doc, policy=policy).decision


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=60, max_value=250),
    st.integers(min_value=60, max_value=250),
    st.integers(min_value=0, max_value=50),
)
def test_raising_the_bp_limit_never_makes_the_decision_stricter(
    systolic: int, limit: int, more: int
) -> None:
    assert RANK[_ketamine(systolic, limit + more)] <= RANK[_ketamine(systolic, limit)]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=60, max_value=250), st.integers(min_value=0, max_value=50))
def test_higher_blood_pressure_never_makes_the_decision_laxer(systolic: int, more: int) -> None:
    assert RANK[_ketamine(systolic + more, 150)] >= RANK[_ketamine(systolic, 150)]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["ort", "dast10", "auditc"]),
    st.integers(min_value=0, max_value=12),
    st.integers(min_value=0, max_value=5),
)
def test_higher_risk_scores_never_make_the_decision_laxer(iid: str, total: int, more: int) -> None:
    from ketacare.core.instruments import get_instrument

    span = get_instrument(iid).total_range("M")
    assert span is not None
    top = span[1]  # a total the instrument can give (a larger one is refused)

    def decide(value: int) -> str:
        doc = clean_doc("esketamine")
        doc["instruments"] = [i for i in doc["instruments"] if i["instrument"] != iid]
        doc["instruments"].append({"instrument": iid, "total": value})
        return screen_document(doc).decision

    assert RANK[decide(min(total + more, top))] >= RANK[decide(min(total, top))]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=10, max_value=400),
    st.floats(min_value=1, max_value=5),
    st.floats(min_value=0, max_value=5),
)
def test_raising_the_lft_multiple_never_makes_the_decision_stricter(
    alt: int, factor: float, more: float
) -> None:
    def decide(k: float) -> str:
        doc = clean_doc("esketamine")
        doc["labs"][0] = {"test": "alt", "value": alt, "upper_limit_normal": 40}
        return screen_document(
            doc, policy=SitePolicy(values={"lft_review_multiple_of_uln": k})
        ).decision

    assert RANK[decide(factor + more)] <= RANK[decide(factor)]


@settings(max_examples=40, deadline=None)
@given(st.sets(st.sampled_from(sorted(clean_doc()["history"])), max_size=6))
def test_adding_findings_never_makes_the_decision_laxer(flags: set[str]) -> None:
    base = clean_doc("ketamine")
    policy = SitePolicy(
        values={"screening_systolic_max_mmhg": 150, "screening_diastolic_max_mmhg": 95}
    )
    before = screen_document(base, policy=policy).decision
    for flag in flags:
        base["history"][flag] = "severe" if flag == "hepatic_impairment" else True
    assert RANK[screen_document(base, policy=policy).decision] >= RANK[before]
