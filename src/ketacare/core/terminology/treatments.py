"""Molecules and routes: how a protocol's treatment reads for a screening, a model and a page.

Protocols name what is given (``racemic_ketamine`` by ``im``); a screening is made for
``ketamine`` by ``intramuscular``; the pharmacology models simulate ``racemic ketamine`` by
``im``. The correspondence is one data file (``treatments.toml``); every translation in
ketacare goes through this module, and a name the file does not hold is refused with an
:class:`~ketacare.core.errors.UnknownItem` naming the known ones, never mapped to a default.

Examples
--------
>>> screened_treatment("esketamine", "intranasal_esketamine")
('esketamine', 'intranasal')
>>> engine_treatment("racemic_ketamine", "im")
('racemic ketamine', 'im')
>>> molecule_label("racemic_ketamine"), route_words("intranasal")
('racemic ketamine', 'nasal spray')
>>> screened_treatment("arketamine", "iv_infusion")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ketacare.core.errors.UnknownItem: unknown molecule 'arketamine': known are esketamine, racemic_...
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from ketacare.core.errors import DataFileError, UnknownItem

__all__ = [
    "MoleculeTerm",
    "RouteTerm",
    "TreatmentVocabulary",
    "build_treatments",
    "engine_route",
    "engine_treatment",
    "molecule_label",
    "route_label",
    "route_words",
    "screened_treatment",
    "treatment_vocabulary",
]

FILE = "treatments.toml"


@dataclass(frozen=True, slots=True)
class MoleculeTerm:
    """A molecule as protocols name it, its label, and its screening and model names."""

    id: str
    label: str
    screening: str
    engine: str


@dataclass(frozen=True, slots=True)
class RouteTerm:
    """A protocol route, its label, and the screening route and model route it is."""

    id: str
    label: str
    screening: str
    engine: str


@dataclass(frozen=True, slots=True)
class TreatmentVocabulary:
    """The shipped vocabulary; each lookup refuses a name it does not hold."""

    version: str
    molecules: Mapping[str, MoleculeTerm]
    routes: Mapping[str, RouteTerm]
    #: screening route -> its words after "by" ("nasal spray")
    screening_routes: Mapping[str, str]

    def molecule(self, molecule: str) -> MoleculeTerm:
        """The molecule a protocol names (:class:`UnknownItem` when there is none)."""
        try:
            return self.molecules[molecule]
        except KeyError:
            raise UnknownItem("molecule", molecule, list(self.molecules)) from None

    def route(self, route: str) -> RouteTerm:
        """The route a protocol names (:class:`UnknownItem` when there is none)."""
        try:
            return self.routes[route]
        except KeyError:
            raise UnknownItem("route", route, list(self.routes)) from None

    def screening_route_words(self, route: str) -> str:
        """How a screening route reads after "by" (:class:`UnknownItem` when unknown)."""
        try:
            return self.screening_routes[route]
        except KeyError:
            raise UnknownItem("screening route", route, list(self.screening_routes)) from None


def _fail(where: str, what: str) -> DataFileError:
    return DataFileError(f"terminology data file {FILE}: {where}: {what}")


def _entries(doc: Mapping[str, Any], key: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    value = doc.get(key)
    if not isinstance(value, list) or not value:
        raise _fail(key, f"give at least one [[{key}]] entry")
    out: list[dict[str, str]] = []
    for n, entry in enumerate(value):
        where = f"{key}[{n}]"
        if not isinstance(entry, dict):
            raise _fail(where, "must be a table")
        extra = sorted(set(entry) - set(fields))
        if extra:
            raise _fail(where, f"unknown field(s) {', '.join(extra)}: allowed {', '.join(fields)}")
        for field in fields:
            text = entry.get(field)
            if not isinstance(text, str) or not text.strip():
                raise _fail(where, f"'{field}' must be a non-empty string")
        if any(e["id"] == entry["id"] for e in out):
            raise _fail(where, f"id {entry['id']!r} is given twice")
        out.append(dict(entry))
    return out


def build_treatments(doc: Mapping[str, Any]) -> TreatmentVocabulary:
    """Validate a parsed ``treatments.toml`` (ids unique, every route's screening route known).

    >>> build_treatments({"treatments": {"version": "1"}, "molecule": [{"id": "m",
    ...     "label": "m", "screening": "m", "engine": "m"}], "screening_route": [{"id": "oral",
    ...     "words": "mouth"}], "route": [{"id": "po", "label": "by mouth",
    ...     "screening": "rectal", "engine": "oral"}]})
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DataFileError: terminology data file treatments.toml: route po: \
screening route 'rectal' is not a [[screening_route]]: known are oral
    """
    head = doc.get("treatments")
    if not isinstance(head, dict) or not isinstance(head.get("version"), str):
        raise _fail("treatments", "missing [treatments] table with a version")
    molecules = {
        e["id"]: MoleculeTerm(e["id"], e["label"], e["screening"], e["engine"])
        for e in _entries(doc, "molecule", ("id", "label", "screening", "engine"))
    }
    screening_routes = {
        e["id"]: e["words"] for e in _entries(doc, "screening_route", ("id", "words"))
    }
    routes: dict[str, RouteTerm] = {}
    for e in _entries(doc, "route", ("id", "label", "screening", "engine")):
        if e["screening"] not in screening_routes:
            raise _fail(
                f"route {e['id']}",
                f"screening route {e['screening']!r} is not a [[screening_route]]: known are "
                + ", ".join(screening_routes),
            )
        routes[e["id"]] = RouteTerm(e["id"], e["label"], e["screening"], e["engine"])
    return TreatmentVocabulary(
        version=head["version"],
        molecules=MappingProxyType(molecules),
        routes=MappingProxyType(routes),
        screening_routes=MappingProxyType(screening_routes),
    )


@cache
def treatment_vocabulary() -> TreatmentVocabulary:
    """The shipped vocabulary (read once)."""
    raw = resources.files(__package__).joinpath(FILE).read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"terminology data file {FILE} is not valid TOML: {exc}") from exc
    return build_treatments(doc)


def screened_treatment(molecule: str, route: str) -> tuple[str, str]:
    """The (molecule, route) a screening must be made for to cover a protocol's treatment.

    >>> screened_treatment("racemic_ketamine", "im")
    ('ketamine', 'intramuscular')
    """
    vocab = treatment_vocabulary()
    return vocab.molecule(molecule).screening, vocab.route(route).screening


def engine_treatment(molecule: str, route: str) -> tuple[str, str]:
    """The (molecule, route) a pharmacology model must declare to simulate a protocol.

    >>> engine_treatment("esketamine", "intranasal_esketamine")
    ('esketamine', 'intranasal')
    """
    vocab = treatment_vocabulary()
    return vocab.molecule(molecule).engine, vocab.route(route).engine


def engine_route(route: str) -> str:
    """The pharmacology engine's route for a protocol route.

    >>> engine_route("intranasal_esketamine")
    'intranasal'
    >>> engine_route("rectal")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.UnknownItem: unknown route 'rectal': known are im, intranasal, ...
    """
    return treatment_vocabulary().route(route).engine


def molecule_label(molecule: str) -> str:
    """How a protocol's molecule reads on a page or in a message.

    >>> molecule_label("esketamine")
    'esketamine'
    """
    return treatment_vocabulary().molecule(molecule).label


def route_label(route: str) -> str:
    """How a protocol's route reads on a page or in a message.

    >>> route_label("im")
    'intramuscular injection'
    """
    return treatment_vocabulary().route(route).label


def route_words(route: str) -> str:
    """How a screening route reads after "by" ("ketamine by IV infusion").

    >>> route_words("oral")
    'mouth'
    """
    return treatment_vocabulary().screening_route_words(route)
