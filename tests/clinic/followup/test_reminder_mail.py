"""Email reminders through a real mail server on loopback, and never "sent" without one.

The mail server is aiosmtpd, a real SMTP server, on 127.0.0.1: the reminder must arrive
with the patient's address, the clinic's sender and the link; over STARTTLS its
certificate is checked against the clinic's CA file.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from typer.testing import CliRunner

from ketacare.cli import app as cli_app
from ketacare.clinic.audit.orm import AuditEvent
from ketacare.clinic.followup import service
from ketacare.clinic.followup.orm import OutboxMessage
from ketacare.clinic.followup.senders import FileSender, configured

runner = CliRunner()


class Inbox:
    """What the mail server received: (envelope sender, recipients, message text)."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.mails.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode("utf-8"))
        )
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mail_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (IP SAN) and its key, as a clinic's own CA would issue."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clinic mail relay")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "relay.pem", folder / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _queue(client: Any, headers: dict[str, str], channel: str) -> str:
    r = client.post(
        "/api/v1/patients/1/self-report-links",
        headers=headers,
        json={"instruments": ["phq9"], "valid_hours": 48, "channel": channel},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["url"].split("/r/")[1])


def _offer_email(app: Any) -> None:
    """The app's clinic has a mail server (so its pages and API queue email reminders)."""
    app.state.ctx.settings.smtp_host = "127.0.0.1"
    app.state.ctx.settings.smtp_security = "none"
    app.state.ctx.settings.smtp_from = "k@example.org"


def _enqueue(app: Any, channel: str, recipient: str = "maria.jansen@example.org") -> int:
    """A message queued earlier (before the clinic's mail server changed, say)."""
    with app.state.ctx.sessions() as session:
        message = service.enqueue(
            session=session,
            patient_id=1,
            channel=channel,
            recipient=recipient,
            subject="Your questionnaires from the clinic",
            body="Please fill in your questionnaires: https://clinic.example/r/x\n",
            dedupe_key=f"test:{channel}:{recipient}",
            now=app.state.ctx.clock(),
        )
        assert message is not None
        session.commit()
        return message.id


def _relay(port: int, security: str = "none", sender: str = "k@example.org") -> dict[str, str]:
    """The KETACARE_SMTP_* settings of a relay on loopback at ``port``."""
    return {"host": "127.0.0.1", "port": str(port), "security": security, "from": sender}


def _send(settings: Any, tmp_path: Path, *args: str, **smtp: str) -> Any:
    """``ketacare outbox send`` (or ``outbox <args>``) with these KETACARE_SMTP_* settings."""
    env = {
        "KETACARE_DATABASE_URL": settings.database_url,
        "KETACARE_VAR_DIR": str(tmp_path / "cli"),
        **{f"KETACARE_SMTP_{k.upper()}": v for k, v in smtp.items()},
    }
    return runner.invoke(cli_app, ["outbox", *(args or ("send",))], env=env)


def _messages(app: Any) -> list[OutboxMessage]:
    with app.state.ctx.sessions() as session:
        rows = list(session.query(OutboxMessage).order_by(OutboxMessage.id))
        session.expunge_all()
    return rows


def test_an_email_reminder_reaches_the_mail_server_once(
    app: Any, client: Any, login_api: Any, settings: Any, tmp_path: Path, mail_server: Any
) -> None:
    inbox, port = mail_server
    _offer_email(app)
    nurse = login_api("nurse")
    token = _queue(client, nurse, "email")
    _queue(client, nurse, "file")
    smtp = _relay(port, sender="kliniek@example.org")
    first = _send(settings, tmp_path, **smtp)
    assert first.exit_code == 0, first.output
    assert f"sent 2 message(s): 1 by file (files in {tmp_path / 'cli' / 'outbox'})" in (
        " ".join(first.output.split())
    )
    assert "1 by email (the mail server 127.0.0.1:" in first.output
    [(sender, recipients, text)] = inbox.mails
    assert sender == "kliniek@example.org"
    assert recipients == ["maria.jansen@example.org"]  # the demo patient's own address
    assert "Subject: Your questionnaires from the clinic" in text
    assert f"/r/{token}\r\n" in text  # on one line, as a plain reader shows it
    assert "\r\nDate: " in text and "\r\nMessage-ID: <" in text
    assert all(m.sent_at is not None and m.error is None for m in _messages(app))
    second = _send(settings, tmp_path, **smtp)
    assert second.exit_code == 0 and "sent 0 message(s)" in second.output
    assert len(inbox.mails) == 1


