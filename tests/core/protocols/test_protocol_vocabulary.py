"""Every limit kind and every basis of a limit's value has words in vocabulary.toml."""

from __future__ import annotations

from typing import get_args

from ketacare.core.protocols.limits import Basis
from ketacare.core.protocols.model import LIMIT_UNITS
from ketacare.core.protocols.vocabulary import basis_labels, limit_labels


def test_every_limit_kind_has_a_label() -> None:
    assert set(limit_labels()) == set(LIMIT_UNITS)


def test_every_basis_has_a_label() -> None:
    assert set(basis_labels()) == set(get_args(Basis))


def test_labels_are_words_not_codes() -> None:
    for words in (*limit_labels().values(), *basis_labels().values()):
        assert "_" not in words and words.strip() == words and words
