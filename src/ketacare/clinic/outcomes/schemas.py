"""API shapes of outcomes: the outcome panel, as the chart page and the JSON API carry it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class DefinitionView(BaseModel):
    """A response or remission definition as it applies to this patient's baseline."""

    id: str
    short: str
    label: str
    role: Literal["response", "remission"]
    kind: Literal["percent_reduction", "score_below"]
    threshold: float
    assessable: bool = Field(description="False when there is no baseline or it is excluded")
    reason: str = Field(description="Why it is not assessed (empty when it is)")
    line: float | None = Field(
        description="The score that meets it: at or below (percent reduction from this "
        "baseline) or below (a score threshold); none when not assessable"
    )
    line_text: str
    sources: list[str]


class PointView(BaseModel):
    """One score, its change from baseline and the definitions it meets."""

    assessment_id: int
    at: datetime
    local: str = Field(description="The time in the clinic's zone")
    t_ms: int = Field(description="Milliseconds since 1970-01-01 UTC (the chart's x)")
    value: float
    phase: Literal["before", "baseline", "follow_up"]
    after_session: int = Field(description="Sessions given before this score")
    change: float | None
    change_percent: float | None
    met: list[str] = Field(description="Ids of the definitions met at this follow-up")
    source: str = Field(description="staff or patient (self-report)")


class MeasureView(BaseModel):
    """One measure over time."""

    id: str
    label: str
    short: str
    instrument: str
    scale_min: float
    scale_max: float
    points: list[PointView]
    baseline: float | None
    baseline_local: str | None
    definitions: list[DefinitionView]
    note: str = Field(description="What is missing, in words (empty when there are scores)")


class SessionView(BaseModel):
    """One session given: when, which, and the dose the log says was delivered."""

    number: int = Field(description="1 for the first session given, and so on")
    session_id: int
    plan_id: int
    plan_session: int = Field(description="The session's number in its plan")
    at: datetime
    local: str
    t_ms: int
    dose_mg: float
    state: str
    ongoing: bool
    dissociation: bool | None = Field(
        description="Dissociation recorded at the chair: present, absent or not recorded"
    )


class DissociationView(BaseModel):
    """Dissociation as recorded during sessions (present or absent; not a score)."""

    recorded: int
    present: int
    note: str


class StatusView(BaseModel):
    """The status line and what stands behind it."""

    computed: bool
    text: str
    parts: list[str]
    notes: list[str]
    loss_confirmations: int | None


class BoosterRuleView(BaseModel):
    """A clinic's booster rule (from its outcome policy file; no rule has a default)."""

    definition_id: str
    kind: Literal["score_at_or_above", "reduction_below_percent"]
    threshold: float
    set_by: str


class DecisionView(BaseModel):
    """A physician's decision on a booster suggestion."""

    id: int
    patient_id: int
    measure: str
    assessment_id: int = Field(description="The score that raised the suggestion")
    score_value: float
    decision: Literal["accepted", "dismissed"]
    note: str | None
    decided_by: int
    decided_by_name: str
    decided_at: datetime
    decided_local: str = Field(description="The day in the clinic's zone, e.g. 7 March 2026")
    supersedes: int | None = Field(description="The decision this one corrects")
    superseded_by: int | None = Field(description="The decision that corrected this one")
    basis: dict[str, Any] = Field(
        description="The rules in force and the findings when the decision was made"
    )


class BoosterView(BaseModel):
    """One measure's booster finding: is a booster suggested, on which score, decided?"""

    measure: str
    label: str
    state: Literal["suggested", "not_suggested", "not_configured", "not_applicable"]
    pending: bool = Field(description="Suggested and not yet accepted or dismissed")
    messages: list[str]
    rules: list[BoosterRuleView]
    assessment_id: int | None = Field(description="The latest score (raising it when suggested)")
    score: float | None
    score_local: str | None
    decision: DecisionView | None = Field(description="The standing decision on that score")


class DecisionCreate(BaseModel):
    """Accept or dismiss the booster suggested on a measure by one score."""

    measure: str = Field(max_length=40, description="e.g. nrs_pain or phq9")
    assessment_id: int = Field(
        ge=1, le=2**31 - 1, description="The score that raised the suggestion, as shown"
    )
    decision: Literal["accepted", "dismissed"]
    note: str | None = Field(
        default=None,
        max_length=2000,
        description="Optional when accepting; the reason, required, when dismissing",
    )
    supersedes: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="The standing decision this one corrects (a note saying why is required)",
    )


class OutcomePanel(BaseModel):
    """A patient's outcomes: measures, sessions given, dissociation and the status line."""

    patient_id: int
    zone: str
    as_of: datetime
    status: StatusView
    measures: list[MeasureView]
    sessions: list[SessionView]
    dissociation: DissociationView
    boosters: list[BoosterView] = Field(
        default_factory=list,
        description="Booster findings per measure the patient responded on (empty when the "
        "status is not computed)",
    )
