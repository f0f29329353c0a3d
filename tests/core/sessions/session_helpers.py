"""Shared session builders: a chair that appends events the way the shell will.

Imported by the session tests as ``core.sessions.session_helpers``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ketacare.core.protocols import load_library
from ketacare.core.sessions import (
    CheckIn,
    Event,
    PreDoseCheck,
    Scheduled,
    SessionPolicy,
    SessionSetup,
    SessionState,
    StartInfusion,
    Vitals,
    advance,
    append,
    replay,
    session_setup,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """T0 plus ``minutes``."""
    return T0 + timedelta(minutes=minutes)


BASELINE = {"sbp_mmhg": 128, "dbp_mmhg": 76, "hr_per_min": 72, "spo2_pct": 98, "rr_per_min": 14}


def setup_for(protocol_id: str, *, weight_kg: float = 70, **kwargs: Any) -> SessionSetup:
    return session_setup(
        protocol=load_library().get(protocol_id=protocol_id), weight_kg=weight_kg, **kwargs
    )


class Chair:
    """A session log built through :func:`append`, as two nurses at a chair would."""

    def __init__(self, setup: SessionSetup) -> None:
        self.setup = setup
        self.log: tuple[Event, ...] = append(
            (), Scheduled(at=T0, by="admin", setup=setup), expected_seq=0
        )

    def add(self, event: Event) -> Chair:
        """Append through :func:`append`, and check :func:`advance` agrees with it.

        Every session test thereby also checks that moving the previous state on by
        one entry gives exactly what replaying the whole longer log gives, or the
        same refusal.
        """
        before = replay(self.log)
        try:
            log = append(self.log, event, expected_seq=len(self.log))
        except Exception as exc:
            try:
                advance(before, event, expected_seq=len(self.log))
            except type(exc) as again:
                assert str(again) == str(exc)
            else:
                raise AssertionError(f"advance accepted what append refused: {exc}") from exc
            raise
        assert advance(before, event, expected_seq=len(self.log)) == replay(log)
        self.log = log
        return self

    @property
    def state(self) -> SessionState:
        return replay(self.log)

    def ready(self, minute: float = 5, **vitals: float) -> Chair:
        """Check in, baseline vitals and every required pre-dose check, passed."""
        self.add(CheckIn(at=at(minute - 4), by="nurse1"))
        self.add(Vitals(at=at(minute - 3), by="nurse1", **{**BASELINE, **vitals}))
        for item in self.setup.required_checks:
            if item != "baseline_vitals":
                detail = "lot K-1234" if item == "medication_lot" else ""
                self.add(
                    PreDoseCheck(at=at(minute), by="nurse1", item=item, ok=True, detail=detail)
                )
        return self

    def infusing(self, rate: float = 24.5, minute: float = 10) -> Chair:
        self.ready()
        return self.add(StartInfusion(at=at(minute), by="nurse1", rate_mg_per_h=rate))


def chair(protocol_id: str = "crps-outpatient", *, policy: SessionPolicy | None = None) -> Chair:
    """A new chair for a session of ``protocol_id``."""
    return Chair(setup_for(protocol_id, policy=policy))
