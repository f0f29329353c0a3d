"""Licensed item texts: let a clinic that holds a licence show the real wording.

Instruments whose owners do not allow redistribution (``labels_only``) ship
with short neutral labels. A clinic holding a licence keeps the licensed
wording in a local TOML file and loads it at start-up::

    instrument = "bpi_sf"
    licence_reference = "MD Anderson BPI licence 2025-117"

    [texts]
    worst = "..."
    least = "..."

:func:`parse_item_texts` validates such a document and
:func:`with_item_texts` returns a copy of the instrument carrying the texts;
:func:`load_item_texts` reads the file (the only function here that touches
the file system). Scoring never depends on the texts.

Examples
--------
>>> doc = 'instrument = "pcs"\\nlicence_reference = "Mapi 42"\\n[texts]\\nq1 = "Licensed text"\\n'
>>> inst = with_item_texts(*parse_item_texts(doc))
>>> inst.item("q1").text, inst.texts_loaded_under
('Licensed text', 'Mapi 42')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from ketacare.core.datafile import Reader, parse_toml
from ketacare.core.errors import DataFileError, KetacareError
from ketacare.core.instruments.model import Instrument
from ketacare.core.instruments.scoring import get_instrument

__all__ = ["load_item_texts", "parse_item_texts", "with_item_texts"]

_KIND = "instrument texts"


def with_item_texts(
    instrument: Instrument, texts: Mapping[str, str], licence_reference: str
) -> Instrument:
    """A copy of ``instrument`` whose items carry ``texts`` (keyed by item id).

    Raises
    ------
    DataFileError
        When an item id is unknown, a text is empty or the licence reference is blank.
    """
    if not licence_reference.strip():
        raise DataFileError(f"{instrument.id} item texts: licence_reference must not be empty")
    known = set(instrument.item_ids)
    for item_id, text in texts.items():
        if item_id not in known:
            raise DataFileError(
                f"{instrument.id} item texts: unknown item {item_id!r}; "
                f"known are {', '.join(instrument.item_ids)}"
            )
        if not isinstance(text, str) or not text.strip():
            raise DataFileError(f"{instrument.id} item texts: text of {item_id} must not be empty")
    items = tuple(
        dataclasses.replace(item, text=texts[item.id]) if item.id in texts else item
        for item in instrument.items
    )
    return dataclasses.replace(instrument, items=items, texts_loaded_under=licence_reference)


def parse_item_texts(
    document: str, where: str = "<item texts>"
) -> tuple[Instrument, dict[str, str], str]:
    """Validate a licensed-texts TOML document.

    Returns
    -------
    tuple
        The library instrument it names, the texts keyed by item id, and the
        clinic's licence reference.
    """
    top = Reader(kind=_KIND, path=where, table=parse_toml(document, kind=_KIND, path=where))
    top.only({"instrument", "licence_reference", "texts"})
    instrument_id = top.text("instrument")
    reference = top.text("licence_reference")
    texts = top.table.get("texts")
    if not isinstance(texts, dict) or not all(isinstance(v, str) for v in texts.values()):
        raise top.fail("texts", "must be a [texts] table mapping item ids to strings")
    try:
        instrument = get_instrument(instrument_id)
    except KetacareError as exc:
        raise top.fail("instrument", str(exc)) from exc
    return instrument, {str(k): v for k, v in texts.items()}, reference


def load_item_texts(path: Path) -> Instrument:
    """Read a clinic's licensed-texts file and return the instrument with its texts.

    Raises
    ------
    DataFileError
        When the file cannot be read or fails validation.
    """
    try:
        document = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(
            f"{_KIND} file {path.name}: cannot be read: {exc.strerror or exc}"
        ) from exc
    return with_item_texts(*parse_item_texts(document, path.name))
