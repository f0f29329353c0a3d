"""Rules for a new password, each refusal naming the rule it breaks.

1. At least :data:`MIN_LENGTH` characters (OWASP ASVS 4.0.3 V2.1.1 asks for 12).
2. Not one of the 30,000 most common passwords: the ``passwords`` list shipped by the
   `zxcvbn` package, a frequency count of the 10 million leaked passwords published by
   M. Burnett (xato.net, 2015), as built for zxcvbn (D. L. Wheeler, "zxcvbn: Low-Budget
   Password Strength Estimation", USENIX Security 2016).
3. Not containing the user's username or a part of their name (3 or more letters).
4. Not too easy to guess: zxcvbn's strength score (0 to 4) at least :data:`MIN_STRENGTH`
   (3, which zxcvbn's authors describe as "safely unguessable": 10^8 guesses or more).
   This catches repeats (``aaaaaaaaaaaa``), sequences (``123456789012``), keyboard walks,
   dates and common words with small changes that the exact list misses.
   Only the first 72 characters are scored (zxcvbn's own bound).

Examples
--------
>>> password_problem("aaaaaaaaaaaa", username="nurse", full_name="Noor Nurse") is not None
True
>>> password_problem("quiet-lantern-orbit-42", username="nurse", full_name="Noor Nurse")
"""

from __future__ import annotations

import re
from functools import cache

MIN_LENGTH = 12
MIN_STRENGTH = 3
MIN_NAME_PART = 3
_SCORED_PREFIX = 72


@cache
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    passwords = FREQUENCY_LISTS["passwords"]
    listed = passwords.split(",") if isinstance(passwords, str) else passwords
    return frozenset(p.lower() for p in listed)


def _name_parts(username: str, full_name: str) -> list[str]:
    parts = {username.lower()}
    for text in (username, full_name):
        parts.update(p for p in re.split(r"[^\w]+|_", text.lower()) if len(p) >= MIN_NAME_PART)
    return sorted(parts, key=len, reverse=True)


def password_problem(
    password: str, *, username: str, full_name: str, min_strength: int = MIN_STRENGTH
) -> str | None:
    """What rule ``password`` breaks (a sentence for the user), or None when it is allowed."""
    if len(password) < MIN_LENGTH:
        return (
            f"password must have at least {MIN_LENGTH} characters (this one has "
            f"{len(password)}): a few unrelated words make a long password easy to remember"
        )
    if password.lower() in _common() or password.strip().lower() in _common():
        return (
            "password is one of the 30,000 most common passwords (a list of leaked "
            "passwords): choose another"
        )
    lowered = password.lower()
    for part in _name_parts(username, full_name):
        if part in lowered:
            return f"password must not contain your username or name ({part!r}): choose another"
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:_SCORED_PREFIX], user_inputs=_name_parts(username, full_name))
    score = int(result["score"])
    if score < min_strength:
        hint = str(result.get("feedback", {}).get("warning") or "").rstrip(".")
        return (
            f"password is too easy to guess (strength {score} of 4, at least {min_strength} "
            "needed: repeated characters, sequences, keyboard patterns, dates and common "
            f"words are guessed first){': ' + hint if hint else ''}"
        )
    return None
