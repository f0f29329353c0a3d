"""Score a completed instrument: a pure function of the data file and the answers.

Answers come as a sequence in item order (trailing follow-up items that only
skip logic asks may be left out) or a mapping keyed by item id: numbers for
scale items, ``True``/``False`` for yes/no items, ``None`` for a
missing item. Every answer is checked against its item's allowed values; a
wrong one raises :class:`~ketacare.core.errors.OutOfRange` naming the item and
what is allowed. Skip logic (``enable_when``) is applied: an item that is not
asked must be left ``None``.

Missing items: when no developer source gives a missing-item rule for a total, an
incomplete form gets no total and no band (``missing`` lists what is needed),
but safety flags are still evaluated on the answers given, so a PHQ-9 item 9
answer above 0 raises its flag even on an incomplete form.

Examples
--------
>>> r = score("phq9", [1, 1, 2, 1, 0, 1, 1, 0, 1])
>>> (r.total, r.band, r.flags)
(8, 'mild', ('phq9_item9_positive',))
>>> score("auditc", [2, 1, 0], sex="F").band
'positive'
>>> score("auditc", [2, 1, 0], sex="M").band
'negative'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from ketacare.core.errors import InvalidInput, OutOfRange, UnknownItem
from ketacare.core.instruments.loader import load_library
from ketacare.core.instruments.model import Instrument, Item, ScoreResult, Subscale

__all__ = ["get_instrument", "list_instruments", "score", "score_instrument"]

_SEXES = ("F", "M")


def list_instruments() -> tuple[Instrument, ...]:
    """Every instrument in the library, sorted by id.

    Examples
    --------
    >>> "phq9" in [i.id for i in list_instruments()]
    True
    """
    return load_library()


def get_instrument(instrument_id: str) -> Instrument:
    """The instrument with this id.

    Raises
    ------
    UnknownItem
        When no instrument has this id (the message lists the known ids).

    Examples
    --------
    >>> get_instrument("gad7").title
    'Generalized Anxiety Disorder 7-item scale'
    """
    for instrument in load_library():
        if instrument.id == instrument_id:
            return instrument
    raise UnknownItem("instrument", instrument_id, [i.id for i in load_library()])


def _allowed_text(item: Item) -> str:
    if item.kind == "measurement" and item.limits is not None:
        low, high = item.limits
        unit = f" {item.unit}" if item.unit else ""
        grain = "a whole number" if item.decimals == 0 else f"at most {item.decimals} decimal(s)"
        return f"{low:g} to {high:g}{unit}, {grain} (or null if unanswered)"
    if item.kind == "boolean":
        return "true or false (or null if unanswered)"
    shown = ", ".join(f"{o.value} ({o.label})" for o in item.options)
    return f"one of {shown} (or null if unanswered)"


def _check_measurement(field: str, item: Item, value: object) -> int | float:
    """A reading inside the data-entry limits and at the chart's resolution.

    A reading finer than the chart (36.05 degC on a chart in tenths) is
    refused rather than rounded: which band it belongs to is not the
    chart's to say.
    """
    assert item.limits is not None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise OutOfRange(field, _show(value), _allowed_text(item))
    low, high = item.limits
    scaled = value * 10**item.decimals
    if not low <= value <= high or abs(scaled - round(scaled)) > 1e-6:
        raise OutOfRange(field, _show(value), _allowed_text(item))
    if item.decimals == 0:
        return int(round(value))
    return round(float(value), item.decimals)


def _check_answer(instrument: Instrument, item: Item, value: object) -> bool | int | float:
    field = f"{instrument.id} item {item.id} ({item.label})"
    if item.kind == "measurement":
        return _check_measurement(field, item, value)
    if item.kind == "boolean":
        if isinstance(value, bool):
            return value
        raise OutOfRange(field, _show(value), _allowed_text(item))
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None or number not in item.allowed_values:
        raise OutOfRange(field, _show(value), _allowed_text(item))
    return number


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _normalise_sex(instrument: Instrument, sex: str | None) -> str | None:
    if sex is None:
        if instrument.requires_sex:
            what = "weights" if any(i.points_by_sex for i in instrument.items) else "cut-offs"
            raise InvalidInput(
                f"{instrument.id} needs the patient's sex (F or M): its {what} differ by sex"
            )
        return None
    upper = sex.strip().upper() if isinstance(sex, str) else ""
    if upper not in _SEXES:
        raise InvalidInput(f"sex {sex!r} is not allowed: use F or M")
    return upper


def _by_item(instrument: Instrument, answers: object) -> dict[str, object]:
    ids = instrument.item_ids
    if isinstance(answers, Mapping):
        unknown = [k for k in answers if k not in ids]
        if unknown:
            raise UnknownItem(f"{instrument.id} item", unknown[0], list(ids))
        return {str(k): v for k, v in answers.items()}
    if isinstance(answers, Sequence) and not isinstance(answers, str | bytes):
        # Trailing follow-up items (asked only under skip logic, such as the C-SSRS
        # "within the past 3 months?" after question 6) may be left out of an array.
        shortest = len(ids)
        while shortest > 0 and instrument.items[shortest - 1].enable_when is not None:
            shortest -= 1
        if not shortest <= len(answers) <= len(ids):
            also = (
                f", or {shortest} leaving out the trailing follow-up item(s) "
                f"{', '.join(ids[shortest:])}"
                if shortest < len(ids)
                else ""
            )
            raise InvalidInput(
                f"{instrument.id} expects {len(ids)} answers in item order "
                f"({', '.join(ids)}){also}, got {len(answers)}"
            )
        return dict(zip(ids, answers, strict=False))
    raise InvalidInput(
        "answers must be an array of responses in item order or an object keyed by item id"
    )


def _subscore(sub: Subscale, points: Mapping[str, int | None]) -> float | int | None:
    answered = [points[i] for i in sub.items if points[i] is not None]
    if len(answered) < sub.min_answered:
        return None
    values = [p for p in answered if p is not None]
    if sub.method == "mean":
        return sum(values) / len(values)
    if sub.method == "one_of":  # the one alternative asked (skip logic leaves the others)
        return values[0] if len(values) == 1 else None
    if sub.method == "count_groups":
        return sum(1 for group in sub.groups if any((points[i] or 0) > 0 for i in group))
    return sum(values)


def score_instrument(
    instrument: Instrument,
    answers: Sequence[object] | Mapping[str, object],
    *,
    sex: str | None = None,
) -> ScoreResult:
    """Score ``answers`` against an :class:`Instrument` (see :func:`score`)."""
    if instrument.scoring.method == "not_available":
        raise InvalidInput(f"{instrument.id} cannot be scored: {instrument.scoring.note}")
    sex = _normalise_sex(instrument, sex)
    raw = _by_item(instrument, answers)

    normalised: dict[str, bool | int | float | None] = {}
    missing: list[str] = []
    skipped: list[str] = []
    for item in instrument.items:
        value = raw.get(item.id)
        gate = item.enable_when
        if gate is not None:
            gate_value = normalised.get(gate.item)
            if gate_value is not None and gate_value != gate.equals:
                if value is not None:
                    raise InvalidInput(
                        f"{instrument.id} item {item.id} is asked only when {gate.item} is "
                        f"{_show(gate.equals)}; leave it null"
                    )
                normalised[item.id] = None
                skipped.append(item.id)
                continue
            if gate_value is None and value is None:
                normalised[item.id] = None
                skipped.append(item.id)
                continue
        if value is None:
            normalised[item.id] = None
            if item.required:
                missing.append(item.id)
            continue
        normalised[item.id] = _check_answer(instrument, item, value)

    points = {item.id: item.points(normalised[item.id], sex) for item in instrument.items}
    subscores: dict[str, float | int | None] = {
        sub.id: _subscore(sub, points) for sub in instrument.subscales
    }
    notes: list[str] = []
    for sub in instrument.subscales:
        if subscores[sub.id] is None:
            answered = sum(1 for i in sub.items if points[i] is not None)
            notes.append(
                f"{sub.label} not computed: needs at least {sub.min_answered} of "
                f"{len(sub.items)} items answered, {answered} answered"
            )

    complete = not missing
    total: int | None = None
    band: str | None = None
    band_label: str | None = None
    method = instrument.scoring.method
    if method == "sum" and complete:
        total = sum(p for item in instrument.items if (p := points[item.id]) is not None)
        if instrument.scoring.rules:
            # A sum whose band depends on more than the total (NEWS2: a single
            # parameter scoring 3 is its own band) takes the band from its rules.
            rule_context: dict[str, bool | int | float | str | None] = {
                **normalised,
                **subscores,
                "total": total,
            }
            band = instrument.scoring.default_band
            band_label = instrument.scoring.default_band_label
            for rule in instrument.scoring.rules:
                if rule.when.evaluate(rule_context):
                    band, band_label = rule.band, rule.label
                    break
        for b in instrument.bands if not instrument.scoring.rules else ():
            if b.sex in (None, sex) and b.min <= total <= b.max:
                band, band_label = b.id, b.label
                break
    context: dict[str, bool | int | float | str | None] = {**normalised, **subscores}
    context["total"] = total
    if method == "rules" and complete:
        band, band_label = instrument.scoring.default_band, instrument.scoring.default_band_label
        for rule in instrument.scoring.rules:
            if rule.when.evaluate(context):
                band, band_label = rule.band, rule.label
                break
    context["band"] = band
    if missing:
        notes.append(
            f"{instrument.short_title}: no total or band because item(s) "
            f"{', '.join(missing)} are unanswered and no missing-item rule is applied"
            if method in ("sum", "rules")
            else f"{instrument.short_title}: item(s) {', '.join(missing)} unanswered"
        )

    raised = [
        flag
        for flag in instrument.flags
        if (flag.when.evaluate(context) if flag.when is not None else flag.unanswered in missing)
    ]
    return ScoreResult(
        instrument=instrument.id,
        version=instrument.version,
        total=total,
        band=band,
        flags=tuple(flag.id for flag in raised),
        subscores=MappingProxyType(subscores),
        answers=MappingProxyType(dict(normalised)),
        missing=tuple(missing),
        band_label=band_label,
        notes=tuple(notes),
        sex=sex,
        flag_details=tuple(
            MappingProxyType({"id": f.id, "message": f.message, "routes_to": f.routes_to})
            for f in raised
        ),
        skipped=tuple(skipped),
    )


def score(
    instrument_id: str,
    answers: Sequence[object] | Mapping[str, object],
    *,
    sex: str | None = None,
) -> ScoreResult:
    """Score one completed instrument.

    Parameters
    ----------
    instrument_id
        Library id, e.g. ``"phq9"``, ``"bpi_sf"``, ``"cssrs_screener"``.
    answers
        Raw responses in item order, or a mapping keyed by item id; ``None``
        for a missing item.
    sex
        ``"F"`` or ``"M"``; required by instruments whose weights or cut-offs
        differ by sex (ORT, AUDIT-C).

    Returns
    -------
    ScoreResult
        Total, band, flags, subscores, normalised answers and missing items.

    Raises
    ------
    UnknownItem
        Unknown instrument id or item id.
    OutOfRange
        An answer outside its item's allowed values (the message names both).
    InvalidInput
        Wrong number of answers, a missing or invalid ``sex`` where one is
        needed, an answer to an item its skip logic leaves out, or an
        instrument whose scoring is not sourced.

    Examples
    --------
    >>> r = score("bpi_sf", {"worst": 8, "least": 2, "average": 5, "now": 5,
    ...                      "general_activity": 6, "walking": 4, "work": 7, "mood": 5})
    >>> r.subscores["severity"], r.subscores["interference"]
    (5.0, 5.5)
    >>> score("ort", [True] + [False] * 9, sex="M").total
    3
    """
    return score_instrument(get_instrument(instrument_id), answers, sex=sex)
