"""The root of ketacare's error tree, shared by the core and the shell.

Every error a clinician or a client can meet derives from :class:`KetacareError`
and carries a message that says what is wrong and what is allowed. The shell
(``ketacare.infra.errors``) adds the errors that only exist there (not found,
forbidden, conflict) and maps the whole tree to HTTP problem responses and CLI
exit codes in one place::

    KetacareError
    ├── InvalidInput            bad or implausible input (HTTP 422, exit 2)
    │   ├── OutOfRange          a value outside its allowed range
    │   └── UnknownItem         an unknown id, code, route or item
    ├── DoseLimitExceeded       a dose above a protocol's hard limit (HTTP 422, exit 2)
    ├── HardLimitNotSet         a hard ceiling no source or clinic policy sets (HTTP 422, exit 2)
    ├── SoftLimitNeedsReview    above a soft limit without reason/co-signature (HTTP 409, exit 2)
    ├── DataFileError           a clinical data file that fails validation (exit 2)
    ├── IllegalTransition       a move a dosing session's state does not allow (HTTP 409)
    ├── StaleSession            a session write based on an out-of-date view (HTTP 409)
    └── (shell) NotFound, Forbidden, NotAuthenticated, Conflict, SchemaBehind ...

Warnings that must reach the user but do not stop the computation (a patient
outside a model's validated range) are :class:`ClinicalWarning`.

Examples
--------
>>> str(OutOfRange("weight_kg", 400, "20 to 350 kg"))
'weight_kg 400 is out of range: allowed 20 to 350 kg'
>>> print(StaleSession(expected_seq=4, actual_seq=5, latest="vitals by nurse2"))
... # doctest: +NORMALIZE_WHITESPACE
the session changed since you loaded it: you saw entry 4, it now has entry 5
(vitals by nurse2); reload it and enter your change again
"""

from __future__ import annotations


class KetacareError(Exception):
    """Base of every error ketacare raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(KetacareError, ValueError):
    """Input that cannot be accepted; the message names the field and what is allowed."""


class OutOfRange(InvalidInput):
    """A value outside its allowed range."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        super().__init__(f"{field} {value} is out of range: allowed {allowed}")
        self.field = field
        self.value = value
        self.allowed = allowed


class UnknownItem(InvalidInput):
    """An identifier (model, instrument, protocol, route, item, code) that is not known."""

    def __init__(self, kind: str, value: object, known: list[str] | tuple[str, ...]) -> None:
        shown = ", ".join(sorted(known)) if known else "none"
        super().__init__(f"unknown {kind} {value!r}: known are {shown}")
        self.kind = kind
        self.value = value
        self.known = tuple(known)


class DoseLimitExceeded(KetacareError):
    """A dose or rate above a protocol's hard limit: always refused."""


class HardLimitNotSet(KetacareError):
    """A protocol's hard ceiling that neither its source nor the clinic's policy sets.

    Fails closed: without the ceiling no plan under the protocol can be built or
    signed, and no session of it opened, until someone accountable sets it.
    """


class SoftLimitNeedsReview(KetacareError):
    """A dose above a soft limit without a documented reason and a second clinician."""


class DataFileError(KetacareError):
    """A clinical data file (model, instrument, rule, protocol) that fails validation."""


class ClinicalWarning(UserWarning):
    """A caution that does not stop the computation (e.g. a patient outside a model's range)."""


class IllegalTransition(KetacareError):
    """An event the session's current state does not allow (or whose guard is unmet)."""

    def __init__(self, message: str, *, state: str, move: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.state = state
        self.move = move
        self.allowed = allowed


class StaleSession(KetacareError):
    """A write whose expected sequence number is not the session's latest.

    Two staff working on one session never overwrite each other: the second
    write is refused and must be re-entered on the reloaded session.
    """

    def __init__(self, *, expected_seq: int, actual_seq: int, latest: str) -> None:
        super().__init__(
            f"the session changed since you loaded it: you saw entry {expected_seq}, "
            f"it now has entry {actual_seq} ({latest}); reload it and enter your change again"
        )
        self.expected_seq = expected_seq
        self.actual_seq = actual_seq
        self.latest = latest
