"""Research registry exports: records without identifiers, by the rules in
``data/deidentification.toml`` (see :mod:`ketacare.core.research.export`)."""

from ketacare.core.research.export import (
    PROFILES,
    ExportRow,
    PatientRecord,
    ScoreRecord,
    SessionRecord,
    age_label,
    deidentify,
    rules,
)

__all__ = [
    "PROFILES",
    "ExportRow",
    "PatientRecord",
    "ScoreRecord",
    "SessionRecord",
    "age_label",
    "deidentify",
    "rules",
]
