"""API shapes of the cumulative dose."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ketacare.clinic.safeguards.service import PatientDose
from ketacare.core.safeguards import molecule_label


class WindowTotal(BaseModel):
    window_days: float | None = Field(description="Rolling window ending now; null: ever")
    sessions: int
    mg: float
    mg_per_kg: float = Field(description="Each dose over the weight its session was dosed from")


class CourseTotal(BaseModel):
    course_id: int = Field(description="The first version of the plan the course belongs to")
    sessions: int
    mg: float
    mg_per_kg: float
    first: datetime
    last: datetime


class MoleculeTotals(BaseModel):
    molecule: str
    label: str
    totals: list[WindowTotal]
    courses: list[CourseTotal]


class SessionDose(BaseModel):
    session_id: int
    course_id: int
    started_at: datetime
    molecule: str
    route: str
    mg: float
    mg_per_kg: float
    ongoing: bool = Field(description="Still dosing: the dose so far")


class CapUse(BaseModel):
    molecule: str
    window_days: float | None
    measure: str = Field(description="mg, mg_per_kg or sessions")
    limit: float
    current: float
    remaining: float
    reached: bool
    approved: str
    text: str


class CumulativeDose(BaseModel):
    """A patient's cumulative dose: totals per molecule, courses, sessions, the clinic's caps."""

    patient_id: int
    at: datetime
    molecules: list[MoleculeTotals]
    sessions: list[SessionDose]
    caps: list[CapUse]
    note: str | None = Field(description="Why no cap is shown, when none is set")

    @classmethod
    def of(cls, dose: PatientDose) -> CumulativeDose:
        c = dose.cumulative
        return cls(
            patient_id=dose.patient_id,
            at=c.at,
            molecules=[
                MoleculeTotals(
                    molecule=m,
                    label=molecule_label(m),
                    totals=[
                        WindowTotal(
                            window_days=t.window_days,
                            sessions=t.sessions,
                            mg=round(t.mg, 3),
                            mg_per_kg=round(t.mg_per_kg, 4),
                        )
                        for t in c.totals_of(m)
                    ],
                    courses=[
                        CourseTotal(
                            course_id=k.course_id,
                            sessions=k.sessions,
                            mg=round(k.mg, 3),
                            mg_per_kg=round(k.mg_per_kg, 4),
                            first=k.first,
                            last=k.last,
                        )
                        for k in c.courses
                        if k.molecule == m
                    ],
                )
                for m in c.molecules
            ],
            sessions=[
                SessionDose(
                    session_id=d.session_id,
                    course_id=d.course_id,
                    started_at=d.at,
                    molecule=d.molecule,
                    route=d.route,
                    mg=round(d.mg, 3),
                    mg_per_kg=round(d.mg_per_kg, 4),
                    ongoing=d.ongoing,
                )
                for d in c.doses
            ],
            caps=[
                CapUse(
                    molecule=s.cap.molecule,
                    window_days=s.cap.window_days,
                    measure=s.measure,
                    limit=s.limit,
                    current=round(s.current, 4),
                    remaining=round(s.remaining, 4),
                    reached=s.reached,
                    approved=s.cap.approved,
                    text=s.cap.describe(),
                )
                for s in dose.caps
            ],
            note=dose.note,
        )
