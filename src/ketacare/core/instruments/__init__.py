"""Validated clinical instruments as data, and their scoring.

Each instrument (questionnaire or criteria set) is one TOML file under
``data/`` with its items, response values, scoring rule, missing-item rule,
bands, flags, LOINC codes where sourced, licence case and sources. Scoring is
a pure function::

    >>> from ketacare.core.instruments import score
    >>> r = score("gad7", [2, 2, 1, 1, 1, 2, 1])
    >>> r.total, r.band, r.flags
    (10, 'moderate', ('gad7_further_evaluation',))

Nothing here imports the web, the database or the CLI.
"""

from ketacare.core.instruments.completeness import (
    IncompleteAnswers,
    Unanswered,
    blank_flags,
    incomplete_label,
    require_complete,
    unanswered_items,
)
from ketacare.core.instruments.expressions import Condition, parse_condition
from ketacare.core.instruments.loader import load_instrument_file, load_instrument_text
from ketacare.core.instruments.model import (
    Band,
    EnableWhen,
    FlagRule,
    Instrument,
    Item,
    Licence,
    OutcomeMeasure,
    ResponseOption,
    RuleBand,
    ScoreResult,
    Scoring,
    Source,
    Subscale,
    Use,
)
from ketacare.core.instruments.scoring import (
    get_instrument,
    list_instruments,
    score,
    score_instrument,
)
from ketacare.core.instruments.texts import load_item_texts, parse_item_texts, with_item_texts
from ketacare.core.instruments.uses import (
    outcome_measures,
    screening_instrument_ids,
    self_report_ids,
)

__all__ = [
    "Band",
    "Condition",
    "EnableWhen",
    "FlagRule",
    "IncompleteAnswers",
    "Instrument",
    "Item",
    "Licence",
    "OutcomeMeasure",
    "ResponseOption",
    "RuleBand",
    "ScoreResult",
    "Scoring",
    "Source",
    "Subscale",
    "Unanswered",
    "Use",
    "get_instrument",
    "list_instruments",
    "load_instrument_file",
    "load_instrument_text",
    "incomplete_label",
    "load_item_texts",
    "outcome_measures",
    "parse_condition",
    "parse_item_texts",
    "require_complete",
    "score",
    "score_instrument",
    "screening_instrument_ids",
    "self_report_ids",
    "blank_flags",
    "unanswered_items",
    "with_item_texts",
]
