"""A nurse books a course across weekends with the clinic closed on weekends, sees it
Monday to Friday on the calendar, and moves one appointment with a reason."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from browser_helpers import _api, _prepare, login
from plan_helpers import MONITORING_ORDER

pytestmark = pytest.mark.browser

SHOTS = "/tmp"


@pytest.fixture
def clinic_hours() -> str:
    return (
        '[opening]\ndays = ["mon", "tue", "wed", "thu", "fri"]\nopens = "08:00"\n'
        'closes = "18:00"\n[moves]\nmax_shift_days = 4\n'
    )


def _signed_plan(base: str) -> int:
    """Patient 2's CRPS plan (10 daily sessions) starting Thursday 4 February 2027."""
    _prepare(base)
    with (
        _api(base, "physician") as physician,
        _api(base, "physician2", "locum-cosigner-pw") as second,
    ):
        plan = physician.post(
            "/api/v1/patients/2/plans",
            json={
                "protocol": "crps-outpatient",
                "bag_mg": 100,
                "bag_ml": 100,
                "start_date": "2027-02-04",
            },
        ).json()
        physician.post(
            f"/api/v1/plans/{plan['id']}/sign",
            json={
                "monitoring_order": MONITORING_ORDER,
                "weight_confirmed": True,
                "reason": "site limits not configured",
            },
        ).raise_for_status()
        second.post(f"/api/v1/plans/{plan['id']}/cosign").raise_for_status()
    return int(plan["id"])


def _course_booked_by_the_nurse(base: str, page: Any) -> None:
    """A signed plan whose course the nurse books on Chair 3 from the plan page (the form
    offers the plan's own start date)."""
    plan_id = _signed_plan(base)
    login(page, base, "nurse")
    page.goto(f"{base}/plans/{plan_id}")
    booking = page.get_by_test_id("book-course")
    expect(booking).to_contain_text("From the plan's start date, Thu 04 Feb 2027")
    booking.get_by_label("Chair").select_option(label="Chair 3")
    page.get_by_role("button", name="Book all sessions").click()


def test_a_course_lands_monday_to_friday_and_one_appointment_moves_with_a_reason(
    live_server: Any, page: Any, phone: Any
) -> None:
    base = live_server.url
    _course_booked_by_the_nurse(base, page)
    listed = page.get_by_test_id("appointments").locator("li")
    expect(listed).to_have_count(10)
    # Thu 4, Fri 5, then Mon 8 to Fri 12, then Mon 15 to Wed 17: never a weekend
    expect(listed.nth(2)).to_contain_text("Session 3: Mon 08 Feb 2027 09:00")
    expect(listed.nth(9)).to_contain_text("Session 10: Wed 17 Feb 2027 09:00")

    page.goto(f"{base}/calendar?week=2027-02-04")
    week = page.get_by_test_id("calendar-week")
    expect(page.get_by_test_id("opening-days")).to_contain_text("Open Mon-Fri, 08:00-18:00.")
    expect(week.locator("a.appt")).to_have_count(2)
    expect(week.locator("th.closed")).to_have_count(2)  # Saturday and Sunday
    expect(week.locator("td.closed a.appt")).to_have_count(0)
    page.goto(f"{base}/calendar?week=2027-02-08")
    expect(week.locator("a.appt")).to_have_count(5)
    expect(week.locator("td.closed a.appt")).to_have_count(0)
    page.screenshot(path=f"{SHOTS}/sched-week.png", full_page=True)

    # move session 4 (Tue 9 Feb) to the afternoon on another chair, with a reason
    week.locator("a.appt", has_text="#4").click()
    expect(page.get_by_test_id("appointment")).to_contain_text("Tue 09 Feb 2027, 09:00")
    form = page.get_by_test_id("move-form")
    form.get_by_label("Time").fill("11:30")
    form.get_by_label("Chair").select_option(label="Chair 1")
    form.get_by_label("Reason").fill("patient asked for a later start")
    form.get_by_role("button", name="Move appointment").click()
    expect(page.get_by_test_id("appointment")).to_contain_text("Tue 09 Feb 2027, 11:30")
    history = page.get_by_test_id("appointment-history")
    expect(history.locator("tbody tr")).to_have_count(2)
    expect(history).to_contain_text("moved from Tue 09 Feb 09:00, Chair 3 to Tue 09 Feb 11:30")
    expect(history).to_contain_text("patient asked for a later start")
    page.screenshot(path=f"{SHOTS}/sched-appointment.png", full_page=True)

    # a move to a Saturday is refused with the reason, nothing changes
    form = page.get_by_test_id("move-form")
    form.get_by_label("Date").fill("2027-02-13")
    form.get_by_label("Reason").fill("patient asked")
    form.get_by_role("button", name="Move appointment").click()
    expect(page.get_by_role("alert")).to_contain_text("closed on Saturdays (open Mon-Fri)")
    expect(page.get_by_test_id("appointment")).to_contain_text("Tue 09 Feb 2027, 11:30")

    page.goto(f"{base}/calendar?day=2027-02-09")
    day = page.get_by_test_id("calendar-day")
    expect(day).to_contain_text("11:30")
    expect(day.locator("a.appt.moved")).to_have_count(1)
    page.screenshot(path=f"{SHOTS}/sched-day.png", full_page=True)

    # on a phone the week scrolls inside its frame, not the page
    login(phone, base, "nurse")
    phone.goto(f"{base}/calendar?week=2027-02-08")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    phone.screenshot(path=f"{SHOTS}/sched-phone-week.png", full_page=True)


def test_a_no_show_is_recorded_with_a_reason_and_the_session_booked_again(
    live_server: Any, page: Any, live_clock: Any
) -> None:
    from datetime import UTC, datetime

    base = live_server.url
    _course_booked_by_the_nurse(base, page)
    expect(page.get_by_test_id("appointments").locator("li")).to_have_count(10)
    # Thursday 4 February 2027, 12:00 UTC: session 1 (09:00) started, no session opened
    live_clock.offset = datetime(2027, 2, 4, 12, 0, tzinfo=UTC) - datetime.now(UTC)
    login(page, base, "nurse")
    page.goto(f"{base}/calendar?week=2027-02-04")
    week = page.get_by_test_id("calendar-week")
    expect(week.get_by_test_id("no-show-pending")).to_have_count(1)  # Friday's is to come
    week.locator("a.appt", has_text="#1").click()
    expect(page.get_by_test_id("appointment")).to_contain_text("no session opened")
    form = page.get_by_test_id("not-attended-form")
    form.get_by_label("Reason").fill("did not come; no answer by phone")
    form.get_by_role("button", name="Record did not attend").click()
    expect(page.get_by_test_id("appointment")).to_contain_text("did not attend")
    expect(page.get_by_test_id("appointment-history")).to_contain_text(
        "did not come; no answer by phone"
    )
    expect(page.get_by_test_id("not-attended-form")).to_have_count(0)
    expect(page.get_by_test_id("move-form")).to_have_count(0)
    page.screenshot(path=f"{SHOTS}/sched-no-show.png", full_page=True)
    page.goto(f"{base}/calendar?week=2027-02-04")
    expect(week.get_by_test_id("not-attended")).to_have_count(1)
    expect(week.get_by_test_id("no-show-pending")).to_have_count(0)
    page.screenshot(path=f"{SHOTS}/sched-no-show-week.png", full_page=True)
