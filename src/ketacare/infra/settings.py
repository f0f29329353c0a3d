"""The one settings class, read from ``KETACARE_*`` environment variables.

Settings are built by :func:`load_settings` when the app, the CLI or a test
asks for them, never at import time, so a test can build as many as it likes.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    max_failed_logins: int = Field(default=5, ge=1, description="Failures before a lockout")
    lockout_minutes: float = Field(default=15.0, ge=0, description="Lockout duration")
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


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (tests, CLI options)."""
    return Settings(**overrides)  # type: ignore[arg-type]
