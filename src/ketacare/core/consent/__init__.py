"""Treatment consent: programs, templates with sourced risks and teach-back questions,
and whether a patient's consent is in force (pure; the shell stores and signs)."""

from ketacare.core.consent.programs import Program, program_for, programs
from ketacare.core.consent.standing import Published, Signed, Standing, standing
from ketacare.core.consent.templates import (
    Question,
    Risk,
    Section,
    TemplateContent,
    example_programs,
    example_template,
    parse_template,
    read_clinic_template,
    read_template_text,
    teach_back_errors,
    template_to_dict,
    template_to_toml,
)

__all__ = [
    "Program",
    "Published",
    "Question",
    "Risk",
    "Section",
    "Signed",
    "Standing",
    "TemplateContent",
    "example_programs",
    "example_template",
    "parse_template",
    "read_clinic_template",
    "read_template_text",
    "program_for",
    "programs",
    "standing",
    "teach_back_errors",
    "template_to_dict",
    "template_to_toml",
]
