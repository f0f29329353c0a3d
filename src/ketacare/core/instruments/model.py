"""The values an instrument is made of, and the value a scoring returns.

Every class here is a frozen dataclass built by :mod:`.loader` from a data
file; nothing in this module reads files or knows any clinical number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from ketacare.core.instruments.expressions import Condition
from ketacare.core.sources import Source

__all__ = [
    "Band",
    "EnableWhen",
    "FlagRule",
    "Instrument",
    "Item",
    "Licence",
    "OutcomeMeasure",
    "ResponseOption",
    "RuleBand",
    "ScoreResult",
    "Scoring",
    "Source",
    "Subscale",
    "Use",
    "ValueRange",
]

ItemKind = Literal["choice", "boolean", "integer", "measurement"]
LicenceCase = Literal["full_text", "labels_only"]
ScoringMethod = Literal["sum", "none", "rules", "not_available"]
SubscaleMethod = Literal["sum", "mean", "count_groups", "one_of"]

_EMPTY: Mapping[str, object] = MappingProxyType({})

#: The screenings that read an instrument's latest result: ``eligibility`` is the
#: eligibility screening (:mod:`ketacare.core.screening`).
SCREENINGS: Final = ("eligibility",)


@dataclass(frozen=True, slots=True)
class ResponseOption:
    """One allowed answer of a choice item: its scored value and a short label."""

    value: int
    label: str
    loinc_answer: str | None = None


@dataclass(frozen=True, slots=True)
class ValueRange:
    """One scored range of a measurement item, inclusive; ``None`` leaves that end open.

    Early-warning charts score a raw reading by the range it falls in (NEWS2:
    a respiratory rate of 8 or less scores 3), so the chart's ranges are data.
    """

    points: int
    min: float | None = None
    max: float | None = None

    def contains(self, value: float) -> bool:
        """True when ``value`` lies in this range (both ends inclusive)."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(frozen=True, slots=True)
class EnableWhen:
    """Skip logic: the item is asked only when ``item`` was answered ``equals``."""

    item: str
    equals: bool | int


@dataclass(frozen=True, slots=True)
class Item:
    """One question or criterion.

    ``kind`` is ``choice`` (one of ``options``), ``boolean`` (yes/no) or
    ``integer`` (structure only, for an instrument whose response values are
    not sourced) or ``measurement`` (a raw reading such as a heart rate,
    scored by the chart range it falls in; ``limits`` are the data-entry
    bounds a reading must lie within and ``decimals`` the chart's resolution).
    For a boolean item a "yes" scores 1 and "no" 0, unless
    ``reverse`` (then "no" scores 1) or ``points_by_sex`` (then "yes" scores
    the sex-specific weight). ``text`` holds the full item wording only when
    the licence allows it or a clinic loaded its licensed texts.
    """

    id: str
    label: str
    kind: ItemKind
    options: tuple[ResponseOption, ...] = ()
    loinc: str | None = None
    text: str | None = None
    reverse: bool = False
    points_by_sex: Mapping[str, int] | None = None
    required: bool = True
    scored: bool = True
    enable_when: EnableWhen | None = None
    group: str | None = None
    ranges: tuple[ValueRange, ...] = ()
    limits: tuple[float, float] | None = None
    decimals: int = 0
    unit: str = ""

    @property
    def allowed_values(self) -> tuple[object, ...]:
        """The raw answers this item accepts (``null`` aside; empty for a measurement)."""
        if self.kind == "measurement":
            return ()
        if self.kind == "boolean":
            return (True, False)
        return tuple(option.value for option in self.options)

    def points(self, answer: object, sex: str | None) -> int | None:
        """The points a normalised answer scores (None for no answer or unscored)."""
        if answer is None or not self.scored:
            return None
        if self.kind == "boolean":
            yes = answer is True
            if self.points_by_sex is not None:
                return self.points_by_sex[sex or ""] if yes else 0
            return int(yes != self.reverse)
        if self.kind == "measurement":
            assert isinstance(answer, int | float)
            for value_range in self.ranges:
                if value_range.contains(answer):
                    return value_range.points
            raise ValueError(f"{self.id}: no chart range holds {answer}")
        assert isinstance(answer, int)
        return answer