def test_without_a_mail_server_an_email_reminder_waits_and_is_never_marked_sent(
    app: Any, client: Any, login_api: Any, settings: Any, tmp_path: Path
) -> None:
    _enqueue(app, "email")  # queued while the clinic still had a mail server
    _enqueue(app, "sms", "+1 555 010 0000")
    _queue(client, login_api("nurse"), "file")
    result = _send(settings, tmp_path)
    assert result.exit_code == 1
    assert "sent 1 message(s): 1 by file" in result.output
    assert "1 email message(s) wait in the outbox, not sent: no mail server is configured" in (
        " ".join(result.output.split())
    )
    assert "1 sms message(s) wait in the outbox" in " ".join(result.output.split())
    by_channel = {m.channel: m for m in _messages(app)}
    assert by_channel["file"].sent_at is not None
    for channel in ("email", "sms"):  # left as they were: unclaimed, unsent
        assert by_channel[channel].claimed_at is None and by_channel[channel].sent_at is None


def test_a_mail_server_that_is_down_leaves_the_message_unsent_with_its_error(
    app: Any, client: Any, login_api: Any, settings: Any, tmp_path: Path
) -> None:
    message_id = _enqueue(app, "email")
    down = _relay(_free_port())  # nothing listens there
    result = _send(settings, tmp_path, **down)
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "1 message(s) not sent (1 failed in this run)" in said
    assert f"message {message_id} (email): ConnectionRefusedError" in said
    [message] = _messages(app)
    assert message.sent_at is None and message.error is not None
    assert "ConnectionRefusedError" in message.error
    # never retried by itself, and named again at every run until someone acts
    again = _send(settings, tmp_path, **down)
    assert again.exit_code == 1
    assert "1 message(s) not sent (0 failed in this run)" in " ".join(again.output.split())
    assert _messages(app)[0].attempts == 1


def test_a_message_that_was_not_sent_goes_again_only_when_released(
    app: Any, settings: Any, tmp_path: Path, mail_server: Any
) -> None:
    inbox, port = mail_server
    message_id = _enqueue(app, "email")
    assert _send(settings, tmp_path, **_relay(_free_port())).exit_code == 1  # relay down
    assert _send(settings, tmp_path, **_relay(port)).exit_code == 1 and inbox.mails == []
    released = _send(settings, tmp_path, "retry", str(message_id))
    assert released.exit_code == 0 and "1 message(s) back in the queue" in released.output
    with app.state.ctx.sessions() as session:  # the error it had stays on record
        [row] = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "retry", AuditEvent.resource_type == "outbox_message"
            )
        ).all()
        assert row.resource_id == str(message_id) and row.patient_id == 1
        assert "ConnectionRefusedError" in json.dumps(row.detail)
    sent = _send(settings, tmp_path, **_relay(port))
    assert sent.exit_code == 0, sent.output
    assert len(inbox.mails) == 1 and _messages(app)[0].sent_at is not None
    twice = _send(settings, tmp_path, "retry", str(message_id))
    assert twice.exit_code == 2 and "was sent: nothing to retry" in twice.output
    unknown = _send(settings, tmp_path, "retry", "999")
    assert unknown.exit_code == 2 and "no outbox message 999" in unknown.output


