"""Hypothesis properties: any valid answer set scores within the instrument's range."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ketacare.core.instruments import Instrument, get_instrument, list_instruments, score

SCORED = [i for i in list_instruments() if i.scoring.method != "not_available"]


def any_value(item: Any) -> st.SearchStrategy[Any]:
    """Any answer the item allows (a measurement at the chart's resolution)."""
    if item.kind == "measurement":
        assert item.limits is not None
        scale = 10**item.decimals
        low, high = (round(v * scale) for v in item.limits)
        return st.integers(low, high).map(
            lambda n, d=item.decimals, k=scale: n if d == 0 else round(n / k, d)
        )
    if item.kind == "boolean":
        return st.booleans()
    return st.sampled_from(item.allowed_values)


def valid_answers(inst: Instrument, allow_missing: bool) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for item in inst.items:
        if item.enable_when is not None:
            continue  # filled in below, consistent with its gate
        base = any_value(item)
        fields[item.id] = st.one_of(st.none(), base) if allow_missing else base

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        answers = {k: draw(v) for k, v in fields.items()}
        for item in inst.items:
            if item.enable_when is not None:
                asked = answers.get(item.enable_when.item) == item.enable_when.equals
                answers[item.id] = draw(any_value(item)) if asked else None
        return answers

    return build()


@st.composite
def instrument_and_answers(draw: st.DrawFn) -> tuple[Instrument, dict[str, Any], str]:
    inst = draw(st.sampled_from(SCORED))
    return inst, draw(valid_answers(inst, allow_missing=False)), draw(st.sampled_from(["F", "M"]))


@settings(max_examples=300, deadline=None)
@given(instrument_and_answers())
def test_complete_answers_score_within_range_and_get_a_band(
    case: tuple[Instrument, dict[str, Any], str],
) -> None:
    inst, answers, sex = case
    result = score(inst.id, answers, sex=sex)
    assert result.missing == ()
    if inst.scoring.method == "sum":
        low, high = inst.total_range(sex)  # type: ignore[misc]
        assert result.total is not None and low <= result.total <= high
        if inst.bands or inst.scoring.rules:
            assert result.band is not None
    if inst.scoring.method == "rules":
        assert result.band is not None
    for sub_id, value in result.subscores.items():
        sub = next(s for s in inst.subscales if s.id == sub_id)
        assert value is not None and value >= 0
        if sub.method == "mean":
            assert value <= 10
        elif sub.method == "count_groups":
            assert value <= len(sub.groups)
        else:
            top = sum(
                1
                if inst.item(i).kind == "boolean"
                else max(r.points for r in inst.item(i).ranges)
                if inst.item(i).kind == "measurement"
                else max(o.value for o in inst.item(i).options)
                for i in sub.items
            )
            assert value <= top


@st.composite
def instrument_and_partial(draw: st.DrawFn) -> tuple[Instrument, dict[str, Any], str]:
    inst = draw(st.sampled_from(SCORED))
    return inst, draw(valid_answers(inst, allow_missing=True)), draw(st.sampled_from(["F", "M"]))


@settings(max_examples=300, deadline=None)
@given(instrument_and_partial())
def test_missing_answers_never_crash_and_never_band_without_total(
    case: tuple[Instrument, dict[str, Any], str],
) -> None:
    inst, answers, sex = case
    result = score(inst.id, answers, sex=sex)
    if result.missing and inst.scoring.method in ("sum", "rules"):
        assert result.total is None and result.band is None
    assert set(result.answers) == set(inst.item_ids)


PHQ9 = get_instrument("phq9")


@given(st.lists(st.integers(0, 3), min_size=9, max_size=9), st.randoms())
def test_phq9_total_is_invariant_to_answer_order(values: list[int], rnd: Any) -> None:
    shuffled = values[:]
    rnd.shuffle(shuffled)
    assert score("phq9", values).total == score("phq9", shuffled).total == sum(values)


@given(st.lists(st.integers(0, 10), min_size=11, max_size=11))
def test_bpi_means_stay_within_0_10(values: list[int]) -> None:
    result = score("bpi_sf", values)
    assert 0 <= result.subscores["severity"] <= 10  # type: ignore[operator]
    assert 0 <= result.subscores["interference"] <= 10  # type: ignore[operator]
