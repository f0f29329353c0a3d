"""Treatment consent: the gates on the plan's signature and on every session, re-consent,
withdrawal, the signed document and its hash, and what a refusal leaves unchanged."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from pdf_text import every_page_names_the_patient, flat, words_outside_the_margins
from plan_helpers import (
    MONITORING_ORDER,
    consent_to,
    draft,
    drawn_signature,
    screened_patient,
)


@pytest.fixture
def bare(client: Any, clinic: dict[str, Any]) -> dict[str, Any]:
    """The clinic's team and a screened patient who has consented to nothing."""
    pid = screened_patient(client, clinic["team"], "Unconsented", consent=False)
    return {"pid": pid, "team": clinic["team"]}


def _sign(client: Any, team: dict[str, Any], plan_id: int) -> Any:
    return client.post(
        f"/api/v1/plans/{plan_id}/sign",
        headers=team["physician"],
        json={
            "weight_confirmed": True,
            "reason": "site limits not configured",
            "monitoring_order": MONITORING_ORDER,
        },
    )


def _signed_plan(client: Any, clinic: dict[str, Any]) -> int:
    plan = draft(client, clinic)
    assert _sign(client, clinic["team"], plan["id"]).status_code == 200
    r = client.post(f"/api/v1/plans/{plan['id']}/cosign", headers=clinic["team"]["physician2"])
    assert r.status_code == 200, r.text
    return int(plan["id"])


def _open(client: Any, team: dict[str, Any], plan_id: int, number: int = 1) -> Any:
    return client.post(
        f"/api/v1/plans/{plan_id}/sessions",
        headers=team["nurse"],
        json={"session_number": number},
    )


