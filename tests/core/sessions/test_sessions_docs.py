"""docs/sessions.md shows the transition table as it is in the code."""

from __future__ import annotations

from pathlib import Path

from ketacare.core.sessions import MOVES, PLAUSIBILITY, TRANSITIONS

DOC = Path(__file__).resolve().parents[3] / "docs" / "sessions.md"


def test_docs_transition_table_matches_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    for move in MOVES:
        pairs = ", ".join(
            f"{s} -> {t}" if s != t else f"{s} (stays)" for s, t in TRANSITIONS[move].items()
        )
        assert f"| `{move}` | {pairs} |" in text


def test_docs_list_the_data_entry_bounds() -> None:
    text = DOC.read_text(encoding="utf-8")
    for bound in PLAUSIBILITY.values():
        assert f"| {bound.label} | {bound.min:g}-{bound.max:g}" in text
