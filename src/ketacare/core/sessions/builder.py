"""What each kind of session event does to the session being replayed.

Vitals and side effects open or count alerts against the session's thresholds (and
NEWS2), dosing events start, change, pause and stop the infusion or record doses under the
guards of :class:`~ketacare.core.sessions.accumulator.Accumulator`, and discharge scores,
escort and discharge follow the discharge rules.
"""

from __future__ import annotations

import dataclasses
from bisect import insort

from ketacare.core.instruments import score
from ketacare.core.sessions.accumulator import Accumulator, refuse, taken
from ketacare.core.sessions.discharge import discharge_status, record_vital_signs
from ketacare.core.sessions.events import (
    AcknowledgeAlert,
    Amendment,
    Bolus,
    CheckIn,
    Discharge,
    DischargeScore,
    EndSession,
    EscortConfirmed,
    Event,
    Medication,
    Pause,
    PreDoseCheck,
    RateChange,
    Resume,
    SelfAdministration,
    SideEffects,
    StartInfusion,
    Stop,
    Vitals,
)
from ketacare.core.sessions.news2 import News2Score, news2_for
from ketacare.core.sessions.rules import Threshold
from ketacare.core.sessions.setup import DISCHARGE_INSTRUMENT
from ketacare.core.sessions.state import (
    Alert,
    CheckRecord,
    RecordedScore,
    Segment,
)


