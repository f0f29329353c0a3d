"""The session core's own errors, under :class:`~ketacare.core.errors.KetacareError`.

::

    KetacareError
    ├── InvalidInput / OutOfRange    an implausible vital or a malformed event (HTTP 422)
    ├── IllegalTransition            a move the session's state does not allow (HTTP 409)
    └── StaleSession                 a write based on an out-of-date view (HTTP 409)

Examples
--------
>>> print(StaleSession(expected_seq=4, actual_seq=5, latest="vitals by nurse2"))
... # doctest: +NORMALIZE_WHITESPACE
the session changed since you loaded it: you saw entry 4, it now has entry 5
(vitals by nurse2); reload it and enter your change again
"""

from __future__ import annotations

from ketacare.core.errors import KetacareError


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
