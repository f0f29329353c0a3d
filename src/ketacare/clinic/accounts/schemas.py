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
    role_approved: bool = Field(
        description="False while a new account's clinical role waits for approval"
    )


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


class RoleChange(BaseModel):
    role: str = Field(max_length=20)


class RoleDecision(BaseModel):
    reason: str = Field(default="", max_length=500)


class RoleRequestRead(BaseModel):
    """A clinical role asked for an account, and its decision once made."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int
    role: str
    previous_role: str | None = Field(description="None: a new account (it holds no role yet)")
    requested_by_id: int | None
    requested_at: datetime
    outcome: str | None = Field(description="approved, rejected, or None while pending")
    decided_by_id: int | None = None
    decided_at: datetime | None = None
    reason: str | None = None


class RoleChangeResult(BaseModel):
    user: UserRead
    pending: RoleRequestRead | None = Field(
        description="The request waiting for a second person (a clinical role); None: the "
        "role was changed at once"
    )
