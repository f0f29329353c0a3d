"""The printable session record as PDF (matplotlib: no extra dependency, no browser)."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from ketacare.clinic.sessions.schemas import SessionView  # noqa: E402
from ketacare.clinic.sessions.words import describe_entry  # noqa: E402
from ketacare.core.sessions import VITALS  # noqa: E402

LABELS = {
    "sbp_mmhg": "SBP",
    "dbp_mmhg": "DBP",
    "hr_per_min": "HR",
    "spo2_pct": "SpO2",
    "rr_per_min": "RR",
    "temperature_c": "Temp",
}


def _lines(
    row: Any, state: Any, patient: Any, view: SessionView, zone: ZoneInfo, generated_at: datetime
) -> list[str]:
    local = lambda t: t.astimezone(zone).strftime("%Y-%m-%d %H:%M")  # noqa: E731
    lines = [
        f"Session {row.id} - plan {row.plan_id}, session {row.session_number}",
        f"Patient: {patient.family_name}, {patient.given_name} (MRN {patient.mrn}, born "
        f"{patient.birth_date.isoformat()})",
        f"State: {state.state}; delivered {view['delivered_mg']:g} mg; "
        f"generated {local(generated_at)} ({zone.key})",
        "",
        "Monitoring order (value, who set it, origin):",
    ]
    lines += [f"  {line}" for line in view["order"]] or ["  none in force for this session"]
    lines += ["", "Events (who, when, what):"]
    for event in state.events:
        text = describe_entry(event, state=state)
        lines += _wrapped(f"  #{event.seq:<3} {local(event.at)}  {event.by:<12} {text}")
    if view["alerts"]:
        lines += ["", "Alerts:"]
        for alert in view["alerts"]:
            ack = (
                f"acknowledged by {alert['acknowledged_by']}: {alert['action']}"
                if not alert["open"]
                else "NOT ACKNOWLEDGED"
            )
            lines += _wrapped(f"  {local(alert['opened_at'])} {alert['message']} - {ack}")
    if state.discharge is not None:
        lines += [
            "",
            f"Discharged {local(state.discharge.at)} by {state.discharge.by}: "
            f"{state.discharge.instructions}",
        ]
    elif state.state in ("discharged", "stopped_early"):
        lines += ["", f"Ended: {state.state.replace('_', ' ')}"]
    else:
        reasons = "; ".join(view["discharge"]["reasons"])
        lines += [
            "",
            "Discharge: " + ("allowed" if view["discharge"]["allowed"] else f"not yet: {reasons}"),
        ]
    return lines


def _wrapped(line: str, width: int = 130) -> list[str]:
    """A long line as several (the page is monospace text), continuation lines indented."""
    out = []
    while len(line) > width:
        cut = line.rfind(" ", 0, width)
        cut = width if cut <= 8 else cut
        out.append(line[:cut])
        line = "        " + line[cut:].lstrip()
    return [*out, line]


def summary_pdf(
    *,
    row: Any,
    state: Any,
    patient: Any,
    view: SessionView,
    zone: ZoneInfo,
    generated_at: datetime,
) -> bytes:
    """Two or more A4 pages: the record as text, then the vitals chart."""
    buffer = io.BytesIO()
    lines = _lines(row, state, patient, view, zone, generated_at)
    with PdfPages(buffer) as pdf:
        per_page = 60
        for start in range(0, max(len(lines), 1), per_page):
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(
                0.06,
                0.97,
                "\n".join(lines[start : start + per_page]),
                va="top",
                family="monospace",
                fontsize=7.2,
            )
            pdf.savefig(fig)
            plt.close(fig)
        fig, ax = plt.subplots(figsize=(11.69, 8.27))
        times = [v.at.astimezone(zone) for v in state.vitals]
        for key in VITALS:
            values = [getattr(v, key) for v in state.vitals]
            points = [(t, y) for t, y in zip(times, values, strict=True) if y is not None]
            if points:
                ax.plot(
                    [p[0] for p in points], [p[1] for p in points], marker="o", label=LABELS[key]
                )
        for t in state.setup.thresholds if state.setup else ():
            if t.value is not None and t.vital in ("sbp_mmhg", "dbp_mmhg", "hr_per_min"):
                ax.axhline(t.value, linestyle="--", linewidth=0.8, color="grey")
        ax.set_title(f"Vitals - session {row.id} ({patient.family_name}); dashed: alert limits")
        ax.set_xlabel(f"time ({zone.key})")
        ax.grid(alpha=0.3)
        if times:
            ax.legend(loc="upper right")
        else:
            ax.text(0.5, 0.5, "no vitals recorded", ha="center", transform=ax.transAxes)
        fig.autofmt_xdate()
        pdf.savefig(fig)
        plt.close(fig)
    return buffer.getvalue()
