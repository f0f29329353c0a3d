"""Installation metadata."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base


class AppMeta(Base):
    """Key/value facts about this installation (e.g. ``demo = true``)."""

    __tablename__ = "app_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
