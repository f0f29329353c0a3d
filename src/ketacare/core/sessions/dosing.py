"""Delivered dose from the event history, and the live plasma estimate.

The delivered dose is never typed: it is the integral of the piecewise-constant
rate (mg/h between events; nothing while paused) plus every discrete dose
(boluses, observed self-administrations) up to the instant asked for. A running
infusion counts up to that instant, as the pump would.

Worked example (checked in the tests): 24.5 mg/h for 2 h, paused 15 min, then
20 mg/h for 1 h 45 min gives 24.5 x 2 + 20 x 1.75 = 49 + 35 = 84 mg.

Examples
--------
>>> from datetime import datetime, timedelta, UTC
>>> from ketacare.core.sessions.state import Segment
>>> t0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
>>> h = timedelta(hours=1)
>>> segs = (Segment(t0, t0 + 2 * h, 24.5), Segment(t0 + 2.25 * h, t0 + 4 * h, 20.0))
>>> delivered_from(segments=segs, discrete=(), at=t0 + 5 * h)
84.0
>>> delivered_from(segments=segs, discrete=(), at=t0 + h)
24.5
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ketacare.core.errors import InvalidInput
from ketacare.core.pharmacology import Model, Patient, parse_regimen, simulate
from ketacare.core.sessions.events import Event
from ketacare.core.sessions.replay import replay
from ketacare.core.sessions.state import DiscreteDose, Segment, SessionState
from ketacare.core.terminology.treatments import engine_route

_HOUR = timedelta(hours=1)


def _aware(at: datetime) -> None:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidInput("the time asked for must be a timezone-aware datetime")


def delivered_from(
    *, segments: Iterable[Segment], discrete: Iterable[DiscreteDose], at: datetime
) -> float:
    """mg delivered by ``at``: the rate integral of each segment plus discrete doses."""
    _aware(at)
    parts = [d.amount_mg for d in discrete if d.at <= at]
    for seg in segments:
        end = at if seg.end is None else min(seg.end, at)
        if end > seg.start:
            parts.append(seg.rate_mg_per_h * ((end - seg.start) / _HOUR))
    return math.fsum(parts)


def delivered_mg(state: SessionState, *, at: datetime) -> float:
    """The dose delivered by ``at`` (mg), from the session's rate history and discrete doses."""
    return delivered_from(segments=state.segments, discrete=state.discrete_doses, at=at)


def delivered_mg_per_kg(state: SessionState, *, at: datetime) -> float:
    """The dose delivered by ``at`` per kg of the session's weight."""
    return delivered_mg(state, at=at) / state.setup.weight_kg


def infusion_time(state: SessionState, *, at: datetime) -> timedelta:
    """How long the infusion has actually run by ``at`` (pauses excluded)."""
    _aware(at)
    total = timedelta(0)
    for seg in state.segments:
        end = at if seg.end is None else min(seg.end, at)
        if end > seg.start:
            total += end - seg.start
    return total


def session_regimen(
    state: SessionState, *, at: datetime, origin: datetime | None = None
) -> dict[str, Any]:
    """What was given by ``at``, as a design-document regimen (``{"doses": [...]}``).

    Times are hours from ``origin`` (default: the start of dosing). Each
    constant-rate stretch is one ``iv_infusion`` with ``rate_mg_per_h``;
    boluses are ``iv_bolus``; self-administrations use the engine's route for
    the session's route (esketamine nasal spray -> ``intranasal``).
    """
    _aware(at)
    start = origin or state.dosing_started_at
    doses: list[tuple[float, dict[str, Any]]] = []
    if start is None:
        return {"doses": []}
    for seg in state.segments:
        end = at if seg.end is None else min(seg.end, at)
        if end <= seg.start:
            continue
        start_h = (seg.start - start) / _HOUR
        doses.append(
            (
                start_h,
                {
                    "route": "iv_infusion",
                    "start_h": start_h,
                    "duration_h": (end - seg.start) / _HOUR,
                    "rate_mg_per_h": seg.rate_mg_per_h,
                },
            )
        )
    for dose in state.discrete_doses:
        if dose.at > at:
            continue
        start_h = (dose.at - start) / _HOUR
        route = engine_route(dose.route)
        doses.append((start_h, {"route": route, "start_h": start_h, "amount_mg": dose.amount_mg}))
    doses.sort(key=lambda pair: pair[0])
    return {"doses": [d for _, d in doses]}


