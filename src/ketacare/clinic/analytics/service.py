"""The clinic dashboard: rates with their denominators, durability, completeness.

Every figure is aggregate SQL over the per-patient outcome summary
(:mod:`ketacare.clinic.analytics.refresh`), so the dashboard never reads the
measurements themselves: 100,000 patients answer in well under a second on
PostgreSQL (``bench/dashboard.py``). Rates and their Wilson intervals come from
:class:`ketacare.core.outcomes.Rate`; curves from
:func:`ketacare.core.outcomes.kaplan_meier`.

Honest denominators: every treated patient of the cohort is counted. Patients
without a baseline, with a baseline the definition excludes, or without a follow-up
value are counted as such (not judgeable); patients lost to follow-up stay in every
denominator and are counted beside it. The reader's filters are checked in
:mod:`ketacare.clinic.analytics.filters`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import and_, func, literal, select
from sqlalchemy.orm import Session

from ketacare.clinic.analytics import disclosure, refresh
from ketacare.clinic.analytics.filters import Filters, clinic_lost_after_days
from ketacare.clinic.analytics.orm import OutcomeSummary
from ketacare.clinic.analytics.reference import Statistics, condition_label, statistics
from ketacare.clinic.audit import service as audit
from ketacare.core.outcomes import STATUS_NAMES, Definition, KaplanMeier, Rate, kaplan_meier
from ketacare.core.research.disclosure import SmallCells, small_cells
from ketacare.infra.settings import Settings

#: The core's patient states as stored (indexes into STATUS_NAMES); 1-3 are not judgeable.
NO_BASELINE, NOT_ELIGIBLE, NO_FOLLOW_UP, NON_RESPONDER, RESPONDER = (
    STATUS_NAMES.index(name)
    for name in ("no_baseline", "not_eligible", "no_follow_up", "non_responder", "responder")
)

COHORT_ENTRY_RULE = (
    "cohort entry is the patient's first given session (the first dose of an infusion, bolus "
    "or self-administration); sessions opened but never dosed do not count"
)
CONDITION_RULE = (
    "condition is the patient's first-recorded active diagnosis; ICD-10-CM codes that differ "
    "only by site or laterality are counted together"
)
PROTOCOL_RULE = "protocol is the protocol of the plan of the first given session"


# ----------------------------------------------------------------------------- refresh


#: ``session.info`` key: while set, :func:`refresh_patient` leaves the summary for one
#: :func:`refresh_clinic` at the end (a bulk load, such as the demo clinic's history,
#: whose per-write refreshes would each be replaced by that rebuild)
DEFER_REFRESH = "ketacare.analytics.defer_refresh"


@contextmanager
def refresh_deferred(session: Session) -> Iterator[None]:
    """Within the block, per-patient summary refreshes are skipped; the caller must run
    :func:`refresh_clinic` before the transaction commits."""
    session.info[DEFER_REFRESH] = True
    try:
        yield
    finally:
        session.info.pop(DEFER_REFRESH, None)


def follows(instrument_id: str) -> bool:
    """Whether scores of this instrument feed the summary (a definition is measured with it)."""
    return instrument_id in refresh.measures()


def refresh_patient(
    *,
    session: Session,
    patient_id: int,
    now: datetime,
    loss_confirmations: int | None | Literal["summary"] = "summary",
) -> int:
    """Recompute one patient's summary rows after their data changed; returns the row count.

    ``loss_confirmations`` defaults to the value the last whole-clinic refresh used, so
    every row of the summary is judged with one setting (``ketacare analytics refresh``
    applies a changed setting to every patient). A patient with no dose given has no rows.
    """
    if session.info.get(DEFER_REFRESH):
        return 0
    k = (
        refresh.summary_loss_confirmations(session)
        if loss_confirmations == "summary"
        else loss_confirmations
    )
    return refresh.write_patient(
        session=session, patient_id=patient_id, now=now, loss_confirmations=k
    )


def refresh_clinic(
    *,
    session: Session,
    actor: audit.Actor,
    now: datetime,
    loss_confirmations: int | None,
    progress: refresh.Progress | None = None,
) -> refresh.RunReport:
    """Rebuild the whole summary with the clinic's current ``loss_confirmations`` (audited)."""
    report = refresh.rebuild(
        session=session, now=now, loss_confirmations=loss_confirmations, progress=progress
    )
    audit.record(
        session=session,
        actor=actor,
        action="refresh",
        resource_type="analytics",
        at=now,
        detail={
            "patients": report.patients,
            "rows": report.rows,
            "loss_confirmations": loss_confirmations,
        },
    )
    return report


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Counts:
    """Patients of one group by what could be judged (additive across groups)."""

    treated: int = 0
    no_baseline: int = 0
    not_eligible: int = 0
    no_follow_up: int = 0
    non_responders: int = 0
    responders: int = 0
    at_last: int = 0
    lost: int = 0
    lost_unjudged: int = 0
    durability_n: int = 0
    durability_events: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f) + getattr(other, f) for f in Counts.__dataclass_fields__))

    @property
    def judgeable(self) -> int:
        """An eligible baseline and at least one follow-up value."""
        return self.non_responders + self.responders

    @property
    def eligible(self) -> int:
        """An eligible baseline (judgeable or still without follow-up)."""
        return self.judgeable + self.no_follow_up


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One line of a rate table: the counts, the rates with Wilson intervals."""

    kind: str  # all | condition | protocol
    key: str | None
    label: str
    counts: Counts
    rate_judgeable: Rate
    rate_eligible: Rate
    rate_at_last: Rate
    completeness: Rate
    lost_computed: bool
    #: a research reader's view: the figures not shown (``disclosure.FIGURES`` names)
    withheld: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, kind: str, key: str | None, label: str, c: Counts, *, confidence: float, lost: bool
    ) -> GroupRow:
        return cls(
            kind=kind,
            key=key,
            label=label,
            counts=c,
            rate_judgeable=Rate.of(c.responders, c.judgeable, confidence=confidence),
            rate_eligible=Rate.of(c.responders, c.eligible, confidence=confidence),
            rate_at_last=Rate.of(c.at_last, c.judgeable, confidence=confidence),
            completeness=Rate.of(c.judgeable, c.treated, confidence=confidence),
            lost_computed=lost,
        )

    def shown(self, figure: str) -> bool:
        """Whether ``figure`` (a count of ``disclosure.FIGURES``, or a rate of
        ``disclosure.RATES``) may be shown: a rate only with its numerator and denominator."""
        if figure in disclosure.RATES:
            return not (set(disclosure.RATES[figure]) & self.withheld)
        return figure not in self.withheld


@dataclass(frozen=True, slots=True)
class Curve:
    """A Kaplan-Meier curve of one group (``key`` None: everyone shown)."""

    key: str | None
    label: str
    km: KaplanMeier


@dataclass(frozen=True, slots=True)
class DefinitionResult:
    """Everything the dashboard shows for one definition."""

    definition: Definition
    overall: GroupRow
    by_condition: tuple[GroupRow, ...]
    by_protocol: tuple[GroupRow, ...]
    curves: tuple[Curve, ...]


@dataclass(frozen=True, slots=True)
class SummaryState:
    """How current the summary is, and with which setting it was judged.

    Every row is judged with the ``loss_confirmations`` of the last whole-clinic refresh
    (per-patient refreshes keep it), so that run tells what the rows hold.
    """

    last_run_at: datetime | None
    summary_loss_confirmations: int | None
    settings_loss_confirmations: int | None

    @property
    def durability_computed(self) -> bool:
        """Durability is shown only when the rows were judged with the clinic's setting."""
        k = self.settings_loss_confirmations
        return k is not None and self.summary_loss_confirmations == k

    @property
    def notice(self) -> str | None:
        """What the reader must know before trusting the durability (None: nothing)."""
        k = self.settings_loss_confirmations
        if k is None:
            return (
                "Durability is not computed: the clinic has not set how many consecutive "
                "scores out of response confirm a loss of response (the site policy's "
                "loss-of-response confirmations)."
            )
        if not self.durability_computed:
            used = self.summary_loss_confirmations
            when = (
                "no whole-clinic refresh has run yet"
                if self.last_run_at is None
                else f"the summary was judged with loss confirmations "
                f"{'unset' if used is None else used}"
            )
            return (
                f"Durability is not shown: {when}, and the clinic's setting is {k}. "
                "Run `ketacare analytics refresh`."
            )
        return None


