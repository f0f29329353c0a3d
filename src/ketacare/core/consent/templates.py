"""Consent templates: the text a patient reads, the risks with their sources, and the
teach-back questions the patient answers before signing.

A template is a mapping (a TOML file for the shipped EXAMPLES in ``data/examples/``, or
the JSON a clinic publishes); :func:`parse_template` checks it with the one data-file
reader, so a risk without a source, an unknown source key or a question whose answer is
not one of its choices is refused with the field named. :func:`teach_back_errors` says
which questions a patient left unanswered or answered wrongly.

Examples
--------
>>> t = example_template("iv_racemic")
>>> t.example, t.program
(True, 'iv_racemic')
>>> sorted(r.id for r in t.risks)[:3]
['alternatives', 'bladder', 'blood_pressure']
>>> teach_back_errors(t, {q.id: q.answer for q in t.teach_back})
[]
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from ketacare.core.consent.programs import programs
from ketacare.core.datafile import Reader, read_toml
from ketacare.core.errors import DataFileError, InvalidInput
from ketacare.core.sources import Source

__all__ = [
    "Question",
    "Risk",
    "Section",
    "TemplateContent",
    "example_template",
    "example_programs",
    "MAX_TEMPLATE_TEXT",
    "read_clinic_template",
    "read_template_text",
    "template_to_toml",
    "parse_template",
    "teach_back_errors",
    "template_to_dict",
]

KIND = "consent template"


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    text: str


@dataclass(frozen=True, slots=True)
class Risk:
    """A risk named to the patient, with the keys of the sources it rests on."""

    id: str
    label: str
    statement: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Question:
    """A teach-back question: the patient picks one choice; ``answer`` is the right one."""

    id: str
    question: str
    choices: tuple[str, ...]
    answer: int


@dataclass(frozen=True, slots=True)
class TemplateContent:
    """What one version of a consent says (the version number is the clinic's record's)."""

    program: str
    title: str
    example: bool
    notice: str
    sections: tuple[Section, ...]
    risks: tuple[Risk, ...]
    teach_back: tuple[Question, ...]
    sources: dict[str, Source]


def parse_template(table: Mapping[str, Any], *, name: str) -> TemplateContent:
    """A checked template from its mapping; ``name`` names it in messages."""
    top = Reader(kind=KIND, path=name, table=table)
    top.fields(required=("template", "section", "risk", "teach_back", "sources"))
    head = top.sub("template")
    head.fields(required=("program", "title"), optional=("example", "notice"))
    program = head.choice("program", tuple(programs()))
    example = head.boolean("example", default=False)
    notice = head.text("notice", default="") if head.has("notice") else ""
    if example and not notice:
        raise head.fail("notice", "is missing: an example must say it is one, to adapt")
    sources = top.sources("sources", required=("key", "citation"), optional=("url", "doi"))
    sections = []
    for entry in top.tables("section", required=True):
        entry.fields(required=("heading", "text"))
        sections.append(Section(heading=entry.text("heading"), text=entry.text("text")))
    risks: list[Risk] = []
    for entry in top.tables("risk", required=True, id_key="id"):
        entry.fields(required=("id", "label", "statement", "sources"))
        rid = entry.text("id")
        if any(r.id == rid for r in risks):
            raise entry.fail("id", f"duplicate risk {rid!r}")
        risks.append(
            Risk(
                id=rid,
                label=entry.text("label"),
                statement=entry.text("statement"),
                sources=entry.source_refs("sources", sources),
            )
        )
    questions: list[Question] = []
    for entry in top.tables("teach_back", required=True, id_key="id"):
        entry.fields(required=("id", "question", "choices", "answer"))
        qid = entry.text("id")
        if any(q.id == qid for q in questions):
            raise entry.fail("id", f"duplicate question {qid!r}")
        choices = entry.strings("choices", non_empty=True)
        if len(choices) < 2:
            raise entry.fail("choices", "must offer at least two choices")
        answer = entry.integer("answer", minimum=0)
        if answer >= len(choices):
            raise entry.fail(
                "answer", f"must be the index of a choice (0 to {len(choices) - 1}), got {answer}"
            )
        questions.append(
            Question(id=qid, question=entry.text("question"), choices=choices, answer=answer)
        )
    return TemplateContent(
        program=program,
        title=head.text("title"),
        example=example,
        notice=notice,
        sections=tuple(sections),
        risks=tuple(risks),
        teach_back=tuple(questions),
        sources=sources,
    )


def template_to_dict(t: TemplateContent) -> dict[str, Any]:
    """The mapping :func:`parse_template` reads back to ``t`` (what the record stores)."""
    head: dict[str, Any] = {"program": t.program, "title": t.title, "example": t.example}
    if t.notice:
        head["notice"] = t.notice
    return {
        "template": head,
        "section": [{"heading": s.heading, "text": s.text} for s in t.sections],
        "risk": [
            {"id": r.id, "label": r.label, "statement": r.statement, "sources": list(r.sources)}
            for r in t.risks
        ],
        "teach_back": [
            {"id": q.id, "question": q.question, "choices": list(q.choices), "answer": q.answer}
            for q in t.teach_back
        ],
        "sources": [
            {
                "key": s.key,
                "citation": s.citation,
                **({"url": s.url} if s.url else {}),
                **({"doi": s.doi} if s.doi else {}),
            }
            for s in t.sources.values()
        ],
    }


@cache
def example_programs() -> tuple[str, ...]:
    """The programs an EXAMPLE template ships for."""
    folder = files("ketacare.core.consent") / "data" / "examples"
    return tuple(
        sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))
    )


@cache
def example_template(program: str) -> TemplateContent:
    """The shipped EXAMPLE template of ``program`` (to adapt, never to use as it stands)."""
    if program not in example_programs():
        raise InvalidInput(
            f"no example consent template for program {program!r} "
            f"(examples: {', '.join(example_programs())})"
        )
    resource = files("ketacare.core.consent") / "data" / "examples" / f"{program}.toml"
    t = parse_template(read_toml(resource, kind=KIND), name=f"examples/{program}.toml")
    if t.program != program:
        raise InvalidInput(f"examples/{program}.toml declares program {t.program!r}")
    return t


def teach_back_errors(t: TemplateContent, answers: Mapping[str, object]) -> list[str]:
    """The questions left unanswered or answered wrongly, as their ids (empty: all right)."""
    return [q.id for q in t.teach_back if answers.get(q.id) != q.answer]


def _toml_value(value: object) -> str:
    """A TOML literal for the plain values a template holds (text, whole numbers, yes/no,
    lists of text); a JSON string is a valid TOML basic string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def template_to_toml(t: TemplateContent) -> str:
    """``t`` as the TOML text a clinic edits: the shipped EXAMPLE files' layout, which
    :func:`read_template_text` reads back to ``t``.

    >>> t = example_template("psychotherapy")
    >>> read_template_text(template_to_toml(t), name="the text") == t
    True
    >>> template_to_toml(t).splitlines()[:2]
    ['[template]', 'program = "psychotherapy"']
    """
    data = template_to_dict(t)
    lines = ["[template]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in data["template"].items()]
    for table in ("section", "risk", "teach_back", "sources"):
        for entry in data[table]:
            lines += ["", f"[[{table}]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def read_template_text(text: str, *, name: str) -> TemplateContent:
    """A template from the TOML text a clinic wrote; a syntax error names its line.

    >>> try:
    ...     read_template_text("[template", name="the text")
    ... except InvalidInput as exc:
    ...     print(str(exc)[:47])
    the text is not valid TOML: Expected ']' at the
    """
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{name} is not valid TOML: {exc}{_curly_quote_hint(text)}") from None
    return parse_template(table, name=name)


#: quotes a word processor puts where TOML needs a straight double quote
_CURLY = "\u201c\u201d\u201e\u2018\u2019\u00ab\u00bb"


def _curly_quote_hint(text: str) -> str:
    """Why a pasted text often fails: its quotes were made curly. Names the first line.

    >>> _curly_quote_hint('title = \u201cConsent\u201d')[:44]
    ' (line 1 holds a curly quote \u201c: text goes be'
    """
    for number, line in enumerate(text.splitlines(), start=1):
        found = next((c for c in line if c in _CURLY), None)
        if found is not None and "=" in line and line.split("=", 1)[1].strip()[:1] in _CURLY:
            return (
                f" (line {number} holds a curly quote {found}: text goes between straight "
                'double quotes "..."; a word processor may have changed them)'
            )
    return ""


#: the longest template text the clinic may write (a storage bound, not a clinical number)
MAX_TEMPLATE_TEXT = 100_000


def read_clinic_template(
    content: Mapping[str, Any] | str | None, *, program: str
) -> TemplateContent:
    """The clinic's text for ``program`` (TOML as the editor holds it, the mapping the API
    takes, or None for the shipped EXAMPLE), checked as publishing checks it: its length,
    its syntax (naming the line), its fields and sources, and that it is written for
    ``program``. What the preview shows is what would be published.

    >>> read_clinic_template(template_to_toml(example_template("research")),
    ...                      program="research").program
    'research'
    >>> read_clinic_template(template_to_toml(example_template("research")),
    ...                      program="psychotherapy")
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: the template's program is 'research', not ...
    """
    if content is None:
        return example_template(program)
    if isinstance(content, str) and len(content) > MAX_TEMPLATE_TEXT:
        raise InvalidInput(
            f"the template text is too long: {len(content)} characters, at most {MAX_TEMPLATE_TEXT}"
        )
    try:
        parsed = (
            read_template_text(content, name="the template text")
            if isinstance(content, str)
            else parse_template(content, name="the template given")
        )
    except DataFileError as exc:  # the clinic's text is input here, not a shipped file
        raise InvalidInput(str(exc)) from None
    if parsed.program != program:
        raise InvalidInput(
            f"the template's program is {parsed.program!r}, not {program!r}: publish it "
            "under its own program"
        )
    return parsed
