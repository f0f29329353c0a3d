"""Monitoring schedule and timers: what is due, what is overdue, how long things have run.

The vitals schedule is rolling: the next set is due one interval after the
later of the start of dosing and the last vitals taken. The interval is the
protocol's when sourced (``depression-iv``: every 10 min, Riva-Posse 2018),
otherwise the site's; in recovery the site's recovery interval when set,
otherwise the same interval continues. With no interval there is no schedule,
and :attr:`Schedule.notes` says so. Sourced one-off checks (esketamine: blood
pressure at about 40 min) are due at their time after the start of dosing and
are met by a reading with those vitals taken at or after that time.

A check is ``due`` from its due time and ``overdue`` once the site's
``overdue_after`` has also passed (unset: as soon as the due time has passed).

After a complete vitals set whose NEWS2 aggregate is 7 or more, the RCP's clinical
response is continuous monitoring of vital signs (RCP 2017, Chart 3): the schedule
then leads with that check, due from the reading, until a later complete set scores
below 7. No interval stands in for it (none is published).

Examples
--------
>>> from datetime import datetime, timedelta, UTC
>>> from ketacare.core.protocols import load_library
>>> from ketacare.core.sessions.events import Scheduled
>>> from ketacare.core.sessions.setup import session_setup
>>> from ketacare.core.sessions.replay import replay
>>> t0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
>>> setup = session_setup(protocol=load_library().get(protocol_id="crps-outpatient"),
...                       weight_kg=70)
>>> monitoring_schedule(replay([Scheduled(at=t0, by="a", seq=1, setup=setup)]), now=t0).notes
('the schedule starts when dosing starts',)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ketacare.core.errors import InvalidInput
from ketacare.core.instruments import get_instrument
from ketacare.core.sessions.discharge import timed_readings
from ketacare.core.sessions.dosing import infusion_time
from ketacare.core.sessions.news2 import news2_for, news2_rules
from ketacare.core.sessions.rules import PLAUSIBILITY
from ketacare.core.sessions.state import SessionState

CheckStatus = Literal["not_due", "due", "overdue"]


@dataclass(frozen=True, slots=True)
class DueCheck:
    """One expected check: when it is due, when it turns overdue, and its status now."""

    what: str
    due_at: datetime
    overdue_at: datetime
    status: CheckStatus
    basis: str
    #: a standing call (continuous monitoring after a high NEWS2): due until lifted
    continuous: bool = False


@dataclass(frozen=True, slots=True)
class Schedule:
    """The checks expected at ``now``, soonest first, and what cannot be scheduled."""

    now: datetime
    checks: tuple[DueCheck, ...]
    notes: tuple[str, ...]

    @property
    def next(self) -> DueCheck | None:
        """The soonest check (None when nothing is scheduled)."""
        return self.checks[0] if self.checks else None

    @property
    def overdue(self) -> tuple[DueCheck, ...]:
        """The checks past their overdue time."""
        return tuple(c for c in self.checks if c.status == "overdue")

    @property
    def behind(self) -> tuple[DueCheck, ...]:
        """The checks past their overdue time and any standing continuous monitoring."""
        return tuple(c for c in self.checks if c.status == "overdue" or c.continuous)


def _status(now: datetime, due: datetime, overdue: datetime) -> CheckStatus:
    if now < due:
        return "not_due"
    return "due" if now <= overdue else "overdue"


def _continuous_monitoring(state: SessionState) -> DueCheck | None:
    """The RCP's continuous monitoring, while the latest scored NEWS2 calls for it."""
    rules = news2_rules()
    for vitals in reversed(state.vitals):
        news2 = news2_for(vitals, scale=state.setup.news2_spo2_scale)
        if news2 is None or news2.total is None:
            continue  # an incomplete or unscored set neither starts nor ends it
        if rules.continuous_monitoring_flag not in news2.flags:
            return None
        flag = next(
            f
            for f in get_instrument(rules.instrument).flags
            if f.id == rules.continuous_monitoring_flag
        )
        what = f"continuous monitoring of vital signs (NEWS2 {news2.total})"
        return DueCheck(what, news2.at, news2.at, "due", f"sourced: {flag.message}", True)
    return None


