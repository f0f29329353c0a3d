"""Interaction checks on typed values: a list of medicines against a molecule and a route.

The screening engine checks the patient's medicines this way as part of a decision; a plan
checks an adjunct (a premedication, a rescue medicine, one a prescriber adds) the same way,
without building a screening document. Each entry is read through the terminology layer
(:mod:`ketacare.core.terminology.drugs`: brand names, salts, strengths and dose forms) and
the interaction map (``data/medications.toml``); an entry that names no mapped ingredient is
returned in ``not_recognised``, never dropped.

Examples
--------
>>> check = check_interactions(["Ativan 1 mg", "ondansetron 4 mg"],
...                            molecule="ketamine", route="iv_infusion")
>>> [f.id for f in check.findings]
['ix-cns-depressants', 'ix-benzodiazepines-antidepressant-effect']
>>> check.findings[0].medications, check.not_recognised
(('Ativan 1 mg',), ('ondansetron 4 mg',))
>>> [f.id for f in check.involving("lorazepam")]
[]
>>> [f.id for f in check.involving("Ativan")]
['ix-cns-depressants', 'ix-benzodiazepines-antidepressant-effect']
>>> check_interactions(["lorazepam"], molecule="esketamine", route="iv_infusion")
Traceback (most recent call last):
...
ketacare.core.errors.UnknownItem: unknown route for esketamine 'iv_infusion': known are intranasal
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ketacare.core.errors import InvalidInput, UnknownItem
from ketacare.core.screening.knowledge import Knowledge, load_knowledge
from ketacare.core.screening.model import MOLECULES, ROUTES, InteractionFinding, Medication

__all__ = ["InteractionCheck", "check_interactions", "find_interactions"]


@dataclass(frozen=True, slots=True)
class InteractionCheck:
    """What the interaction map says about a list of medicines for one molecule and route.

    ``findings`` are in the order of the interaction map, each with its severity, effect,
    advice and source; ``not_recognised`` lists the entries whose interactions could not be
    checked (no mapped ingredient and no classes given).
    """

    findings: tuple[InteractionFinding, ...]
    not_recognised: tuple[str, ...]

    def involving(self, medicine: str) -> tuple[InteractionFinding, ...]:
        """Findings that name ``medicine``: an entry that contains it or is contained in it.

        The comparison ignores case, so the adjunct "ondansetron" is involved in a finding
        about the patient's entry "Ondansetron 4 mg tablet".
        """
        wanted = medicine.lower()
        return tuple(
            f
            for f in self.findings
            if any(wanted in n.lower() or n.lower() in wanted for n in f.medications)
        )


def find_interactions(
    medications: Sequence[Medication], *, molecule: str, route: str, knowledge: Knowledge
) -> InteractionCheck:
    """The interaction checks that fire, for medicines and a treatment already validated.

    The screening engine calls this with its parsed input; other callers use
    :func:`check_interactions`, which validates first.
    """
    not_recognised: list[str] = []
    classes_by_med: dict[str, set[str]] = {}
    for med in medications:
        mapped = knowledge.classes_of(med.name, med.rxcui)
        if mapped is None and med.classes is None:
            not_recognised.append(med.name)
        classes_by_med[med.name] = set(mapped or ()) | set(med.classes or ())
    found: list[InteractionFinding] = []
    for ix in knowledge.interactions:
        if ix.routes and route not in ix.routes:
            continue
        hits = [(n, c & set(ix.classes)) for n, c in classes_by_med.items() if c & set(ix.classes)]
        if not hits:
            continue
        found.append(
            InteractionFinding(
                id=ix.id,
                severity=ix.severity,
                medications=tuple(n for n, _ in hits),
                classes=tuple(sorted({c for _, cs in hits for c in cs})),
                effect=ix.effect,
                advice=ix.advice,
                source=ix.source,
                extrapolated=ix.source_molecule not in ("both", molecule),
            )
        )
    return InteractionCheck(tuple(found), tuple(not_recognised))


def check_interactions(
    medicines: Sequence[str | Medication],
    *,
    molecule: str,
    route: str,
    knowledge: Knowledge | None = None,
) -> InteractionCheck:
    """Check medicines against the interaction map for a screening molecule and route.

    Parameters
    ----------
    medicines
        Entries as written ("lorazepam 1 mg tablet", "Ativan") or as
        :class:`~ketacare.core.screening.model.Medication` values (with an RxNorm code or
        classes); a written entry is trimmed.
    molecule, route
        The treatment as a screening names it (``ketamine`` / ``esketamine``; a route of
        that molecule). A protocol's names translate through
        :func:`ketacare.core.terminology.treatments.screened_treatment`.
    knowledge
        Screening data; the shipped files by default.

    Raises
    ------
    UnknownItem
        An unknown molecule, or a route the molecule is not given by.
    InvalidInput
        An empty medicine entry.
    """
    if molecule not in MOLECULES:
        raise UnknownItem("molecule", molecule, list(MOLECULES))
    if route not in ROUTES[molecule]:
        raise UnknownItem(f"route for {molecule}", route, list(ROUTES[molecule]))
    meds: list[Medication] = []
    for n, entry in enumerate(medicines):
        name = entry if isinstance(entry, str) else entry.name
        if not name.strip():
            raise InvalidInput(f"medicines[{n}] must be a non-empty medicine name")
        meds.append(Medication(name.strip()) if isinstance(entry, str) else entry)
    return find_interactions(
        meds, molecule=molecule, route=route, knowledge=knowledge or load_knowledge()
    )
