"""Infusion and supervised-dosing sessions: an append-only event log and what follows from it.

A session is a state machine (:mod:`~ketacare.core.sessions.machine`) driven
by events (:mod:`~ketacare.core.sessions.events`). Everything the chair view
shows is derived from the log by :func:`replay`: the state, the delivered dose
(:func:`delivered_mg`), the rate, pauses, alerts, the monitoring schedule
(:func:`monitoring_schedule`), the timers (:func:`timers`) and whether the
patient may leave (:func:`can_discharge`). :func:`live_concentration` gives the
pharmacology engine's plasma estimate for what has been given.

Numbers come from sources or from site policy, never from here: an unset
site-policy slot means no automatic alert, no schedule or no minimum, and is
reported (:meth:`SessionSetup.unset`). Nothing here imports the web, the
database or the CLI, or reads the clock.

Examples
--------
>>> from datetime import datetime, timedelta, UTC
>>> from ketacare.core.protocols import load_library
>>> t0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
>>> m = lambda minutes: t0 + timedelta(minutes=minutes)
>>> setup = session_setup(protocol=load_library().get(protocol_id="crps-outpatient"),
...                       weight_kg=70)
>>> log = append((), Scheduled(at=t0, by="admin", setup=setup), expected_seq=0)
>>> log = append(log, CheckIn(at=m(1), by="nurse1"), expected_seq=1)
>>> log = append(log, Vitals(at=m(2), by="nurse1", sbp_mmhg=128, dbp_mmhg=76,
...                          hr_per_min=72, spo2_pct=98, rr_per_min=14), expected_seq=2)
>>> for item in setup.required_checks[1:]:
...     log = append(log, PreDoseCheck(at=m(3), by="nurse1", item=item, ok=True,
...                                    detail="lot K123"), expected_seq=len(log))
>>> log = append(log, StartInfusion(at=m(10), by="nurse1", rate_mg_per_h=24.5),
...              expected_seq=len(log))
>>> state = replay(log)
>>> state.state, state.rate_mg_per_h, delivered_mg(state, at=m(70))
('dosing', 24.5, 24.5)
"""

from ketacare.core.errors import IllegalTransition, StaleSession
from ketacare.core.sessions.discharge import (
    DischargeStatus,
    RecordVitalSigns,
    VitalChange,
    can_discharge,
    change_from_baseline,
    discharge_status,
    record_vital_signs,
)
from ketacare.core.sessions.dosing import (
    LiveConcentration,
    delivered_from,
    delivered_mg,
    delivered_mg_per_kg,
    infusion_time,
    live_concentration,
    session_regimen,
)
from ketacare.core.sessions.events import (
    ALERT_ACTIONS,
    EVENT_TYPES,
    STOP_REASONS,
    AcknowledgeAlert,
    Amendment,
    Bolus,
    CheckIn,
    Discharge,
    DischargeScore,
    EndSession,
    EscortConfirmed,
    Event,
    LimitOverride,
    Medication,
    Pause,
    PreDoseCheck,
    RateChange,
    Resume,
    Scheduled,
    SelfAdministration,
    SideEffects,
    StartInfusion,
    Stop,
    Vitals,
)
from ketacare.core.sessions.machine import (
    FINAL_STATES,
    MOVES,
    STATES,
    TRANSITIONS,
    Move,
    State,
    allowed_moves,
    transition,
)
from ketacare.core.sessions.monitoring import (
    DueCheck,
    Schedule,
    Timers,
    monitoring_schedule,
    timers,
)
from ketacare.core.sessions.orders import (
    MonitoringOrder,
    apply_order,
    monitoring_order,
    needs_order,
)
from ketacare.core.sessions.replay import advance, append, replay
from ketacare.core.sessions.rules import (
    CHECK_ITEMS,
    PLAUSIBILITY,
    VITALS,
    Bound,
    Threshold,
    TimedCheck,
    load_session_rules,
)
from ketacare.core.sessions.serialize import event_from_dict, event_to_dict
from ketacare.core.sessions.setup import (
    Limit,
    SessionSetup,
    Setting,
    discharge_criterion,
    session_setup,
)
from ketacare.core.sessions.site_policy import (
    MonitoringPolicy,
    SessionPolicy,
    load_session_policy,
    parse_session_policy,
)
from ketacare.core.sessions.state import (
    Alert,
    CheckRecord,
    DiscreteDose,
    RecordedScore,
    Segment,
    SessionState,
)

__all__ = [
    "ALERT_ACTIONS",
    "AcknowledgeAlert",
    "Alert",
    "Amendment",
    "Bolus",
    "Bound",
    "CHECK_ITEMS",
    "CheckIn",
    "CheckRecord",
    "Discharge",
    "DischargeScore",
    "DischargeStatus",
    "DiscreteDose",
    "DueCheck",
    "EVENT_TYPES",
    "EndSession",
    "EscortConfirmed",
    "Event",
    "FINAL_STATES",
    "IllegalTransition",
    "Limit",
    "LimitOverride",
    "LiveConcentration",
    "MOVES",
    "Medication",
    "MonitoringOrder",
    "MonitoringPolicy",
    "Move",
    "PLAUSIBILITY",
    "Pause",
    "PreDoseCheck",
    "RateChange",
    "RecordVitalSigns",
    "RecordedScore",
    "Resume",
    "STATES",
    "STOP_REASONS",
    "Schedule",
    "Scheduled",
    "Segment",
    "SelfAdministration",
    "SessionPolicy",
    "SessionSetup",
    "SessionState",
    "Setting",
    "SideEffects",
    "StaleSession",
    "StartInfusion",
    "State",
    "Stop",
    "TRANSITIONS",
    "Threshold",
    "TimedCheck",
    "Timers",
    "VITALS",
    "VitalChange",
    "Vitals",
    "advance",
    "allowed_moves",
    "append",
    "apply_order",
    "can_discharge",
    "change_from_baseline",
    "delivered_from",
    "delivered_mg",
    "delivered_mg_per_kg",
    "discharge_criterion",
    "discharge_status",
    "event_from_dict",
    "event_to_dict",
    "infusion_time",
    "live_concentration",
    "load_session_policy",
    "load_session_rules",
    "monitoring_order",
    "monitoring_schedule",
    "needs_order",
    "parse_session_policy",
    "record_vital_signs",
    "replay",
    "session_regimen",
    "session_setup",
    "timers",
    "transition",
]
