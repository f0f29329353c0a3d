"""API shapes of research consent."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ConsentIn(BaseModel):
    decision: Literal["granted", "withdrawn"]
    note: str = Field(
        min_length=1, max_length=2000, description="The consent form and its version, or how"
    )


class ConsentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: int
    decision: str
    note: str
    recorded_at: datetime
    recorded_by: int | None
