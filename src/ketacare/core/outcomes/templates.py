"""Outcome schedule templates: suggested instruments per outcome domain, with their source.

A template carries no intervals (those are the clinic's); the shipped ones are in
``data/schedule_templates/*.toml``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from ketacare.core.errors import DataFileError

# --------------------------------------------------------------------------- templates


@dataclass(frozen=True, slots=True)
class TemplateDomain:
    """One outcome domain of a template and the library's instrument for it (if any)."""

    domain: str
    instrument: str | None
    recommended: str
    note: str


@dataclass(frozen=True, slots=True)
class ScheduleTemplate:
    """A suggested set of instruments with its source; it carries no intervals."""

    id: str
    title: str
    citation: str
    doi: str
    url: str
    read: str
    domains: tuple[TemplateDomain, ...]

    @property
    def instruments(self) -> tuple[str, ...]:
        return tuple(d.instrument for d in self.domains if d.instrument)


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataFileError(f"schedule template {where}: {key} must be a non-empty string")
    return value


@lru_cache(maxsize=1)
def load_templates() -> tuple[ScheduleTemplate, ...]:
    """The shipped templates (``data/schedule_templates/*.toml``), each with its citation.

    >>> [(t.id, t.instruments) for t in load_templates()]
    [('immpact-core-domains', ('nrs_pain', 'bpi_sf', 'pgic'))]
    """
    root = resources.files("ketacare.core.outcomes") / "data" / "schedule_templates"
    out: list[ScheduleTemplate] = []
    for name in sorted(p.name for p in root.iterdir() if p.name.endswith(".toml")):
        try:
            table = tomllib.loads((root / name).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise DataFileError(f"schedule template {name}: not valid TOML: {exc}") from exc
        domains = []
        for d in table.get("domains", []):
            instrument = d.get("instrument")
            domains.append(
                TemplateDomain(
                    domain=_text(d, "domain", name),
                    instrument=instrument if isinstance(instrument, str) and instrument else None,
                    recommended=_text(d, "recommended", name),
                    note=_text(d, "note", name),
                )
            )
        if not domains:
            raise DataFileError(f"schedule template {name}: no domains")
        out.append(
            ScheduleTemplate(
                id=_text(table, "id", name),
                title=_text(table, "title", name),
                citation=_text(table, "citation", name),
                doi=_text(table, "doi", name),
                url=_text(table, "url", name),
                read=_text(table, "read", name),
                domains=tuple(domains),
            )
        )
    return tuple(out)