class Builder(Accumulator):
    """The accumulator with a handler for every kind of event (used only by replay)."""

    def _on_check_in(self, event: CheckIn) -> None:
        self.checked_in_at = event.at

    def _on_pre_dose_check(self, event: PreDoseCheck) -> None:
        self.checks[event.item] = CheckRecord(
            event.item, event.ok, event.seq, event.at, event.by, event.detail
        )

    def _on_vitals(self, event: Vitals) -> None:
        if self.dosing_started_at is None and event.is_complete_baseline:
            self.baseline = event
        insort(self.vitals, event, key=taken)
        self._check_thresholds(event, {str(k): v for k, v in event.values().items()})
        self._news2(event)

    def _check_thresholds(self, event: Event, values: dict[str, float]) -> None:
        """Open an alert (or count a repeat breach) for every threshold ``values`` cross."""
        for threshold in self.setup.thresholds:
            if threshold.phase == "pre_dose" and self.dosing_started_at is not None:
                continue
            value = values.get(threshold.vital)
            if value is None or not threshold.breached_by(value):
                continue
            self._breach(event, threshold, value)

    def _news2(self, event: Vitals) -> None:
        """NEWS2 of a complete set; an urgent result alerts whatever the clinic's policy."""
        result = news2_for(event, scale=self.setup.news2_spo2_scale)
        if result is None:
            return
        insort(self.news2, result, key=lambda n: (n.at, n.seq))
        if not result.alerting or result.total is None:
            return
        self._breach(event, None, float(result.total), news2=result)

    def _breach(
        self,
        event: Event,
        threshold: Threshold | None,
        value: float,
        news2: News2Score | None = None,
    ) -> None:
        """Count a breach on the open alert of ``threshold`` (None: NEWS2), or open one."""
        for i, alert in enumerate(self.alerts):
            same = (
                alert.threshold is None
                if threshold is None
                else alert.threshold is not None and alert.threshold.id == threshold.id
            )
            if alert.is_open and same:
                self.alerts[i] = dataclasses.replace(
                    alert,
                    breaches=alert.breaches + 1,
                    last_value=value,
                    last_breach_at=max(alert.last_breach_at, event.at),
                )
                return
        self.alerts.append(
            Alert(
                id=f"{event.seq}/{'news2' if threshold is None else threshold.id}",
                threshold=threshold,
                opened_at=event.at,
                value=value,
                breaches=1,
                last_value=value,
                last_breach_at=event.at,
                news2=news2,
            )
        )

    def _on_side_effects(self, event: SideEffects) -> None:
        insort(self.side_effects, event, key=taken)
        if event.sedation_moaas is not None:
            self._check_thresholds(event, {"sedation_moaas": float(event.sedation_moaas)})

    def _on_medication(self, event: Medication) -> None:
        insort(self.medications, event, key=taken)

    def _on_start_infusion(self, event: StartInfusion) -> None:
        if not self.setup.is_infusion:
            raise refuse(
                event,
                self.state,
                f"this session's route is {self.setup.route}: record self-administration",
            )
        self._ready_to_dose(event)
        self._set_rate(event, event.rate_mg_per_h, event.override)
        self.segments.append(Segment(event.at, None, event.rate_mg_per_h))
        self.dosing_started_at = event.at

    def _on_self_administration(self, event: SelfAdministration) -> None:
        if self.setup.is_infusion:
            raise refuse(event, self.state, "this session is an infusion: start the infusion")
        if self.state == "pre_dose_checks":
            self._ready_to_dose(event)
        device = self.setup.device_mg
        if event.devices is not None:
            if device is None:
                raise refuse(event, self.state, "this session has no device size: give amount_mg")
            amount = event.devices * device
        else:
            assert event.amount_mg is not None
            if device is not None:
                raise refuse(
                    event,
                    self.state,
                    f"this session uses {device:g} mg devices: give the number of devices",
                )
            amount = event.amount_mg
        self._discrete(event, amount, self.setup.route, None)

    def _on_rate_change(self, event: RateChange) -> None:
        if not self.setup.is_infusion or not (self.segments or self.paused):
            raise refuse(event, self.state, "no infusion is running")
        self._set_rate(event, event.rate_mg_per_h, event.override)
        if not self.paused:
            self._close_segment(event.at)
            self.segments.append(Segment(event.at, None, event.rate_mg_per_h))

    def _on_pause(self, event: Pause) -> None:
        if not (self.segments and self.segments[-1].end is None):
            raise refuse(event, self.state, "no infusion is running to pause")
        self._close_segment(event.at)
        self.paused = True

    def _on_resume(self, event: Resume) -> None:
        if not self.paused:
            raise refuse(event, self.state, "the infusion is not paused")
        self.paused = False
        self.segments.append(Segment(event.at, None, self.rate))

    def _on_bolus(self, event: Bolus) -> None:
        if not self.setup.is_infusion:
            raise refuse(event, self.state, "a bolus needs an IV line (an infusion session)")
        self._discrete(event, event.amount_mg, "iv_bolus", event.override)

    def _on_stop(self, event: Stop) -> None:
        self._close_segment(event.at)
        self.paused = False
        self.dosing_ended_at = event.at
        self.stop = event

    def _on_acknowledge_alert(self, event: AcknowledgeAlert) -> None:
        for i, alert in enumerate(self.alerts):
            if alert.id == event.alert_id:
                if not alert.is_open:
                    raise refuse(event, self.state, f"alert {alert.id} is already acknowledged")
                self.alerts[i] = dataclasses.replace(alert, acknowledgement=event)
                return
        known = ", ".join(a.id for a in self.alerts if a.is_open) or "none"
        raise refuse(event, self.state, f"no alert {event.alert_id} (open alerts: {known})")

    def _on_discharge_score(self, event: DischargeScore) -> None:
        record = record_vital_signs(self.freeze((event,), {}))
        given = event.answers.get("vital_signs")
        if record is None:
            raise refuse(
                event,
                self.state,
                "the vital signs item cannot be checked against the record: no baseline "
                "blood pressure or heart rate was recorded",
            )
        if (
            isinstance(given, int | float)
            and given > record.score
            and not (event.vital_signs_reason.strip())
        ):
            raise refuse(
                event,
                self.state,
                f"vital signs scored {given:g} but the {record.describe()}: score it "
                f"{record.score} or give the reason for scoring it better",
            )
        result = score(DISCHARGE_INSTRUMENT, dict(event.answers))
        minimum = self.setup.discharge_score_min.value
        messages = tuple(str(d.get("message") or "") for d in result.flag_details)
        meets = result.total is not None and minimum is not None and result.total >= minimum
        self.scores.append(
            RecordedScore(
                event.seq,
                event.at,
                event.by,
                result.total,
                result.band,
                result.flags,
                messages,
                meets,
            )
        )
        self.scores.sort(key=lambda s: (s.at, s.seq))

    def _on_escort_confirmed(self, event: EscortConfirmed) -> None:
        self.escort_at = event.at

    def _on_discharge(self, event: Discharge) -> None:
        status = discharge_status(self.freeze((event,), {}), now=event.at)
        if not status.allowed:
            raise refuse(event, self.state, "discharge not allowed: " + "; ".join(status.reasons))
        self.finished_at = event.at
        self.discharge = event

    def _on_end_session(self, event: EndSession) -> None:
        if self.state == "dosing":
            self._close_segment(event.at)
            self.paused = False
            self.dosing_ended_at = event.at
        self.finished_at = event.at
        self.end = event

    def _on_amendment(self, event: Amendment) -> None:  # pragma: no cover - never effective
        raise AssertionError("amendments are resolved before replay")
