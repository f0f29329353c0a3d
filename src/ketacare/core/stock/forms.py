"""Dosage forms of stocked products as data (``data/forms.toml``), and the routes each
is given by (ids of the treatment vocabulary, :mod:`ketacare.core.terminology.treatments`).

Examples
--------
>>> f = forms()["sublingual_troche"]
>>> (f.routes, f.fits("sublingual"), f.fits("oral"))
(('sublingual',), True, False)
>>> form("suppository")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ketacare.core.errors.UnknownItem: unknown dosage form 'suppository': known are injection_...
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ketacare.core.datafile import Reader, read_toml
from ketacare.core.errors import UnknownItem
from ketacare.core.terminology.treatments import treatment_vocabulary

__all__ = ["Form", "form", "forms", "load_forms"]

_KIND = "dosage forms"


@dataclass(frozen=True, slots=True, kw_only=True)
class Form:
    """A dosage form and the protocol routes it is given by."""

    id: str
    label: str
    routes: tuple[str, ...]

    def fits(self, route: str) -> bool:
        """Whether a plan given by ``route`` may be supplied in this form."""
        return route in self.routes


def load_forms(file: Path | Traversable, *, name: str | Path | None = None) -> dict[str, Form]:
    """Read a forms file, by form id; every route must be in the treatment vocabulary."""
    shown = name if name is not None else str(file)
    top = Reader(kind=_KIND, path=shown, table=read_toml(file, kind=_KIND, name=shown))
    top.fields(required=("schema", "sources", "forms"))
    if top.integer("schema") != 1:
        raise top.fail("schema", "must be 1")
    top.sources("sources", required={"key", "label", "citation", "url", "read", "quote"})
    known = treatment_vocabulary().routes
    found: dict[str, Form] = {}
    for entry in top.tables("forms", required=True, id_key="id"):
        entry.fields(required=("id", "label", "routes"))
        routes = entry.strings("routes", non_empty=True)
        for route in routes:
            if route not in known:
                raise entry.fail("routes", f"{route!r} is not a route: known {', '.join(known)}")
        item = Form(id=entry.text("id"), label=entry.text("label"), routes=routes)
        if item.id in found:
            raise entry.fail("id", f"duplicate form id {item.id!r}")
        found[item.id] = item
    return found


@cache
def forms() -> dict[str, Form]:
    """The dosage forms shipped with ketacare (``data/forms.toml``)."""
    file = resources.files("ketacare.core.stock").joinpath("data", "forms.toml")
    return load_forms(file, name="forms.toml")


def form(form_id: str) -> Form:
    """The form ``form_id`` (:class:`UnknownItem` naming the known ones otherwise)."""
    try:
        return forms()[form_id]
    except KeyError:
        raise UnknownItem("dosage form", form_id, list(forms())) from None
