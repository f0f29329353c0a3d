"""The plan lifecycle: every (status, move) pair, legal or refused, generated from the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from ketacare.core.protocols.lifecycle import (
    FINAL,
    GIVEN,
    IN_FORCE,
    MOVES,
    STATUS_ACTIONS,
    STATUSES,
    TRANSITIONS,
    allowed_moves,
    next_status,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "protocols.md"

LEGAL = [(s, m, TRANSITIONS[m][s]) for m in MOVES for s in STATUSES if s in TRANSITIONS[m]]
REFUSED = [(s, m) for m in MOVES for s in STATUSES if s not in TRANSITIONS[m]]

# The lifecycle written out by hand, independently of the table: what signing, co-signing,
# the status route, the first dose and a new version's signature do to a plan.
EXPECTED = {
    ("draft", "sign", "signed"),
    ("draft", "sign_for_review", "awaiting_cosign"),
    ("awaiting_cosign", "cosign", "signed"),
    ("signed", "activate", "active"),
    ("active", "complete", "completed"),
    ("awaiting_cosign", "stop", "stopped"),
    ("signed", "stop", "stopped"),
    ("active", "stop", "stopped"),
    ("awaiting_cosign", "supersede", "superseded"),
    ("signed", "supersede", "superseded"),
    ("active", "supersede", "superseded"),
}


def test_the_table_is_the_lifecycle_written_by_hand() -> None:
    assert set(LEGAL) == EXPECTED
    assert len(LEGAL) + len(REFUSED) == len(STATUSES) * len(MOVES)


@pytest.mark.parametrize(("status", "move", "after"), LEGAL, ids=repr)
def test_a_legal_move(status: str, move: str, after: str) -> None:
    assert next_status(status, move) == after
    assert move in allowed_moves(status)


@pytest.mark.parametrize(("status", "move"), REFUSED, ids=repr)
def test_a_refused_move(status: str, move: str) -> None:
    assert next_status(status, move) is None
    assert move not in allowed_moves(status)


def test_unknown_statuses_and_moves_are_refused() -> None:
    assert next_status("archived", "activate") is None
    assert next_status("signed", "resume") is None
    assert allowed_moves("archived") == ()


def test_the_named_groups_of_statuses() -> None:
    assert all(allowed_moves(s) == () for s in FINAL)
    assert {s for s in STATUSES if "stop" in allowed_moves(s)} == set(IN_FORCE)
    assert set(GIVEN) == {"signed", "active"} and set(GIVEN) <= set(IN_FORCE)
    assert set(STATUS_ACTIONS) <= set(MOVES)


def test_docs_transition_table_matches_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    for move in MOVES:
        pairs = ", ".join(f"{s} -> {t}" for s, t in TRANSITIONS[move].items())
        assert f"| `{move}` | {pairs} |" in text
