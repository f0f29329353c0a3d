"""One email address, as the record, the reminder sender and the settings all take it.

A reminder carries a single-use link, so a list ("a@x.org, b@y.org") or a display name
("Maria <m@x.org>") must never pass for an address: it would send the link elsewhere
too. This checks the shape only, not that mail is delivered there.
"""

from __future__ import annotations

import re

from ketacare.core.errors import InvalidInput

_ADDRESS = re.compile(r"[^@\s<>,;\"()]+@[^@\s<>,;\"()]+\.[^@\s<>,;\"()]+")


def one_email_address(text: str, *, what: str = "email") -> str:
    """``text`` stripped, when it is one email address; else a refusal naming ``what``.

    >>> one_email_address(" maria.jansen@example.org ")
    'maria.jansen@example.org'
    >>> one_email_address("a@example.org, b@example.org")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: email 'a@example.org, b@example.org' is not one ...
    """
    address = text.strip()
    if not _ADDRESS.fullmatch(address):
        raise InvalidInput(
            f"{what} {address!r} is not one email address: write it as name@example.org "
            "(one address, no name or list)"
        )
    return address
