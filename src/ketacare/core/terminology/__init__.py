"""Code systems: ICD-10-CM (diagnoses) and RxNorm (medications) format checks and names.

Examples
--------
>>> normalise_icd10cm(" g90.511 ")
'G90.511'
>>> icd10cm_display("M79.7")
'Fibromyalgia'
>>> normalise_icd10cm("i671")  # without the dot, lower case
'I67.1'
>>> icd10cm_in_range("F25.0", "F20", "F29"), icd10cm_in_range("F30.1", "F20", "F29")
(True, False)
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
#: The same code written without its dot (as many records and exports hold it).
ICD10CM_DOTLESS = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{1,4}$")
RXCUI = re.compile(r"^[0-9]{1,9}$")


def normalise_icd10cm(code: str) -> str:
    """The code upper-cased, trimmed and dotted, or :class:`InvalidInput` if malformed.

    ICD-10-CM puts the dot after the third character; "I671" and "i67.1" are the same code as
    "I67.1", and a rule that compared text would miss the first two.
    """
    value = code.strip().upper()
    if ICD10CM_DOTLESS.match(value):
        value = f"{value[:3]}.{value[3:]}"
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


def icd10cm_in_range(code: str, first: str, last: str) -> bool:
    """True when ``code`` falls in ``first``-``last`` inclusive (both ends normalised).

    Each end is compared at its own length, so a range of categories ("F20"-"F29") holds every
    subcode of them and "Q27.3"-"Q27.3" holds Q27.3 and all its subcodes.

    >>> icd10cm_in_range("Q2731", "Q27.3", "Q27.3"), icd10cm_in_range("Q27.4", "Q27.3", "Q27.3")
    (True, False)
    """
    value = normalise_icd10cm(code).replace(".", "")
    low = normalise_icd10cm(first).replace(".", "")
    high = normalise_icd10cm(last).replace(".", "")
    return value[: len(low)] >= low and value[: len(high)] <= high
