"""Login throttling without lock-out: growing refusal windows, counted by the `limits` library.

Failed logins (and wrong current passwords at a password change) are counted twice:

* per **(account, address) pair**: the account as tried from one source address. Tiers of
  growing windows (by default 5 a minute, 10 in 15 minutes, 20 an hour, 50 a day) make
  each further guess wait longer. A stranger's failures fill the stranger's own pair, so
  the account's holder, signing in from another address, is never refused for them.
* per **address**, whatever the account: one address spraying guesses over many accounts
  is refused once its budget is spent (by default 20 a minute, 100 an hour, 300 a day).

The key is the username as typed, whether or not such an account exists, so a refusal
says nothing about which accounts exist. A successful login clears its own pair (not the
address budget). Counts live in the storage named by ``KETACARE_THROTTLE_STORAGE_URL``:
``memory://`` (the default) counts per server process; several processes share counts
through a storage all of them reach (``redis://``, ``memcached://``; see the `limits`
documentation).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ketacare.core.errors import InvalidInput
from ketacare.infra.settings import Settings


def _sync_storage(url: str) -> Storage:
    """The storage ``url`` names; the login path is synchronous, so async storages
    (``async+redis://`` and the like) are refused with the reason."""
    storage = storage_from_string(url)
    if not isinstance(storage, Storage):
        raise InvalidInput(
            f"KETACARE_THROTTLE_STORAGE_URL {url!r} names an asynchronous storage; use a "
            "synchronous one (memory://, redis://, memcached://)"
        )
    return storage


_PAIR = "login-pair"
_ADDRESS = "login-address"


def parse_tiers(text: str, what: str) -> list[RateLimitItem]:
    """Rate-limit tiers in the `limits` notation, e.g. ``5/minute;20/hour``."""
    try:
        tiers = parse_many(text)
    except ValueError:
        raise ValueError(
            f"{what} {text!r} is not a list of limits: write e.g. '5/minute;20/hour' "
            "(counts per second, minute, hour or day, separated by ';')"
        ) from None
    if not tiers:
        raise ValueError(f"{what} is empty: give at least one limit, e.g. '5/minute'")
    return tiers


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the next attempt is refused, and for how many more seconds."""

    scope: str  # "pair" | "address"
    seconds: int


class LoginThrottle:
    """Counts failed attempts per (account, address) pair and per address."""

    def __init__(
        self,
        *,
        pair_tiers: list[RateLimitItem],
        address_tiers: list[RateLimitItem],
        storage: Storage,
    ) -> None:
        self._pair = pair_tiers
        self._address = address_tiers
        self._limiter = MovingWindowRateLimiter(storage)

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginThrottle:
        return cls(
            pair_tiers=parse_tiers(
                settings.login_throttle_per_account_address, "login_throttle_per_account_address"
            ),
            address_tiers=parse_tiers(
                settings.login_throttle_per_address, "login_throttle_per_address"
            ),
            storage=_sync_storage(settings.throttle_storage_url),
        )

    @staticmethod
    def _ids(username: str, address: str | None) -> tuple[str, str]:
        return username.strip().lower()[:64], address or "unknown"

    def refusal(self, *, username: str, address: str | None) -> Refusal | None:
        """Why a further attempt is refused now, or None when it may go ahead."""
        user, addr = self._ids(username, address)
        waits: list[Refusal] = []
        for scope, tiers, ids in (
            ("address", self._address, (_ADDRESS, addr)),
            ("pair", self._pair, (_PAIR, addr, user)),
        ):
            for tier in tiers:
                if not self._limiter.test(tier, *ids):
                    reset = self._limiter.get_window_stats(tier, *ids).reset_time
                    waits.append(Refusal(scope, max(1, math.ceil(reset - time.time()))))
        return max(waits, key=lambda r: r.seconds) if waits else None

    def failed(self, *, username: str, address: str | None) -> None:
        """Count one failed attempt against the pair and the address."""
        user, addr = self._ids(username, address)
        for tier in self._address:
            self._limiter.hit(tier, _ADDRESS, addr)
        for tier in self._pair:
            self._limiter.hit(tier, _PAIR, addr, user)

    def succeeded(self, *, username: str, address: str | None) -> None:
        """A right password clears its own pair's count (the address budget stays)."""
        user, addr = self._ids(username, address)
        for tier in self._pair:
            self._limiter.clear(tier, _PAIR, addr, user)