def test_a_recipient_that_is_not_one_address_gets_nothing(
    app: Any, settings: Any, tmp_path: Path, mail_server: Any
) -> None:
    inbox, port = mail_server
    _enqueue(app, "email", "maria.jansen@example.org, someone@example.net")
    result = _send(settings, tmp_path, **_relay(port))
    assert result.exit_code == 1 and inbox.mails == []
    assert "is not one email address" in (_messages(app)[0].error or "")


def test_starttls_checks_the_relays_certificate_against_the_clinics_ca(
    app: Any, client: Any, login_api: Any, settings: Any, tmp_path: Path
) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    inbox, port = Inbox(), _free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True
    )
    controller.start()
    try:
        _offer_email(app)
        nurse = login_api("nurse")
        _queue(client, nurse, "email")
        smtp = _relay(port, security="starttls")
        # the system's CAs do not know the clinic's relay: refused, not sent in the clear
        untrusted = _send(settings, tmp_path, **smtp)
        assert untrusted.exit_code == 1 and inbox.mails == []
        [message] = _messages(app)
        assert message.sent_at is None and "CERTIFICATE_VERIFY_FAILED" in (message.error or "")
        assert _send(settings, tmp_path, "retry", str(message.id)).exit_code == 0
        trusted = _send(settings, tmp_path, **smtp, ca_file=str(cert))
        assert trusted.exit_code == 0, trusted.output
        assert len(inbox.mails) == 1
    finally:
        controller.stop()


def test_a_sender_of_another_channel_cannot_send_a_message(
    app: Any, client: Any, login_api: Any, tmp_path: Path
) -> None:
    _enqueue(app, "email")
    sessions, now = app.state.ctx.sessions, app.state.ctx.clock()
    with sessions() as session:
        [message_id] = service.pending(session=session)
        with pytest.raises(ValueError, match="channel 'email'; a 'file' sender cannot send it"):
            service.deliver(
                session=session,
                message_id=message_id,
                sender=FileSender(tmp_path / "outbox"),
                now=now,
            )
    assert not (tmp_path / "outbox").exists()


@pytest.mark.parametrize(
    ("smtp", "named"),
    [
        ({"host": "mail.example.org"}, "KETACARE_SMTP_FROM \\(the sender address\\) '' is not one"),
        (
            {"host": "mail.example.org", "from": "Clinic <k@example.org>"},
            "is not one email address: write it as name@example.org",
        ),
        (
            {"host": "mail.example.org", "from": "k@example.org", "security": "none"},
            "allowed only to a relay on this machine",
        ),
        (
            {"host": "mail.example.org", "from": "k@example.org", "username": "clinic"},
            "KETACARE_SMTP_USERNAME and KETACARE_SMTP_PASSWORD_FILE go together",
        ),
        ({"host": "mail.example.org", "from": "k@example.org", "security": "ssl"}, "starttls"),
    ],
)
def test_an_incomplete_or_unsafe_mail_setting_is_refused_naming_it(
    smtp: dict[str, str], named: str
) -> None:
    from pydantic import ValidationError

    from ketacare.infra.settings import Settings

    with pytest.raises(ValidationError, match=named):
        Settings(**{f"smtp_{k}": v for k, v in smtp.items()})


def test_email_has_a_sender_only_when_a_mail_server_is_set(tmp_path: Path) -> None:
    from ketacare.infra.settings import Settings

    assert set(configured(Settings(var_dir=tmp_path))) == {"file"}
    with_mail = Settings(var_dir=tmp_path, smtp_host="mail.example.org", smtp_from="k@example.org")
    assert set(configured(with_mail)) == {"file", "email"}
    # in production a file on the server reaches no patient: not a channel there
    production = with_mail.model_copy(update={"production": True})
    assert set(configured(production)) == {"email"}