def _consents(client: Any, team: dict[str, Any], pid: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/patients/{pid}/consents", headers=team["nurse"])
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_without_a_signed_consent_no_plan_is_signed_api_and_page(
    client: Any, bare: dict[str, Any], login_page: Any
) -> None:
    team, pid = bare["team"], bare["pid"]
    plan = draft(client, bare)
    r = _sign(client, team, plan["id"])
    assert r.status_code == 422
    assert "consent: no signed consent for program iv_racemic" in r.json()["detail"]
    assert (
        client.get(f"/api/v1/plans/{plan['id']}", headers=team["physician"]).json()["status"]
        == "draft"
    )
    # the page refuses the same way and shows why
    csrf = login_page("physician")
    page = client.post(
        f"/plans/{plan['id']}/sign",
        data={"csrf_token": csrf, "weight_confirmed": "yes", "reason": "x"},
        follow_redirects=False,
    )
    assert page.status_code == 422
    assert "no signed consent for program iv_racemic" in page.text
    # a consent signed by the patient but not yet countersigned holds nothing
    consent_to((client, team["nurse"]), (client, team["physician"]), pid, ("iv_racemic",))
    assert _sign(client, team, plan["id"]).status_code == 200


def test_a_consent_awaiting_countersignature_holds_nothing(
    client: Any, bare: dict[str, Any]
) -> None:
    team, pid = bare["team"], bare["pid"]
    template = client.post(
        "/api/v1/consent-templates", headers=team["physician"], json={"program": "iv_racemic"}
    ).json()
    answers = {q["id"]: q["answer"] for q in template["content"]["teach_back"]}
    r = client.post(
        f"/api/v1/patients/{pid}/consents",
        headers=team["nurse"],
        json={
            "template_id": template["id"],
            "typed_name": "Plan Unconsented",
            "signature": drawn_signature(),
            "teach_back": answers,
        },
    )
    assert r.status_code == 201 and r.json()["status"] == "awaiting countersignature"
    plan = draft(client, bare)
    detail = _sign(client, team, plan["id"]).json()["detail"]
    assert "one awaits its countersignature" in detail
    r = client.get(f"/api/v1/consents/{r.json()['id']}/pdf", headers=team["nurse"])
    assert r.status_code == 409  # no signed document before the countersignature


def test_a_withdrawn_consent_stops_the_next_session_api_and_page(
    client: Any, clinic: dict[str, Any], login_page: Any, settings: Any
) -> None:
    team, pid = clinic["team"], clinic["pid"]
    plan_id = _signed_plan(client, clinic)
    assert _open(client, team, plan_id, 1).status_code == 201
    iv = next(c for c in _consents(client, team, pid)["consents"] if c["program"] == "iv_racemic")
    r = client.post(
        f"/api/v1/consents/{iv['id']}/withdraw",
        headers=team["nurse"],
        json={"reason": "patient phoned to stop the course"},
    )
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    before = _count(settings, "dosing_sessions")
    r = _open(client, team, plan_id, 2)
    assert r.status_code == 422
    assert "the patient withdrew consent to program iv_racemic" in r.json()["detail"]
    csrf = login_page("nurse")
    page = client.post(
        f"/plans/{plan_id}/sessions/open",
        data={"csrf_token": csrf, "session_number": "2"},
        follow_redirects=False,
    )
    assert page.status_code == 422 and "withdrew consent" in page.text
    assert _count(settings, "dosing_sessions") == before  # nothing stored on refusal
    # the withdrawal is history: the consent is still listed, with its reason
    listed = _consents(client, team, pid)
    assert [c["withdrawal_reason"] for c in listed["consents"] if c["id"] == iv["id"]] == [
        "patient phoned to stop the course"
    ]
    standing = {s["program"]: s for s in listed["standings"]}["iv_racemic"]
    assert standing["in_force"] is False and standing["withdrawn"] is True
    # a new consent lets the course go on
    consent_to((client, team["nurse"]), (client, team["physician"]), pid, ("iv_racemic",))
    assert _open(client, team, plan_id, 2).status_code == 201


def test_a_new_version_requiring_reconsent_flags_exactly_the_older_consents(
    client: Any, clinic: dict[str, Any]
) -> None:
    team = clinic["team"]
    first = clinic["pid"]  # consented to version 1 of every treatment program
    second = screened_patient(client, team, "Second")
    plan_id = _signed_plan(client, clinic)
    # a version without re-consent flags nobody
    r = client.post(
        "/api/v1/consent-templates",
        headers=team["physician"],
        json={"program": "iv_racemic", "note": "typo fixed"},
    )
    assert r.status_code == 201 and r.json()["version"] == 2
    assert client.get("/api/v1/consent-reconsent", headers=team["nurse"]).json() == []
    r = client.post(
        "/api/v1/consent-templates",
        headers=team["physician"],
        json={"program": "iv_racemic", "reconsent_required": True, "note": "new risk"},
    )
    assert r.status_code == 201 and r.json()["version"] == 3
    flags = client.get("/api/v1/consent-reconsent", headers=team["nurse"]).json()
    assert sorted((f["patient_id"], f["program"], f["signed_version"]) for f in flags) == [
        (first, "iv_racemic", 1),
        (second, "iv_racemic", 1),
    ]
    # the flagged consent no longer opens a session
    r = _open(client, team, plan_id, 1)
    assert r.status_code == 422 and "requires re-consent" in r.json()["detail"]
    # signing version 1 again is refused: only the current version is signed
    v1 = next(
        t
        for t in client.get("/api/v1/consent-templates", headers=team["nurse"]).json()
        if t["program"] == "iv_racemic" and t["version"] == 1
    )
    r = client.post(
        f"/api/v1/patients/{first}/consents",
        headers=team["nurse"],
        json={
            "template_id": v1["id"],
            "typed_name": "Plan Patient",
            "signature": drawn_signature(),
            "teach_back": {q["id"]: q["answer"] for q in v1["content"]["teach_back"]},
        },
    )
    assert r.status_code == 409 and "superseded by version 3" in r.json()["detail"]
    consent_to((client, team["nurse"]), (client, team["physician"]), first, ("iv_racemic",))
    flags = client.get("/api/v1/consent-reconsent", headers=team["nurse"]).json()
    assert [(f["patient_id"], f["program"]) for f in flags] == [(second, "iv_racemic")]
    assert _open(client, team, plan_id, 1).status_code == 201


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"teach_back": {}},
            "ask the clinic's staff if anything is unclear: 'How do you get home after a session?'",
        ),
        ({"typed_name": "Someone Else"}, "the typed name must be the patient's name"),
        ({"signature": "data:image/png;base64,AAAA"}, "signature is not a readable PNG"),
        ({"signature": "not a drawing"}, "signature must be a PNG drawing"),
    ],
)
def test_a_refused_signature_stores_nothing(
    client: Any, bare: dict[str, Any], settings: Any, change: dict[str, Any], message: str
) -> None:
    team, pid = bare["team"], bare["pid"]
    template = client.post(
        "/api/v1/consent-templates", headers=team["physician"], json={"program": "iv_racemic"}
    ).json()
    body = {
        "template_id": template["id"],
        "typed_name": "plan  UNCONSENTED",  # case and spacing do not matter
        "signature": drawn_signature(),
        "teach_back": {q["id"]: q["answer"] for q in template["content"]["teach_back"]},
    }
    before = _count(settings, "consents")
    r = client.post(f"/api/v1/patients/{pid}/consents", headers=team["nurse"], json=body | change)
    assert r.status_code == 422 and message in r.json()["detail"]
    assert _count(settings, "consents") == before
    ok = client.post(f"/api/v1/patients/{pid}/consents", headers=team["nurse"], json=body)
    assert ok.status_code == 201, ok.text


