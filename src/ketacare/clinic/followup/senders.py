"""Pluggable reminder senders. Email and SMS are interfaces a clinic implements for its
provider; the default writes each message to a file (and the console), so nothing leaves
the machine unless the clinic wires a real channel."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ketacare.clinic.followup.orm import OutboxMessage


class Sender(Protocol):
    """Delivers one message or raises; called at most once per message."""

    channel: str

    def send(self, message: OutboxMessage) -> None: ...


class FileSender:
    """Writes each message to ``<folder>/<id>.txt``: the default, for demos and tests."""

    channel = "file"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: OutboxMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{message.id:08d}.txt"
        path.write_text(
            f"To: {message.recipient} ({message.channel})\nSubject: {message.subject}\n\n"
            f"{message.body}\n",
            encoding="utf-8",
        )


class EmailSender(Protocol):
    """What an email adapter provides (SMTP, a provider's API): ``send(message)``."""

    channel: str

    def send(self, message: OutboxMessage) -> None: ...


class SmsSender(Protocol):
    """What an SMS adapter provides: ``send(message)`` to ``message.recipient``."""

    channel: str

    def send(self, message: OutboxMessage) -> None: ...