@dataclass(frozen=True, slots=True)
class Subscale:
    """A named sub-score: a sum or a mean of items, or a count of item groups.

    ``min_answered`` is the published missing-item rule for the subscale (all
    items unless the source allows fewer). ``count_groups`` counts the groups
    with at least one item scoring above zero. ``one_of`` is the points of the one
    item asked among alternatives that skip logic chooses between (NEWS2 SpO2
    scale 2 is read on air or on oxygen).
    """

    id: str
    label: str
    items: tuple[str, ...]
    method: SubscaleMethod = "sum"
    min_answered: int = 0
    groups: tuple[tuple[str, ...], ...] = ()
    loinc: str | None = None


@dataclass(frozen=True, slots=True)
class Band:
    """A severity band over the total, inclusive bounds, optionally sex-specific."""

    id: str
    label: str
    min: float
    max: float
    of: str = "total"
    sex: str | None = None
    snomed: str | None = None


@dataclass(frozen=True, slots=True)
class RuleBand:
    """A band assigned by a condition (first matching rule wins)."""

    band: str
    label: str
    when: Condition
    evidence: str = ""


@dataclass(frozen=True, slots=True)
class FlagRule:
    """A stable flag id raised when its condition holds, or when an item is left unanswered.

    ``when`` compares answers (a comparison with a missing answer is false, so it never
    fires on a blank). ``unanswered`` names a required item whose blank is itself a
    signal (PHQ-9 item 9: an unknown answer must be asked, it is not "no"); such a flag
    fires when that item was asked and left blank. A flag has one of the two. ``label``
    is how the flag reads in a list on a page (a few words; the message says what to do).
    """

    id: str
    message: str
    when: Condition | None
    routes_to: str | None = None
    evidence: str = ""
    unanswered: str | None = None
    label: str = ""


@dataclass(frozen=True, slots=True)
class Scoring:
    """How the total and the band are computed.

    ``method``: ``sum`` (total = sum of the scored items), ``none`` (no total,
    subscales only), ``rules`` (no total; the band comes from ordered
    ``rules`` with ``default_band``) or ``not_available`` (the scoring is
    not sourced and :func:`score` refuses). ``missing`` is ``none_allowed``:
    any missing required item leaves the total and band empty (no source
    read publishes a proration rule for a total); subscales carry their own
    ``min_answered`` rule where the source gives one.
    """

    method: ScoringMethod
    missing: Literal["none_allowed"] = "none_allowed"
    rules: tuple[RuleBand, ...] = ()
    default_band: str | None = None
    default_band_label: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Licence:
    """Whether the item wording may ship (``full_text``) or only labels (``labels_only``)."""

    case: LicenceCase
    holder: str
    terms: str
    url: str = ""


@dataclass(frozen=True, slots=True)
class OutcomeMeasure:
    """A value of an instrument followed over a course of treatment, with its display labels.

    ``field`` is ``total`` or the id of a sub-score; ``label`` names the measure on the
    outcome panel and in reports ("Depression (PHQ-9)"), ``short`` in a sentence ("PHQ-9");
    ``order`` is its place on the panel among all instruments' measures.
    """

    id: str
    instrument: str
    field: str
    label: str
    short: str
    order: int


@dataclass(frozen=True, slots=True)
class Use:
    """How the clinic uses an instrument: workflow and display, no clinical number.

    ``self_report``: a patient fills it in about themselves (on their own page, from a
    self-report link or an outcome schedule); otherwise only staff enter it and a
    patient-entered result is never read. ``screenings``: the screenings (of
    :data:`SCREENINGS`) whose input takes its latest complete result. ``measures``: its
    values followed as outcome measures.
    """

    self_report: bool = False
    screenings: tuple[str, ...] = ()
    measures: tuple[OutcomeMeasure, ...] = ()


