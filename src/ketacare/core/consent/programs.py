"""Consent programs: which signed consent a treatment (molecule, route) needs.

Read from ``data/programs.toml``. A (molecule, route) that no program lists has no
program: the shell refuses its plan and its sessions (fail closed) rather than guess.

Examples
--------
>>> program_for(molecule="racemic_ketamine", route="iv_infusion").id
'iv_racemic'
>>> program_for(molecule="esketamine", route="intranasal_esketamine").id
'esketamine'
>>> program_for(molecule="racemic_ketamine", route="rectal") is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from ketacare.core.datafile import Reader, read_toml
from ketacare.core.errors import DataFileError

__all__ = ["Program", "program_for", "programs"]

KIND = "consent programs"


@dataclass(frozen=True, slots=True)
class Program:
    """A consent program: its id, how it reads, and the treatments it covers."""

    id: str
    label: str
    treatments: tuple[tuple[str, str], ...]


@cache
def programs() -> dict[str, Program]:
    """Every program, by id, in file order."""
    resource = files("ketacare.core.consent") / "data" / "programs.toml"
    top = Reader(kind=KIND, path="programs.toml", table=read_toml(resource, kind=KIND))
    top.fields(required=("programs", "program"))
    found: dict[str, Program] = {}
    seen: dict[tuple[str, str], str] = {}
    for entry in top.tables("program", required=True, id_key="id"):
        entry.fields(required=("id", "label", "treatments"))
        pid = entry.text("id")
        raw = entry.table["treatments"]
        if not isinstance(raw, list) or not all(
            isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in raw
        ):
            raise entry.fail("treatments", "must be a list of [molecule, route] pairs")
        pairs = tuple((str(m), str(r)) for m, r in raw)
        for pair in pairs:
            if pair in seen:
                raise entry.fail("treatments", f"{pair} is already in program {seen[pair]!r}")
            seen[pair] = pid
        if pid in found:
            raise DataFileError(f"{KIND} file programs.toml: duplicate program {pid!r}")
        found[pid] = Program(id=pid, label=entry.text("label"), treatments=pairs)
    return found


def program_for(*, molecule: str, route: str) -> Program | None:
    """The program whose consent a (molecule, route) needs, or None when none lists it."""
    for program in programs().values():
        if (molecule, route) in program.treatments:
            return program
    return None
