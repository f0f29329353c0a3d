"""Whether a scored form holds every required answer, and the words for when it does not.

An unanswered item is unknown, never "no": a form with a required item left blank is
refused at submission with the items named (number as shown on the form, label and the
answers allowed), or, where a clinic accepts partial answers, kept as *incomplete* with
those items listed and no total. :func:`require_complete` is the refusal;
:func:`incomplete_label` the flag shown on a stored incomplete result.

Examples
--------
>>> from ketacare.core.instruments import get_instrument, score
>>> phq9 = get_instrument("phq9")
>>> result = score("phq9", [1, 1, 2, 1, 0, 1, 0, 0, None])
>>> [u.number for u in unanswered_items(phq9, result)]
[9]
>>> incomplete_label(phq9, result.missing)
'incomplete: item 9 unanswered'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ketacare.core.errors import InvalidInput
from ketacare.core.instruments.model import Instrument, Item, ScoreResult

__all__ = [
    "IncompleteAnswers",
    "Unanswered",
    "blank_flags",
    "incomplete_label",
    "require_complete",
    "unanswered_items",
]


@dataclass(frozen=True, slots=True)
class Unanswered:
    """A required item left blank: its id, its number on the form, its label, what it takes."""

    item: str
    number: int
    label: str
    allowed: str

    def to_dict(self) -> dict[str, object]:
        return {
            "item": self.item,
            "number": self.number,
            "label": self.label,
            "allowed": self.allowed,
        }


class IncompleteAnswers(InvalidInput):
    """A form submitted with required items blank; ``unanswered`` names each of them.

    ``result`` is the scoring of what was given, so the caller can still act on the
    flags a blank raises (an unanswered PHQ-9 item 9 alerts the clinician to ask it).
    """

    def __init__(
        self, *, instrument: Instrument, result: ScoreResult, unanswered: Sequence[Unanswered]
    ) -> None:
        parts = "; ".join(f"item {u.number} ({u.label}): {u.allowed}" for u in unanswered)
        noun = "item" if len(unanswered) == 1 else "items"
        numbers = _join([str(u.number) for u in unanswered])
        super().__init__(
            f"{instrument.short_title} not saved: required {noun} {numbers} unanswered. "
            f"Answer {'it' if len(unanswered) == 1 else 'them'} to submit; allowed: {parts}"
        )
        self.instrument = instrument
        self.result = result
        self.unanswered = tuple(unanswered)


def _allowed(item: Item) -> str:
    if item.kind == "boolean":
        return "yes or no"
    if not item.options:
        return "a whole number"
    return ", ".join(f"{o.value} ({o.label})" for o in item.options)


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _numbers(instrument: Instrument) -> dict[str, int]:
    return {item.id: n for n, item in enumerate(instrument.items, start=1)}


def unanswered_items(instrument: Instrument, result: ScoreResult) -> tuple[Unanswered, ...]:
    """The required items ``result`` lists as missing, in form order, with what each takes.

    Items its skip logic did not ask are in ``result.skipped``, not ``missing``, so they
    are never demanded.
    """
    numbers = _numbers(instrument)
    by_id = {item.id: item for item in instrument.items}
    return tuple(
        Unanswered(item_id, numbers[item_id], by_id[item_id].label, _allowed(by_id[item_id]))
        for item_id in sorted(result.missing, key=lambda i: numbers[i])
    )


def blank_flags(instrument: Instrument) -> frozenset[str]:
    """The ids of ``instrument``'s flags raised by a required item left blank.

    Such a flag says the form is incomplete, so it never stands for "the other flags are
    absent" (a screener with only these flags raised has no risk level yet).

    >>> from ketacare.core.instruments import get_instrument
    >>> sorted(blank_flags(get_instrument("phq9")))
    ['phq9_item9_unanswered']
    """
    return frozenset(f.id for f in instrument.flags if f.unanswered is not None)


def require_complete(instrument: Instrument, result: ScoreResult) -> None:
    """Refuse a form with a required item blank (:class:`IncompleteAnswers`), else nothing."""
    missing = unanswered_items(instrument, result)
    if missing:
        raise IncompleteAnswers(instrument=instrument, result=result, unanswered=missing)


def incomplete_label(instrument: Instrument, missing: Sequence[str]) -> str:
    """The visible flag of a result kept incomplete: ``incomplete: items 3, 9 unanswered``.

    Empty for a complete result. Unknown ids (an older version of the instrument) are
    shown as stored.
    """
    if not missing:
        return ""
    numbers = _numbers(instrument)
    shown = [str(numbers.get(i, i)) for i in sorted(missing, key=lambda i: numbers.get(i, 0))]
    noun = "item" if len(shown) == 1 else "items"
    return f"incomplete: {noun} {', '.join(shown)} unanswered"
