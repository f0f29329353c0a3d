"""The shell's part of the error tree and its one mapping to HTTP and exit codes.

The root and the core errors live in :mod:`ketacare.core.errors`; this module
adds the errors only the shell can raise, and :data:`HTTP_STATUS` maps every
class to an HTTP status (responses are ``application/problem+json``).
"""

from __future__ import annotations

from ketacare.core.errors import (
    DataFileError,
    DoseLimitExceeded,
    HardLimitNotSet,
    IllegalTransition,
    InvalidInput,
    KetacareError,
    SoftLimitNeedsReview,
    StaleSession,
)


class NotFound(KetacareError):
    """The resource does not exist (or is not visible to this user)."""


class NotAuthenticated(KetacareError):
    """No valid login session or bearer token."""


class Forbidden(KetacareError):
    """The permission table does not allow this role to do this."""


class Conflict(KetacareError):
    """The request conflicts with the stored state (e.g. a stale version)."""


class PossibleDuplicate(Conflict):
    """A new patient's name and birth date, or MRN, match a record already registered.

    ``matches`` holds the ids of those records; the API answers them as the problem's
    ``duplicates`` member, and the request is accepted once it confirms the duplicate.
    """

    def __init__(self, message: str, *, matches: tuple[int, ...]) -> None:
        super().__init__(message)
        self.matches = matches
        self.problem_extensions = {"duplicates": list(matches)}


class RecordRetired(Conflict):
    """The patient record was retired as entered in error: it is read-only."""


class IdempotencyKeyReused(KetacareError):
    """An ``Idempotency-Key`` sent again with a different body or to another route."""


class IdempotencyKeyPending(Conflict):
    """The first request with this ``Idempotency-Key`` has no stored answer (yet)."""


class Throttled(KetacareError):
    """Too many failed logins from one address (for one account or over all): wait a while.

    ``retry_after`` is the number of seconds until the next attempt is allowed.
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SecondFactorEnrolmentRequired(KetacareError):
    """The role must sign in with a second factor and the account has none yet."""


class CsrfRejected(KetacareError):
    """A form post without the right CSRF token."""


class SchemaBehind(KetacareError):
    """The database schema is older than the code: run ``ketacare db upgrade``."""


class AuditKeyMissing(KetacareError):
    """No usable audit key: the chain cannot be written or checked without it."""


class DatabaseUnavailable(KetacareError):
    """The database cannot be reached or written (stopped, read-only, disk full)."""


#: Most specific class first; the first ``isinstance`` match wins.
HTTP_STATUS: tuple[tuple[type[KetacareError], int, str], ...] = (
    (NotFound, 404, "Not found"),
    (NotAuthenticated, 401, "Not authenticated"),
    (Forbidden, 403, "Forbidden"),
    (CsrfRejected, 403, "CSRF token missing or wrong"),
    (SecondFactorEnrolmentRequired, 403, "Second factor enrolment required"),
    (Throttled, 429, "Too many attempts"),
    (PossibleDuplicate, 409, "Possible duplicate patient"),
    (IdempotencyKeyPending, 409, "Idempotency key in use"),
    (RecordRetired, 409, "Record retired (entered in error)"),
    (Conflict, 409, "Conflict"),
    (StaleSession, 409, "Someone else recorded first"),
    (IllegalTransition, 409, "Not possible in this state"),
    (SoftLimitNeedsReview, 409, "Soft limit needs a reason and a co-signature"),
    (DoseLimitExceeded, 422, "Dose above the hard limit"),
    (HardLimitNotSet, 422, "Hard dose limit not set"),
    (IdempotencyKeyReused, 422, "Idempotency key reused"),
    (InvalidInput, 422, "Invalid input"),
    (DataFileError, 500, "Clinical data file invalid"),
    (SchemaBehind, 503, "Database schema behind"),
    (AuditKeyMissing, 503, "Audit key missing"),
    (DatabaseUnavailable, 503, "Database unavailable"),
    (KetacareError, 400, "Request refused"),
)


def status_for(error: KetacareError) -> tuple[int, str]:
    """The HTTP status and problem title for an error."""
    for cls, status, title in HTTP_STATUS:
        if isinstance(error, cls):
            return status, title
    return 400, "Request refused"  # pragma: no cover - KetacareError is last above
