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
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from ketacare.core.errors import DataFileError, InvalidInput
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
    Source,
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


class _Reader:
    """Typed access to a TOML table with messages that name the field."""

    def __init__(self, where: str, table: Mapping[str, Any]) -> None:
        self.where = where
        self.table = table

    def fail(self, message: str) -> DataFileError:
        return DataFileError(f"{self.where}: {message}")

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.table) - allowed)
        if unknown:
            raise self.fail(f"unknown field(s) {', '.join(unknown)}")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if not isinstance(value, str) or (default is None and not value.strip()):
            raise self.fail(f"{key} must be a non-empty string")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{key} must be a non-empty string when given")
        return value

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{key} must be an integer")
        return value

    def number(self, key: str) -> float:
        value = self.table.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{key} must be a number")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{key} must be true or false")
        return value

    def strings(self, key: str, default: list[str] | None = None) -> tuple[str, ...]:
        value = self.table.get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{key} must be a list of strings")
        return tuple(cast(list[str], value))

    def tables(self, key: str, required: bool = False) -> list[_Reader]:
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(f"{key} must be an array of tables")
        if required and not value:
            raise self.fail(f"{key} must not be empty")
        return [_Reader(f"{self.where}: {key}[{n}]", v) for n, v in enumerate(value)]

    def sub(self, key: str) -> _Reader:
        value = self.table.get(key)
        if not isinstance(value, dict):
            raise self.fail(f"[{key}] table is required")
        return _Reader(f"{self.where}: [{key}]", value)


def _loinc(reader: _Reader, key: str, pattern: re.Pattern[str] = _LOINC) -> str | None:
    code = reader.opt_text(key)
    if code is not None and not pattern.match(code):
        raise reader.fail(f"{key} {code!r} is not a LOINC code")
    return code


def _condition(reader: _Reader, key: str, names: set[str]) -> Condition:
    text = reader.text(key)
    try:
        condition = parse_condition(text)
    except InvalidInput as exc:
        raise reader.fail(str(exc)) from exc
    unknown = sorted(condition.names() - names)
    if unknown:
        raise reader.fail(f"{key} refers to unknown name(s) {', '.join(unknown)}")
    return condition


def _options(reader: _Reader) -> tuple[ResponseOption, ...]:
    options = []
    for opt in reader.tables("options", required=True):
        opt.check_keys({"value", "label", "loinc_answer"})
        options.append(
            ResponseOption(
                value=opt.integer("value"),
                label=opt.text("label"),
                loinc_answer=_loinc(opt, "loinc_answer", _LOINC_ANSWER),
            )
        )
    values = [o.value for o in options]
    if len(set(values)) != len(values):
        raise reader.fail("options: values must be unique")
    return tuple(options)


def _item(reader: _Reader, response_sets: Mapping[str, tuple[ResponseOption, ...]]) -> Item:
    reader.check_keys(
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
        raise reader.fail(f"item id {item_id!r} must be lowercase letters, digits, underscores")
    kind = reader.text("kind")
    options: tuple[ResponseOption, ...] = ()
    if kind == "choice":
        if "response_set" in reader.table:
            name = reader.text("response_set")
            if name not in response_sets:
                raise reader.fail(f"unknown response_set {name!r}")
            options = response_sets[name]
        else:
            options = _options(reader)
    elif kind in ("boolean", "integer", "measurement"):
        if "options" in reader.table or "response_set" in reader.table:
            raise reader.fail(f"a {kind} item takes no options")
    else:
        raise reader.fail(f"kind {kind!r} must be choice, boolean, integer or measurement")
    ranges: tuple[ValueRange, ...] = ()
    limits: tuple[float, float] | None = None
    decimals = 0
    if kind == "measurement":
        ranges, limits, decimals = _measurement(reader)
    elif {"ranges", "limits", "decimals", "unit"} & set(reader.table):
        raise reader.fail("ranges, limits, decimals and unit apply to measurement items only")
    points_by_sex = None
    if "points_by_sex" in reader.table:
        raw = reader.table["points_by_sex"]
        if (
            kind != "boolean"
            or not isinstance(raw, dict)
            or set(raw) != set(_SEXES)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw.values())
        ):
            raise reader.fail("points_by_sex must be {F = int, M = int} on a boolean item")
        points_by_sex = MappingProxyType(dict(raw))
    reverse = reader.boolean("reverse", False)
    if reverse and kind != "boolean":
        raise reader.fail("reverse applies to boolean items only")
    enable_when = None
    if "enable_when" in reader.table:
        ew = _Reader(f"{reader.where}: enable_when", reader.table["enable_when"])
        ew.check_keys({"item", "equals"})
        equals = ew.table.get("equals")
        if not isinstance(equals, bool | int):
            raise ew.fail("equals must be true, false or an integer")
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
        required=reader.boolean("required", True),
        scored=reader.boolean("scored", kind != "integer"),
        enable_when=enable_when,
        group=reader.opt_text("group"),
        ranges=ranges,
        limits=limits,
        decimals=decimals,
        unit=reader.text("unit", ""),
    )