@dataclass(frozen=True, slots=True)
class Instrument:
    """A questionnaire or criteria set, as data."""

    id: str
    version: str
    title: str
    short_title: str
    description: str
    licence: Licence
    sources: tuple[Source, ...]
    items: tuple[Item, ...]
    scoring: Scoring
    subscales: tuple[Subscale, ...] = ()
    bands: tuple[Band, ...] = ()
    flags: tuple[FlagRule, ...] = ()
    recall_period: str = ""
    loinc_panel: str | None = None
    loinc_total: str | None = None
    unverified: tuple[str, ...] = ()
    texts_loaded_under: str | None = None
    use: Use = Use()

    @property
    def item_ids(self) -> tuple[str, ...]:
        """Item ids in the instrument's order (the order of a JSON answer array)."""
        return tuple(item.id for item in self.items)

    def item(self, item_id: str) -> Item:
        """The item with this id (KeyError if unknown)."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    @property
    def requires_sex(self) -> bool:
        """True when weights or cut-offs differ by sex."""
        return any(i.points_by_sex for i in self.items) or any(b.sex for b in self.bands)

    @property
    def primary_source(self) -> Source:
        """The first cited source."""
        return self.sources[0]

    def total_range(self, sex: str | None = None) -> tuple[int, int] | None:
        """Lowest and highest possible total (None when there is no total).

        Examples
        --------
        >>> from ketacare.core.instruments import get_instrument
        >>> get_instrument("phq9").total_range()
        (0, 27)
        """
        if self.scoring.method != "sum":
            return None
        spans: dict[str, tuple[int, int]] = {}
        for item in self.items:
            if not item.scored:
                continue
            if item.kind == "boolean":
                spans[item.id] = (0, item.points_by_sex[sex or "F"] if item.points_by_sex else 1)
            elif item.kind == "measurement":
                points = [r.points for r in item.ranges]
                spans[item.id] = (min(points), max(points))
            else:
                values = [int(o.value) for o in item.options]
                spans[item.id] = (min(values), max(values))
        for sub in self.subscales:
            if sub.method == "one_of":  # one alternative is asked: count it once
                alternatives = [spans.pop(i) for i in sub.items if i in spans]
                if alternatives:
                    spans[sub.id] = (
                        min(a[0] for a in alternatives),
                        max(a[1] for a in alternatives),
                    )
        return sum(a for a, _ in spans.values()), sum(b for _, b in spans.values())


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The result of scoring one completed instrument.

    ``answers`` holds the normalised answers keyed by item id (``None`` for
    unanswered or skipped items), ``missing`` the required items left
    unanswered, ``notes`` plain-language remarks (why a total is empty, which
    rule was applied). ``flag_details`` carries each raised flag's message and
    where it routes (e.g. ``phq9_item9_positive`` routes to ``cssrs_screener``).
    """

    instrument: str
    version: str
    total: float | int | None
    band: str | None
    flags: tuple[str, ...]
    subscores: Mapping[str, float | int | None]
    answers: Mapping[str, object]
    missing: tuple[str, ...] = ()
    band_label: str | None = None
    notes: tuple[str, ...] = ()
    sex: str | None = None
    flag_details: tuple[Mapping[str, str | None], ...] = ()
    skipped: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of ``ketacare score --json``.

        Examples
        --------
        >>> from ketacare.core.instruments import score
        >>> d = score("nrs_pain", [3]).to_dict()
        >>> (d["instrument"], d["total"], d["band"], d["flags"])
        ('nrs_pain', 3, 'mild', [])
        """
        return {
            "instrument": self.instrument,
            "version": self.version,
            "total": self.total,
            "band": self.band,
            "band_label": self.band_label,
            "flags": list(self.flags),
            "flag_details": [dict(d) for d in self.flag_details],
            "subscores": dict(self.subscores),
            "answers": dict(self.answers),
            "missing": list(self.missing),
            "skipped": list(self.skipped),
            "sex": self.sex,
            "notes": list(self.notes),
        }
