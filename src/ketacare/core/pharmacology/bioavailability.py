"""Route bioavailabilities as distributions, read from ``bioavailability.toml``.

Each entry is logit-normal with its 5th and 95th percentiles at the lowest and highest
estimate that the file lists for it (adult studies only); an entry with a single estimate
has no spread (``sigma_logit == 0``) and says so.

Examples
--------
>>> f = bioavailability(route="intranasal", molecule="racemic ketamine")
>>> round(f.low, 2), round(f.high, 2)
(0.11, 0.45)
>>> round(f.quantile(0.05), 3), round(f.quantile(0.95), 3)
(0.11, 0.45)
>>> import numpy as np
>>> draws = f.sample(rng=np.random.default_rng(0), n=100_000)
>>> bool(abs(np.mean(draws < f.low) - 0.05) < 0.005)
True
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from ketacare.core.errors import DataFileError, UnknownItem
from ketacare.core.pharmacology.models import KNOWN_ROUTES

__all__ = ["Bioavailability", "Estimate", "bioavailability", "list_bioavailability"]

DATA_FILE = Path(__file__).parent / "bioavailability.toml"
_Z95 = NormalDist().inv_cdf(0.95)


@dataclass(frozen=True, slots=True)
class Estimate:
    """One published figure: value (fraction), what kind of figure, and its citation."""

    value: float
    kind: str
    source: str
    citation: str
    in_distribution: bool
    note: str | None


@dataclass(frozen=True, slots=True)
class Bioavailability:
    """A route's bioavailability as a logit-normal distribution with its evidence."""

    id: str
    route: str
    molecule: str
    population: str
    estimates: tuple[Estimate, ...]
    mu_logit: float
    sigma_logit: float

    @property
    def low(self) -> float:
        """Lowest estimate used (the 5th percentile)."""
        return min(e.value for e in self.estimates if e.in_distribution)

    @property
    def high(self) -> float:
        """Highest estimate used (the 95th percentile)."""
        return max(e.value for e in self.estimates if e.in_distribution)

    @property
    def median(self) -> float:
        """Median of the distribution."""
        return 1.0 / (1.0 + math.exp(-self.mu_logit))

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0 < q < 1)."""
        z = NormalDist().inv_cdf(q)
        return 1.0 / (1.0 + math.exp(-(self.mu_logit + z * self.sigma_logit)))

    def sample(self, *, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        """``n`` draws of F."""
        x = self.mu_logit + self.sigma_logit * rng.standard_normal(n)
        return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def _fail(where: str, problem: str) -> DataFileError:
    return DataFileError(f"data file {DATA_FILE.name}: {where}: {problem}")


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _read_entry(i: int, raw: Any, citations: dict[str, str]) -> Bioavailability:
    where = f"routes[{i}]"
    if not isinstance(raw, dict):
        raise _fail(where, "must be a table")
    required = {"id", "route", "molecule", "population", "estimates"}
    if missing := required - raw.keys():
        raise _fail(where, f"missing {', '.join(sorted(missing))}")
    if extra := raw.keys() - required:
        raise _fail(where, f"unknown key {', '.join(sorted(extra))}")
    if raw["route"] not in KNOWN_ROUTES:
        raise _fail(where, f"unknown route {raw['route']!r}")
    estimates = []
    for j, e in enumerate(raw["estimates"]):
        ewhere = f"{where}.estimates[{j}]"
        if not isinstance(e, dict) or not {"value", "kind", "source"} <= e.keys():
            raise _fail(ewhere, "needs value, kind and source")
        if extra := e.keys() - {"value", "kind", "source", "note", "in_distribution"}:
            raise _fail(ewhere, f"unknown key {', '.join(sorted(extra))}")
        value = e["value"]
        if not isinstance(value, float | int) or not 0 < value < 1:
            raise _fail(ewhere, f"value must be a fraction between 0 and 1, got {value!r}")
        if e["source"] not in citations:
            raise _fail(ewhere, f"source {e['source']!r} is not in [sources]")
        estimates.append(
            Estimate(
                value=float(value),
                kind=str(e["kind"]),
                source=e["source"],
                citation=citations[e["source"]],
                in_distribution=bool(e.get("in_distribution", True)),
                note=e.get("note"),
            )
        )
    used = [e.value for e in estimates if e.in_distribution]
    if not used:
        raise _fail(where, "needs at least one estimate in the distribution")
    lo, hi = _logit(min(used)), _logit(max(used))
    return Bioavailability(
        id=str(raw["id"]),
        route=raw["route"],
        molecule=str(raw["molecule"]),
        population=str(raw["population"]),
        estimates=tuple(estimates),
        mu_logit=(lo + hi) / 2.0,
        sigma_logit=(hi - lo) / (2.0 * _Z95),
    )


@cache
def list_bioavailability() -> tuple[Bioavailability, ...]:
    """Every bioavailability entry, validated.

    Examples
    --------
    >>> sorted(b.id for b in list_bioavailability())[:2]
    ['intranasal_esketamine', 'intranasal_racemic']
    """
    try:
        data = tomllib.loads(DATA_FILE.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataFileError(f"data file {DATA_FILE.name} cannot be read: {exc}") from exc
    citations = {}
    for key, s in data.get("sources", {}).items():
        if not isinstance(s, dict) or not {"authors", "year", "title", "journal"} <= s.keys():
            raise _fail(f"sources.{key}", "needs authors, year, title and journal")
        if "doi" not in s and "url" not in s:
            raise _fail(f"sources.{key}", "needs a doi or a url")
        link = f"doi:{s['doi']}" if "doi" in s else s["url"]
        citations[key] = f"{s['authors']} ({s['year']}). {s['title']}. {s['journal']}. {link}"
    entries = tuple(_read_entry(i, raw, citations) for i, raw in enumerate(data.get("routes", [])))
    if len({e.id for e in entries}) != len(entries):
        raise _fail("routes", "ids must be unique")
    return entries


def bioavailability(*, route: str, molecule: str) -> Bioavailability:
    """The bioavailability entry for ``route`` and ``molecule``.

    Examples
    --------
    >>> bioavailability(route="oral", molecule="esketamine").low
    0.08
    """
    for entry in list_bioavailability():
        if entry.route == route and entry.molecule == molecule:
            return entry
    known = [f"{e.route}/{e.molecule}" for e in list_bioavailability()]
    raise UnknownItem("bioavailability", f"{route}/{molecule}", known)
