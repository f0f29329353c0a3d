"""What a research reader sees of the clinic dashboard (:mod:`ketacare.core.research.disclosure`
applied to its tables).

Physicians (``analytics:whole_clinic``) see every treated patient and every count. Any
other reader gets the patients who consented to research, the cohort whole (no filter
narrows it), no durability curves, and no count from 1 to 10, directly or through a
row's sums or the whole cohort as the sum of its groups.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ketacare.core.errors import InvalidInput
from ketacare.core.research.disclosure import SmallCells, withhold
from ketacare.infra.permissions import Role, allowed

if TYPE_CHECKING:
    from ketacare.clinic.analytics.filters import Filters
    from ketacare.clinic.analytics.service import Counts, DefinitionResult
    from ketacare.clinic.audit.service import Actor

#: The counts a row shows (as :class:`Counts` names them, and the derived ones), and
#: the differences a reader could take between them, each a cell of the research view.
FIGURES: tuple[str, ...] = (
    "treated",
    "no_baseline",
    "not_eligible",
    "no_follow_up",
    "non_responders",
    "responders",
    "at_last",
    "not_at_last",
    "judgeable",
    "eligible",
    "lost",
    "lost_unjudged",
    "lost_judged",
    "not_lost",
)
#: Each rate's numerator and denominator.
RATES: dict[str, tuple[str, str]] = {
    "rate_judgeable": ("responders", "judgeable"),
    "rate_eligible": ("responders", "eligible"),
    "rate_at_last": ("at_last", "judgeable"),
    "completeness": ("judgeable", "treated"),
}


def _figures(c: Counts) -> dict[str, int]:
    return {
        "treated": c.treated,
        "no_baseline": c.no_baseline,
        "not_eligible": c.not_eligible,
        "no_follow_up": c.no_follow_up,
        "non_responders": c.non_responders,
        "responders": c.responders,
        "at_last": c.at_last,
        "not_at_last": c.responders - c.at_last,
        "judgeable": c.judgeable,
        "eligible": c.eligible,
        "lost": c.lost,
        "lost_unjudged": c.lost_unjudged,
        "lost_judged": c.lost - c.lost_unjudged,
        "not_lost": c.treated - c.lost,
    }


#: How a row's figures add up (total, parts); the lost ones only where lost is computed.
ROW_SUMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("treated", ("no_baseline", "not_eligible", "no_follow_up", "non_responders", "responders")),
    ("judgeable", ("non_responders", "responders")),
    ("eligible", ("no_follow_up", "judgeable")),
    ("responders", ("at_last", "not_at_last")),
)
LOST_SUMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("treated", ("lost", "not_lost")),
    ("lost", ("lost_unjudged", "lost_judged")),
)


def whole_clinic(actor: Actor) -> bool:
    """Whether the reader sees every patient and every count (unknown roles do not)."""
    try:
        return allowed("analytics:whole_clinic", Role(actor.role))
    except ValueError:
        return False


def check_filters(filters: Filters, rule: SmallCells) -> None:
    """A research reader's cohort is not narrowed: two cohorts a day apart differ by
    the patients who entered that day, and a cohort of one condition split by protocol
    is a cross-table whose cells can be had by subtraction from the whole cohort's; each
    a count the rule does not show. The research route to narrower questions is the
    registry export (consented, de-identified)."""
    narrowed = [name for name, value in filters.as_dict().items() if name != "split" and value]
    if narrowed:
        raise InvalidInput(
            f"{', '.join(narrowed)}: a research reader sees the whole consented cohort, "
            "with the clinic's follow-up window, split by condition and by protocol; "
            "narrowed cohorts can be subtracted from it to count a few patients "
            f"({rule.rule}). Allowed: split; narrower questions go through the registry export"
        )


def research_view(result: DefinitionResult, rule: SmallCells) -> DefinitionResult:
    """``result`` as a research reader may see it: each row's counts from 1 to 10
    withheld, and enough others that none of them can be had from what is shown, through
    a row's own sums (:data:`ROW_SUMS`) or the whole-clinic row as the sum of its groups
    (:func:`ketacare.core.research.disclosure.withhold`); no durability curves."""
    rows = [result.overall, *result.by_condition, *result.by_protocol]
    lost = result.overall.lost_computed
    names = [f for f in FIGURES if lost or not f.startswith(("lost", "not_lost"))]
    cells = {(n, f): _figures(r.counts)[f] for n, r in enumerate(rows) for f in names}
    sums: list[tuple[tuple[int, str], list[tuple[int, str]]]] = [
        ((n, total), [(n, part) for part in parts])
        for n in range(len(rows))
        for total, parts in ROW_SUMS + (LOST_SUMS if lost else ())
    ]
    first = 1
    for groups in (result.by_condition, result.by_protocol):
        if groups:
            members = range(first, first + len(groups))
            sums += [((0, f), [(n, f) for n in members]) for f in names]
        first += len(groups)
    hidden = withhold(cells, sums, rule, group=lambda cell: cell[0])  # a row: one group
    masked = [
        replace(r, withheld=frozenset(f for f in names if (n, f) in hidden))
        for n, r in enumerate(rows)
    ]
    k = len(result.by_condition)
    return replace(
        result,
        overall=masked[0],
        by_condition=tuple(masked[1 : 1 + k]),
        by_protocol=tuple(masked[1 + k :]),
        curves=(),
    )
