"""Screening reads what it was not told as unknown, never as "no risk", and refuses results
that no instrument can give.

The expected decisions follow the rule file's own mapping (core/screening/data/rules.toml)
and the sources it cites:

- C-SSRS screener (Columbia triage, cssrs.columbia.edu/the-columbia-scale-c-ssrs/triage-c-ssrs/):
  items 3 to 5 are asked after a yes to item 2; a yes to 4 or 5 is high risk. A form with a
  yes to 3 and items 4 and 5 unanswered has no risk level yet: at least moderate, maybe high.
- SPRAVATO label, section 5.6: assess blood pressure before dosing, 140/90 mmHg as a general
  guide: a systolic value alone does not say the diastolic one is at or below 90.
- Totals (the instruments' own data files): ORT 0 to 26, DAST-10 0 to 10, AUDIT-C 0 to 12,
  whole numbers (Webster & Webster 2005; Skinner 1982; Bush et al. 1998).
"""

from __future__ import annotations

from typing import Any

import pytest

from ketacare.core.errors import InvalidInput, OutOfRange, UnknownItem
from ketacare.core.screening import SitePolicy, screen_document

from .conftest import TEST_POLICY, clean_doc


def _with(doc: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    doc["instruments"] = [*doc["instruments"], result]
    return doc


def test_an_unfinished_cssrs_screener_is_unknown_not_no_risk() -> None:
    # yes to 1, 2 and 3; 4, 5 and 6 unanswered (null): no band yet
    answers = [True, True, True, None, None, None]
    doc = _with(clean_doc("esketamine"), {"instrument": "cssrs_screener", "answers": answers})
    decision = screen_document(doc)
    assert decision.decision == "physician_review"
    assert "instrument:cssrs_screener band" in {m.item for m in decision.missing}
    # answered in full (no to 4, 5 and 6): moderate risk, read from the band
    done = [True, True, True, False, False, False]
    doc = _with(clean_doc("esketamine"), {"instrument": "cssrs_screener", "answers": done})
    decision = screen_document(doc)
    assert decision.decision == "physician_review"
    assert [r.rule for r in decision.reasons] == ["cssrs-moderate-risk"]
    assert decision.missing == ()


def test_a_cssrs_behaviour_yes_with_its_recency_blank_is_unknown_not_eligible() -> None:
    # behaviour ever = yes, "within the past 3 months?" blank: the blank raises only the
    # flag that says so, which must not read as "no high or moderate risk"
    answers = [False, False, None, None, None, True, None]
    doc = _with(clean_doc("esketamine"), {"instrument": "cssrs_screener", "answers": answers})
    decision = screen_document(doc)
    assert decision.decision == "physician_review"
    assert "instrument:cssrs_screener band" in {m.item for m in decision.missing}


def test_a_cssrs_result_given_as_its_band_alone_is_read_by_its_band() -> None:
    scored = {"instrument": "cssrs_screener", "band": "high"}
    decision = screen_document(_with(clean_doc("esketamine"), scored))
    assert "cssrs-high-risk" in [r.rule for r in decision.reasons]
    low = {"instrument": "cssrs_screener", "band": "low"}
    decision = screen_document(_with(clean_doc("esketamine"), low))
    assert [r.rule for r in decision.reasons] == ["cssrs-low-risk"]
    assert decision.decision == "eligible_with_precautions"
    none = {"instrument": "cssrs_screener", "band": "none"}
    assert screen_document(_with(clean_doc("esketamine"), none)).decision == "eligible"
    # flags alone: a scored result (its flags say which risk level it found)
    flagged = {"instrument": "cssrs_screener", "flags": ["cssrs_low_risk"]}
    decision = screen_document(_with(clean_doc("esketamine"), flagged))
    assert [r.rule for r in decision.reasons] == ["cssrs-low-risk"] and decision.missing == ()
    # neither band nor flag: nothing says the risk is absent
    bare = {"instrument": "cssrs_screener", "flags": []}
    assert screen_document(_with(clean_doc("esketamine"), bare)).decision == "physician_review"


def test_a_missing_diastolic_pressure_is_unknown_not_normal() -> None:
    doc = clean_doc("esketamine")
    doc["vitals"] = {"systolic_mmhg": 120}
    decision = screen_document(doc)
    assert decision.decision == "physician_review"
    assert "vitals.diastolic_mmhg" in {m.item for m in decision.missing}
    doc = clean_doc("ketamine")
    doc["vitals"] = {"systolic_mmhg": 120}
    assert screen_document(doc, policy=TEST_POLICY).decision == "physician_review"


def test_one_instrument_given_twice_is_refused() -> None:
    doc = _with(clean_doc("ketamine"), {"instrument": "dast10", "total": 6})
    with pytest.raises(InvalidInput) as refused:
        screen_document(doc, policy=TEST_POLICY)
    assert str(refused.value) == (
        "instruments[3]: dast10 is given twice (also instruments[1]); give each instrument "
        "once, its latest result"
    )


@pytest.mark.parametrize(
    ("result", "error", "message"),
    [
        (
            {"instrument": "PHQ9", "total": 20, "flags": ["phq9_item9_positive"]},
            UnknownItem,
            "unknown instruments[3].instrument 'PHQ9': known are ",
        ),
        (
            {"instrument": "phq9", "total": 20, "flags": ["PHQ9_item9_positive"]},
            UnknownItem,
            "unknown instruments[3].flags 'PHQ9_item9_positive': known are ",
        ),
        (
            {"instrument": "phq9", "total": 20, "band": "very severe"},
            UnknownItem,
            "unknown instruments[3].band 'very severe': known are ",
        ),
        (
            {"instrument": "gad7", "total": 7.5},
            OutOfRange,
            "instruments[3].total 7.5 is out of range: allowed a whole number from 0 to 21",
        ),
        (
            {"instrument": "gad7", "total": -1},
            OutOfRange,
            "instruments[3].total -1 is out of range: allowed a whole number from 0 to 21",
        ),
    ],
)
def test_a_scored_result_no_instrument_can_give_is_refused(
    result: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as refused:
        screen_document(_with(clean_doc("ketamine"), result), policy=TEST_POLICY)
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize(
    ("iid", "total", "top"),
    [("ort", 27, 26), ("dast10", 11, 10), ("auditc", 13, 12)],
)
def test_substance_use_totals_above_the_instrument_maximum_are_refused(
    iid: str, total: int, top: int
) -> None:
    doc = clean_doc("ketamine")
    doc["instruments"] = [i for i in doc["instruments"] if i["instrument"] != iid]
    doc["instruments"].append({"instrument": iid, "total": total})
    with pytest.raises(OutOfRange, match=f"allowed a whole number from 0 to {top}$"):
        screen_document(doc, policy=TEST_POLICY)


def test_a_liver_test_at_exactly_the_multiple_of_its_upper_limit_is_not_above_it() -> None:
    # bilirubin 3.6 with ULN 1.2 is exactly 3 x ULN (3 x 1.2 is 3.5999999999999996 in
    # binary floating point); 3.61 is above it
    policy = SitePolicy(
        values={**TEST_POLICY.values, "lft_review_multiple_of_uln": 3.0}, name="test"
    )

    def rules(value: float) -> list[str]:
        doc = clean_doc("ketamine")
        doc["labs"] = [
            *doc["labs"],
            {"test": "bilirubin", "value": value, "upper_limit_normal": 1.2},
        ]
        return [r.rule for r in screen_document(doc, policy=policy).reasons]

    assert "lft-above-site-policy" not in rules(3.6)
    assert "lft-above-site-policy" in rules(3.61)
