"""API shapes of the cumulative dose."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from ketacare.clinic.safeguards.service import DispenseRow, PatientDose
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


class TakeHomeWindow(BaseModel):
    molecule: str
    window_days: int
    supplies: int
    mg: float = Field(description="Handed over for use at home (voided supplies left out)")


class CumulativeDose(BaseModel):
    """A patient's cumulative dose: totals per molecule, courses, sessions, the clinic's caps."""

    patient_id: int
    at: datetime
    molecules: list[MoleculeTotals]
    sessions: list[SessionDose]
    caps: list[CapUse]
    note: str | None = Field(description="Why no cap is shown, when none is set")
    take_home: list[TakeHomeWindow] = Field(
        description="Take-home supplies handed over (not counted in the totals given above)"
    )

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
            take_home=[
                TakeHomeWindow(
                    molecule=t.molecule, window_days=t.window_days, supplies=t.supplies, mg=t.mg
                )
                for t in dose.take_home
            ],
        )


class TakeHomeIn(BaseModel):
    """A take-home supply to dispense under a signed plan."""

    form: str = Field(min_length=1, max_length=80, description="e.g. 'oral solution', 'troche'")
    strength_mg: float = Field(gt=0, le=1000, description="mg per unit")
    units: int = Field(ge=1, le=1000)
    days_supply: int = Field(ge=1, le=365, description="Whole days the supply lasts as ordered")
    directions: str = Field(min_length=1, max_length=2000)
    lot_id: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="The stock lot it comes from (required once the clinic keeps stock of the "
        "plan's molecule)",
    )
    lot_units: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Units of the lot's product handed over (default: units); their mg must "
        "equal strength_mg x units",
    )
    lot: str | None = Field(
        default=None,
        min_length=1,
        max_length=60,
        description="The lot number, when no stock lot is named (else the stock lot's)",
    )
    pdmp_checked: bool = Field(
        default=False, description="The prescription drug monitoring programme was checked"
    )
    reason: str | None = Field(
        default=None, max_length=2000, description="Why, when a check asks for a reason"
    )
    dispensed_at: datetime | None = Field(
        default=None, description="Charting after the fact: when it was handed over (past only)"
    )


class VoidIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class TakeHomeRead(BaseModel):
    id: int
    patient_id: int
    plan_id: int
    molecule: str
    route: str
    form: str
    strength_mg: float
    units: int
    total_mg: float
    days_supply: float
    runs_out: datetime = Field(description="When the supply runs out if used as ordered")
    directions: str
    lot: str
    lot_id: int | None = Field(description="The stock lot it was drawn from (while not voided)")
    lot_units: int | None
    stock_draw_id: int | None = Field(description="Its draw in the stock ledger")
    pdmp_checked: bool
    reason: str | None
    findings: list[dict[str, object]]
    dispensed_at: datetime
    dispensed_by: int
    voided: bool
    void_reason: str | None
    voided_at: datetime | None

    @classmethod
    def of(cls, item: DispenseRow) -> TakeHomeRead:
        r, v, d = item.row, item.void, item.draw
        return cls(
            id=r.id,
            patient_id=r.patient_id,
            plan_id=r.plan_id,
            molecule=r.molecule,
            route=r.route,
            form=r.form,
            strength_mg=r.strength_mg,
            units=r.units,
            total_mg=round(item.total_mg, 3),
            days_supply=r.days_supply,
            runs_out=r.dispensed_at + timedelta(days=r.days_supply),
            directions=r.directions,
            lot=r.lot,
            lot_id=d.lot_id if d else None,
            lot_units=d.units if d else None,
            stock_draw_id=d.id if d else None,
            pdmp_checked=r.pdmp_checked,
            reason=r.reason,
            findings=list(r.findings or []),
            dispensed_at=r.dispensed_at,
            dispensed_by=r.dispensed_by,
            voided=v is not None,
            void_reason=v.reason if v else None,
            voided_at=v.voided_at if v else None,
        )