def monitoring_schedule(state: SessionState, *, now: datetime) -> Schedule:
    """The vitals checks due or overdue at ``now`` (see the module docstring)."""
    if now.tzinfo is None:
        raise InvalidInput("now must be a timezone-aware datetime")
    setup = state.setup
    start = state.dosing_started_at
    if state.state in ("discharged", "stopped_early"):
        return Schedule(now, (), ("the session has ended",))
    if start is None or state.state not in ("dosing", "recovery"):
        return Schedule(now, (), ("the schedule starts when dosing starts",))
    grace = timedelta(minutes=setup.overdue_after.value or 0.0)
    notes: list[str] = []
    if not setup.overdue_after.is_set:
        notes.append(setup.overdue_after.describe())
    checks: list[DueCheck] = []
    interval = setup.vitals_interval
    if state.state == "recovery" and setup.recovery_vitals_interval.is_set:
        interval = setup.recovery_vitals_interval
    if interval.value is None:
        notes.append(interval.describe())
    else:
        last = max((v.at for v in state.vitals), default=start)
        due = max(start, last) + timedelta(minutes=interval.value)
        checks.append(
            DueCheck(
                "vitals", due, due + grace, _status(now, due, due + grace), interval.describe()
            )
        )
    continuous = _continuous_monitoring(state)
    if continuous is not None:
        checks.append(continuous)
    for timed in setup.timed_checks:
        due = start + timedelta(minutes=timed.minutes_after_dosing_start)
        met = any(
            v.at >= due and all(getattr(v, name) is not None for name in timed.vitals)
            for v in state.vitals
        )
        if not met:
            checks.append(
                DueCheck(
                    timed.text,
                    due,
                    due + grace,
                    _status(now, due, due + grace),
                    f"sourced: {timed.source}",
                )
            )
        elif timed.before_discharge and state.state == "recovery":
            met_at, again = timed_readings(state, timed)
            if again is None and met_at is not None:
                what = " and ".join(PLAUSIBILITY[name].label for name in timed.vitals)
                checks.append(
                    DueCheck(
                        f"{what} again before discharge",
                        met_at,
                        met_at,
                        "due",
                        "sourced: SPRAVATO REMS Patient Monitoring Form",
                    )
                )
    checks.sort(key=lambda c: c.due_at)
    return Schedule(now, tuple(checks), tuple(notes))


@dataclass(frozen=True, slots=True)
class Timers:
    """Elapsed times at ``now`` (None when the event has not happened)."""

    since_check_in: timedelta | None
    since_dosing_start: timedelta | None
    infusion_running: timedelta
    paused_for: timedelta | None
    since_dosing_end: timedelta | None
    observation_left: timedelta | None
    dosing_left: timedelta | None = None


def timers(state: SessionState, *, now: datetime) -> Timers:
    """The chair view's clocks, derived from the log.

    ``paused_for`` is the length of the current pause; ``observation_left``
    the time until the minimum observation ends (None when not set or dosing
    has not ended; zero once reached). ``dosing_left`` is the planned dosing
    time still to run: the plan's duration less the time dosed so far (for an
    infusion the time it ran, pauses excluded; otherwise the time since the
    first dose); the whole duration before dosing starts, zero once it has run,
    and None when the plan gives no duration or dosing has ended (it ends at stop).

    Examples
    --------
    >>> from datetime import datetime, timedelta, UTC
    >>> import dataclasses
    >>> from ketacare.core.protocols import load_library
    >>> from ketacare.core.sessions.events import Scheduled
    >>> from ketacare.core.sessions.setup import session_setup
    >>> from ketacare.core.sessions.replay import replay
    >>> t0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    >>> setup = dataclasses.replace(session_setup(
    ...     protocol=load_library().get(protocol_id="crps-outpatient"), weight_kg=70),
    ...     planned_duration_min=240)
    >>> state = replay([Scheduled(at=t0, by="a", seq=1, setup=setup)])
    >>> timers(state, now=t0 + timedelta(minutes=30)).dosing_left
    datetime.timedelta(seconds=14400)
    """
    if now.tzinfo is None:
        raise InvalidInput("now must be a timezone-aware datetime")
    end = state.finished_at or now

    def since(t: datetime | None) -> timedelta | None:
        return None if t is None else max(timedelta(0), min(now, end) - t)

    paused_for = None
    if state.paused and state.segments:
        paused_for = max(timedelta(0), now - (state.segments[-1].end or now))
    observation_left = None
    if state.dosing_ended_at is not None and state.setup.observation.value is not None:
        earliest = state.dosing_ended_at + timedelta(minutes=state.setup.observation.value)
        observation_left = max(timedelta(0), earliest - now)
    return Timers(
        since_check_in=since(state.checked_in_at),
        since_dosing_start=since(state.dosing_started_at),
        infusion_running=infusion_time(state, at=now),
        paused_for=paused_for,
        since_dosing_end=since(state.dosing_ended_at),
        observation_left=observation_left,
        dosing_left=_dosing_left(state, now=now),
    )


def _dosing_left(state: SessionState, *, now: datetime) -> timedelta | None:
    """The planned dosing time still to run at ``now`` (see :func:`timers`)."""
    planned = state.setup.planned_duration_min
    if planned is None or state.dosing_ended_at is not None or state.finished_at is not None:
        return None
    total = timedelta(minutes=planned)
    if state.dosing_started_at is None:
        return total
    if state.setup.is_infusion:
        done = infusion_time(state, at=now)
    else:
        done = max(timedelta(0), now - state.dosing_started_at)
    return max(timedelta(0), total - done)
