"""Load and validate instrument data files (``data/*.toml``).

Each file describes one instrument; :func:`load_instrument_file` turns it into
an :class:`~ketacare.core.instruments.model.Instrument` or raises
:class:`~ketacare.core.errors.DataFileError` naming the file, the field and
what is wrong. The library of shipped instruments is read once.

Examples
--------
>>> [i.id for i in load_library()][:3]
['acr2016_fm', 'auditc', 'bpi_sf']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from ketacare.core.datafile import Reader, parse_toml, read_toml
from ketacare.core.errors import InvalidInput
from ketacare.core.instruments.expressions import Condition, parse_condition
from ketacare.core.instruments.model import (
    SCREENINGS,
    Band,
    EnableWhen,
    FlagRule,
    Instrument,
    Item,
    Licence,
    OutcomeMeasure,
    ResponseOption,
    RuleBand,
    Scoring,
    Subscale,
    Use,
    ValueRange,
)

__all__ = ["DATA_DIR", "load_instrument_file", "load_instrument_text", "load_library"]

#: Folder of the shipped instrument data files.
DATA_DIR = Path(__file__).parent / "data"

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_LOINC = re.compile(r"^\d{1,7}-\d$")
_LOINC_ANSWER = re.compile(r"^LA\d{1,7}-\d$")
_SEXES = ("F", "M")


_KIND = "instrument"


def _exact(reader: Reader, field: str) -> float:
    """A number as written (an integer stays one: bands and ranges show as in the source)."""
    reader.number(field)
    return cast(float, reader.table[field])


def _opt_exact(reader: Reader, field: str) -> float | None:
    return _exact(reader, field) if reader.has(field) else None


def _loinc(reader: Reader, key: str, pattern: re.Pattern[str] = _LOINC) -> str | None:
    code = reader.opt_text(key)
    if code is not None and not pattern.match(code):
        raise reader.fail(key, f"{code!r} is not a LOINC code")
    return code


def _condition(reader: Reader, key: str, names: set[str]) -> Condition:
    text = reader.text(key)
    try:
        condition = parse_condition(text)
    except InvalidInput as exc:
        raise reader.fail(key, str(exc)) from exc
    unknown = sorted(condition.names() - names)
    if unknown:
        raise reader.fail(key, f"refers to unknown name(s) {', '.join(unknown)}")
    return condition


def _options(reader: Reader) -> tuple[ResponseOption, ...]:
    options = []
    for opt in reader.tables("options", required=True):
        opt.only({"value", "label", "loinc_answer"})
        options.append(
            ResponseOption(
                value=opt.integer("value"),
                label=opt.text("label"),
                loinc_answer=_loinc(opt, "loinc_answer", _LOINC_ANSWER),
            )
        )
    values = [o.value for o in options]
    if len(set(values)) != len(values):
        raise reader.fail("options", "values must be unique")
    return tuple(options)


def _item(reader: Reader, response_sets: Mapping[str, tuple[ResponseOption, ...]]) -> Item:
    reader.only(
        {
            "id",
            "label",
            "kind",
            "options",
            "response_set",
            "loinc",
            "text",
            "reverse",
            "points_by_sex",
            "required",
            "scored",
            "enable_when",
            "group",
            "ranges",
            "limits",
            "decimals",
            "unit",
        }
    )
    item_id = reader.text("id")
    if not _ID.match(item_id):
        raise reader.fail(
            "id", f"item id {item_id!r} must be lowercase letters, digits, underscores"
        )
    kind = reader.choice("kind", ("choice", "boolean", "integer", "measurement"))
    options: tuple[ResponseOption, ...] = ()
    if kind == "choice":
        if reader.has("response_set"):
            options = response_sets[reader.choice("response_set", tuple(response_sets))]
        else:
            options = _options(reader)
    elif reader.has("options") or reader.has("response_set"):
        raise reader.fail("options", f"a {kind} item takes no options")
    ranges: tuple[ValueRange, ...] = ()
    limits: tuple[float, float] | None = None
    decimals = 0
    if kind == "measurement":
        ranges, limits, decimals = _measurement(reader)
    elif {"ranges", "limits", "decimals", "unit"} & set(reader.table):
        raise reader.fail("", "ranges, limits, decimals and unit apply to measurement items only")
    points_by_sex = None
    if "points_by_sex" in reader.table:
        raw = reader.table["points_by_sex"]
        if (
            kind != "boolean"
            or not isinstance(raw, dict)
            or set(raw) != set(_SEXES)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw.values())
        ):
            raise reader.fail("points_by_sex", "must be {F = int, M = int} on a boolean item")
        points_by_sex = MappingProxyType(dict(raw))
    reverse = reader.boolean("reverse", default=False)
    if reverse and kind != "boolean":
        raise reader.fail("reverse", "applies to boolean items only")
    enable_when = None
    ew = reader.opt_sub("enable_when")
    if ew is not None:
        ew.only({"item", "equals"})
        equals = ew.table.get("equals")
        if not isinstance(equals, bool | int):
            raise ew.fail("equals", f"must be true, false or an integer, got {equals!r}")
        enable_when = EnableWhen(item=ew.text("item"), equals=equals)
    return Item(
        id=item_id,
        label=reader.text("label"),
        kind=cast(Any, kind),
        options=options,
        loinc=_loinc(reader, "loinc"),
        text=reader.opt_text("text"),
        reverse=reverse,
        points_by_sex=points_by_sex,
        required=reader.boolean("required", default=True),
        scored=reader.boolean("scored", default=kind != "integer"),
        enable_when=enable_when,
        group=reader.opt_text("group"),
        ranges=ranges,
        limits=limits,
        decimals=decimals,
        unit=reader.text("unit", default=""),
    )


def _measurement(
    reader: Reader,
) -> tuple[tuple[ValueRange, ...], tuple[float, float], int]:
    """A measurement item's chart ranges, data-entry limits and resolution.

    The ranges must run upwards without gap or overlap at the chart's
    resolution (35.0 then 35.1 for one decimal), the lowest open below and
    the highest open above, so that every reading inside the limits scores
    exactly once.
    """
    decimals = reader.integer("decimals", default=0)
    if not 0 <= decimals <= 3:
        raise reader.fail("decimals", f"must be between 0 and 3, got {decimals}")
    step = 10.0**-decimals
    if not reader.has("limits"):
        raise reader.fail("limits", "a measurement item needs limits = { min = ..., max = ... }")
    lim = reader.sub("limits")
    lim.only({"min", "max", "source"})
    limits = (_exact(lim, "min"), _exact(lim, "max"))
    if limits[0] >= limits[1]:
        raise lim.fail("min", "must be below max")
    ranges: list[ValueRange] = []
    for r in reader.tables("ranges", required=True):
        r.only({"min", "max", "points"})
        ranges.append(
            ValueRange(
                points=r.integer("points"),
                min=_opt_exact(r, "min"),
                max=_opt_exact(r, "max"),
            )
        )
    if ranges[0].min is not None or ranges[-1].max is not None:
        raise reader.fail("ranges", "the first must have no min and the last no max")
    for before, after in zip(ranges, ranges[1:], strict=False):
        if before.max is None or after.min is None:
            raise reader.fail("ranges", "only the first may lack min and only the last max")
        if round(after.min - before.max, decimals + 3) != round(step, decimals + 3):
            raise reader.fail(
                "ranges",
                f"{before.max} is followed by {after.min}; ranges must be "
                f"contiguous at the resolution {step:g}",
            )
        if after.max is not None and after.max < after.min:
            raise reader.fail("ranges", f"min {after.min} is above max {after.max}")
    return tuple(ranges), limits, decimals


def _check_one_of(reader: Reader, items: tuple[Item, ...]) -> None:
    """A ``one_of`` sub-score's items must be alternatives: each asked only under a
    different answer to the same earlier item (NEWS2 SpO2 scale 2: on air or on oxygen),
    so exactly one is asked and its points are the sub-score."""
    gates = [item.enable_when for item in items]
    if len(items) < 2 or any(g is None for g in gates):
        raise reader.fail(
            "method",
            "one_of needs two or more items, each with enable_when on the same item",
        )
    if len({g.item for g in gates if g is not None}) != 1 or len(
        {g.equals for g in gates if g is not None}
    ) != len(items):
        raise reader.fail(
            "method",
            "one_of items must be asked under different answers to the same item "
            f"({', '.join(i.id for i in items)})",
        )


def _subscale(reader: Reader, by_id: Mapping[str, Item]) -> Subscale:
    reader.only({"id", "label", "items", "method", "min_answered", "groups", "loinc"})
    method = reader.choice("method", ("sum", "mean", "count_groups", "one_of"), default="sum")
    item_ids = set(by_id)
    groups: tuple[tuple[str, ...], ...] = ()
    if method == "count_groups":
        raw = reader.table.get("groups")
        if not isinstance(raw, list) or not raw:
            raise reader.fail("groups", "count_groups needs groups = [[item, ...], ...]")
        groups = tuple(
            reader.child({f"groups[{i}]": g}, "").strings(f"groups[{i}]") for i, g in enumerate(raw)
        )
        items = tuple(i for g in groups for i in g)
    else:
        items = reader.strings("items")
    unknown = sorted(set(items) - item_ids)
    if unknown:
        raise reader.fail("items", f"unknown item(s) {', '.join(unknown)}")
    if method == "one_of":
        _check_one_of(reader, tuple(by_id[i] for i in items))
    min_answered = reader.integer("min_answered", default=1 if method == "one_of" else len(items))
    if method == "one_of" and min_answered != 1:
        raise reader.fail("min_answered", "a one_of sub-score is the one item asked: leave it out")
    if not 1 <= min_answered <= len(items):
        raise reader.fail("min_answered", f"must be between 1 and {len(items)}")
    if method in ("sum", "count_groups") and min_answered != len(items):
        raise reader.fail(
            "min_answered", "only a mean may be computed from fewer than all its items"
        )
    return Subscale(
        id=reader.text("id"),
        label=reader.text("label"),
        items=items,
        method=cast(Any, method),
        min_answered=min_answered,
        groups=groups,
        loinc=_loinc(reader, "loinc"),
    )


def _bands(readers: list[Reader], targets: set[str]) -> tuple[Band, ...]:
    bands: list[Band] = []
    for r in readers:
        r.only({"id", "label", "min", "max", "of", "sex", "snomed"})
        band = Band(
            id=r.text("id"),
            label=r.text("label"),
            min=_exact(r, "min"),
            max=_exact(r, "max"),
            of=r.text("of", default="total"),
            sex=r.opt_text("sex"),
            snomed=r.opt_text("snomed"),
        )
        if band.min > band.max:
            raise r.fail("min", f"band {band.id}: min {band.min} is above max {band.max}")
        if band.of not in targets:
            raise r.fail("of", f"band {band.id}: bands apply to the total only")
        if band.sex is not None and band.sex not in _SEXES:
            raise r.fail("sex", f"band {band.id}: {band.sex!r} is not one of F, M")
        for other in bands:
            same_scope = other.of == band.of and (
                other.sex is None or band.sex is None or other.sex == band.sex
            )
            if same_scope and band.min <= other.max and other.min <= band.max:
                raise r.fail("min", f"band {band.id} overlaps band {other.id}")
        bands.append(band)
    return tuple(bands)


def _use(top: Reader, instrument_id: str, scoring: Scoring, subscales: set[str]) -> Use:
    """The ``[use]`` table every instrument file declares (see :class:`Use`)."""
    use = top.sub("use")
    use.fields(required={"self_report", "screenings"}, optional={"measures"})
    if not isinstance(use.table.get("self_report"), bool):
        raise use.fail("self_report", "must be true (a patient fills it in) or false (staff only)")
    screenings = use.strings("screenings")
    unknown = sorted(set(screenings) - set(SCREENINGS))
    if unknown:
        raise use.fail(
            "screenings",
            f"unknown screening(s) {', '.join(unknown)}: allowed {', '.join(SCREENINGS)}",
        )
    measures = []
    for m in use.tables("measures"):
        m.fields(required={"id", "field", "label", "short", "order"})
        field = m.text("field")
        if field == "total" and scoring.method != "sum":
            raise m.fail("field", "total needs an instrument scored by sum")
        if field != "total" and field not in subscales:
            raise m.fail("field", f"{field!r} must be total or a subscale of {instrument_id}")
        measures.append(
            OutcomeMeasure(
                id=m.text("id"),
                instrument=instrument_id,
                field=field,
                label=m.text("label"),
                short=m.text("short"),
                order=m.integer("order"),
            )
        )
    return Use(
        self_report=use.boolean("self_report"),
        screenings=screenings,
        measures=tuple(measures),
    )


def _parse(where: str, data: Mapping[str, Any]) -> Instrument:
    top = Reader(kind=_KIND, path=where, table=data)
    top.only(
        {
            "id",
            "version",
            "title",
            "short_title",
            "description",
            "recall_period",
            "loinc_panel",
            "loinc_total",
            "licence",
            "sources",
            "response_sets",
            "items",
            "subscales",
            "scoring",
            "bands",
            "flags",
            "unverified",
            "use",
        }
    )
    instrument_id = top.text("id")
    if not _ID.match(instrument_id):
        raise top.fail("id", f"{instrument_id!r} must be lowercase letters, digits, underscores")

    lic = top.sub("licence")
    lic.only({"case", "holder", "terms", "url"})
    case = lic.choice("case", ("full_text", "labels_only"))
    licence = Licence(
        case=cast(Any, case),
        holder=lic.text("holder"),
        terms=lic.text("terms"),
        url=lic.text("url", default=""),
    )

    sources = top.sources("sources", required={"citation", "url"}, optional={"supports"})

    response_sets: dict[str, tuple[ResponseOption, ...]] = {}
    for rs in top.tables("response_sets", id_key="id"):
        rs.only({"id", "options"})
        response_sets[rs.text("id")] = _options(rs)

    item_readers = top.tables("items", required=True, id_key="id")
    items = tuple(_item(r, response_sets) for r in item_readers)
    item_ids = [i.id for i in items]
    if len(set(item_ids)) != len(item_ids):
        raise top.fail("items", "item ids must be unique")
    for item, r in zip(items, item_readers, strict=True):
        if item.text is not None and licence.case != "full_text":
            raise r.fail("text", f"item {item.id} has text but the licence case is labels_only")
        if item.enable_when is not None and item.enable_when.item not in item_ids:
            raise r.fail("enable_when", f"item {item.id}: enable_when refers to unknown item")
        if item.enable_when is not None and item_ids.index(item.enable_when.item) > item_ids.index(
            item.id
        ):
            raise r.fail(
                "enable_when", f"item {item.id}: enable_when must refer to an earlier item"
            )

    by_id = {item.id: item for item in items}
    subscales = tuple(_subscale(r, by_id) for r in top.tables("subscales", id_key="id"))
    names = set(item_ids) | {s.id for s in subscales}
    if len(names) != len(item_ids) + len(subscales):
        raise top.fail("subscales", "subscale ids must be unique and differ from item ids")
    names |= {"total", "band"}

    sc = top.sub("scoring")
    sc.only({"method", "missing", "rules", "default_band", "default_band_label", "note"})
    method = sc.choice("method", ("sum", "none", "rules", "not_available"))
    missing = sc.text("missing", default="none_allowed")
    if missing != "none_allowed":
        raise sc.fail(
            "missing",
            f"{missing!r}: only none_allowed is supported for totals "
            "(subscales carry their own min_answered)",
        )
    rules = []
    for r in sc.tables("rules", id_key="band"):
        r.only({"band", "label", "when", "evidence"})
        rules.append(
            RuleBand(
                r.text("band"),
                r.text("label"),
                _condition(r, "when", names),
                r.text("evidence", default=""),
            )
        )
    if method == "rules" and (not rules or "default_band" not in sc.table):
        raise sc.fail("method", "method rules needs [[scoring.rules]] and default_band")
    if method == "sum" and rules and "default_band" not in sc.table:
        raise sc.fail("default_band", "a sum banded by [[scoring.rules]] needs default_band")
    if method not in ("sum", "rules") and rules:
        raise sc.fail("rules", f"method {method} takes no [[scoring.rules]]")
    scoring = Scoring(
        method=cast(Any, method),
        missing="none_allowed",
        rules=tuple(rules),
        default_band=sc.opt_text("default_band"),
        default_band_label=sc.opt_text("default_band_label"),
        note=sc.text("note", default=""),
    )

    bands = _bands(top.tables("bands", id_key="id"), {"total"})
    if bands and method != "sum":
        raise top.fail("bands", "range bands need scoring method sum")
    if bands and rules:
        raise top.fail("bands", "give either range [[bands]] or [[scoring.rules]], not both")

    flags = []
    for f in top.tables("flags", id_key="id"):
        f.only({"id", "label", "message", "when", "unanswered", "routes_to", "evidence"})
        flag_id = f.text("id")
        if not _ID.match(flag_id):
            raise f.fail(
                "id", f"flag id {flag_id!r} must be lowercase letters, digits, underscores"
            )
        unanswered = f.opt_text("unanswered")
        if (unanswered is None) == ("when" not in f.table):
            raise f.fail("", "give exactly one of when (a condition) or unanswered (an item id)")
        if unanswered is not None and unanswered not in {i.id for i in items}:
            raise f.fail("unanswered", f"{unanswered!r} is not an item of {instrument_id}")
        flags.append(
            FlagRule(
                flag_id,
                f.text("message"),
                None if unanswered is not None else _condition(f, "when", names),
                f.opt_text("routes_to"),
                f.text("evidence", default=""),
                unanswered,
                f.text("label", default="") or f.text("message"),
            )
        )

    instrument = Instrument(
        id=instrument_id,
        version=top.text("version"),
        title=top.text("title"),
        short_title=top.text("short_title"),
        description=top.text("description"),
        licence=licence,
        sources=tuple(sources.values()),
        items=items,
        scoring=scoring,
        subscales=subscales,
        bands=bands,
        flags=tuple(flags),
        recall_period=top.text("recall_period", default=""),
        loinc_panel=_loinc(top, "loinc_panel"),
        loinc_total=_loinc(top, "loinc_total"),
        unverified=top.strings("unverified", default=()),
        use=_use(top, instrument_id, scoring, {s.id for s in subscales}),
    )
    if instrument.requires_sex:
        for sex in _SEXES:
            scoped = [b for b in bands if b.sex in (None, sex)]
            if bands and not scoped:
                raise top.fail("bands", f"no bands apply to sex {sex}")
    return instrument


def load_instrument_text(text: str, where: str = "<text>") -> Instrument:
    """Parse and validate one instrument from TOML text.

    Raises
    ------
    DataFileError
        When the TOML is malformed or a field fails validation.
    """
    return _parse(where, parse_toml(text, kind=_KIND, path=where))


def load_instrument_file(path: Path) -> Instrument:
    """Parse and validate one instrument data file.

    Raises
    ------
    DataFileError
        When the file cannot be read, is malformed or fails validation; the
        message names the file and the field.
    """
    data = read_toml(path, kind=_KIND, name=path.name)
    instrument = _parse(path.name, data)
    if instrument.id != path.stem:
        raise Reader(kind=_KIND, path=path.name, table=data).fail(
            "id", f"id {instrument.id!r} must match the file name"
        )
    return instrument


@lru_cache(maxsize=1)
def load_library() -> tuple[Instrument, ...]:
    """Every shipped instrument, sorted by id (read once)."""
    return tuple(load_instrument_file(p) for p in sorted(DATA_DIR.glob("*.toml")))
