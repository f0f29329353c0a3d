"""Drug names as clinicians write them -> ingredients (generic, brand, variant, RxNorm).

A medication or allergy entry is free text: "lorazepam 1 mg tablet", "Ativan", "LORazepam",
"Ketalar (anaphylaxis)", "ketamine HCl". Reading it by exact name misses most of them, and a
missed name is a missed interaction or contraindication. This module skips strengths, dose
forms, salts and bracketed notes and looks the rest up in a sourced vocabulary
(``drugs.toml``), longest name first. An entry that names no known ingredient is reported by the
caller as not recognised, never dropped.

Examples
--------
>>> find_ingredients("lorazepam 1 mg tablet")
('lorazepam',)
>>> find_ingredients("Ketanest S 25 mg/ml")
('esketamine',)
>>> find_ingredients("Ketalar (anaphylaxis)")
('ketamine',)
>>> clean_drug_text("ketamine HCl 100mg/mL injection")
'ketamine'
>>> find_ingredients("zzz-unlisted")
()
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from ketacare.core.errors import DataFileError

TermKind = Literal["generic", "brand", "variant", "extra"]

#: Words skipped when reading a drug entry: units, dose forms, routes, salts, frequencies.
#: They describe the product, never which ingredient it is.
SKIP_WORDS = frozenset(
    {
        # units
        "mg",
        "mcg",
        "ug",
        "µg",
        "g",
        "kg",
        "ml",
        "l",
        "iu",
        "unit",
        "units",
        "mmol",
        "meq",
        "h",
        "hr",
        "hrs",
        "hour",
        "hours",
        "day",
        "per",
        "x",
        # dose forms
        "tablet",
        "tablets",
        "tab",
        "tabs",
        "capsule",
        "capsules",
        "cap",
        "caps",
        "injection",
        "inj",
        "solution",
        "soln",
        "suspension",
        "syrup",
        "elixir",
        "spray",
        "nasal",
        "patch",
        "patches",
        "cream",
        "gel",
        "ointment",
        "drops",
        "lozenge",
        "film",
        "vial",
        "ampoule",
        "ampule",
        "infusion",
        "device",
        "powder",
        "odt",
        "er",
        "xr",
        "sr",
        "cr",
        "la",
        "xl",
        "ir",
        "dr",
        "ec",
        "extended",
        "modified",
        "immediate",
        "delayed",
        "release",
        "oral",
        "sublingual",
        "intravenous",
        "intramuscular",
        "iv",
        "im",
        "po",
        "sl",
        "transdermal",
        # salts and hydrates
        "hcl",
        "hydrochloride",
        "hydrobromide",
        "sodium",
        "potassium",
        "calcium",
        "sulfate",
        "sulphate",
        "tartrate",
        "bitartrate",
        "maleate",
        "mesylate",
        "besylate",
        "citrate",
        "phosphate",
        "succinate",
        "acetate",
        "fumarate",
        "bromide",
        "chloride",
        "monohydrate",
        "dihydrate",
        "anhydrous",
        "base",
        # frequencies and instructions
        "daily",
        "bid",
        "tid",
        "qid",
        "qd",
        "qhs",
        "prn",
        "nocte",
        "mane",
        "once",
        "twice",
        "as",
        "needed",
        "at",
        "night",
        "bedtime",
        "take",
        "by",
        "mouth",
        "and",
        "with",
        "of",
    }
)
_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_SPLIT = re.compile(r"[^0-9a-zµ+]+")
_LETTER_DIGIT = re.compile(r"(?<=[a-zµ])(?=\d)|(?<=\d)(?=[a-zµ])")
MAX_WORDS = 4


@dataclass(frozen=True, slots=True)
class DrugTerm:
    """One name of an ingredient and where that name comes from."""

    term: str
    ingredient: str
    kind: TermKind
    source: str


@dataclass(frozen=True, slots=True)
class DrugVocabulary:
    """The shipped vocabulary: names, RxNorm identifiers and no-known-allergy phrases."""

    version: str
    terms: Mapping[str, DrugTerm]
    rxcui: Mapping[str, str]
    no_known_allergies: frozenset[str]


def _tokens(text: str, *, keep_brackets: bool = False) -> list[str]:
    lowered = text.lower()
    if not keep_brackets:
        lowered = _BRACKETS.sub(" ", lowered)
    lowered = _LETTER_DIGIT.sub(" ", lowered)
    return [t for t in _SPLIT.split(lowered) if t]


def _words(text: str) -> list[str]:
    """Tokens of a drug entry with numbers, units, forms, salts and instructions removed."""
    return [t for t in _tokens(text) if not t.isdigit() and t not in SKIP_WORDS]


def normalise_term(text: str) -> str:
    """A vocabulary name in the form entries are compared in (bracket text kept).

    >>> normalise_term("St John's Wort")
    'st john s wort'
    """
    return " ".join(_tokens(text, keep_brackets=True))


def clean_drug_text(text: str) -> str:
    """The entry without strength, dose form, salt or bracketed note (lower case).

    >>> clean_drug_text("LORazepam 1 mg tablet")
    'lorazepam'
    """
    return " ".join(_words(text))


def _fail(where: str, what: str) -> DataFileError:
    return DataFileError(f"terminology data file drugs.toml: {where}: {what}")


def _names(entry: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(where, f"'{key}' must be a list of names")
    return list(value)


def build_vocabulary(doc: Mapping[str, Any]) -> DrugVocabulary:
    """Validate a parsed ``drugs.toml`` (every entry sourced, no name given twice).

    >>> build_vocabulary({"drugs": {"version": "1"}, "ingredient": [{"id": "x", "generic": ["x"],
    ...                   "source": ["nope"]}]})
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DataFileError: terminology data file drugs.toml: ingredient x: unknown ...
    """
    head = doc.get("drugs")
    if not isinstance(head, dict) or not isinstance(head.get("version"), str):
        raise _fail("drugs", "missing [drugs] table with a version")
    sources: dict[str, str] = {}
    for entry in doc.get("source", []):
        key, citation = entry.get("key"), entry.get("citation")
        if not isinstance(key, str) or not isinstance(citation, str):
            raise _fail("source", "each source needs a key and a citation")
        sources[key] = f"{citation} {entry.get('url', '')}".strip()
    terms: dict[str, DrugTerm] = {}
    rxcui: dict[str, str] = {}
    for entry in doc.get("ingredient", []):
        iid = entry.get("id")
        if not isinstance(iid, str) or not iid:
            raise _fail("ingredient", "'id' must be a non-empty string")
        where = f"ingredient {iid}"
        keys = entry.get("source")
        if not isinstance(keys, list) or not keys:
            raise _fail(where, "'source' must list source keys")
        for key in keys:
            if key not in sources:
                raise _fail(where, f"unknown source {key!r}")
        cited = "; ".join(sources[k] for k in keys)
        kinds: tuple[tuple[str, TermKind], ...] = (
            ("generic", "generic"),
            ("brands", "brand"),
            ("variants", "variant"),
        )
        for key, kind in kinds:
            for name in _names(entry, key, where):
                term = normalise_term(name)
                if term in terms:
                    raise _fail(where, f"name {name!r} is given twice")
                terms[term] = DrugTerm(term, iid, kind, cited)
        for code in entry.get("rxcui", []):
            value, src = code.get("rxcui"), code.get("source")
            if not isinstance(value, str) or not value.isdigit() or src not in sources:
                raise _fail(where, "each rxcui needs digits and a known source")
            rxcui[value] = iid
    nka = doc.get("no_known_allergies", {}).get("terms", [])
    return DrugVocabulary(
        version=head["version"],
        terms=terms,
        rxcui=rxcui,
        no_known_allergies=frozenset(normalise_term(t) for t in nka),
    )


@cache
def drug_vocabulary() -> DrugVocabulary:
    """The shipped vocabulary (read once)."""
    raw = resources.files(__package__).joinpath("drugs.toml").read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"terminology data file drugs.toml is not valid TOML: {exc}") from exc
    return build_vocabulary(doc)


def find_ingredients(
    text: str, *, extra: Mapping[str, str] | None = None, rxcui: str | None = None
) -> tuple[str, ...]:
    """Ingredients named in ``text``, in order, each once; ``()`` when none is recognised.

    Parameters
    ----------
    text
        A medication or allergy entry as written.
    extra
        More names -> ingredient (e.g. the generic names of the interaction map).
    rxcui
        An RxNorm identifier given with the entry; recognised only where the vocabulary has it.

    Examples
    --------
    >>> find_ingredients("Ativan 1mg PRN")
    ('lorazepam',)
    >>> find_ingredients("Spravato 28 mg nasal spray device")
    ('esketamine',)
    >>> find_ingredients("anything", rxcui="2201625")
    ('esketamine',)
    """
    vocab = drug_vocabulary()
    names: dict[str, str] = {t: d.ingredient for t, d in vocab.terms.items()}
    for name, ingredient in (extra or {}).items():
        names.setdefault(normalise_term(name), ingredient)
    found: list[str] = []
    if rxcui is not None and rxcui in vocab.rxcui:
        found.append(vocab.rxcui[rxcui])
    words = _words(text)
    # Names may contain skipped words ("s-ketamine" keeps "s"); compare on the raw tokens too.
    for sequence in (_tokens(text), words):
        i = 0
        while i < len(sequence):
            for size in range(min(MAX_WORDS, len(sequence) - i), 0, -1):
                hit = names.get(" ".join(sequence[i : i + size]))
                if hit is not None:
                    if hit not in found:
                        found.append(hit)
                    i += size
                    break
            else:
                i += 1
    return tuple(found)


def says_no_known_allergies(text: str) -> bool:
    """True when an allergy entry states that there are none ("NKDA", "no known allergies").

    >>> says_no_known_allergies("NKDA"), says_no_known_allergies("penicillin")
    (True, False)
    """
    return normalise_term(text) in drug_vocabulary().no_known_allergies


def known_names(entries: Iterable[str]) -> dict[str, str]:
    """Map each name to itself (helper for ``extra`` from a list of generic names)."""
    return {e: e for e in entries}
