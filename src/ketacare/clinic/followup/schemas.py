"""API shapes of follow-up."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from ketacare.clinic.followup.orm import SelfReportLink


class LinkCreate(BaseModel):
    instruments: list[str] = Field(min_length=1, max_length=6)
    valid_hours: float = Field(gt=0, le=24 * 14)
    channel: Literal["file", "email", "sms"] | None = None


class LinkCreated(BaseModel):
    id: int
    url: str
    expires_at: datetime
    instruments: list[str]

    @classmethod
    def of(cls, link: SelfReportLink, url: str, **more: Any) -> Self:
        """A link just issued, with its URL (which holds the token: shown this once)."""
        return cls(
            id=link.id, url=url, expires_at=link.expires_at, instruments=link.instruments, **more
        )


class ScheduleSet(BaseModel):
    """A plan's outcome schedule (see docs/outcomes.md): grace_hours, stop, items."""

    schedule: dict[str, Any] = Field(
        description="{grace_hours, stop: {after_plan_end_days | until | when_plan_stopped}, "
        "items: [{instrument, when, ...}]}",
        examples=[
            {
                "grace_hours": 48,
                "stop": {"after_plan_end_days": 90, "when_plan_stopped": True},
                "items": [
                    {"instrument": "nrs_pain", "when": "baseline"},
                    {"instrument": "nrs_pain", "when": "after_each_session", "offset_hours": 24},
                    {
                        "instrument": "phq9",
                        "when": "every",
                        "every_days": 7,
                        "starts": "last_session",
                        "anchored_to_last_treatment": True,
                    },
                ],
            }
        ],
    )
    reason: str | None = Field(default=None, max_length=2000)


class ScheduleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    plan_id: int
    patient_id: int
    version: int
    status: str
    spec: dict[str, Any]
    reason: str | None
    created_by: int
    created_at: datetime
    superseded_at: datetime | None


class OccurrenceRead(BaseModel):
    key: str
    label: str
    opens_at: datetime
    overdue_at: datetime
    closes_at: datetime | None
    satisfied_at: datetime | None


class ItemStatusRead(BaseModel):
    instrument: str
    when: str
    description: str
    status: Literal["due", "overdue", "upcoming", "satisfied", "missed", "stopped"]
    reason: str
    occurrence: OccurrenceRead | None
    next_due_at: datetime | None


class PlanDueRead(BaseModel):
    plan_id: int
    schedule_id: int
    schedule_plan_id: int
    schedule_version: int
    stops_at: datetime | None
    stop_reason: str | None
    items: list[ItemStatusRead]


class PlanScheduleRead(BaseModel):
    plan_id: int
    current: ScheduleRead | None
    inherited_from_plan: int | None
    versions: list[ScheduleRead]
    due: PlanDueRead | None


class DueLinkCreate(BaseModel):
    valid_hours: float = Field(gt=0, le=24 * 14)
    channel: Literal["file", "email", "sms"] | None = None


class DueLinkCreated(LinkCreated):
    occurrences: list[dict[str, Any]]


class OverviewItem(BaseModel):
    plan_id: int
    instrument: str
    status: str
    label: str
    reason: str


class OverviewRead(BaseModel):
    patient_id: int
    name: str
    due: int
    overdue: int
    items: list[OverviewItem]