@dataclass(frozen=True, slots=True)
class Dashboard:
    """The whole dashboard for a set of filters."""

    as_of: datetime
    filters: Filters
    lost_after_days: int | None
    lost_after_source: str | None  # "filter" | "clinic setting" | None
    results: tuple[DefinitionResult, ...]
    conditions: tuple[tuple[str, str], ...]
    protocols: tuple[tuple[str, str], ...]
    state: SummaryState
    statistics: Statistics
    notes: tuple[str, ...] = field(default=())  # what is not computed, and why
    rules: tuple[str, ...] = (COHORT_ENTRY_RULE, CONDITION_RULE, PROTOCOL_RULE)
    research: SmallCells | None = None  # set: a research reader's view (consented, no small counts)


def _bounds(filters: Filters, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """Cohort-entry bounds in UTC: [local midnight of from, local midnight after to)."""
    lo = hi = None
    if filters.started_from:
        lo = datetime.combine(filters.started_from, time(0), zone).astimezone(UTC)
    if filters.started_to:
        after = filters.started_to + timedelta(days=1)
        hi = datetime.combine(after, time(0), zone).astimezone(UTC)
    return lo, hi


def _entry_filter(filters: Filters, zone: ZoneInfo) -> list[Any]:
    lo, hi = _bounds(filters, zone)
    s = OutcomeSummary
    where: list[Any] = []
    if lo is not None:
        where.append(s.cohort_entry >= lo)
    if hi is not None:
        where.append(s.cohort_entry < hi)
    return where


def _patient_filter(patients: list[int] | None) -> list[Any]:
    """``patients`` None: every patient; else only those (a research reader's consented)."""
    return [] if patients is None else [OutcomeSummary.patient_id.in_(patients)]


def _group_filter(filters: Filters) -> list[Any]:
    s = OutcomeSummary
    where: list[Any] = []
    if filters.condition:
        where.append(s.condition == filters.condition)
    if filters.protocol:
        where.append(s.protocol_id == filters.protocol)
    return where


def summary_state(*, session: Session, settings_k: int | None) -> SummaryState:
    """The latest whole-clinic refresh and the setting it judged the rows with."""
    run = refresh.last_run(session)
    return SummaryState(
        last_run_at=run.at if run else None,
        summary_loss_confirmations=run.loss_confirmations if run else None,
        settings_loss_confirmations=settings_k,
    )


def _counts_by_group(
    session: Session,
    filters: Filters,
    zone: ZoneInfo,
    cutoff: datetime | None,
    patients: list[int] | None,
) -> list[tuple[str, str, str, Counts]]:
    """(definition, condition, protocol, counts) for the date range: one SQL aggregate.

    Every column it reads is in ``ix_outcome_summaries_rates``, so it is answered from
    that index.
    """
    s = OutcomeSummary
    lost = s.last_contact < cutoff if cutoff is not None else None

    def where(condition: Any) -> Any:
        return func.count().filter(condition)

    query = (
        select(
            s.definition_id,
            s.condition,
            s.protocol_id,
            func.count(),
            where(s.status == NO_BASELINE),
            where(s.status == NOT_ELIGIBLE),
            where(s.status == NO_FOLLOW_UP),
            where(s.status == NON_RESPONDER),
            where(s.status == RESPONDER),
            where(s.met_at_last),
            where(lost) if lost is not None else literal(0),
            where(and_(lost, s.status <= NO_FOLLOW_UP)) if lost is not None else literal(0),
            func.count(s.durability_days),
            where(s.durability_event),
        )
        .where(*_entry_filter(filters, zone), *_patient_filter(patients))
        .group_by(s.definition_id, s.condition, s.protocol_id)
    )
    out = []
    for row in session.execute(query):
        definition_id, condition, protocol, *numbers = row
        out.append((definition_id, condition, protocol, Counts(*(int(n or 0) for n in numbers))))
    return out


def _curves(
    session: Session, filters: Filters, zone: ZoneInfo, confidence: float
) -> dict[str, list[Curve]]:
    """Kaplan-Meier curves by definition (everyone, then each group of the split)."""
    s = OutcomeSummary
    group = {"condition": s.condition, "protocol": s.protocol_id}.get(filters.split)
    keys = [s.definition_id] + ([group] if group is not None else [])
    query = (
        select(*keys, s.durability_days, s.durability_event, func.count())
        .where(
            s.status == RESPONDER,
            s.durability_days.is_not(None),
            *_entry_filter(filters, zone),
            *_group_filter(filters),
        )
        .group_by(*keys, s.durability_days, s.durability_event)
    )
    found: dict[str, dict[str | None, list[tuple[int, bool, int]]]] = {}
    for row in session.execute(query):
        definition_id = row[0]
        key = row[1] if group is not None else None
        days, event, n = row[-3], row[-2], row[-1]
        by_key = found.setdefault(definition_id, {})
        by_key.setdefault(None, []).append((int(days), bool(event), int(n)))
        if key is not None:
            by_key.setdefault(key, []).append((int(days), bool(event), int(n)))
    curves: dict[str, list[Curve]] = {}
    for definition_id, by_key in found.items():
        for key, cells in sorted(by_key.items(), key=lambda kv: (kv[0] is not None, kv[0] or "")):
            n = np.array([c[2] for c in cells])
            km = kaplan_meier(
                durations=np.repeat([c[0] for c in cells], n).astype(np.float64),
                events=np.repeat([c[1] for c in cells], n),
                confidence=confidence,
            )
            curves.setdefault(definition_id, []).append(
                Curve(key=key, label="all patients shown" if key is None else key, km=km)
            )
    return curves


def dashboard(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    filters: Filters,
    now: datetime,
    protocol_titles: Mapping[str, str] | None = None,
    curves: bool = True,
) -> Dashboard:
    """Rates, completeness and durability for the filters (an audited aggregate read).

    ``curves=False`` skips the Kaplan-Meier query (the rates alone). A reader without
    ``analytics:whole_clinic`` (a researcher) gets the research view
    (:mod:`ketacare.clinic.analytics.disclosure`): consented patients only, no count from
    1 to 10, no cohort narrowed.
    """
    rule = None if disclosure.whole_clinic(actor) else small_cells()
    if rule is not None:
        disclosure.check_filters(filters, rule)
    stats = statistics()
    confidence = stats.confidence
    zone = settings.zone
    clinic_window = clinic_lost_after_days(settings)
    window = filters.lost_after_days or clinic_window
    source = "filter" if filters.lost_after_days else ("clinic setting" if clinic_window else None)
    cutoff = now - timedelta(days=window) if window else None
    lost = cutoff is not None
    state = summary_state(session=session, settings_k=settings.outcome_loss_confirmations)
    patients = None
    if rule is not None:
        # imported here: the research service reads sessions, which refresh this summary
        from ketacare.clinic.research.service import consenting_patients

        patients = consenting_patients(session=session)
    grouped = _counts_by_group(session, filters, zone, cutoff, patients)
    titles = protocol_titles or {}
    label_of = {c: condition_label(c) for c in {c for _, c, _, _ in grouped}}
    conditions = sorted(label_of.items(), key=lambda x: x[1])
    protocols = sorted({(p, titles.get(p, p)) for _, _, p, _ in grouped}, key=lambda x: x[1])
    if rule is not None:  # a research reader does not filter (see _check_research_filters)
        conditions, protocols = [], []
    wanted = curves and state.durability_computed and rule is None
    found_curves = _curves(session, filters, zone, confidence) if wanted else {}
    results = []
    for definition in refresh.definitions():
        rows = [
            r
            for r in grouped
            if r[0] == definition.id
            and (filters.condition is None or r[1] == filters.condition)
            and (filters.protocol is None or r[2] == filters.protocol)
        ]

        def row(kind: str, key: str | None, label: str, cells: Sequence[Counts]) -> GroupRow:
            return GroupRow.of(
                kind, key, label, sum(cells, Counts()), confidence=confidence, lost=lost
            )

        by_condition: dict[str, list[Counts]] = {}
        by_protocol: dict[str, list[Counts]] = {}
        for _, c, p, counts in rows:
            by_condition.setdefault(c, []).append(counts)
            by_protocol.setdefault(p, []).append(counts)
        names = label_of if filters.split == "condition" else titles
        def_curves = [
            c if c.key is None else replace(c, label=names.get(c.key, c.key))
            for c in found_curves.get(definition.id, [])
        ]
        result = DefinitionResult(
            definition=definition,
            overall=row("all", None, "all patients shown", [r[3] for r in rows]),
            by_condition=tuple(
                row("condition", k, label_of.get(k, k), v)
                for k, v in sorted(by_condition.items(), key=lambda kv: label_of[kv[0]])
            ),
            by_protocol=tuple(
                row("protocol", k, titles.get(k, k), v)
                for k, v in sorted(by_protocol.items(), key=lambda kv: titles.get(kv[0], kv[0]))
            ),
            curves=tuple(def_curves),
        )
        results.append(result if rule is None else disclosure.research_view(result, rule))
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="analytics",
        at=now,
        detail={
            "view": "clinic outcomes"
            + (" and durability" if curves else "")
            + ("" if rule is None else " (research: consented patients, small counts withheld)"),
            **filters.as_dict(),
            "lost_after_days": window,
        },
    )
    notes = []
    if rule is not None:
        notes.append(
            "Research view: only the patients whose newest research consent decision is "
            f"'granted' are counted, and {rule.rule}. A figure withheld is marked "
            "'withheld'; durability curves, whose steps count patients, are not shown."
        )
    if state.notice:
        notes.append(state.notice)
    if cutoff is None:
        notes.append(
            "Lost to follow-up is not computed: the clinic has not set a follow-up window "
            "(site policy KETACARE_OUTCOME_LOST_AFTER_DAYS) and none was given in the filter."
        )
    return Dashboard(
        as_of=now,
        filters=filters,
        lost_after_days=window,
        lost_after_source=source,
        results=tuple(results),
        conditions=tuple(conditions),
        protocols=tuple(protocols),
        state=state,
        statistics=stats,
        notes=tuple(notes),
        research=rule,
    )