def test_a_blank_drawing_is_refused(client: Any, bare: dict[str, Any]) -> None:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", (50, 20), (0, 0, 0, 0)).save(buffer, format="PNG")
    blank = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    team = bare["team"]
    template = client.post(
        "/api/v1/consent-templates", headers=team["physician"], json={"program": "iv_racemic"}
    ).json()
    r = client.post(
        f"/api/v1/patients/{bare['pid']}/consents",
        headers=team["nurse"],
        json={
            "template_id": template["id"],
            "typed_name": "Plan Unconsented",
            "signature": blank,
            "teach_back": {q["id"]: q["answer"] for q in template["content"]["teach_back"]},
        },
    )
    assert r.status_code == 422 and "signature is blank" in r.json()["detail"]


def test_the_signed_pdf_matches_its_stored_hash_and_rows_are_append_only(
    client: Any, clinic: dict[str, Any], settings: Any
) -> None:
    team, pid = clinic["team"], clinic["pid"]
    consent = _consents(client, team, pid)["consents"][0]
    assert consent["status"] == "signed" and consent["countersigned_as"] == "clinician"
    r = client.get(f"/api/v1/consents/{consent['id']}/pdf", headers=team["nurse"])
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert hashlib.sha256(r.content).hexdigest() == consent["pdf_sha256"]
    again = client.post(
        f"/api/v1/consents/{consent['id']}/countersign",
        headers=team["nurse"],
        json={"capacity": "witness"},
    )
    assert again.status_code == 409
    engine = create_engine(settings.effective_database_url)
    for statement in (
        "UPDATE consents SET typed_name = 'x'",
        "DELETE FROM consent_countersignatures",
        "UPDATE consent_templates SET reconsent_required = true",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    engine.dispose()


def test_a_template_risk_without_a_source_is_refused(client: Any, clinic: dict[str, Any]) -> None:
    team = clinic["team"]
    content = client.get("/api/v1/consent-templates", headers=team["nurse"]).json()[0]["content"]
    content["risk"][0]["sources"] = ["nowhere-2020"]
    r = client.post(
        "/api/v1/consent-templates",
        headers=team["physician"],
        json={"program": content["template"]["program"], "content": content},
    )
    assert r.status_code == 422
    assert "unknown source 'nowhere-2020'" in r.json()["detail"]
    r = client.post(
        "/api/v1/consent-templates", headers=team["nurse"], json={"program": "iv_racemic"}
    )
    assert r.status_code == 403  # physicians publish


def test_a_patient_signs_their_own_consent_and_no_one_elses(
    client: Any, login_api: Any, clinic: dict[str, Any]
) -> None:
    team = clinic["team"]
    mine = login_api("patient1")
    template = client.post(
        "/api/v1/consent-templates", headers=team["physician"], json={"program": "research"}
    ).json()
    me = client.get("/api/v1/patients/1", headers=mine).json()["patient"]
    body = {
        "template_id": template["id"],
        "typed_name": f"{me['given_name']} {me['family_name']}",
        "signature": drawn_signature(),
        "teach_back": {q["id"]: q["answer"] for q in template["content"]["teach_back"]},
    }
    assert client.post("/api/v1/patients/1/consents", headers=mine, json=body).status_code == 201
    other = client.post("/api/v1/patients/2/consents", headers=mine, json=body)
    assert other.status_code == 403
    assert client.get("/api/v1/patients/2/consents", headers=mine).status_code == 403
    assert client.get("/api/v1/patients/1/consents", headers=mine).status_code == 200


def _count(settings: Any, table: str) -> int:
    engine = create_engine(settings.effective_database_url)
    with engine.connect() as conn:
        n = int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608
    engine.dispose()
    return n


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
def test_the_signed_pdf_reads_as_a_consent_document(
    client: Any, clinic: dict[str, Any], tmp_path: Path
) -> None:
    team, pid = clinic["team"], clinic["pid"]
    patient = client.get(f"/api/v1/patients/{pid}", headers=team["nurse"]).json()["patient"]
    consent = _consents(client, team, pid)["consents"][0]
    templates = client.get("/api/v1/consent-templates", headers=team["nurse"]).json()
    template = next(t for t in templates if t["id"] == consent["template_id"])
    pdf = client.get(f"/api/v1/consents/{consent['id']}/pdf", headers=team["nurse"]).content
    (tmp_path / "consent.pdf").write_bytes(pdf)
    text_ = flat(pdf)
    every_page_names_the_patient(pdf, patient["family_name"].upper(), patient["mrn"])
    typed = f"{patient['given_name']} {patient['family_name']}"
    assert "Treatment consent" in text_ and "Patient (typed name)" in text_ and typed in text_
    for risk in template["content"]["risk"]:
        assert risk["label"] in text_, risk["label"]
    # its references numbered as listed, not the file's source keys
    keys = [s["key"] for s in template["content"]["sources"]]
    assert not any(f"[{k}]" in text_ for k in keys) and "[1]" in text_
    for question in template["content"]["teach_back"]:  # every answer given was the right one
        answer = question["choices"][question["answer"]]
        assert " ".join(answer.split()[:4]) in text_, answer  # a long answer wraps in its cell
    assert " no " not in text_.split("Teach-back")[1].split("Sources")[0]  # none marked wrong
    assert "Countersigned by (clinician)" in text_ and "EXAMPLE" in text_.upper()
    assert words_outside_the_margins(pdf) == []


def test_the_chart_offers_the_consents_the_patients_plans_need(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    """A patient is offered to sign only what a plan of theirs calls for (and research),
    and sees only the programs that concern them; staff see every program, the ones no
    open plan needs marked so."""
    physician = clinic["team"]["physician"]
    for program in ("iv_racemic", "esketamine"):
        r = client.post("/api/v1/consent-templates", headers=physician, json={"program": program})
        assert r.status_code == 201, r.text
    login_page("patient1")
    own = client.get("/patients/1").text
    assert 'data-testid="sign-esketamine"' not in own  # no esketamine plan, ever
    assert 'data-testid="standing-esketamine"' not in own  # nor a line about it
    assert 'data-testid="standing-research"' in own and 'data-testid="standing-iv_racemic"' in own
    login_page("nurse")
    chart = client.get("/patients/1").text
    assert 'data-testid="sign-esketamine"' in chart  # staff may consent ahead of a plan
    assert 'data-testid="not-needed-esketamine"' in chart
    # an esketamine plan drafted: that consent is needed, and offered to the patient
    r = client.post(
        "/api/v1/patients/1/plans", headers=physician, json={"protocol": "esketamine-trd"}
    )
    assert r.status_code == 201, r.text
    assert 'data-testid="not-needed-esketamine"' not in client.get("/patients/1").text
    login_page("patient1")
    assert 'data-testid="sign-esketamine"' in client.get("/patients/1").text


def test_a_signature_awaiting_its_countersignature_is_not_offered_again(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    """The patient signed; until the clinician countersigns, the chart says so on the
    program's line, to the patient and to staff, and offers no second signature."""
    team = clinic["team"]
    template = client.post(
        "/api/v1/consent-templates", headers=team["physician"], json={"program": "research"}
    ).json()
    login_page("patient1")
    assert 'data-testid="sign-research"' in client.get("/patients/1").text
    patient = client.get("/api/v1/patients/1", headers=team["nurse"]).json()["patient"]
    r = client.post(
        "/api/v1/patients/1/consents",
        headers=team["nurse"],
        json={
            "template_id": template["id"],
            "typed_name": f"{patient['given_name']} {patient['family_name']}",
            "signature": drawn_signature(),
            "teach_back": {q["id"]: q["answer"] for q in template["content"]["teach_back"]},
        },
    )
    assert r.status_code == 201, r.text
    for role in ("patient1", "nurse"):
        login_page(role)
        chart = client.get("/patients/1").text
        line = chart.split('data-testid="standing-research"')[1].split("</li>")[0]
        assert "signed, awaiting the clinician's countersignature" in line, role
        assert "not signed" not in line and 'data-testid="sign-research"' not in line
    # the countersigner says in which capacity: nothing is chosen for them
    select = re.search(r'<select name="capacity".*?</select>', chart, re.S)
    assert select is not None and "required" in select.group(0)
    assert re.findall(r'<option value="([^"]*)" selected', select.group(0)) == []
    assert re.findall(r'<option value="([^"]*)"', select.group(0))[0] == ""
    r = client.post(
        f"/api/v1/consents/{r.json()['id']}/countersign",
        headers=team["physician"],
        json={"capacity": "clinician"},
    )
    assert r.status_code in (200, 201), r.text
    line = client.get("/patients/1").text.split('data-testid="standing-research"')[1]
    assert "in force" in line.split("</li>")[0] and "awaiting" not in line.split("</li>")[0]


def test_a_refused_signing_keeps_only_a_good_drawing_and_only_for_the_version_read(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    import base64
    import io

    from PIL import Image

    team = clinic["team"]
    v1 = client.post(
        "/api/v1/consent-templates", headers=team["physician"], json={"program": "research"}
    ).json()
    (question,) = v1["content"]["teach_back"]  # the EXAMPLE research text asks one question
    wrong = (question["answer"] + 1) % len(question["choices"])
    patient = client.get("/api/v1/patients/1", headers=team["nurse"]).json()["patient"]
    form = {
        "template_id": str(v1["id"]),
        "typed_name": f"{patient['given_name']} {patient['family_name']}",
        f"q_{question['id']}": str(wrong),
    }
    csrf = login_page("patient1")
    url = "/patients/1/consent/research/sign"
    # a good drawing with a wrong answer: the drawing is kept
    r = client.post(url, data={**form, "signature": drawn_signature(), "csrf_token": csrf})
    assert r.status_code == 422 and 'data-testid="signature-kept"' in r.text
    # a blank drawing is refused for itself: it is not drawn back
    buffer = io.BytesIO()
    Image.new("RGBA", (50, 20), (0, 0, 0, 0)).save(buffer, format="PNG")
    blank = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    r = client.post(url, data={**form, "signature": blank, "csrf_token": csrf})
    assert r.status_code == 422 and 'data-testid="signature-kept"' not in r.text
    # a newer version published meanwhile: it is read and signed afresh, nothing carried over
    client.post(
        "/api/v1/consent-templates", headers=team["physician"], json={"program": "research"}
    )
    right = {**form, f"q_{question['id']}": str(question["answer"])}
    r = client.post(url, data={**right, "signature": drawn_signature(), "csrf_token": csrf})
    assert r.status_code == 422 and "superseded" in r.text
    assert 'data-testid="signature-kept"' not in r.text and " checked>" not in r.text


def test_the_sign_page_numbers_its_sources(
    client: Any, clinic: dict[str, Any], login_page: Any, tmp_path: Path
) -> None:
    """A patient reads numbered references, not the file's source keys: in the shipped
    research text the alternatives risk cites ama-2.1.1, the 7th source listed (the
    signed PDF: test_the_signed_pdf_reads_as_a_consent_document)."""
    import tomllib

    import ketacare.core.consent as consent_core

    folder = Path(consent_core.__file__).parent / "data" / "examples"
    shipped = tomllib.loads((folder / "research.toml").read_text(encoding="utf-8"))
    keys = [s["key"] for s in shipped["sources"]]
    alternatives = next(r for r in shipped["risk"] if r["label"] == "Alternatives")
    number = keys.index(alternatives["sources"][0]) + 1
    assert number == 7
    r = client.post(
        "/api/v1/consent-templates",
        headers=clinic["team"]["physician"],
        json={"program": "research"},
    )
    assert r.status_code == 201, r.text
    login_page("nurse")
    page = client.get("/patients/1/consent/research/sign").text
    assert "[ama-2.1.1]" not in page and "[hipaa-deidentification]" not in page
    alt = page.split("<dt>Alternatives</dt>")[1].split("</dd>")[0]
    assert f'data-testid="risk-sources">[{number}]</small>' in alt
    assert f"<li>[{number}] " in page


def _psychotherapy_versions(client: Any, team: dict[str, Any]) -> list[dict[str, Any]]:
    """The published versions of the psychotherapy consent, as the API lists them."""
    r = client.get("/api/v1/consent-templates", headers=team["nurse"])
    return [t for t in r.json() if t["program"] == "psychotherapy"]


def test_a_physician_adapts_a_program_s_text_on_a_page_and_publishes_it(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    team = clinic["team"]

    def versions() -> list[dict[str, Any]]:
        return _psychotherapy_versions(client, team)

    before = versions()
    csrf = login_page("physician")
    form = client.get("/consent-templates/psychotherapy/edit")
    assert form.status_code == 200
    # the text in force (or the EXAMPLE before the first version), to edit
    assert "[template]" in form.text and "[[risk]]" in form.text
    text = form.text.split('name="text"', 1)[1].split(">", 1)[1].split("</textarea>", 1)[0]
    import html

    text = html.unescape(text)
    assert 'program = "psychotherapy"' in text

    # a syntax error: refused with the line, the text kept, nothing published
    broken = text.replace("[[risk]]", "[[risk]", 1)
    r = client.post(
        "/consent-templates/psychotherapy/edit",
        data={"csrf_token": csrf, "text": broken, "note": "first draft"},
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert "is not valid TOML" in r.text and "line" in r.text
    assert html.escape("[[risk]\n", quote=False) in r.text  # what was typed is kept
    assert versions() == before
    # a risk citing no source it lists: refused naming it
    unsourced = text.replace('sources = ["asra-2018"]', 'sources = ["nowhere-2020"]', 1)
    r = client.post(
        "/consent-templates/psychotherapy/edit",
        data={"csrf_token": csrf, "text": unsourced},
        follow_redirects=False,
    )
    assert r.status_code == 422 and "nowhere-2020" in r.text
    assert versions() == before

    # the clinic's own title: published as the next version, read back as written
    own = text.replace(
        "Consent to psychotherapy alongside ketamine (EXAMPLE)",
        'Consent to \\"integration\\" sessions (Clinic text v2)',  # a quote, as TOML writes it
    ).replace("example = true", "example = false")
    r = client.post(
        "/consent-templates/psychotherapy/edit",
        data={"csrf_token": csrf, "text": own, "note": "our wording"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    after = versions()
    assert len(after) == len(before) + 1
    newest = max(after, key=lambda t: t["version"])
    assert newest["title"] == 'Consent to "integration" sessions (Clinic text v2)'
    assert newest["content"]["template"]["example"] is False
    # the edit page now starts from the version in force
    again = client.get("/consent-templates/psychotherapy/edit")
    assert "(Clinic text v2)" in again.text
    assert f"Version {newest['version']} is in force" in again.text


def test_a_preview_shows_the_text_as_the_patient_reads_it_and_publishes_nothing(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    import html

    def versions() -> list[dict[str, Any]]:
        return _psychotherapy_versions(client, clinic["team"])

    before = versions()
    csrf = login_page("physician")
    form = client.get("/consent-templates/psychotherapy/edit").text
    text = html.unescape(form.split('name="text"', 1)[1].split(">", 1)[1].split("</textarea>")[0])
    own = text.replace(
        "Consent to psychotherapy alongside ketamine (EXAMPLE)", "Our psychotherapy consent"
    )
    r = client.post(
        "/consent-templates/psychotherapy/preview", data={"csrf_token": csrf, "text": own}
    )
    assert r.status_code == 200
    preview = r.text.split('data-testid="template-preview"', 1)[1].split("</article>", 1)[0]
    assert "<h2>Our psychotherapy consent</h2>" in preview and "Preview, not published" in preview
    # each teach-back question with its right answer marked, from the text previewed
    questions = re.findall(r"\[\[teach_back\]\]", own)
    assert preview.count("(the right answer)") == len(questions) > 0
    assert html.escape("Our psychotherapy consent", quote=False) in r.text.split("</article>")[1]
    assert versions() == before  # nothing published
    # a pasted text whose quotes a word processor made curly: refused naming the line
    curly = own.replace('title = "Our psychotherapy consent"', "title = \u201cOur consent\u201d")
    r = client.post(
        "/consent-templates/psychotherapy/preview", data={"csrf_token": csrf, "text": curly}
    )
    line = next(i for i, t in enumerate(curly.splitlines(), start=1) if "\u201c" in t)
    assert r.status_code == 422 and f"line {line} holds a curly quote" in html.unescape(r.text)
    assert "template-preview" not in r.text and versions() == before


def test_only_who_publishes_may_open_the_text_editor(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    login_page("nurse")
    assert client.get("/consent-templates/psychotherapy/edit").status_code == 403
    login_page("physician")
    r = client.get("/consent-templates/no-such-program/edit")
    assert r.status_code == 422 and "unknown consent program" in r.text


def test_re_consent_is_published_only_once_its_impact_is_confirmed(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    """Re-consent required stops the next session of every patient whose consent to the
    program is in force: the editor names them and the publisher confirms."""
    import html

    team = clinic["team"]

    def versions() -> int:
        r = client.get("/api/v1/consent-templates", headers=team["nurse"])
        return sum(1 for t in r.json() if t["program"] == "iv_racemic")

    csrf = login_page("physician")
    form = client.get("/consent-templates/iv_racemic/edit").text
    impact = form.split('data-testid="reconsent-impact"')[1].split("</div>")[0]
    count = int(re.search(r"<strong>(\d+) patients?</strong>", impact).group(1))  # type: ignore[union-attr]
    assert count >= 1 and "(MRN " in impact
    text = html.unescape(
        form.split('name="text"', 1)[1].split(">", 1)[1].split("</textarea>", 1)[0]
    )
    before = versions()
    data = {"csrf_token": csrf, "text": text, "reconsent_required": "on", "note": "new risks"}
    r = client.post("/consent-templates/iv_racemic/edit", data=data, follow_redirects=False)
    assert r.status_code == 422
    s = "s" if count != 1 else ""
    assert f"stops the next session of {count} patient{s}" in r.text
    assert versions() == before
    r = client.post(
        "/consent-templates/iv_racemic/edit",
        data={**data, "confirm_reconsent": "on"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert versions() == before + 1


def test_the_example_is_republished_with_re_consent_only_once_confirmed(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    team = clinic["team"]

    def versions() -> int:
        r = client.get("/api/v1/consent-templates", headers=team["nurse"])
        return sum(1 for t in r.json() if t["program"] == "iv_racemic")

    csrf = login_page("physician")
    before = versions()
    data = {"csrf_token": csrf, "program": "iv_racemic", "reconsent_required": "on"}
    r = client.post("/consent-templates", data=data, follow_redirects=False)
    assert r.status_code == 422
    assert "re-consent required stops the next session of" in r.text
    assert versions() == before
    r = client.post(
        "/consent-templates", data={**data, "confirm_reconsent": "on"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    assert versions() == before + 1


def test_a_patient_reads_a_withdrawn_consent_as_withdrawn(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    team = clinic["team"]
    consent_to((client, team["nurse"]), (client, team["physician"]), 1, ("iv_racemic",))
    iv = next(c for c in _consents(client, team, 1)["consents"] if c["program"] == "iv_racemic")
    r = client.post(
        f"/api/v1/consents/{iv['id']}/withdraw",
        headers=team["nurse"],
        json={"reason": "patient phoned to stop the course"},
    )
    assert r.status_code == 200, r.text
    login_page("patient1")
    own = client.get("/patients/1").text
    row = own.split(f'data-testid="consent-{iv["id"]}"')[1].split("</tr>")[0]
    status = row.split('data-label="Status">')[1].split("</td>")[0]
    assert status.startswith("withdrawn ") and "patient phoned to stop the course" in status
    assert "(countersigned earlier by " in status
