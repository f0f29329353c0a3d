"""The SPRAVATO REMS as data: which treatments it governs, and the Patient Monitoring
Form's fields with where each was read (``data/spravato-rems.toml``).

Examples
--------
>>> rules().governs(molecule="esketamine", route="intranasal_esketamine")
True
>>> rules().governs(molecule="esketamine", route="iv_infusion")
False
>>> rules().submit_within_days
7
>>> sorted(f.id for f in rules().fields if f.status == "unconfirmed")[:3]
['concomitant_opioids', 'dissociation', 'first_treatment']
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from ketacare.core.datafile import Reader, read_toml
from ketacare.core.sources import Source

__all__ = ["FormField", "RemsRules", "rules"]

KIND = "REMS"
STATUSES = ("form-2021", "unconfirmed")


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of the Patient Monitoring Form, how far it is confirmed, and its sources."""

    id: str
    label: str
    status: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RemsRules:
    name: str
    treatments: tuple[tuple[str, str], ...]
    submit_within_days: int
    #: the form's "blood pressure 40 minutes post-administration", after the first device
    bp_after_first_device_min: int
    routes: tuple[str, ...]
    fields: tuple[FormField, ...]
    sources: dict[str, Source]

    def governs(self, *, molecule: str, route: str) -> bool:
        """True when a dose of (molecule, route) falls under the REMS."""
        return (molecule, route) in self.treatments


@cache
def rules() -> RemsRules:
    """The REMS file, checked (every field and number names a known source)."""
    resource = files("ketacare.core.rems") / "data" / "spravato-rems.toml"
    top = Reader(kind=KIND, path="spravato-rems.toml", table=read_toml(resource, kind=KIND))
    top.fields(required=("rems", "sources", "field"))
    sources = top.sources("sources", required=("key", "citation", "url"))
    head = top.sub("rems")
    head.fields(
        required=(
            "version",
            "name",
            "treatments",
            "submit_within_days",
            "submit_within_days_sources",
            "bp_after_first_device_min",
            "bp_after_first_device_min_sources",
            "routes",
            "routes_sources",
        )
    )
    head.source_refs("submit_within_days_sources", sources)
    head.source_refs("bp_after_first_device_min_sources", sources)
    head.source_refs("routes_sources", sources)
    raw = head.table["treatments"]
    if not isinstance(raw, list) or not all(
        isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) for x in t) for t in raw
    ):
        raise head.fail("treatments", "must be a list of [molecule, route] pairs")
    fields = []
    for entry in top.tables("field", required=True, id_key="id"):
        entry.fields(required=("id", "label", "status", "sources"))
        fields.append(
            FormField(
                id=entry.text("id"),
                label=entry.text("label"),
                status=entry.choice("status", STATUSES),
                sources=entry.source_refs("sources", sources),
            )
        )
    return RemsRules(
        name=head.text("name"),
        treatments=tuple((str(m), str(r)) for m, r in raw),
        submit_within_days=head.integer("submit_within_days", minimum=1),
        bp_after_first_device_min=head.integer("bp_after_first_device_min", minimum=1),
        routes=head.strings("routes", non_empty=True),
        fields=tuple(fields),
        sources=sources,
    )