def _measurement(
    reader: _Reader,
) -> tuple[tuple[ValueRange, ...], tuple[float, float], int]:
    """A measurement item's chart ranges, data-entry limits and resolution.

    The ranges must run upwards without gap or overlap at the chart's
    resolution (35.0 then 35.1 for one decimal), the lowest open below and
    the highest open above, so that every reading inside the limits scores
    exactly once.
    """
    decimals = reader.integer("decimals", 0)
    if not 0 <= decimals <= 3:
        raise reader.fail("decimals must be between 0 and 3")
    step = 10.0**-decimals
    lim = _Reader(f"{reader.where}: limits", reader.table.get("limits") or {})
    if "limits" not in reader.table:
        raise reader.fail("a measurement item needs limits = { min = ..., max = ... }")
    lim.check_keys({"min", "max", "source"})
    limits = (lim.number("min"), lim.number("max"))
    if limits[0] >= limits[1]:
        raise lim.fail("min must be below max")
    ranges: list[ValueRange] = []
    for r in reader.tables("ranges", required=True):
        r.check_keys({"min", "max", "points"})
        ranges.append(
            ValueRange(
                points=r.integer("points"),
                min=r.number("min") if "min" in r.table else None,
                max=r.number("max") if "max" in r.table else None,
            )
        )
    if ranges[0].min is not None or ranges[-1].max is not None:
        raise reader.fail("ranges: the first must have no min and the last no max")
    for before, after in zip(ranges, ranges[1:], strict=False):
        if before.max is None or after.min is None:
            raise reader.fail("ranges: only the first may lack min and only the last max")
        if round(after.min - before.max, decimals + 3) != round(step, decimals + 3):
            raise reader.fail(
                f"ranges: {before.max} is followed by {after.min}; ranges must be "
                f"contiguous at the resolution {step:g}"
            )
        if after.max is not None and after.max < after.min:
            raise reader.fail(f"ranges: min {after.min} is above max {after.max}")
    return tuple(ranges), limits, decimals


def _subscale(reader: _Reader, item_ids: set[str]) -> Subscale:
    reader.check_keys({"id", "label", "items", "method", "min_answered", "groups", "loinc"})
    method = reader.text("method", "sum")
    if method not in ("sum", "mean", "count_groups"):
        raise reader.fail(f"method {method!r} must be sum, mean or count_groups")
    groups: tuple[tuple[str, ...], ...] = ()
    if method == "count_groups":
        raw = reader.table.get("groups")
        if not isinstance(raw, list) or not raw:
            raise reader.fail("count_groups needs groups = [[item, ...], ...]")
        groups = tuple(_Reader(f"{reader.where}: groups", {"g": g}).strings("g") for g in raw)
        items = tuple(i for g in groups for i in g)
    else:
        items = reader.strings("items")
    unknown = sorted(set(items) - item_ids)
    if unknown:
        raise reader.fail(f"unknown item(s) {', '.join(unknown)}")
    min_answered = reader.integer("min_answered", len(items))
    if not 1 <= min_answered <= len(items):
        raise reader.fail(f"min_answered must be between 1 and {len(items)}")
    if method != "mean" and min_answered != len(items):
        raise reader.fail("only a mean may be computed from fewer than all its items")
    return Subscale(
        id=reader.text("id"),
        label=reader.text("label"),
        items=items,
        method=cast(Any, method),
        min_answered=min_answered,
        groups=groups,
        loinc=_loinc(reader, "loinc"),
    )


