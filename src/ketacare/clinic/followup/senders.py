"""Reminder senders, one per channel: files (demos and tests), email through the
clinic's mail server (SMTP), and SMS, an interface a clinic implements for its provider.

A message is sent only by a sender of its own channel: an email reminder is never
"sent" to a file, and one whose channel has no sender here waits in the outbox, which
``outbox send`` reports (:func:`configured`, :func:`why_not`).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from ketacare.clinic.followup.orm import OutboxMessage
from ketacare.infra.addresses import one_email_address
from ketacare.infra.settings import Settings

#: Seconds to wait for the mail server before the message is recorded as failed.
SMTP_TIMEOUT_S = 30.0


class Sender(Protocol):
    """Delivers one message or raises; called at most once per message."""

    channel: str

    def send(self, message: OutboxMessage) -> None: ...


class FileSender:
    """Writes each message to ``<folder>/<id>.txt``: the default, for demos and tests."""

    channel = "file"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __str__(self) -> str:
        return f"files in {self.folder}"

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


class SmtpSender:
    """Sends email reminders through the clinic's mail server (``KETACARE_SMTP_*``).

    STARTTLS or implicit TLS with the certificate checked (against the system's CAs or
    ``smtp_ca_file``); unencrypted only to a relay on this machine (the settings refuse
    anything else). One connection per message: a run sends at most a few hundred.
    """

    channel = "email"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __str__(self) -> str:
        s = self.settings
        return f"the mail server {s.smtp_host}:{s.smtp_port} ({s.smtp_security})"

    def _tls(self) -> ssl.SSLContext:
        ca = self.settings.smtp_ca_file
        return ssl.create_default_context(cafile=str(ca) if ca is not None else None)

    def _password(self) -> str:
        path = self.settings.smtp_password_file
        assert path is not None
        if self.settings.production and path.stat().st_mode & 0o077:
            raise PermissionError(f"the mail password file {path} is readable by others: chmod 600")
        return path.read_text(encoding="utf-8").rstrip("\r\n")  # the password as written

    def send(self, message: OutboxMessage) -> None:
        s = self.settings
        address = one_email_address(message.recipient, what="the recipient")
        mail = EmailMessage()
        mail["From"] = s.smtp_from
        mail["To"] = address
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Subject"] = message.subject
        mail["Message-ID"] = make_msgid(domain=s.smtp_from.rpartition("@")[2] or None)
        # a link must survive a plain reader: 7bit keeps it on one line (quoted-printable
        # would break it with "=" soft line breaks); anything non-ASCII is encoded
        plain = message.body.isascii() and all(len(x) < 990 for x in message.body.splitlines())
        mail.set_content(message.body, cte="7bit" if plain else "quoted-printable")
        client: smtplib.SMTP
        if s.smtp_security == "tls":
            client = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=SMTP_TIMEOUT_S, context=self._tls()
            )
        else:
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=SMTP_TIMEOUT_S)
        with client:
            if s.smtp_security == "starttls":
                client.starttls(context=self._tls())
            if s.smtp_username:
                client.login(s.smtp_username, self._password())
            refused = client.send_message(mail, from_addr=s.smtp_from, to_addrs=[address])
        if refused:  # some recipients refused: the message did not reach the patient
            raise smtplib.SMTPRecipientsRefused(refused)


def configured(settings: Settings) -> dict[str, Sender]:
    """The senders this clinic has, by channel: files outside production, email when a
    mail server is set; none for SMS (ketacare ships no SMS provider)."""
    senders: dict[str, Sender] = {}
    if not settings.production:  # files on the server reach no patient: demos and tests
        senders["file"] = FileSender(settings.var_dir / "outbox")
    if settings.smtp_host:
        senders["email"] = SmtpSender(settings)
    return senders


def sendable(settings: Settings) -> tuple[str, ...]:
    """The channels this clinic can send by (what the link forms offer)."""
    return tuple(configured(settings))


def why_not(channel: str) -> str:
    """Why messages of ``channel`` cannot be sent here, and what would send them."""
    if channel == "email":
        return (
            "no mail server is configured: set KETACARE_SMTP_HOST and KETACARE_SMTP_FROM "
            "(docs/operations.md, Reminders)"
        )
    if channel == "sms":
        return "no SMS sender is configured: ketacare ships none; a clinic adds its provider's"
    if channel == "file":
        return (
            "the file channel writes reminders into the server's own folder, where no patient "
            "reads them: it is offered only outside production (demos and tests)"
        )
    return f"no sender for channel {channel!r}"