def test_the_link_pages_say_when_email_is_not_set_up(
    app: Any, client: Any, login_page: Any
) -> None:
    csrf = login_page("nurse")
    form = client.get("/patients/1/assessments").text
    assert '<option value="email" disabled>email (not set up here)</option>' in form
    assert 'data-testid="no-mail-server"' in form
    assert '<option value="file">' in form  # outside production (the test clinic)
    link = {"csrf_token": csrf, "instrument": ["phq9"], "valid_hours": "48", "channel": "email"}
    refused = client.post("/patients/1/self-report-links", data=link)
    assert refused.status_code == 422
    assert "a reminder by email cannot be sent from this clinic" in refused.text
    assert _messages(app) == []  # nothing queued that cannot go out
    _offer_email(app)
    form = client.get("/patients/1/assessments").text
    assert '<option value="email">email</option>' in form
    assert 'data-testid="no-mail-server"' not in form
    sent = client.post("/patients/1/self-report-links", data=link)
    assert 'data-testid="reminder-queued"' in sent.text
    assert [m.channel for m in _messages(app)] == ["email"]


def test_no_channel_without_a_sender_is_queued_by_the_api_or_the_reminder_run(
    app: Any, client: Any, login_api: Any, settings: Any, tmp_path: Path
) -> None:
    nurse = login_api("nurse")
    r = client.post(
        "/api/v1/patients/1/self-report-links",
        headers=nurse,
        json={"instruments": ["phq9"], "valid_hours": 48, "channel": "sms"},
    )
    assert r.status_code == 422
    assert "no SMS sender is configured" in r.json()["detail"]
    assert "channels it can send by: file" in r.json()["detail"]
    app.state.ctx.settings.production = True  # a real installation: no file channel
    r = client.post(
        "/api/v1/patients/1/self-report-links",
        headers=nurse,
        json={"instruments": ["phq9"], "valid_hours": 48, "channel": "file"},
    )
    assert r.status_code == 422 and "where no patient reads them" in r.json()["detail"]
    assert _messages(app) == []
    env = {"KETACARE_DATABASE_URL": settings.database_url, "KETACARE_VAR_DIR": str(tmp_path)}
    remind = runner.invoke(cli_app, ["followup", "remind", "--channel", "email"], env=env)
    assert remind.exit_code == 2 and "no mail server is configured" in remind.output


def test_implicit_tls_and_a_login_from_the_password_file(
    app: Any, settings: Any, tmp_path: Path
) -> None:
    import ssl

    from aiosmtpd.smtp import AuthResult, LoginPassword

    logins: list[tuple[bytes, bytes]] = []

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b" s3cret with spaces ")

    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    inbox, port = Inbox(), _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        ssl_context=tls,
        authenticator=authenticate,
        auth_require_tls=False,  # the whole connection is TLS; aiosmtpd looks for STARTTLS
    )
    controller.start()
    try:
        password = tmp_path / "smtp.password"
        password.write_text(" s3cret with spaces \n")  # as an editor saves it
        _enqueue(app, "email")
        result = _send(
            settings,
            tmp_path,
            **_relay(port, security="tls"),
            ca_file=str(cert),
            username="clinic@example.org",
            password_file=str(password),
        )
        assert result.exit_code == 0, result.output
        assert logins == [(b"clinic@example.org", b" s3cret with spaces ")]
        assert len(inbox.mails) == 1
    finally:
        controller.stop()


def test_a_message_left_claimed_by_a_stopped_sender_counts_as_not_sent_after_15_min(
    app: Any,
) -> None:
    message_id = _enqueue(app, "email")
    now = app.state.ctx.clock()
    with app.state.ctx.sessions() as session:
        message = session.get(OutboxMessage, message_id)
        assert message is not None
        message.claimed_at = now - dt.timedelta(minutes=14)  # a sender may still be at it
        assert service.delivery(message, now=now) == "queued"
        assert service.not_sent(session=session, now=now) == []
        message.claimed_at = now - dt.timedelta(minutes=16)  # it stopped mid-way
        assert service.delivery(message, now=now) == "not_sent"
        assert [m.id for m in service.not_sent(session=session, now=now)] == [message_id]
