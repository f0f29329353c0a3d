"""Turn a JSON screening document and a site-policy file into typed values.

Every refusal is an :class:`~ketacare.core.errors.InvalidInput` whose message names the field
and what is allowed, so the CLI can print it as one line.

Examples
--------
>>> doc = {"treatment": {"molecule": "ketamine", "route": "iv_infusion"}}
>>> parse_screening_input(doc).treatment
Treatment(molecule='ketamine', route='iv_infusion', setting='in_clinic')
>>> parse_screening_input({"treatment": {"molecule": "ketamine", "route": "rectal"}})
Traceback (most recent call last):
...
ketacare.core.errors.UnknownItem: unknown treatment.route for ketamine 'rectal': known are ...
>>> parse_site_policy('[site_policy]\\nscreening_systolic_max_mmhg = 160').get(
...     "screening_systolic_max_mmhg")
160.0
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from typing import Any, cast

from ketacare.core.errors import InvalidInput, OutOfRange, UnknownItem
from ketacare.core.screening.knowledge import Knowledge, load_knowledge, parse_toml
from ketacare.core.screening.model import (
    LFT_TESTS,
    MOLECULES,
    ROUTES,
    SETTINGS,
    Condition,
    FindingValue,
    InstrumentResult,
    LabResult,
    Medication,
    Molecule,
    Patient,
    PregnancyStatus,
    ScreeningInput,
    Setting,
    Sex,
    SitePolicy,
    Treatment,
    Vitals,
)

TOP_LEVEL = frozenset(
    {
        "patient",
        "treatment",
        "conditions",
        "history",
        "pregnancy_status",
        "breastfeeding",
        "medications",
        "allergies",
        "vitals",
        "labs",
        "instruments",
        "screened_on",
    }
)
PREGNANCY = ("pregnant", "not_pregnant", "not_applicable")
SEXES: Mapping[str, Sex] = {"female": "female", "f": "female", "male": "male", "m": "male"}
#: Plausible ranges: a value outside is a typing error, not a clinical finding.
PLAUSIBLE: Mapping[str, tuple[float, float]] = {
    "age_years": (0, 130),
    "systolic_mmhg": (40, 300),
    "diastolic_mmhg": (20, 200),
    "heart_rate_bpm": (20, 250),
}

#: ``score(instrument_id, answers, *, sex=None)`` from the instruments package.
Scorer = Callable[..., Any]


def _obj(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be an object")
    return cast(Mapping[str, Any], value)


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"{field} must be an array")
    return value


def _keys(obj: Mapping[str, Any], allowed: set[str] | frozenset[str], field: str) -> None:
    extra = set(obj) - set(allowed)
    if extra:
        raise InvalidInput(
            f"{field} has unknown field(s) {', '.join(sorted(extra))}: "
            f"allowed are {', '.join(sorted(allowed))}"
        )


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a non-empty string")
    return value.strip()


def _number(value: Any, field: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{field} must be a number")
    if positive and value <= 0:
        raise OutOfRange(field, value, "a number above 0")
    low, high = PLAUSIBLE.get(field.rsplit(".", 1)[-1], (-math.inf, math.inf))
    if not low <= value <= high:
        raise OutOfRange(field, value, f"{low:g} to {high:g}")
    return float(value)


def _opt_number(obj: Mapping[str, Any], key: str, field: str) -> float | None:
    value = obj.get(key)
    return None if value is None else _number(value, f"{field}.{key}")


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false")
    return value


def _patient(value: Any) -> Patient:
    obj = _obj(value, "patient")
    _keys(obj, {"age_years", "sex"}, "patient")
    sex = obj.get("sex")
    if sex is not None:
        if not isinstance(sex, str) or sex.lower() not in SEXES:
            raise UnknownItem("patient.sex", sex, ["female", "male"])
        sex = SEXES[sex.lower()]
    return Patient(_opt_number(obj, "age_years", "patient"), sex)


def _treatment(value: Any) -> Treatment:
    obj = _obj(value, "treatment")
    _keys(obj, {"molecule", "route", "setting"}, "treatment")
    molecule = obj.get("molecule")
    if molecule not in MOLECULES:
        raise UnknownItem("treatment.molecule", molecule, list(MOLECULES))
    route = obj.get("route")
    if route not in ROUTES[molecule]:
        raise UnknownItem(f"treatment.route for {molecule}", route, list(ROUTES[molecule]))
    setting = obj.get("setting", "in_clinic")
    if setting not in SETTINGS:
        raise UnknownItem("treatment.setting", setting, list(SETTINGS))
    return Treatment(cast(Molecule, molecule), str(route), cast(Setting, setting))


def _conditions(value: Any) -> tuple[Condition, ...]:
    out = []
    for i, item in enumerate(_list(value, "conditions")):
        field = f"conditions[{i}]"
        if isinstance(item, str):
            out.append(Condition(_text(item, field)))
            continue
        obj = _obj(item, field)
        _keys(obj, {"code", "system", "display"}, field)
        system = obj.get("system", "ICD-10-CM")
        if system != "ICD-10-CM":
            raise UnknownItem(f"{field}.system", system, ["ICD-10-CM"])
        display = obj.get("display")
        out.append(
            Condition(
                _text(obj.get("code"), f"{field}.code"),
                system,
                None if display is None else _text(display, f"{field}.display"),
            )
        )
    return tuple(out)


def _history(value: Any, kb: Knowledge) -> dict[str, FindingValue]:
    obj = _obj(value, "history")
    known = {f.id: f for f in kb.findings}
    _keys(obj, set(known), "history")
    out: dict[str, FindingValue] = {}
    for key, item in obj.items():
        if item is None:
            continue
        levels = known[key].values
        if levels:
            if item not in levels:
                raise UnknownItem(f"history.{key}", item, list(levels))
            out[key] = str(item)
        else:
            out[key] = _bool(item, f"history.{key}")
    return out


def _medications(value: Any) -> tuple[Medication, ...]:
    out = []
    for i, item in enumerate(_list(value, "medications")):
        field = f"medications[{i}]"
        if isinstance(item, str):
            out.append(Medication(_text(item, field)))
            continue
        obj = _obj(item, field)
        _keys(obj, {"name", "rxcui", "classes"}, field)
        rxcui = obj.get("rxcui")
        if rxcui is not None and not (isinstance(rxcui, str) and rxcui.isdigit()):
            raise InvalidInput(f"{field}.rxcui must be a string of digits")
        classes = obj.get("classes")
        if classes is not None:
            classes = tuple(
                _text(c, f"{field}.classes") for c in _list(classes, f"{field}.classes")
            )
        out.append(Medication(_text(obj.get("name"), f"{field}.name"), rxcui, classes))
    return tuple(out)


def _vitals(value: Any) -> Vitals:
    obj = _obj(value, "vitals")
    _keys(obj, {"systolic_mmhg", "diastolic_mmhg", "heart_rate_bpm"}, "vitals")
    vitals = Vitals(
        _opt_number(obj, "systolic_mmhg", "vitals"),
        _opt_number(obj, "diastolic_mmhg", "vitals"),
        _opt_number(obj, "heart_rate_bpm", "vitals"),
    )
    if (
        vitals.systolic_mmhg is not None
        and vitals.diastolic_mmhg is not None
        and vitals.diastolic_mmhg >= vitals.systolic_mmhg
    ):
        raise InvalidInput("vitals.diastolic_mmhg must be below vitals.systolic_mmhg")
    return vitals


def _labs(value: Any) -> tuple[LabResult, ...]:
    out = []
    for i, item in enumerate(_list(value, "labs")):
        field = f"labs[{i}]"
        obj = _obj(item, field)
        _keys(obj, {"test", "value", "upper_limit_normal", "unit"}, field)
        test = obj.get("test")
        if test not in LFT_TESTS:
            raise UnknownItem(f"{field}.test", test, list(LFT_TESTS))
        value_ = _number(obj.get("value"), f"{field}.value")
        if value_ < 0:
            raise OutOfRange(f"{field}.value", value_, "0 or more")
        unit = obj.get("unit")
        out.append(
            LabResult(
                str(test),
                value_,
                _number(
                    obj.get("upper_limit_normal"), f"{field}.upper_limit_normal", positive=True
                ),
                None if unit is None else _text(unit, f"{field}.unit"),
            )
        )
    return tuple(out)


def _default_scorer() -> Scorer | None:
    try:
        from ketacare.core.instruments import score  # optional sibling package
    except ImportError:
        return None
    return cast(Scorer, score)


def _instrument(item: Any, field: str, sex: Sex | None, scorer: Scorer | None) -> InstrumentResult:
    obj = _obj(item, field)
    iid = _text(obj.get("instrument"), f"{field}.instrument")
    if "answers" in obj:
        _keys(obj, {"instrument", "answers"}, field)
        answers = obj["answers"]
        if not isinstance(answers, list | dict):
            raise InvalidInput(f"{field}.answers must be an array or an object")
        if scorer is None:
            raise InvalidInput(
                f"{field}: raw answers for {iid} cannot be scored here (instrument scoring is "
                "not available); give the scored result {instrument, total, band, flags}"
            )
        result = scorer(iid, answers, sex=None if sex is None else sex[0].upper())
        total = getattr(result, "total", None)
        scored = getattr(result, "answers", None)
        return InstrumentResult(
            instrument=str(getattr(result, "instrument", iid)),
            total=None if total is None else float(total),
            band=getattr(result, "band", None),
            flags=tuple(str(f) for f in getattr(result, "flags", ())),
            version=getattr(result, "version", None),
            items=_answered(scored) if isinstance(scored, Mapping) else (),
        )
    _keys(obj, {"instrument", "total", "band", "flags", "version", "items"}, field)
    total = obj.get("total")
    band = obj.get("band")
    version = obj.get("version")
    flags = obj.get("flags", [])
    result = InstrumentResult(
        instrument=iid,
        total=None if total is None else _number(total, f"{field}.total"),
        band=None if band is None else _text(band, f"{field}.band"),
        flags=tuple(_text(f, f"{field}.flags") for f in _list(flags, f"{field}.flags")),
        version=None if version is None else _text(version, f"{field}.version"),
        items=_items(obj.get("items"), f"{field}.items"),
    )
    _check_scored(result, field)
    return result


def _check_scored(result: InstrumentResult, field: str) -> None:
    """A result given already scored names a known instrument, and its total, band and
    flags are ones that instrument can give (a typo in an id would otherwise pass unread,
    and a total between two bands would match neither)."""
    try:
        from ketacare.core.instruments import get_instrument, list_instruments
    except ImportError:  # the optional sibling package: nothing to check against
        return
    known = [i.id for i in list_instruments()]
    if result.instrument not in known:
        raise UnknownItem(f"{field}.instrument", result.instrument, known)
    instrument = get_instrument(result.instrument)
    if result.total is not None:
        ranges = [r for r in (instrument.total_range(s) for s in ("F", "M")) if r is not None]
        if ranges:
            low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
            if not (low <= result.total <= high and float(result.total).is_integer()):
                shown = int(result.total) if result.total.is_integer() else result.total
                raise OutOfRange(f"{field}.total", shown, f"a whole number from {low} to {high}")
    bands = sorted(
        {b.id for b in instrument.bands}
        | {r.band for r in instrument.scoring.rules}
        | ({instrument.scoring.default_band} if instrument.scoring.default_band else set())
    )
    if result.band is not None and result.band not in bands:
        raise UnknownItem(f"{field}.band", result.band, bands)
    flags = [f.id for f in instrument.flags]
    for flag in result.flags:
        if flag not in flags:
            raise UnknownItem(f"{field}.flags", flag, flags)


def _once_each(results: tuple[InstrumentResult, ...]) -> None:
    """Each instrument once: with two results of one, which one the rules read is a guess."""
    first: dict[str, int] = {}
    for i, result in enumerate(results):
        if result.instrument in first:
            raise InvalidInput(
                f"instruments[{i}]: {result.instrument} is given twice (also "
                f"instruments[{first[result.instrument]}]); give each instrument once, "
                "its latest result"
            )
        first[result.instrument] = i


def _answered(answers: Mapping[Any, Any]) -> tuple[tuple[str, float], ...]:
    """The numeric (or yes/no) answers of a scored result; unanswered items are left out."""
    out = []
    for key, value in answers.items():
        if isinstance(value, bool):
            out.append((str(key), 1.0 if value else 0.0))
        elif isinstance(value, int | float) and math.isfinite(value):
            out.append((str(key), float(value)))
    return tuple(out)


def _items(value: Any, field: str) -> tuple[tuple[str, float], ...]:
    """Item answers given with an already scored result, e.g. ``{"q9": 0}`` for PHQ-9.

    A total alone does not say how a safety item was answered; this is where it is said.
    ``null`` means the item was not answered (the same as leaving it out).
    """
    if value is None:
        return ()
    obj = _obj(value, field)
    out = []
    for key, answer in obj.items():
        if answer is None:
            continue
        if isinstance(answer, bool):
            out.append((str(key), 1.0 if answer else 0.0))
            continue
        number = _number(answer, f"{field}.{key}")
        if number < 0:
            raise OutOfRange(f"{field}.{key}", number, "0 or more")
        out.append((str(key), number))
    return tuple(out)


def parse_screening_input(
    doc: Any, *, knowledge: Knowledge | None = None, scorer: Scorer | None = None
) -> ScreeningInput:
    """Validate a screening document (the JSON of ``ketacare screen FILE.json``).

    Parameters
    ----------
    doc
        The parsed JSON document (see :func:`ketacare.core.screening.input_schema`).
    knowledge
        Screening data; the shipped files by default.
    scorer
        ``score(instrument_id, answers, *, sex=None)`` used for raw instrument answers;
        :func:`ketacare.core.instruments.score` by default when that package is importable.

    Returns
    -------
    ScreeningInput
        Typed input; fields not given are ``None`` (unknown).

    Examples
    --------
    >>> parse_screening_input({"treatment": {"molecule": "esketamine", "route": "intranasal"},
    ...                        "allergies": []}).allergies
    ()
    >>> parse_screening_input([])
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: the screening document must be a JSON object
    """
    kb = knowledge or load_knowledge()
    if not isinstance(doc, dict):
        raise InvalidInput("the screening document must be a JSON object")
    _keys(doc, TOP_LEVEL, "the screening document")
    if "treatment" not in doc:
        raise InvalidInput("treatment is required: give {molecule, route}")
    patient = _patient(doc["patient"]) if doc.get("patient") is not None else Patient()
    pregnancy = doc.get("pregnancy_status")
    if pregnancy is not None and pregnancy not in PREGNANCY:
        raise UnknownItem("pregnancy_status", pregnancy, list(PREGNANCY))
    breastfeeding = doc.get("breastfeeding")
    allergies = doc.get("allergies")
    screened_on = doc.get("screened_on")
    if screened_on is not None:
        try:
            screened_on = dt.date.fromisoformat(_text(screened_on, "screened_on"))
        except ValueError:
            raise InvalidInput(f"screened_on {screened_on!r} is not a date YYYY-MM-DD") from None
    use_scorer = scorer if scorer is not None else _default_scorer()
    instruments = tuple(
        _instrument(item, f"instruments[{i}]", patient.sex, use_scorer)
        for i, item in enumerate(_list(doc.get("instruments", []), "instruments"))
    )
    _once_each(instruments)
    return ScreeningInput(
        treatment=_treatment(doc["treatment"]),
        patient=patient,
        conditions=_conditions(doc.get("conditions", [])),
        history=_history(doc.get("history", {}), kb),
        pregnancy_status=cast(PregnancyStatus | None, pregnancy),
        breastfeeding=None if breastfeeding is None else _bool(breastfeeding, "breastfeeding"),
        medications=None if doc.get("medications") is None else _medications(doc["medications"]),
        allergies=None
        if allergies is None
        else tuple(_text(a, "allergies[]") for a in _list(allergies, "allergies")),
        vitals=None if doc.get("vitals") is None else _vitals(doc["vitals"]),
        labs=None if doc.get("labs") is None else _labs(doc["labs"]),
        instruments=instruments,
        screened_on=screened_on,
    )


def parse_site_policy(
    text: str, *, name: str = "site policy", knowledge: Knowledge | None = None
) -> SitePolicy:
    """Parse a site-policy TOML file (table ``[site_policy]``; unknown keys refused).

    Examples
    --------
    >>> parse_site_policy('[site_policy]\\nname = "A"\\nscreening_valid_days = 0')
    Traceback (most recent call last):
    ...
    ketacare.core.errors.OutOfRange: site_policy.screening_valid_days 0 is out of range: ...
    """
    kb = knowledge or load_knowledge()
    try:
        doc = parse_toml(text, name)
    except Exception as exc:
        raise InvalidInput(str(exc)) from None
    table = doc.get("site_policy")
    if not isinstance(table, dict):
        raise InvalidInput(f"{name} needs a [site_policy] table")
    known = {p.key for p in kb.policies}
    _keys(table, known | {"name", "version"}, "site_policy")
    values = {
        key: _number(value, f"site_policy.{key}", positive=True)
        for key, value in table.items()
        if key in known
    }
    label = table.get("name")
    version = table.get("version")
    return SitePolicy(
        values=values,
        name=None if label is None else _text(label, "site_policy.name"),
        version=None if version is None else _text(str(version), "site_policy.version"),
    )