def _bands(readers: list[_Reader], targets: set[str]) -> tuple[Band, ...]:
    bands: list[Band] = []
    for r in readers:
        r.check_keys({"id", "label", "min", "max", "of", "sex", "snomed"})
        band = Band(
            id=r.text("id"),
            label=r.text("label"),
            min=r.number("min"),
            max=r.number("max"),
            of=r.text("of", "total"),
            sex=r.opt_text("sex"),
            snomed=r.opt_text("snomed"),
        )
        if band.min > band.max:
            raise r.fail(f"band {band.id}: min {band.min} is above max {band.max}")
        if band.of not in targets:
            raise r.fail(f"band {band.id}: bands apply to the total only")
        if band.sex is not None and band.sex not in _SEXES:
            raise r.fail(f"band {band.id}: sex must be F or M")
        for other in bands:
            same_scope = other.of == band.of and (
                other.sex is None or band.sex is None or other.sex == band.sex
            )
            if same_scope and band.min <= other.max and other.min <= band.max:
                raise r.fail(f"band {band.id} overlaps band {other.id}")
        bands.append(band)
    return tuple(bands)


def _use(top: _Reader, instrument_id: str, scoring: Scoring, subscales: set[str]) -> Use:
    """The ``[use]`` table every instrument file declares (see :class:`Use`)."""
    use = top.sub("use")
    use.check_keys({"self_report", "screenings", "measures"})
    if not isinstance(use.table.get("self_report"), bool):
        raise use.fail("self_report must be true (a patient fills it in) or false (staff only)")
    screenings = use.strings("screenings")
    unknown = sorted(set(screenings) - set(SCREENINGS))
    if unknown:
        raise use.fail(
            f"unknown screening(s) {', '.join(unknown)}: allowed {', '.join(SCREENINGS)}"
        )
    measures = []
    for m in use.tables("measures"):
        m.check_keys({"id", "field", "label", "short", "order"})
        field = m.text("field")
        if field == "total" and scoring.method != "sum":
            raise m.fail("field total needs an instrument scored by sum")
        if field != "total" and field not in subscales:
            raise m.fail(f"field {field!r} must be total or a subscale of {instrument_id}")
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
        self_report=use.boolean("self_report", False),
        screenings=screenings,
        measures=tuple(measures),
    )


