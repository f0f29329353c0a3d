"""Every page a patient, a nurse or a physician uses, in Chromium, on the whole demo clinic.

One list (``PAGES``) names the pages each role opens; a new page is one line there. Each
page must fit the screen without sideways scrolling at a phone's, a tablet's and a
desktop's width (a wide data table may scroll inside its own box, the page may not), and
show no internal name (``moderately_severe``, ``course_mg``, ``KETACARE_...``) in its
visible text. The clinic runs in America/New_York, so a time entered in a form is read
in that zone, stored in UTC and shown back as it was entered.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from browser_helpers import login
from conftest import DEMO_NOW
from live_server import LiveServer

pytestmark = pytest.mark.browser

ZONE = "America/New_York"
WIDTHS = (390, 768, 1280)

#: The pages each role opens. ``{patient}`` is the first demo patient (the account
#: ``patient1``), ``{plan}`` and ``{session}`` that patient's first plan and session.
PAGES: dict[str, tuple[str, ...]] = {
    "patient1": (
        "/",
        "/patients/{patient}",
        "/patients/{patient}/plans",
        "/plans/{plan}",
        "/patients/{patient}/assessments",
        "/my/questionnaires",
        "/patients/{patient}/consent/esketamine/sign",
        "/account",
    ),
    "nurse": (
        "/",
        "/board",
        "/patients",
        "/patients/new",
        "/patients/{patient}",
        "/patients/{patient}/plans",
        "/plans/{plan}",
        "/plans/{plan}/outcome-schedule",
        "/patients/{patient}/screening",
        "/patients/{patient}/assessments",
        "/patients/{patient}/assessments/new/phq9",
        "/patients/{patient}/assessments/new/padss_ketamine",
        "/patients/{patient}/due-questionnaires",
        "/patients/{patient}/cumulative-dose",
        "/patients/{patient}/booster",
        "/patients/{patient}/consent/esketamine/sign",
        "/sessions/{session}",
        "/sessions/{session}/summary",
        "/alerts",
        "/due-questionnaires",
        "/calendar",
        "/stock",
        "/stock/sessions/{session}",
        "/rems/queue",
        "/account",
    ),
    "physician": (
        "/dashboard",
        "/plans/{plan}/personalise",
        "/simulate",
        "/consent-templates",
        "/consent-templates/psychotherapy/edit",
        "/patients/{patient}",
        "/plans/{plan}",
    ),
}

#: Pages whose visible text may hold a snake_case token, with the reason.
TECHNICAL_PAGES: dict[str, str] = {
    "/consent-templates/psychotherapy/edit": "the consent text is edited as TOML, whose keys "
    "(teach_back) the page's help names",
}

#: An internal name: lower or upper snake_case (``not_due``, ``KETACARE_TIMEZONE``).
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b|\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


@dataclass(frozen=True)
class Clinic:
    url: str
    db: Path
    ids: dict[str, int]

    def path(self, template: str) -> str:
        return template.format(**self.ids)


@pytest.fixture(scope="module")
def clinic(seeded_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    """The whole demo clinic (months of care, tests/conftest.py) served in America/New_York,
    its clock standing an hour after the seeding."""
    from ketacare.app import create_app
    from ketacare.infra.db import make_engine
    from ketacare.infra.settings import load_settings

    folder = tmp_path_factory.mktemp("demo-clinic")
    db = folder / "demo.sqlite3"
    shutil.copy(seeded_demo, db)
    url = f"sqlite:///{db}"
    engine = make_engine(url)
    with engine.connect() as conn:
        patient = conn.execute(
            text("SELECT patient_id FROM users WHERE username = 'patient1'")
        ).scalar_one()
        plan = conn.execute(
            text("SELECT min(id) FROM plans WHERE patient_id = :p"), {"p": patient}
        ).scalar_one()
        dosing = conn.execute(
            text("SELECT min(id) FROM dosing_sessions WHERE patient_id = :p"), {"p": patient}
        ).scalar_one()
        # the demo's esketamine course: a plan that can be individualised from levels
        spray = conn.execute(
            text("SELECT min(id) FROM plans WHERE protocol_id = 'esketamine-trd'")
        ).scalar_one()
    engine.dispose()
    settings = load_settings(
        database_url=url,
        var_dir=folder / "var",
        secret_key="c" * 40,
        timezone=ZONE,
        totp_required_roles="",
    )
    app = create_app(settings, clock=lambda: DEMO_NOW + timedelta(hours=1))
    with LiveServer(app) as server:
        ids = {"patient": patient, "plan": plan, "session": dosing, "spray_plan": spray}
        yield Clinic(server.url, db, ids)
    app.state.engine.dispose()


#: the visible links and buttons whose right edge is beyond the screen (inside a box that
#: scrolls sideways): their text
OFF_SCREEN_CONTROLS = """(width) => [...document.querySelectorAll('main a, main button')]
  .filter((e) => e.offsetParent !== null && e.getBoundingClientRect().right > width + 1)
  .map((e) => e.innerText.trim() || e.getAttribute('aria-label') || e.tagName)"""


def _tab(browser: Any, width: int) -> Any:
    phone = width < 500
    context = browser.new_context(
        viewport={"width": width, "height": 844}, is_mobile=phone, has_touch=phone
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    return tab


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("role", sorted(PAGES))
def test_no_page_scrolls_sideways(clinic: Clinic, browser: Any, role: str, width: int) -> None:
    tab = _tab(browser, width)
    try:
        login(tab, clinic.url, role)
        wide: list[str] = []
        for template in PAGES[role]:
            response = tab.goto(clinic.url + clinic.path(template))
            assert response is not None and response.status == 200, (template, response)
            scroll = tab.evaluate("document.documentElement.scrollWidth")
            if scroll > width:
                wide.append(f"{template}: {scroll} px")
            if role == "patient1":  # a patient on a phone never hunts for a control
                hidden = tab.evaluate(OFF_SCREEN_CONTROLS, width)
                wide.extend(f"{template}: {name} off screen" for name in hidden)
    finally:
        tab.context.close()
    assert wide == [], f"{role} at {width} px: pages wider than the screen: {wide}"


@pytest.mark.parametrize("role", sorted(PAGES))
def test_no_internal_name_on_screen(clinic: Clinic, browser: Any, role: str) -> None:
    tab = _tab(browser, 1280)
    try:
        login(tab, clinic.url, role)
        found: dict[str, list[str]] = {}
        for template in PAGES[role]:
            if template in TECHNICAL_PAGES:
                continue
            tab.goto(clinic.url + clinic.path(template))
            names = sorted(set(SNAKE.findall(tab.evaluate("document.body.innerText"))))
            if names:
                found[template] = names
    finally:
        tab.context.close()
    assert found == {}, f"internal names shown to {role}: {found}"


def test_a_time_entered_in_local_time_shows_back_in_local_time(
    clinic: Clinic, browser: Any
) -> None:
    """A drug level's sampling time, typed in New York time, is stored in UTC."""
    tab = _tab(browser, 390)
    try:
        login(tab, clinic.url, "physician")
        tab.goto(clinic.url + clinic.path("/plans/{spray_plan}/personalise"))
        assert "Times in America/New_York" in tab.locator("footer").inner_text()
        local = "2025-07-04T08:30"  # summer: New York is UTC-4
        tab.get_by_label("Sampled at").fill(local)
        tab.get_by_label("Analyte").select_option("plasma")
        tab.get_by_label("Value (ng/mL)").fill("41")
        tab.get_by_role("button", name="Add level").click()
        tab.wait_for_load_state("load")
        levels = tab.get_by_test_id("levels").inner_text()
    finally:
        tab.context.close()
    assert "2025-07-04 08:30" in levels, levels
    engine_url = f"sqlite:///{clinic.db}"
    from ketacare.infra.db import make_engine

    engine = make_engine(engine_url)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT sampled_at FROM drug_levels WHERE value_ng_per_ml = 41")
        ).scalar_one()
    engine.dispose()
    stored_at = datetime.fromisoformat(str(stored))
    expected = datetime(2025, 7, 4, 8, 30, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)
    assert stored_at.replace(tzinfo=UTC) == expected  # 12:30 UTC
