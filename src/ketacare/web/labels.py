"""Codes in words: the one lookup behind the templates' ``label`` filter.

A page never shows an internal name (``moderately_severe``, ``iv_racemic``,
``course_mg``): ``{{ code | label("band", instrument_id) }}`` reads its words from the
data file that defines the code. A code the data does not know is shown as it is, so
the pages' snake_case test finds it and its label is added to the data file.

Kinds and where their words come from:

=============  ==========================================================================
``instrument`` the instrument's ``short_title`` (``core/instruments/data/*.toml``)
``band``       the band's ``label`` (context: the instrument id)
``flag``       the flag's ``label`` (context: the instrument id, or any instrument)
``program``    the consent program's ``label`` (``core/consent/data/programs.toml``)
``molecule``   the molecule's ``label`` (``core/terminology/treatments.toml``)
``route``      the route's ``label`` (same file)
``limit``      the limit kind's ``label`` (``core/protocols/vocabulary.toml``)
``basis``      where a limit's value comes from (same file)
``policy``     the screening site policy's ``description`` (``core/screening/data/rules.toml``)
``finding``    a history finding's ``label`` (same file); ``history.`` is dropped
``measure``    an outcome measure's ``short`` (``[[use.measures]]`` of the instruments)
=============  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from ketacare.core.consent.programs import programs
from ketacare.core.instruments import Instrument, list_instruments, outcome_measures
from ketacare.core.protocols.vocabulary import basis_labels, limit_labels
from ketacare.core.screening.knowledge import load_knowledge
from ketacare.core.terminology.treatments import treatment_vocabulary

__all__ = ["KINDS", "label"]


@cache
def _instruments() -> dict[str, Instrument]:
    return {i.id: i for i in list_instruments()}


def _instrument(code: str, _context: str | None) -> str | None:
    found = _instruments().get(code)
    return (found.short_title or found.title) if found else None


def _band(code: str, context: str | None) -> str | None:
    found = _instruments().get(context or "")
    candidates = [found] if found else list(_instruments().values())
    for instrument in candidates:
        for band in instrument.bands:
            if band.id == code:
                return band.label
        for rule in instrument.scoring.rules:
            if rule.band == code:
                return rule.label
        if instrument.scoring.default_band == code:
            return instrument.scoring.default_band_label
    return None


def _flag(code: str, context: str | None) -> str | None:
    found = _instruments().get(context or "")
    candidates = [found] if found else list(_instruments().values())
    for instrument in candidates:
        for flag in instrument.flags:
            if flag.id == code:
                return flag.label
    return None


def _measure(code: str, _context: str | None) -> str | None:
    for measure in outcome_measures():
        if measure.id == code:
            return measure.short
    return None


def _program(code: str, _context: str | None) -> str | None:
    found = programs().get(code)
    return found.label if found else None


def _molecule(code: str, _context: str | None) -> str | None:
    found = treatment_vocabulary().molecules.get(code)
    return found.label if found else None


def _route(code: str, _context: str | None) -> str | None:
    found = treatment_vocabulary().routes.get(code)
    return found.label if found else None


def _policy(code: str, _context: str | None) -> str | None:
    for policy in load_knowledge().policies:
        if policy.key == code:
            return policy.description
    return None


def _finding(code: str, _context: str | None) -> str | None:
    key = code.removeprefix("history.")
    for finding in load_knowledge().findings:
        if finding.id == key:
            return finding.label
    return None


def _model(code: str, _context: str | None) -> str | None:
    """A PK model by its short name, its file's name up to the parenthesis.

    >>> _model("clements-250", None)
    'Clements 250 ug/kg'
    """
    from ketacare.core.pharmacology.models import list_models  # numpy: only when shown

    for model in list_models():
        if model.id == code:
            return model.name.split(" (", 1)[0]
    return None


KINDS: dict[str, Callable[[str, str | None], str | None]] = {
    "instrument": _instrument,
    "band": _band,
    "flag": _flag,
    "program": _program,
    "molecule": _molecule,
    "route": _route,
    "limit": lambda code, _c: limit_labels().get(code),
    "basis": lambda code, _c: basis_labels().get(code),
    "policy": _policy,
    "finding": _finding,
    "measure": _measure,
    "model": _model,
}


def label(code: object, kind: str, context: str | None = None) -> str:
    """``code`` in words from the data file of its ``kind``; unknown codes as they are.

    Examples
    --------
    >>> label("moderately_severe", "band", "phq9")
    'Moderately severe depression'
    >>> label("course_mg", "limit")
    'Dose per course'
    >>> label("not_in_any_file", "limit")
    'not_in_any_file'
    >>> label(None, "band")
    ''
    """
    if code is None or code == "":
        return ""
    text = str(code)
    try:
        lookup = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown label kind {kind!r} (known: {', '.join(KINDS)})") from None
    return lookup(text, context) or text