@dataclass(frozen=True, slots=True)
class LiveConcentration:
    """The model's plasma (and effect-site) estimate now, and a short forecast.

    ``forecast_h`` are hours after ``at``. ``if_continued`` assumes the current
    rate runs on unchanged through the forecast (equal to ``if_stopped`` when
    nothing is running); ``if_stopped`` assumes nothing more is given.
    """

    model_id: str
    at: datetime
    elapsed_h: float
    plasma_ng_per_ml: float
    effect_ng_per_ml: Mapping[str, float]
    forecast_h: tuple[float, ...]
    if_continued_ng_per_ml: tuple[float, ...]
    if_stopped_ng_per_ml: tuple[float, ...]
    regimen: Mapping[str, Any]
    warnings: tuple[str, ...] = ()


def _molecule(name: str) -> str:
    return name.replace("_", " ").strip().lower()


def live_concentration(
    events: Iterable[Event],
    *,
    model: Model,
    patient: Patient,
    at: datetime,
    forecast_h: float = 1.0,
    step_min: float = 5.0,
) -> LiveConcentration:
    """Estimated plasma concentration at ``at`` and a forecast, from the session's log.

    The doses given so far (:func:`session_regimen`) are simulated with
    :func:`ketacare.core.pharmacology.simulate` on a grid that has ``at`` as one
    of its points; the forecast covers ``forecast_h`` hours after ``at`` with
    about ``step_min`` minutes between points.

    Raises
    ------
    InvalidInput
        The model describes another molecule than the session gives, or a
        forecast or step that is not positive.
    """
    _aware(at)
    state = replay(tuple(events))
    if _molecule(model.molecule) != _molecule(state.setup.molecule):
        raise InvalidInput(
            f"model {model.id} describes {model.molecule}; this session gives "
            f"{state.setup.molecule.replace('_', ' ')}"
        )
    if not (math.isfinite(forecast_h) and forecast_h > 0):
        raise InvalidInput(f"forecast_h must be more than 0 h, got {forecast_h!r}")
    if not (math.isfinite(step_min) and step_min > 0):
        raise InvalidInput(f"step_min must be more than 0 min, got {step_min!r}")
    given = session_regimen(state, at=at)
    start = state.dosing_started_at
    elapsed_h = 0.0 if start is None or at <= start else (at - start) / _HOUR
    elapsed_min = elapsed_h * 60.0
    n_past = max(1, math.ceil(elapsed_min / step_min - 1e-9)) if elapsed_min > 0 else 0
    step = elapsed_min / n_past if n_past else step_min
    n_future = max(1, math.ceil(forecast_h * 60.0 / step - 1e-9))
    forecast = tuple((k + 1) * step / 60.0 for k in range(n_future))
    if not given["doses"]:
        zeros = tuple(0.0 for _ in forecast)
        return LiveConcentration(
            model.id, at, elapsed_h, 0.0, {}, forecast, zeros, zeros, given, ()
        )
    hours = (n_past + n_future) * step / 60.0
    continued = {"doses": list(given["doses"])}
    if state.infusing and state.segments[-1].start <= at:
        continued["doses"].append(
            {
                "route": "iv_infusion",
                "start_h": elapsed_h,
                "duration_h": hours - elapsed_h,
                "rate_mg_per_h": state.rate_mg_per_h,
            }
        )
    weight = patient.weight_kg
    stopped_sim = simulate(
        model=model,
        patient=patient,
        regimen=parse_regimen(given, weight_kg=weight),
        hours=hours,
        step_min=step,
    )
    if len(continued["doses"]) != len(given["doses"]):
        continued_sim = simulate(
            model=model,
            patient=patient,
            regimen=parse_regimen(continued, weight_kg=weight),
            hours=hours,
            step_min=step,
        )
    else:
        continued_sim = stopped_sim
    now_index = n_past
    effects = {
        name: float(curve[now_index]) for name, curve in stopped_sim.effect_ng_per_ml.items()
    }
    future = slice(now_index + 1, now_index + 1 + n_future)
    return LiveConcentration(
        model_id=model.id,
        at=at,
        elapsed_h=elapsed_h,
        plasma_ng_per_ml=float(stopped_sim.plasma_ng_per_ml[now_index]),
        effect_ng_per_ml=effects,
        forecast_h=forecast,
        if_continued_ng_per_ml=tuple(float(x) for x in continued_sim.plasma_ng_per_ml[future]),
        if_stopped_ng_per_ml=tuple(float(x) for x in stopped_sim.plasma_ng_per_ml[future]),
        regimen=given,
        warnings=stopped_sim.warnings,
    )
