"""The one data-file reader: typed access to TOML tables, one set of error messages.

Every data file of the core (PK/PD models, instruments, protocols, outcome definitions,
screening rules, session rules) and every site-policy file is read through
:func:`read_toml` (or :func:`parse_toml`) and validated through a :class:`Reader`. A
problem raises :class:`~ketacare.core.errors.DataFileError` in one form, naming the file,
the field and what is allowed::

    <kind> file <path>: cannot be read: <reason>
    <kind> file <path>: is not valid TOML: <reason>
    <kind> file <path>: field '<where.field>': <problem, with what is allowed>

Unknown fields are refused (a typo must not silently drop a limit).

Examples
--------
>>> r = Reader(kind="protocol", path="x.toml", table={"id": "a", "dose": {"mg": -1}})
>>> r.text("id")
'a'
>>> r.sub("dose").number("mg", positive=True)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ketacare.core.errors.DataFileError: protocol file x.toml: field 'dose.mg': must be a positive ...
>>> r.only(("id",))
Traceback (most recent call last):
...
ketacare.core.errors.DataFileError: protocol file x.toml: field 'dose': unknown field (allowed: id)
>>> parse_toml("a = ", kind="protocol", path="x.toml")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ketacare.core.errors.DataFileError: protocol file x.toml: is not valid TOML: ...
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ketacare.core.errors import DataFileError
from ketacare.core.sources import Source, format_citation

__all__ = ["SOURCE_TEXT_FIELDS", "Reader", "parse_toml", "read_toml"]

#: Source fields that hold text (``year``, ``verified`` and ``supports`` are typed).
SOURCE_TEXT_FIELDS = frozenset(
    {"key", "label", "citation", "url", "doi", "read", "quote", "authors", "title", "journal"}
    | {"note"}
)


def parse_toml(text: str, *, kind: str, path: str | Path) -> dict[str, Any]:
    """Parse TOML text, turning a syntax error into :class:`DataFileError`.

    Examples
    --------
    >>> parse_toml("a = 1", kind="model", path="m.toml")
    {'a': 1}
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"{kind} file {path}: is not valid TOML: {exc}") from exc


def read_toml(
    file: Path | Traversable, *, kind: str, name: str | Path | None = None
) -> dict[str, Any]:
    """Read and parse one TOML file (a path or a packaged resource).

    ``name`` is how the file is named in messages (default: the path given, or a
    resource's file name).

    Examples
    --------
    >>> read_toml(Path("/nonexistent/p.toml"), kind="session policy")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.DataFileError: session policy file /nonexistent/p.toml: cannot be read: ...
    """
    shown = name if name is not None else (file if isinstance(file, Path) else file.name)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"{kind} file {shown}: cannot be read: {exc.strerror or exc}") from exc
    return parse_toml(text, kind=kind, path=shown)


