"""API shapes of the audit trail."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    user_id: int | None
    username: str
    role: str
    action: str
    resource_type: str
    resource_id: str | None
    patient_id: int | None
    remote_addr: str | None
    detail: dict[str, object]
    hash: str


class ChainReportRead(BaseModel):
    ok: bool
    rows: int
    first_broken_id: int | None
    problem: str | None
    head: str
    head_id: int | None
    legacy_rows: int
