"""A required item left blank is named (number on the form, label, answers allowed); a
blank PHQ-9 item 9 raises its own flag, worded as unanswered, never as positive.

Expected values come from the PHQ-9 data file's sources: items 1-9 each answered 0-3
("Not at all", "Several days", "More than half the days", "Nearly every day"; LOINC
LL358-3), item 9 "Thoughts that you would be better off dead, or of hurting yourself"
(Kroenke 2001), and item 9 needing follow-up whatever the total (calcipedia).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ketacare.core.instruments import (
    IncompleteAnswers,
    get_instrument,
    incomplete_label,
    load_instrument_text,
    require_complete,
    score,
)

PHQ9 = get_instrument("phq9")
DATA = Path(__file__).resolve().parents[3] / "src/ketacare/core/instruments/data"


def test_blank_item_9_is_refused_naming_item_9_and_its_four_answers() -> None:
    result = score("phq9", [1, 1, 2, 1, 0, 1, 0, 0, None])
    with pytest.raises(IncompleteAnswers) as caught:
        require_complete(PHQ9, result)
    (only,) = caught.value.unanswered
    assert (only.item, only.number) == ("q9", 9)
    assert only.allowed == (
        "0 (Not at all), 1 (Several days), 2 (More than half the days), 3 (Nearly every day)"
    )
    assert "required item 9 unanswered" in str(caught.value)


def test_blank_item_9_flags_unanswered_not_positive_and_no_total() -> None:
    # 1+1+2+1+0+1+0+0 = 6 from eight items: no total, because item 9 is unknown
    result = score("phq9", [1, 1, 2, 1, 0, 1, 0, 0, None])
    assert result.total is None and result.band is None
    assert result.flags == ("phq9_item9_unanswered",)
    (detail,) = result.flag_details
    assert "left unanswered" in str(detail["message"])
    assert "above 0:" not in str(detail["message"])


def test_item_9_answered_0_raises_no_unanswered_flag() -> None:
    result = score("phq9", [0] * 9)
    assert result.flags == () and result.total == 0
    require_complete(PHQ9, result)  # complete: nothing raised


def test_several_blanks_named_in_form_order_and_labelled_incomplete() -> None:
    result = score(
        "phq9",
        {"q9": 2, "q3": None, "q1": 1, "q2": 0, "q4": 0, "q5": 0, "q6": 0, "q7": None, "q8": 0},
    )
    with pytest.raises(IncompleteAnswers) as caught:
        require_complete(PHQ9, result)
    assert [u.number for u in caught.value.unanswered] == [3, 7]
    assert "required items 3 and 7 unanswered" in str(caught.value)
    # item 9 = 2 is positive whatever else is blank
    assert result.flags == ("phq9_item9_positive",)
    assert incomplete_label(PHQ9, result.missing) == "incomplete: items 3, 7 unanswered"
    assert incomplete_label(PHQ9, ()) == ""


def test_items_not_asked_by_skip_logic_are_not_demanded() -> None:
    # C-SSRS: "no" to question 2 skips questions 3-5 (Columbia triage pages)
    cssrs = get_instrument("cssrs_screener")
    answers = {i.id: None for i in cssrs.items}
    ids = [i.id for i in cssrs.items]
    answers[ids[0]] = False
    answers[ids[1]] = False
    answers[ids[5]] = False
    result = score("cssrs_screener", answers)
    require_complete(cssrs, result)  # nothing asked was left blank


def test_an_unanswered_flag_must_name_an_item_and_not_also_have_a_condition() -> None:
    base = (DATA / "phq9.toml").read_text(encoding="utf-8")
    bad = base.replace('unanswered = "q9"', 'unanswered = "q99"')
    with pytest.raises(Exception, match="q99"):
        load_instrument_text(bad)
    both = base.replace('unanswered = "q9"', 'unanswered = "q9"\nwhen = "q9 > 0"')
    with pytest.raises(Exception, match="exactly one of when"):
        load_instrument_text(both)
