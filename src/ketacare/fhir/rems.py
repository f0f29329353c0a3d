"""The SPRAVATO REMS Patient Monitoring Form as FHIR R4 ``Questionnaire`` and
``QuestionnaireResponse``.

The form's fields (``core/rems/data/spravato-rems.toml``) become a Questionnaire of
string items, each carrying its field status (printed on the 11/2021 form, or named only
in the FDA or manufacturer summaries) as an item extension; a session's form becomes a
QuestionnaireResponse whose answers are the values the form shows. A missing item has no
answer and keeps the response ``in-progress``. This is a plain R4 rendering for exchange
and archive: it does not claim conformance to HL7's Medication REMS implementation guide
(which is about CDS Hooks and REMS administrator messaging, not this form's content).

Examples
--------
>>> from ketacare.core.rems.form import MonitoringForm
>>> form = MonitoringForm(
...     items=(("lot", "Lot number", "E1", "form-2021"), ("sedation", "Sedation", "", "x")),
...     missing=(("sedation", "the answers"),),
... )
>>> r = form_response(form, response_id="s1", subject="Patient/patient-7",
...                   authored="2026-03-02T10:00:00+00:00")
>>> r["status"], [i["linkId"] for i in r["item"]], r["item"][0]["answer"]
('in-progress', ['lot', 'sedation'], [{'valueString': 'E1'}])
>>> "answer" in r["item"][1]
False
"""

from __future__ import annotations

from typing import Any

from ketacare.core.rems import rules
from ketacare.core.rems.form import MonitoringForm
from ketacare.fhir.questionnaire import BASE_URL

__all__ = ["FIELD_STATUS_URL", "QUESTIONNAIRE_URL", "form_questionnaire", "form_response"]

#: The canonical URL of the form's Questionnaire.
QUESTIONNAIRE_URL = f"{BASE_URL}/Questionnaire/spravato-rems-patient-monitoring"
#: Item extension: how far the field is confirmed against the manufacturer's form.
FIELD_STATUS_URL = f"{BASE_URL}/StructureDefinition/rems-field-status"


def form_questionnaire(form: MonitoringForm) -> dict[str, Any]:
    """The form's items as a Questionnaire (one string item a field, in form order)."""
    r = rules()
    return {
        "resourceType": "Questionnaire",
        "url": QUESTIONNAIRE_URL,
        "name": "SpravatoRemsPatientMonitoringForm",
        "title": f"{r.name} Patient Monitoring Form",
        "status": "draft",  # the fields are not confirmed against the current form
        "item": [
            {
                "linkId": name,
                "text": label,
                "type": "string",
                "extension": [{"url": FIELD_STATUS_URL, "valueCode": status}],
            }
            for name, label, _, status in form.items
        ],
    }


def form_response(
    form: MonitoringForm, *, response_id: str, subject: str, authored: str
) -> dict[str, Any]:
    """A session's form as a QuestionnaireResponse: ``completed`` only when nothing is
    missing; ``subject`` is a reference such as ``"Patient/patient-7"``."""
    items: list[dict[str, Any]] = []
    for name, label, value, _ in form.items:
        item: dict[str, Any] = {"linkId": name, "text": label}
        if value:
            item["answer"] = [{"valueString": value}]
        items.append(item)
    return {
        "resourceType": "QuestionnaireResponse",
        "id": response_id,
        "questionnaire": QUESTIONNAIRE_URL,
        "status": "completed" if form.complete else "in-progress",
        "subject": {"reference": subject},
        "authored": authored,
        "item": items,
    }
