"""The one settings class, read from ``KETACARE_*`` environment variables.

Settings are built by :func:`load_settings` when the app, the CLI or a test
asks for them, never at import time, so a test can build as many as it likes.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from ketacare.infra.policy import SitePolicy

#: Hosts a mail relay may be reached at without encryption: this machine only.
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")

#: The project root when ketacare runs from a checkout (``make run``).
PROJECT_ROOT = Path(__file__).resolve().parents[3]


class Settings(BaseSettings):
    """Everything an operator can configure, with safe defaults."""

    model_config = SettingsConfigDict(env_prefix="KETACARE_", extra="ignore")

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means the embedded SQLite file var/ketacare.sqlite3",
    )
    secret_key: str = Field(
        default="",
        description="Secret for signing; empty means a random key kept in var/secret.key",
    )
    var_dir: Path = Field(default=PROJECT_ROOT / "var", description="Where local state lives")
    host: str = "127.0.0.1"
    port: int = 8000
    timezone: str = Field(default="UTC", description="The clinic's IANA time zone for display")
    assets_dir: Path = Field(
        default=PROJECT_ROOT / "node_modules",
        description="npm-installed front-end libraries (htmx, chart.js)",
    )
    session_hours: float = Field(default=8.0, gt=0, description="Login session lifetime")
    token_hours: float = Field(default=8.0, gt=0, description="API bearer token lifetime")
    site_policy_file: Path | None = Field(
        default=None,
        description="The clinic's site-policy TOML (numbers no source gives); unset: none applied",
    )
    protocol_policy_file: Path | None = Field(
        default=None,
        description="The clinic's values for protocol limits no source gives (site policy)",
    )
    protocols_dir: Path | None = Field(
        default=None, description="A folder of the clinic's own protocol files"
    )
    session_policy_file: Path | None = Field(
        default=None,
        description="The clinic's session policy TOML: vitals thresholds and intervals no "
        "source gives (unset: no automatic alert, no schedule)",
    )
    clinic_hours_file: Path | None = Field(
        default=None,
        description="The clinic's opening days and hours, closures and how far a closed day "
        "may move a session (TOML; clinic choices, not clinical numbers); unset: every day "
        "is bookable and the calendar says the opening days are not set",
    )
    outcome_loss_confirmations: int | None = Field(
        default=None,
        ge=1,
        description="Site policy: consecutive scores out of response that confirm a loss of "
        "response; unset: response durability and the status line are not computed",
    )
    outcome_lost_after_days: int | None = Field(
        default=None,
        ge=1,
        description="Site policy: days without a score after which a patient counts as lost "
        "to follow-up on the clinic dashboard; unset: the reader chooses the window",
    )
    outcome_policy_file: Path | None = Field(
        default=None,
        description="The clinic's outcome policy TOML: [[booster]] rules (when to suggest a "
        "booster; no published threshold); unset: no booster is suggested",
    )
    weight_valid_days: int | None = Field(
        default=None,
        ge=1,
        description="Site policy: how recent a weight must be to sign a plan; unset: the "
        "signing physician confirms the weight is current",
    )
    accept_partial_questionnaires: bool = Field(
        default=False,
        description="Site policy: keep a questionnaire with required items blank as "
        "incomplete (no total, flagged with the items unanswered); off: such a form is "
        "refused at submission with the items named",
    )
    crisis_message: str = Field(
        default="",
        description="Crisis resources shown to a patient whose answers raise a safety flag "
        "(e.g. the local crisis line); set by the clinic",
    )
    clinic_name: str = Field(
        default="ketacare clinic",
        min_length=1,
        max_length=200,
        description="The clinic's name on the letterhead of its documents (session "
        "summaries, progress reports)",
    )
    clinic_address: str = Field(
        default="",
        max_length=500,
        description="The clinic's postal address on the letterhead (lines separated by "
        "';' or new lines); empty: no address line",
    )
    clinic_phone: str = Field(
        default="",
        max_length=60,
        description="The clinic's telephone number on the letterhead; empty: none shown",
    )
    cookie_secure: bool | None = Field(
        default=None, description="Force the Secure cookie flag; unset: set it behind https"
    )
    # argon2id cost of a new password hash. The defaults are RFC 9106 section 4's second
    # recommended option (t=3, p=4, m=64 MiB; argon2-cffi's RFC_9106_LOW_MEMORY profile);
    # lower them only where no real password is stored (the test suite).
    password_hash_time_cost: int = Field(
        default=3, ge=1, description="argon2id iterations of a new password hash"
    )
    password_hash_memory_kib: int = Field(
        default=65536, ge=8, description="argon2id memory of a new password hash, in KiB"
    )
    password_hash_parallelism: int = Field(
        default=4, ge=1, description="argon2id lanes of a new password hash"
    )

    # --- operations: audit key and anchors, database roles, request limits, proxies ---
    production: bool = Field(
        default=False,
        description="A real installation: refuse to start without an audit key file "
        "(no generated key) and refuse a key file others can read",
    )
    audit_key_file: Path | None = Field(
        default=None,
        description="File holding the audit chain's HMAC key (64 hex characters), kept "
        "outside the database; unset: var/audit.key, generated (not in production)",
    )
    backup_key_file: Path | None = Field(
        default=None,
        description="File holding the key (64 hex characters) that seals backup files "
        "(AES-256-GCM), kept outside the database and the backups; unset: backups are "
        "written unsealed",
    )
    audit_anchor_dir: Path | None = Field(
        default=None,
        description="Folder (another disk or host) where the server appends signed audit "
        "checkpoints; unset: no scheduled anchors",
    )
    audit_anchor_minutes: float = Field(
        default=60.0, gt=0, description="Minutes between the server's audit anchors"
    )
    idempotency_keep_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 365,
        description="Hours an API write's Idempotency-Key and its answer are kept: a retry "
        "within them gets the first answer; after them the key is free again and the row "
        "is removed (it holds no clinical record, only a copy of an answer)",
    )
    migration_database_url: str = Field(
        default="",
        description="PostgreSQL: URL of the owner role that runs migrations and restores; "
        "the app's URL then names a role that may only insert and read audit rows",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body accepted (413 above)"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For / -Proto are "
        'believed (JSON list, e.g. ["127.0.0.1"]); unset: the peer address is audited',
    )
    # --- accounts: login throttling (see ketacare.clinic.accounts.throttle) ---
    login_throttle_per_account_address: str = Field(
        default="5/minute;10/15 minutes;20/hour;50/day",
        description="Failed logins allowed for one account from one address, as growing "
        "windows in the `limits` notation; past one, that pair waits for the window",
    )
    login_throttle_per_address: str = Field(
        default="20/minute;100/hour;300/day",
        description="Failed logins allowed from one address over all accounts",
    )
    throttle_storage_url: str = Field(
        default="memory://",
        description="Where failed-login counts live (`limits` storage URL); memory:// counts "
        "per process, redis:// or memcached:// share counts between processes",
    )
    # --- accounts: TOTP second factor ---
    totp_required_roles: str = Field(
        default="admin,physician",
        description="Roles that must sign in with a TOTP second factor (comma-separated; "
        "add nurse,therapist,researcher to require it of all staff; empty: nobody)",
    )
    totp_issuer: str = Field(
        default="ketacare", description="The name authenticator apps show for the account"
    )
    # --- accounts: sessions ---
    # 30 minutes: OWASP ASVS 4.0.3 item 3.3.2 at level 2 ("12 hours or 30 minutes of
    # inactivity") and NIST SP 800-63B section 4.2.3 (AAL2: reauthenticate after any
    # inactivity of 30 minutes or longer); the 12-hour absolute bound is session_hours (8).
    # how often the chair's live part and the nurses' board ask the server for news: an
    # operational choice (how soon a second screen shows a new reading), not a clinical one
    live_refresh_seconds: float = Field(
        default=5.0,
        ge=0.5,
        le=60,
        description="Seconds between the chair's and the board's background refreshes",
    )
    idle_timeout_minutes: float = Field(
        default=30.0,
        ge=0,
        description="A page session ends after this many minutes without a request from "
        "its user (background refreshes do not count); 0: no idle timeout",
    )

    # --- accounts: OpenID Connect single sign-on (see docs/security.md) ---
    oidc_issuer: str = Field(
        default="",
        description="The OpenID provider's issuer URL (its discovery document is "
        "ISSUER/.well-known/openid-configuration); empty: no single sign-on",
    )
    oidc_client_id: str = Field(default="", description="This clinic's client id at the provider")
    oidc_client_secret: str = Field(
        default="", description="The client secret (client_secret_basic at the token endpoint)"
    )
    oidc_redirect_url: str = Field(
        default="",
        description="The callback URL registered at the provider; empty: this server's "
        "/login/oidc/callback as the request reached it",
    )
    oidc_scopes: str = Field(
        default="openid profile", description="Scopes asked for (space-separated; openid first)"
    )
    oidc_username_claim: str = Field(
        default="preferred_username",
        description="The claim whose value is the ketacare username: an account of that "
        "name is the person's; a claim the person cannot change themselves",
    )
    oidc_provision: bool = Field(
        default=False,
        description="Create an account at a first login whose groups map to a role (a "
        "clinical role still waits for approval); off: only existing accounts sign in",
    )
    oidc_groups_claim: str = Field(
        default="", description="The claim listing the person's groups (e.g. groups); empty: none"
    )
    oidc_role_map: dict[str, str] = Field(
        default_factory=dict,
        description='Group -> ketacare role for provisioned accounts (JSON, e.g. {"clinic-'
        'nurses": "nurse"}); the first group listed that maps wins',
    )
    # --- reminders: the mail server email reminders go through (docs/operations.md) ---
    smtp_host: str = Field(
        default="",
        description="Mail server for email reminders; empty: email reminders wait in the "
        "outbox, and `outbox send` says so (nothing is sent or marked sent)",
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="The mail server's port")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls (port 587), tls (implicit TLS, port 465), or none (only to a "
        "relay on this machine: 127.0.0.1, ::1 or localhost)",
    )
    smtp_from: str = Field(
        default="", description="The sender address reminders carry, e.g. clinic@example.org"
    )
    smtp_username: str = Field(default="", description="Login at the mail server; empty: none")
    smtp_password_file: Path | None = Field(
        default=None, description="File holding the mail server password (kept 0600)"
    )
    smtp_ca_file: Path | None = Field(
        default=None,
        description="CA certificate(s) the mail server's certificate is checked against; "
        "unset: the system's trusted CAs",
    )

    local_passwords_for_staff: bool = Field(
        default=True,
        description="Staff may sign in with a ketacare password (pages and API tokens); off: "
        "staff sign in by single sign-on only (patients keep their passwords)",
    )

    @field_validator("oidc_role_map")
    @classmethod
    def _mapped_roles(cls, value: dict[str, str]) -> dict[str, str]:
        from ketacare.infra.permissions import Role

        staff = [r.value for r in Role if r is not Role.PATIENT]
        bad = sorted({role for role in value.values() if role not in staff})
        if bad:
            raise ValueError(
                f"unknown role(s) {', '.join(bad)} in oidc_role_map: allowed {', '.join(staff)}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}: use an IANA name") from exc
        return value

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        if value and (len(value) < 32 or value.lower() in {"changethis", "secret", "changeme"}):
            raise ValueError("KETACARE_SECRET_KEY must be at least 32 random characters")
        return value

    def policy(self) -> SitePolicy:
        """The clinic's site policy: every policy file and number, typed and validated.

        Each file is parsed once and again only when it changes
        (:mod:`ketacare.infra.policy`); a bad file raises
        :class:`~ketacare.core.errors.DataFileError` naming the file, field and what is
        allowed.
        """
        from ketacare.infra.policy import site_policy

        return site_policy(self)

    @field_validator("login_throttle_per_account_address", "login_throttle_per_address")
    @classmethod
    def _throttle_tiers(cls, value: str) -> str:
        from limits import parse_many

        try:
            if parse_many(value):
                return value
        except ValueError:
            pass
        raise ValueError(
            f"{value!r} is not a list of limits: write e.g. '5/minute;20/hour' (counts per "
            "second, minute, hour or day, separated by ';')"
        )

    @field_validator("totp_required_roles")
    @classmethod
    def _known_roles(cls, value: str) -> str:
        from ketacare.infra.permissions import Role

        names = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [n for n in names if n not in {r.value for r in Role}]
        if unknown:
            raise ValueError(
                f"unknown role(s) {', '.join(unknown)} in totp_required_roles: allowed "
                f"{', '.join(r.value for r in Role)}"
            )
        return ",".join(names)

    @property
    def totp_roles(self) -> frozenset[str]:
        """The roles that must sign in with a second factor."""
        return frozenset(v for v in self.totp_required_roles.split(",") if v)

    @model_validator(mode="after")
    def _mail_server_complete(self) -> Settings:
        if not self.smtp_host:
            return self
        from ketacare.infra.addresses import one_email_address

        one_email_address(self.smtp_from, what="KETACARE_SMTP_FROM (the sender address)")
        if self.smtp_security == "none" and self.smtp_host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"KETACARE_SMTP_SECURITY=none sends reminders unencrypted: allowed only to a "
                f"relay on this machine ({', '.join(LOOPBACK_HOSTS)}), not {self.smtp_host!r}; "
                "use starttls or tls"
            )
        if bool(self.smtp_username) != (self.smtp_password_file is not None):
            raise ValueError(
                "KETACARE_SMTP_USERNAME and KETACARE_SMTP_PASSWORD_FILE go together: set "
                "both, or neither"
            )
        return self

    @model_validator(mode="after")
    def _argon2_memory_covers_its_lanes(self) -> Settings:
        if self.password_hash_memory_kib < 8 * self.password_hash_parallelism:
            raise ValueError(
                f"KETACARE_PASSWORD_HASH_MEMORY_KIB must be at least 8 KiB per lane "
                f"(8 x {self.password_hash_parallelism} = {8 * self.password_hash_parallelism})"
            )
        return self

    @cached_property
    def zone(self) -> ZoneInfo:
        """The clinic's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under ``var_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / 'ketacare.sqlite3'}"

    def effective_secret_key(self) -> str:
        """The configured secret, or one generated once and kept in ``var/secret.key``."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key

    def effective_audit_key(self) -> bytes:
        """The audit chain's HMAC key: from ``audit_key_file`` or, outside production,
        one generated once into ``var/audit.key`` (0600). Refuses, naming the fix."""
        from ketacare.infra.errors import AuditKeyMissing

        path = self.audit_key_file
        if path is None:
            if self.production:
                raise AuditKeyMissing(
                    "production mode needs an audit key: set KETACARE_AUDIT_KEY_FILE to a "
                    "file holding 64 hex characters (make one with `ketacare audit keygen "
                    "--out FILE`), kept outside the database and its backups"
                )
            path = self.var_dir / "audit.key"
            if not path.exists():
                try:
                    write_secret_file(path, secrets.token_hex(32) + "\n")
                except FileExistsError:  # another process made it first
                    pass
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise AuditKeyMissing(f"cannot read the audit key file {path}: {exc}") from exc
        if self.production and path.stat().st_mode & 0o077:
            raise AuditKeyMissing(
                f"the audit key file {path} is readable by others: chmod 600 {path}"
            )
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) < 32:
            raise AuditKeyMissing(
                f"the audit key file {path} must hold at least 64 hex characters (32 bytes)"
            )
        return key


def write_secret_file(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only (0600) and write ``text`` into it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (tests, CLI options)."""
    return Settings(**overrides)  # type: ignore[arg-type]