def _number_rule(*, positive: bool, minimum: float | None) -> str:
    if positive:
        return "a positive number"
    if minimum is not None:
        return f"a number >= {minimum:g}"
    return "a finite number"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reader:
    """Typed access to one table of a data file.

    ``kind`` names the file format (``protocol``, ``model`` ...), ``path`` the file as
    shown in messages, ``where`` the table's place in the file (``limits.dose_mg``,
    ``phases[0]``; empty for the top level). Each accessor refuses a wrong value with
    one :class:`DataFileError` naming the file, the field and what is allowed.
    """

    kind: str
    path: str | Path
    table: Mapping[str, Any]
    where: str = ""

    # ------------------------------------------------------------------ places and failures

    def name(self, field: str = "") -> str:
        """The dotted name of ``field`` in the file (the table itself for "")."""
        if not field:
            return self.where
        return f"{self.where}.{field}" if self.where else field

    def fail(self, field: str, problem: str) -> DataFileError:
        """The error for ``field`` of this table ("" for the table as a whole)."""
        name = self.name(field)
        place = f"field {name!r}: " if name else ""
        return DataFileError(f"{self.kind} file {self.path}: {place}{problem}")

    def child(self, table: Mapping[str, Any], where: str) -> Reader:
        """A reader for a nested table at ``where`` (a name relative to this table)."""
        return Reader(kind=self.kind, path=self.path, table=table, where=self.name(where))

    def has(self, field: str) -> bool:
        """True when the table holds ``field``."""
        return field in self.table

    def only(self, allowed: Iterable[str]) -> None:
        """Refuse a field not in ``allowed``, naming the allowed ones."""
        allowed = set(allowed)
        extra = sorted(set(self.table) - allowed)
        if extra:
            raise self.fail(extra[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def require(self, fields: Iterable[str]) -> None:
        """Refuse a table that lacks one of ``fields``."""
        for field in sorted(set(fields) - set(self.table)):
            raise self.fail(field, "is missing")

    def fields(self, *, required: Iterable[str], optional: Iterable[str] = ()) -> None:
        """:meth:`only` the required and optional fields, then :meth:`require` the first."""
        required = set(required)
        self.only(required | set(optional))
        self.require(required)

    def _present(self, field: str) -> Any:
        if field not in self.table:
            raise self.fail(field, "is missing")
        return self.table[field]

    # ------------------------------------------------------------------ scalars

    def text(self, field: str, *, default: str | None = None) -> str:
        """A non-empty string (``default`` when the field is absent and a default is given)."""
        if field not in self.table and default is not None:
            return default
        value = self._present(field)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, f"must be a non-empty string, got {value!r}")
        return value.strip()

    def opt_text(self, field: str) -> str | None:
        """A non-empty string, or None when the field is absent."""
        return self.text(field) if field in self.table else None

    def choice(self, field: str, allowed: Sequence[str], *, default: str | None = None) -> str:
        """One of ``allowed``."""
        value = self.text(field, default=default)
        if value not in allowed:
            raise self.fail(field, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def number(
        self,
        field: str,
        *,
        positive: bool = False,
        minimum: float | None = None,
        default: float | None = None,
    ) -> float:
        """A finite number (``positive``: above 0; ``minimum``: at least that)."""
        if field not in self.table and default is not None:
            return default
        value = self._present(field)
        rule = _number_rule(positive=positive, minimum=minimum)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or (positive and value <= 0)
            or (minimum is not None and value < minimum)
        ):
            raise self.fail(field, f"must be {rule}, got {value!r}")
        return float(value)

    def opt_number(
        self, field: str, *, positive: bool = False, minimum: float | None = None
    ) -> float | None:
        """A number as :meth:`number`, or None when the field is absent."""
        if field not in self.table:
            return None
        return self.number(field, positive=positive, minimum=minimum)

    def integer(self, field: str, *, minimum: int | None = None, default: int | None = None) -> int:
        """A whole number (at least ``minimum`` when given)."""
        if field not in self.table and default is not None:
            return default
        value = self._present(field)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (minimum is not None and value < minimum)
        ):
            rule = "an integer" if minimum is None else f"an integer >= {minimum}"
            raise self.fail(field, f"must be {rule}, got {value!r}")
        return value

    def opt_integer(self, field: str, *, minimum: int | None = None) -> int | None:
        """A whole number as :meth:`integer`, or None when the field is absent."""
        return self.integer(field, minimum=minimum) if field in self.table else None

    def boolean(self, field: str, *, default: bool | None = None) -> bool:
        """``true`` or ``false``."""
        if field not in self.table and default is not None:
            return default
        value = self._present(field)
        if not isinstance(value, bool):
            raise self.fail(field, f"must be true or false, got {value!r}")
        return value

    def strings(
        self, field: str, *, default: Sequence[str] | None = None, non_empty: bool = False
    ) -> tuple[str, ...]:
        """A list of non-empty strings (``non_empty``: with at least one)."""
        if field not in self.table and default is not None:
            return tuple(default)
        value = self._present(field)
        if (
            not isinstance(value, list)
            or not all(isinstance(v, str) and v.strip() for v in value)
            or (non_empty and not value)
        ):
            rule = "a non-empty list of strings" if non_empty else "a list of non-empty strings"
            raise self.fail(field, f"must be {rule}, got {value!r}")
        return tuple(value)

    def interval(self, field: str, *, positive: bool = False) -> tuple[float, float]:
        """A ``[low, high]`` pair of numbers with low <= high (``positive``: both above 0)."""
        value = self._present(field)
        rule = "[low, high], two positive numbers" if positive else "[low, high], two numbers"
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in value
            )
            or (positive and min(value) <= 0)
        ):
            raise self.fail(field, f"must be {rule}, got {value!r}")
        low, high = float(value[0]), float(value[1])
        if low > high:
            raise self.fail(field, f"low {low:g} is above high {high:g}")
        return low, high

    # ------------------------------------------------------------------ tables

    def sub(self, field: str) -> Reader:
        """The table ``field`` (required)."""
        value = self._present(field)
        if not isinstance(value, dict):
            raise self.fail(field, "must be a table")
        return self.child(value, field)

    def opt_sub(self, field: str) -> Reader | None:
        """The table ``field``, or None when it is absent."""
        return self.sub(field) if field in self.table else None

    def tables(
        self, field: str, *, required: bool = False, id_key: str | None = None
    ) -> list[Reader]:
        """The array of tables ``field`` (``[[field]]``); absent means none unless required.

        Each entry is named ``field[i]``, or ``field[ID]`` when ``id_key`` names a
        string field that identifies it.
        """
        value = self.table.get(field)
        if value is None:
            if required:
                raise self.fail(field, "is missing")
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(field, f"must be an array of tables, written [[{field}]]")
        if required and not value:
            raise self.fail(field, "must not be empty")
        readers = []
        for i, entry in enumerate(value):
            ident = entry.get(id_key) if id_key else None
            label = ident.strip() if isinstance(ident, str) and ident.strip() else str(i)
            readers.append(self.child(entry, f"{field}[{label}]"))
        return readers

    def named_tables(self, field: str, *, required: bool = True) -> list[tuple[str, Reader]]:
        """The tables of the table ``field`` (``[field.NAME]``), by name, in file order."""
        if field not in self.table and not required:
            return []
        outer = self.sub(field)
        found = []
        for name, value in outer.table.items():
            if not isinstance(value, dict):
                raise outer.fail(name, "must be a table")
            found.append((name, outer.child(value, name)))
        return found

    # ------------------------------------------------------------------ sources

    def sources(
        self,
        field: str,
        *,
        required: Collection[str],
        optional: Collection[str] = (),
        keyed: bool = False,
        rename: Mapping[str, str] | None = None,
    ) -> dict[str, Source]:
        """The file's sources, by key, each checked the same way in every file.

        Sources are an array of tables with a ``key`` field (``[[sources]]``), or, with
        ``keyed``, a table of tables named by key (``[sources.KEY]``). ``required`` and
        ``optional`` are the fields an entry may hold; ``rename`` maps a file's field
        name to the :class:`Source` field (``statement`` to ``quote``). Text fields
        must be non-empty strings (``url`` may be empty); ``year`` an integer year,
        ``verified`` true or false, ``supports`` a list of strings. Without a
        ``citation`` field the citation is built from authors, year, title, journal and
        doi or url. At least one source is required; keys are unique.
        """
        rename = dict(rename or {})
        entries: list[tuple[str | None, Reader]]
        if keyed:
            entries = [(name, entry) for name, entry in self.named_tables(field)]
            if not entries:
                raise self.fail(field, "must not be empty")
        else:
            entries = [(None, entry) for entry in self.tables(field, required=True, id_key="key")]
        found: dict[str, Source] = {}
        for position, (name, entry) in enumerate(entries, start=1):
            entry.fields(required=required, optional=optional)
            values: dict[str, Any] = {}
            for key in set(entry.table):
                target = rename.get(key, key)
                if key == "year":
                    values[target] = entry.integer("year", minimum=1900)
                    if values[target] >= 2100:
                        raise entry.fail("year", f"must be an integer year, got {values[target]}")
                elif key == "verified":
                    values[target] = entry.boolean("verified")
                elif key == "supports":
                    values[target] = entry.strings("supports")
                elif key == "url" and entry.table["url"] == "":
                    values[target] = ""
                else:
                    values[target] = entry.text(key)
            key = name if name is not None else values.get("key", str(position))
            if key in found:
                raise entry.fail("key" if name is None else "", f"duplicate source key {key!r}")
            if "citation" not in values:
                if "authors" not in values:
                    raise entry.fail("citation", "is missing")
                if "doi" not in values and "url" not in values:
                    raise entry.fail("doi", "is missing: a source needs a doi or a url")
                values["citation"] = format_citation(
                    authors=values["authors"],
                    year=values["year"],
                    title=values["title"],
                    journal=values["journal"],
                    doi=values.get("doi"),
                    url=values.get("url"),
                )
            values["key"] = key
            found[key] = Source(**values)
        return found

    def source_ref(self, field: str, known: Collection[str]) -> str:
        """A source key that the file's sources define."""
        key = self.text(field)
        if key not in known:
            raise self.fail(field, f"unknown source {key!r} (known: {', '.join(sorted(known))})")
        return key

    def opt_source_ref(self, field: str, known: Collection[str]) -> str | None:
        """A source key as :meth:`source_ref`, or None when the field is absent."""
        return self.source_ref(field, known) if field in self.table else None

    def source_refs(
        self, field: str, known: Collection[str], *, single: bool = False
    ) -> tuple[str, ...]:
        """A non-empty list of source keys (``single``: one key alone is also allowed)."""
        value = self._present(field)
        keys = [value] if single and isinstance(value, str) else value
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            rule = "a source key or a list of them" if single else "a non-empty list of source keys"
            raise self.fail(field, f"must be {rule}, got {value!r}")
        for key in keys:
            if key not in known:
                raise self.fail(
                    field, f"unknown source {key!r} (known: {', '.join(sorted(known))})"
                )
        return tuple(keys)