def _parse(where: str, data: Mapping[str, Any]) -> Instrument:
    top = _Reader(where, data)
    top.check_keys(
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
        raise top.fail(f"id {instrument_id!r} must be lowercase letters, digits, underscores")

    lic = top.sub("licence")
    lic.check_keys({"case", "holder", "terms", "url"})
    case = lic.text("case")
    if case not in ("full_text", "labels_only"):
        raise lic.fail(f"case {case!r} must be full_text or labels_only")
    licence = Licence(
        case=cast(Any, case),
        holder=lic.text("holder"),
        terms=lic.text("terms"),
        url=lic.text("url", ""),
    )

    sources = []
    for s in top.tables("sources", required=True):
        s.check_keys({"citation", "url", "supports"})
        sources.append(Source(s.text("citation"), s.text("url"), s.strings("supports", [])))

    response_sets: dict[str, tuple[ResponseOption, ...]] = {}
    for rs in top.tables("response_sets"):
        rs.check_keys({"id", "options"})
        response_sets[rs.text("id")] = _options(rs)

    items = tuple(_item(r, response_sets) for r in top.tables("items", required=True))
    item_ids = [i.id for i in items]
    if len(set(item_ids)) != len(item_ids):
        raise top.fail("item ids must be unique")
    for item in items:
        if item.text is not None and licence.case != "full_text":
            raise top.fail(f"item {item.id} has text but the licence case is labels_only")
        if item.enable_when is not None and item.enable_when.item not in item_ids:
            raise top.fail(f"item {item.id}: enable_when refers to unknown item")
        if item.enable_when is not None and item_ids.index(item.enable_when.item) > item_ids.index(
            item.id
        ):
            raise top.fail(f"item {item.id}: enable_when must refer to an earlier item")

    subscales = tuple(_subscale(r, set(item_ids)) for r in top.tables("subscales"))
    names = set(item_ids) | {s.id for s in subscales}
    if len(names) != len(item_ids) + len(subscales):
        raise top.fail("subscale ids must be unique and differ from item ids")
    names |= {"total", "band"}

    sc = top.sub("scoring")
    sc.check_keys({"method", "missing", "rules", "default_band", "default_band_label", "note"})
    method = sc.text("method")
    if method not in ("sum", "none", "rules", "not_available"):
        raise sc.fail(f"method {method!r} must be sum, none, rules or not_available")
    missing = sc.text("missing", "none_allowed")
    if missing != "none_allowed":
        raise sc.fail(
            f"missing {missing!r}: only none_allowed is supported for totals "
            "(subscales carry their own min_answered)"
        )
    rules = []
    for r in sc.tables("rules"):
        r.check_keys({"band", "label", "when", "evidence"})
        rules.append(
            RuleBand(
                r.text("band"),
                r.text("label"),
                _condition(r, "when", names),
                r.text("evidence", ""),
            )
        )
    if method == "rules" and (not rules or "default_band" not in sc.table):
        raise sc.fail("method rules needs [[scoring.rules]] and default_band")
    if method == "sum" and rules and "default_band" not in sc.table:
        raise sc.fail("a sum banded by [[scoring.rules]] needs default_band")
    if method not in ("sum", "rules") and rules:
        raise sc.fail(f"method {method} takes no [[scoring.rules]]")
    scoring = Scoring(
        method=cast(Any, method),
        missing="none_allowed",
        rules=tuple(rules),
        default_band=sc.opt_text("default_band"),
        default_band_label=sc.opt_text("default_band_label"),
        note=sc.text("note", ""),
    )

    bands = _bands(top.tables("bands"), {"total"})
    if bands and method != "sum":
        raise top.fail("range bands need scoring method sum")
    if bands and rules:
        raise top.fail("give either range [[bands]] or [[scoring.rules]], not both")

    flags = []
    for f in top.tables("flags"):
        f.check_keys({"id", "message", "when", "unanswered", "routes_to", "evidence"})
        flag_id = f.text("id")
        if not _ID.match(flag_id):
            raise f.fail(f"flag id {flag_id!r} must be lowercase letters, digits, underscores")
        unanswered = f.opt_text("unanswered")
        if (unanswered is None) == ("when" not in f.table):
            raise f.fail("give exactly one of when (a condition) or unanswered (an item id)")
        if unanswered is not None and unanswered not in {i.id for i in items}:
            raise f.fail(f"unanswered {unanswered!r} is not an item of {instrument_id}")
        flags.append(
            FlagRule(
                flag_id,
                f.text("message"),
                None if unanswered is not None else _condition(f, "when", names),
                f.opt_text("routes_to"),
                f.text("evidence", ""),
                unanswered,
            )
        )

    instrument = Instrument(
        id=instrument_id,
        version=top.text("version"),
        title=top.text("title"),
        short_title=top.text("short_title"),
        description=top.text("description"),
        licence=licence,
        sources=tuple(sources),
        items=items,
        scoring=scoring,
        subscales=subscales,
        bands=bands,
        flags=tuple(flags),
        recall_period=top.text("recall_period", ""),
        loinc_panel=_loinc(top, "loinc_panel"),
        loinc_total=_loinc(top, "loinc_total"),
        unverified=top.strings("unverified", []),
        use=_use(top, instrument_id, scoring, {s.id for s in subscales}),
    )
    if instrument.requires_sex:
        for sex in _SEXES:
            scoped = [b for b in bands if b.sex in (None, sex)]
            if bands and not scoped:
                raise top.fail(f"no bands apply to sex {sex}")
    return instrument


def load_instrument_text(text: str, where: str = "<text>") -> Instrument:
    """Parse and validate one instrument from TOML text.

    Raises
    ------
    DataFileError
        When the TOML is malformed or a field fails validation.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"{where}: not valid TOML: {exc}") from exc
    return _parse(where, data)


def load_instrument_file(path: Path) -> Instrument:
    """Parse and validate one instrument data file.

    Raises
    ------
    DataFileError
        When the file cannot be read, is malformed or fails validation; the
        message names the file and the field.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"{path.name}: cannot read: {exc.strerror or exc}") from exc
    instrument = load_instrument_text(text, path.name)
    if instrument.id != path.stem:
        raise DataFileError(f"{path.name}: id {instrument.id!r} must match the file name")
    return instrument


@lru_cache(maxsize=1)
def load_library() -> tuple[Instrument, ...]:
    """Every shipped instrument, sorted by id (read once)."""
    return tuple(load_instrument_file(p) for p in sorted(DATA_DIR.glob("*.toml")))
