"""The outcome panel of the patient chart: measures over sessions, doses, the status line.

What the panel shows, for one patient (the read is audited as ``read`` of ``outcomes``):

- **Measures over time**: pain intensity (NRS), pain interference (BPI-SF sub-score),
  depression (PHQ-9), anxiety (GAD-7) and global impression of change (PGIC), as
  recorded by staff or by the patient through a self-report link. Every point carries
  its change from baseline (absolute and percent) and the response or remission
  definitions it meets, from :func:`ketacare.core.outcomes.trajectory`; the baseline is
  the last score at or before the first session given. A measure without scores says so.
- **Sessions given** as bars on a second axis: the dose the session log says was
  delivered (to the end of dosing, or so far while dosing).
- **Response thresholds**: where a definition applies to the patient's baseline, the
  score that meets it (e.g. a 30% reduction from a pain baseline of 8 is 5.6 or below;
  PHQ-9 remission is below 5), drawn as a dashed line. Definitions are data with
  sources (``core/outcomes/data``); the panel lists the citations.
- **Dissociation**: what the chair recorded in the session's side-effect entries
  (present or absent). The CADSS has no sourced scoring, so no dissociation score exists
  and none is drawn; sessions without a rating say "not recorded".
- **Status line** from :func:`ketacare.core.outcomes.patient_status`, in plain words with
  the clinic's local dates: "responder since 3 March 2026 (pain >=30%); PHQ-9 remission
  since 10 March 2026; booster suggested". It needs the clinic's
  ``KETACARE_OUTCOME_LOSS_CONFIRMATIONS`` (no published number exists); unset, the status
  says so instead of guessing. Booster rules are clinic-set too (:class:`BoosterRule`,
  read from ``KETACARE_OUTCOME_POLICY_FILE`` by :mod:`ketacare.clinic.outcomes.policy`);
  without one the line says the booster threshold is not set.
- **Booster suggestions** per measure, with the score that raised each and the standing
  decision on it (:mod:`ketacare.clinic.outcomes.boosters`): a physician accepts ("booster
  accepted by <name> on <date>" in the status line) or dismisses (with a reason) from
  the panel.

The page draws the charts with Chart.js from the panel's JSON (``static/app.js``); the
same JSON is served at ``GET /api/v1/patients/{id}/outcomes``. Scores and sessions are
gathered by :mod:`ketacare.clinic.outcomes.record`, which the progress report uses too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.outcomes import schemas
from ketacare.clinic.outcomes.boosters import DecisionRow, decision_rows, standing
from ketacare.clinic.outcomes.policy import booster_rules as clinic_booster_rules
from ketacare.clinic.outcomes.record import (
    MEASURES,
    BoosterLine,
    Measure,
    OutcomeRecord,
    gather,
    local_date,
    local_time,
    status_line,
)
from ketacare.clinic.patients.service import get_patient
from ketacare.core.instruments import get_instrument
from ketacare.core.outcomes import (
    BoosterRule,
    Definition,
    Sessions,
    load_definitions,
    trajectory,
)
from ketacare.infra.permissions import allowed
from ketacare.infra.settings import Settings

DISSOCIATION_NOTE = (
    "no dissociation score: the CADSS has no sourced scoring in ketacare, so only what the "
    "chair recorded (present or absent) is shown"
)


def measure_scale(measure: Measure) -> tuple[float, float]:
    """The measure's range, from the instrument's own response options."""
    instrument = get_instrument(measure.instrument)
    if measure.field == "total":
        items = [i for i in instrument.items if i.scored and i.options]
        return (
            float(sum(min(o.value for o in i.options) for i in items)),
            float(sum(max(o.value for o in i.options) for i in items)),
        )
    subscale = next(s for s in instrument.subscales if s.id == measure.field)
    values = [o.value for i in instrument.items if i.id in subscale.items for o in i.options]
    return float(min(values)), float(max(values))


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _ms(value: datetime) -> int:
    return int(round(value.timestamp() * 1000))


def _definition(d: Definition, baseline: float | None) -> schemas.DefinitionView:
    sources = [s.citation + (f" doi:{s.doi}" if s.doi else "") for s in d.sources]
    if baseline is None:
        ok, reason = False, "no baseline (no score at or before the first session)"
    elif not bool(d.eligible([baseline])[0]):
        ok = False
        reason = (
            f"baseline {baseline:g} is not above {d.baseline_above:g}"
            if d.baseline_above is not None and baseline <= d.baseline_above
            else f"baseline {baseline:g} gives no percentage"
        )
    else:
        ok, reason = True, ""
    line: float | None = None
    text = f"not assessed: {reason}"
    if ok and baseline is not None:
        if d.kind == "percent_reduction":
            line = baseline * (1 - d.threshold / 100.0)
            text = f"at or below {line:.3g} ({d.threshold:g}% below the baseline {baseline:g})"
        else:
            line = d.threshold
            text = f"below {d.threshold:g}"
    return schemas.DefinitionView(
        id=d.id,
        short=d.short,
        label=d.label,
        role=d.role,
        kind=d.kind,
        threshold=d.threshold,
        assessable=ok,
        reason=reason,
        line=line,
        line_text=text,
        sources=sources,
    )


def _measure(
    measure: Measure, record: OutcomeRecord, sessions: Sessions, zone: ZoneInfo
) -> schemas.MeasureView:
    low, high = measure_scale(measure)
    scores = record.scores.get(measure.id, ())
    library = load_definitions()
    definitions = library.for_measure(measure=measure.id)

    def view(
        points: list[schemas.PointView], baseline: float | None, local: str | None, note: str
    ) -> schemas.MeasureView:
        return schemas.MeasureView(
            id=measure.id,
            label=measure.label,
            short=measure.short,
            instrument=measure.instrument,
            scale_min=low,
            scale_max=high,
            points=points,
            baseline=baseline,
            baseline_local=local,
            definitions=[_definition(d, baseline) for d in definitions],
            note=note,
        )

    if not scores:
        return view([], None, None, f"No {measure.short} score recorded.")
    series = next(s for s in record.series() if s.measure == measure.id)
    tr = trajectory(series=series, sessions=sessions, library=library)
    points = []
    for i, score in enumerate(scores):
        points.append(
            schemas.PointView(
                assessment_id=score.assessment_id,
                at=score.at,
                local=local_time(score.at, zone),
                t_ms=_ms(score.at),
                value=float(tr.value[i]),
                phase=tr.phase[i],
                after_session=int(tr.sessions_before[i]),
                change=_finite(float(tr.change[i])),
                change_percent=_finite(float(tr.change_percent[i])),
                met=[d for d, flags in tr.met.items() if bool(flags[i])],
                source=score.source,
            )
        )
    base = tr.baseline
    base_index = tr.phase.index("baseline") if "baseline" in tr.phase else None
    return view(
        points,
        None if base is None else base.value,
        None if base_index is None else points[base_index].local,
        ""
        if record.given
        else "No session given yet: change from baseline starts with the first session.",
    )


def decision_view(d: DecisionRow, zone: ZoneInfo) -> schemas.DecisionView:
    """A stored decision in its API shape."""
    r = d.row
    return schemas.DecisionView(
        id=r.id,
        patient_id=r.patient_id,
        measure=r.measure,
        assessment_id=r.assessment_id,
        score_value=r.score_value,
        decision=r.decision,  # the table's CHECK allows only these
        note=r.note,
        decided_by=r.decided_by,
        decided_by_name=d.by,
        decided_at=r.decided_at,
        decided_local=local_date(r.decided_at, zone),
        supersedes=r.supersedes_id,
        superseded_by=d.superseded_by,
        basis=dict(r.basis),
    )


def _booster(b: BoosterLine, rows: dict[int, DecisionRow], zone: ZoneInfo) -> schemas.BoosterView:
    decided = rows.get(b.decided.id) if b.decided is not None else None
    return schemas.BoosterView(
        measure=b.measure,
        label=b.label,
        state=b.state,  # the core's BoosterState values
        pending=b.pending,
        messages=list(b.messages),
        rules=[
            schemas.BoosterRuleView(
                definition_id=r.definition_id, kind=r.kind, threshold=r.threshold, set_by=r.set_by
            )
            for r in b.rules
        ],
        assessment_id=b.score.assessment_id if b.score else None,
        score=b.score.value if b.score else None,
        score_local=local_time(b.score.at, zone) if b.score else None,
        decision=decision_view(decided, zone) if decided is not None else None,
    )


def build_panel(
    *,
    record: OutcomeRecord,
    now: datetime,
    zone: ZoneInfo,
    loss_confirmations: int | None,
    booster_rules: Sequence[BoosterRule] = (),
    decisions: Sequence[DecisionRow] = (),
) -> schemas.OutcomePanel:
    """The panel from a gathered record and the booster decisions (no database, no audit)."""
    sessions = record.sessions()
    line = status_line(
        record=record,
        loss_confirmations=loss_confirmations,
        booster_rules=booster_rules,
        zone=zone,
        decisions=standing(decisions),
    )
    by_id = {d.row.id: d for d in decisions}
    given = [
        schemas.SessionView(
            number=n,
            session_id=g.session_id,
            plan_id=g.plan_id,
            plan_session=g.session_number,
            at=g.started_at,
            local=local_time(g.started_at, zone),
            t_ms=_ms(g.started_at),
            dose_mg=round(g.dose_mg, 3),
            state=g.state,
            ongoing=g.ongoing,
            dissociation=g.dissociation,
        )
        for n, g in enumerate(record.given, start=1)
    ]
    rated = [g for g in record.given if g.dissociation is not None]
    present = sum(1 for g in rated if g.dissociation)
    if not record.given:
        note = f"No session given yet; {DISSOCIATION_NOTE}."
    elif not rated:
        where = (
            "the session given"
            if len(record.given) == 1
            else f"any of the {len(record.given)} sessions given"
        )
        note = f"Dissociation not recorded in {where}; {DISSOCIATION_NOTE}."
    else:
        note = (
            f"Dissociation recorded in {len(rated)} of {len(record.given)} sessions given, "
            f"present in {present}; {DISSOCIATION_NOTE}."
        )
    return schemas.OutcomePanel(
        patient_id=record.patient_id,
        zone=zone.key,
        as_of=now,
        status=schemas.StatusView(
            computed=line.computed,
            text=line.text,
            parts=list(line.parts),
            notes=list(line.notes),
            loss_confirmations=loss_confirmations,
        ),
        measures=[_measure(m, record, sessions, zone) for m in MEASURES],
        sessions=given,
        dissociation=schemas.DissociationView(recorded=len(rated), present=present, note=note),
        boosters=[_booster(b, by_id, zone) for b in line.boosters],
    )


def outcome_panel(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    now: datetime,
    zone: ZoneInfo,
    loss_confirmations: int | None,
    booster_rules: Sequence[BoosterRule] = (),
) -> schemas.OutcomePanel:
    """One patient's outcome panel (audited read; :class:`NotFound` for an unknown patient)."""
    get_patient(session=session, patient_id=patient_id)
    record = gather(session=session, patient_id=patient_id, now=now)
    decisions = decision_rows(session=session, patient_id=patient_id)
    audit.read_patient(
        patient_id,
        session=session,
        actor=actor,
        at=now,
        resource_type="outcomes",
        detail={
            "scores": sum(len(v) for v in record.scores.values()),
            "sessions": len(record.given),
        },
    )
    return build_panel(
        record=record,
        now=now,
        zone=zone,
        loss_confirmations=loss_confirmations,
        booster_rules=booster_rules,
        decisions=decisions,
    )


def panel_for_chart(
    *, session: Session, actor: audit.Actor, patient_id: int, now: datetime, settings: Settings
) -> schemas.OutcomePanel | None:
    """The panel for the chart page, or None when the viewer's role may not read outcomes.

    The caller has already checked that the viewer may open this patient's chart.
    """
    if not allowed("outcome:read", actor.role):
        return None
    return outcome_panel(
        session=session,
        actor=actor,
        patient_id=patient_id,
        now=now,
        zone=settings.zone,
        loss_confirmations=settings.outcome_loss_confirmations,
        booster_rules=clinic_booster_rules(settings),
    )
