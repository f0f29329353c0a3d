"""API shapes of follow-up."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class LinkCreate(BaseModel):
    instruments: list[str] = Field(min_length=1, max_length=6)
    valid_hours: float = Field(gt=0, le=24 * 14)
    channel: Literal["file", "email", "sms"] | None = None


class LinkCreated(BaseModel):
    id: int
    url: str
    expires_at: datetime
    instruments: list[str]
