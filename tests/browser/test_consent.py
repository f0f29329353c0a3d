"""A patient signs a treatment consent on a 390 px phone with a drawn signature; the
nurse countersigns on the chart, and the signed PDF's hash is the one stored.

The demo patient (Maria Jansen, patient 1) signs the clinic's version 1 of the IV
racemic ketamine consent (the shipped EXAMPLE, published by the physician through the
API). She answers the teach-back questions right (the answers are read from the
template), types her name and draws a stroke on the signature pad.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from playwright.sync_api import expect

from browser_helpers import _api, login

pytestmark = pytest.mark.browser


def _draw(page: Any) -> None:
    box = page.get_by_test_id("signature-pad").bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + 20, y + 60)
    page.mouse.down()
    for dx, dy in ((60, 20), (110, 70), (170, 30), (230, 80), (290, 40)):
        page.mouse.move(x + dx, y + dy, steps=4)
    page.mouse.up()


def test_a_patient_signs_on_a_phone_and_the_nurse_countersigns(
    live_server: Any, phone: Any, page: Any
) -> None:
    base = live_server.url
    with _api(base, "physician") as physician:
        template = physician.post("/api/v1/consent-templates", json={"program": "iv_racemic"})
        template.raise_for_status()
    content = template.json()["content"]

    login(phone, base, "patient1")
    phone.goto(f"{base}/patients/1")
    phone.get_by_test_id("sign-iv_racemic").click()
    expect(phone.get_by_test_id("example-notice")).to_contain_text("EXAMPLE")
    expect(phone.get_by_text("Bladder toxicity")).to_be_visible()
    # nothing is wider than the phone
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    # submitting without a drawing is stopped in the page; the first question is answered
    # wrongly, the others rightly
    first, *rest = content["teach_back"]
    wrong_choice = first["choices"][(first["answer"] + 1) % len(first["choices"])]
    phone.get_by_test_id(f"question-{first['id']}").get_by_label(wrong_choice).check()
    for q in rest:
        phone.get_by_test_id(f"question-{q['id']}").get_by_label(q["choices"][q["answer"]]).check()
    phone.get_by_label("Type your full name").fill("Maria Jansen")
    phone.get_by_role("button", name="I consent: sign").click()
    expect(phone.locator("#signature-missing")).to_be_visible()
    _draw(phone)
    phone.get_by_role("button", name="I consent: sign").click()
    # refused: the wrong answer is cleared and marked, the right ones, the name and the
    # drawn signature are kept, so only that question is answered again
    expect(phone.get_by_test_id("sign-error")).to_contain_text("needs the right answer")
    expect(phone.get_by_test_id(f"again-{first['id']}")).to_be_visible()
    assert phone.get_by_test_id(f"question-{first['id']}").locator("input:checked").count() == 0
    for q in rest:
        expect(
            phone.get_by_test_id(f"question-{q['id']}").get_by_label(q["choices"][q["answer"]])
        ).to_be_checked()
    expect(phone.get_by_label("Type your full name")).to_have_value("Maria Jansen")
    expect(phone.get_by_test_id("signature-kept")).to_be_visible()
    assert phone.locator("#signature-data").input_value().startswith("data:image/png;base64,")
    phone.get_by_test_id(f"question-{first['id']}").get_by_label(
        first["choices"][first["answer"]]
    ).check()
    phone.get_by_role("button", name="I consent: sign").click()
    expect(phone).to_have_url(f"{base}/patients/1#consent-h")
    expect(phone.get_by_test_id("treatment-consent")).to_contain_text("awaiting countersignature")

    login(page, base, "nurse")
    page.goto(f"{base}/patients/1")
    panel = page.get_by_test_id("treatment-consent")
    panel.get_by_label("Countersign as").select_option("witness")
    panel.get_by_role("button", name="Countersign").click()
    expect(page.get_by_test_id("standing-iv_racemic")).to_contain_text("in force")
    expect(panel).to_contain_text("by Noor Nurse (witness)")

    with _api(base, "nurse") as nurse:
        listed = nurse.get("/api/v1/patients/1/consents").json()["consents"]
        [consent] = listed
        pdf = nurse.get(f"/api/v1/consents/{consent['id']}/pdf").content
    assert consent["typed_name"] == "Maria Jansen" and consent["status"] == "signed"
    assert hashlib.sha256(pdf).hexdigest() == consent["pdf_sha256"]
