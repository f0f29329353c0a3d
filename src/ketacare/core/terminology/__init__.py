"""Code systems: ICD-10-CM (diagnoses) and RxNorm (medications) format checks and names.

Examples
--------
>>> normalise_icd10cm(" g90.511 ")
'G90.511'
>>> icd10cm_display("M79.7")
'Fibromyalgia'
>>> try:
...     normalise_icd10cm("G90-5")
... except InvalidInput as error:
...     print(error)  # doctest: +ELLIPSIS
ICD-10-CM code 'G90-5' is not well formed: expected a letter, two characters and ...
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources

from ketacare.core.errors import DataFileError, InvalidInput

ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
RXCUI = re.compile(r"^[0-9]{1,9}$")


def normalise_icd10cm(code: str) -> str:
    """The code upper-cased and trimmed, or :class:`InvalidInput` if malformed."""
    value = code.strip().upper()
    if not ICD10CM.match(value):
        raise InvalidInput(
            f"ICD-10-CM code {code.strip()!r} is not well formed: expected a letter, two "
            "characters and an optional dot with 1-4 more (e.g. G90.511)"
        )
    return value


def normalise_rxcui(code: str) -> str:
    """An RxNorm concept id (digits only), or :class:`InvalidInput`."""
    value = code.strip()
    if not RXCUI.match(value):
        raise InvalidInput(f"RxNorm code {code!r} is not well formed: expected 1-9 digits")
    return value


@cache
def icd10cm_codes() -> dict[str, tuple[str, str]]:
    """Known codes: code -> (display, source)."""
    raw = resources.files(__package__).joinpath("icd10cm.toml").read_text(encoding="utf-8")
    data = tomllib.loads(raw)
    table: dict[str, tuple[str, str]] = {}
    for entry in data.get("codes", []):
        try:
            code = normalise_icd10cm(str(entry["code"]))
            table[code] = (str(entry["display"]), str(entry["source"]))
        except (KeyError, InvalidInput) as exc:
            raise DataFileError(f"icd10cm.toml: bad entry {entry!r}: {exc}") from None
    return table


def icd10cm_display(code: str) -> str | None:
    """The display text of a known code, or None."""
    entry = icd10cm_codes().get(normalise_icd10cm(code))
    return entry[0] if entry else None
