"""The REMS data: every item of the generated form is one of the form's fields (none
invented), each field names a source, and the due rule counts calendar days."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from ketacare.core.rems import rules
from ketacare.core.rems.form import FIELD_OF, FormFacts, build_form, due_date, queue_status


def _empty() -> FormFacts:
    return FormFacts(
        patient_given="A",
        patient_family="B",
        patient_birth_date=date(1980, 1, 1),
        patient_sex="female",
        provider_name=None,
        setting=None,
        first_device_at=None,
        devices=0,
        device_mg=None,
        lots=(),
        blood_pressures=(),
        spo2=(),
        discharged_at=None,
    )


def test_every_form_item_is_a_field_of_the_form_with_sources() -> None:
    fields = {f.id: f for f in rules().fields}
    form = build_form(_empty(), zone=ZoneInfo("UTC"))
    for name, _, _, status in form.items:
        field = fields[FIELD_OF.get(name, name)]
        assert field.status == status and field.sources
        assert all(key in rules().sources for key in field.sources)
    # and every field of the data file is filled by some item
    assert {FIELD_OF.get(n, n) for n, *_ in form.items} == set(fields)


def test_an_empty_record_lists_every_recorded_item_as_missing() -> None:
    form = build_form(_empty(), zone=ZoneInfo("UTC"))
    missing = {name for name, _ in form.missing}
    assert "patient_name" not in missing and "treatment_date" in missing
    assert not form.complete


def test_due_is_seven_calendar_days_after_the_treatment() -> None:
    assert rules().submit_within_days == 7
    assert due_date(treated_on=date(2026, 2, 26)) == date(2026, 3, 5)  # across a month end
    assert queue_status(due=date(2026, 3, 5), today=date(2026, 3, 6), submitted=True) == (
        "submitted"
    )


def test_the_form_uses_the_clinic_date_not_the_utc_date() -> None:
    facts = _empty()
    late = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    form = build_form(
        FormFacts(
            **{
                **{k: getattr(facts, k) for k in facts.__dataclass_fields__},
                "first_device_at": late,
            }
        ),
        zone=ZoneInfo("Europe/Amsterdam"),
    )
    assert {n: v for n, _, v, _ in form.items}["treatment_date"] == "2026-03-03"
