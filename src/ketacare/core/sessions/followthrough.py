"""An alert acknowledged with a change to the infusion that the log does not show yet.

Acknowledging an alert records the decision (reduce the rate, pause, stop). The change
itself is an entry of its own (a rate change, a pause, the stop), because the pump is
set by hand and the log must say what it runs at: the dose given is computed from those
entries. Until the entry follows, the chair shows the decision as not yet carried out;
otherwise the record would go on counting the dose at the old rate while the nurse
believes the infusion stopped.

Examples
--------
>>> from datetime import UTC, datetime
>>> from ketacare.core.sessions.events import AcknowledgeAlert
>>> ack = AcknowledgeAlert(at=datetime(2026, 3, 2, 10, 40, tzinfo=UTC), by="nurse",
...                        alert_id="7/sbp_high", action="stop", seq=9)
>>> follows(ack, kinds_after=frozenset({"vitals"}), infusing=True)
True
>>> follows(ack, kinds_after=frozenset({"stop"}), infusing=False)
False
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ketacare.core.sessions.events import AcknowledgeAlert
from ketacare.core.sessions.state import SessionState

__all__ = ["CARRIED_OUT_BY", "Pending", "follows", "not_carried_out"]

#: the entries that carry out each action an alert can be acknowledged with
CARRIED_OUT_BY: dict[str, frozenset[str]] = {
    "reduce_rate": frozenset({"rate_change", "pause", "stop"}),
    "pause": frozenset({"pause", "stop"}),
    "stop": frozenset({"stop"}),
}


@dataclass(frozen=True, slots=True)
class Pending:
    """An acknowledgement whose change to the infusion is not in the log yet."""

    alert_id: str
    action: str
    acknowledged_at: datetime
    acknowledged_by: str


def follows(ack: AcknowledgeAlert, *, kinds_after: frozenset[str], infusing: bool) -> bool:
    """Whether ``ack`` still waits for its change: an action that changes the infusion,
    the infusion still running, and no entry after it that carries the action out."""
    carried_by = CARRIED_OUT_BY.get(ack.action)
    return carried_by is not None and infusing and not (kinds_after & carried_by)


def not_carried_out(state: SessionState) -> tuple[Pending, ...]:
    """The session's acknowledgements still waiting for their change, oldest first."""
    pending = []
    for alert in state.alerts:
        ack = alert.acknowledgement
        if ack is None:
            continue
        after = frozenset(e.kind for e in state.effective if e.seq > ack.seq)
        # a stop waits while dosing goes on (paused or not); a new rate or a pause waits
        # while the pump runs
        running = state.state == "dosing" if ack.action == "stop" else state.infusing
        if follows(ack, kinds_after=after, infusing=running):
            pending.append(Pending(alert.id, ack.action, ack.at, ack.by))
    return tuple(sorted(pending, key=lambda p: p.acknowledged_at))
