"""The pages' label filter: every code of the shipped data has words, never itself."""

from __future__ import annotations

import pytest

from ketacare.core.consent.programs import programs
from ketacare.core.instruments import list_instruments, outcome_measures
from ketacare.core.terminology.treatments import treatment_vocabulary
from ketacare.web.labels import KINDS, label

CODES = (
    [("instrument", i.id, None) for i in list_instruments()]
    + [("band", b.id, i.id) for i in list_instruments() for b in i.bands]
    + [("flag", f.id, i.id) for i in list_instruments() for f in i.flags]
    + [("program", p, None) for p in programs()]
    + [("molecule", m, None) for m in treatment_vocabulary().molecules]
    + [("route", r, None) for r in treatment_vocabulary().routes]
    + [("measure", m.id, None) for m in outcome_measures()]
)


@pytest.mark.parametrize(("kind", "code", "context"), CODES, ids=repr)
def test_every_shipped_code_reads_in_words(kind: str, code: str, context: str | None) -> None:
    words = label(code, kind, context)
    assert words and "_" not in words


def test_a_flag_reads_in_a_few_words_not_its_message() -> None:
    assert label("phq9_item9_positive", "flag") == (
        "PHQ-9 item 9 positive (thoughts of death or self-harm)"
    )


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown label kind"):
        label("x", "colour")
    assert "band" in KINDS
