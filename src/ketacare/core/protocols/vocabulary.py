"""How a protocol's limit kinds and the basis of a limit's value read on a page.

The words are data (``vocabulary.toml`` beside this module), read once.

Examples
--------
>>> limit_label("course_mg")
'Dose per course'
>>> basis_label("site_policy")
"set by the clinic's site policy"
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Final

from ketacare.core.datafile import Reader, read_toml

__all__ = ["basis_label", "basis_labels", "limit_label", "limit_labels"]

KIND: Final = "protocol vocabulary"


@cache
def _vocabulary() -> tuple[MappingProxyType[str, str], MappingProxyType[str, str]]:
    resource = files("ketacare.core.protocols") / "vocabulary.toml"
    top = Reader(kind=KIND, path="vocabulary.toml", table=read_toml(resource, kind=KIND))
    top.fields(required=("vocabulary", "limit", "basis"))
    parts: list[MappingProxyType[str, str]] = []
    for key in ("limit", "basis"):
        found: dict[str, str] = {}
        for entry in top.tables(key, required=True, id_key="id"):
            entry.fields(required=("id", "label"))
            found[entry.text("id")] = entry.text("label")
        parts.append(MappingProxyType(found))
    return parts[0], parts[1]


def limit_labels() -> MappingProxyType[str, str]:
    """Every limit kind's label, by key."""
    return _vocabulary()[0]


def basis_labels() -> MappingProxyType[str, str]:
    """Every basis's label, by id."""
    return _vocabulary()[1]


def limit_label(key: str) -> str:
    """A limit kind in words; an unknown key is returned as it is."""
    return limit_labels().get(key, key)


def basis_label(basis: str) -> str:
    """Where a limit's value comes from, in words; an unknown basis as it is."""
    return basis_labels().get(basis, basis)
