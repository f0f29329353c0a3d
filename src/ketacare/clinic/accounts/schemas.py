"""API shapes of accounts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires")


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=64)
    full_name: str = Field(min_length=1, max_length=200)
    role: str
    password: str = Field(min_length=1, max_length=200)
    patient_id: int | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    full_name: str
    role: str
    patient_id: int | None
    is_active: bool


class SessionRead(BaseModel):
    """A live page session (``cookie``) or API token (``bearer``) of the holder."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    created_at: datetime
    last_seen_at: datetime | None
    expires_at: datetime
    remote_addr: str | None
    user_agent: str | None
    current: bool = False


class Me(BaseModel):
    id: int
    username: str
    full_name: str
    role: str
    patient_id: int | None
