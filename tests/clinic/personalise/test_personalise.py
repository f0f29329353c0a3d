"""The Personalise view: levels from the lab, the fit, recommendations, accept."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

from plan_helpers import esketamine_course_with_one_dose


def test_levels_fit_recommend_and_accept(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    team = clinic["team"]
    plan_id = esketamine_course_with_one_dose(client, team, clock)
    dosed = clock.now
    csrf = login_page("physician")
    shown = client.get(f"/plans/{plan_id}").text  # esketamine: a model with variability
    assert f'href="/plans/{plan_id}/personalise"' in shown
    assert 'data-testid="personalise-unavailable"' not in shown
    page = client.get(f"/plans/{plan_id}/personalise")
    assert page.status_code == 200 and "None yet." in page.text
    for hours, value in ((1, "48"), (4, "12")):
        clock.now = dosed + timedelta(hours=hours)
        local = (dosed + timedelta(hours=hours)).astimezone(
            __import__("zoneinfo").ZoneInfo("Europe/Amsterdam")
        )
        r = client.post(
            f"/plans/{plan_id}/levels",
            data={
                "sampled_at": local.strftime("%Y-%m-%dT%H:%M"),
                "analyte": "plasma",
                "value": value,
                "csrf_token": csrf,
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    clock.now = dosed + timedelta(hours=6)
    page = client.get(f"/plans/{plan_id}/personalise").text
    assert 'data-testid="fit-parameters"' in page and "2 level(s)" in page
    r = client.post(
        f"/plans/{plan_id}/personalise",
        data={"target_auc": "250", "route": "intranasal", "interval_h": "84", "csrf_token": csrf},
    )
    assert r.status_code == 200 and 'data-testid="recommendation"' in r.text
    dose = re.search(r'name="dose_mg" value="([0-9.]+)"', r.text)
    assert dose is not None
    r = client.post(
        f"/plans/{plan_id}/personalise/accept",
        data={"dose_mg": dose.group(1), "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    new = client.get(
        f"/api/v1/plans/{r.headers['location'].rsplit('/', 1)[1]}", headers=team["physician"]
    ).json()
    assert new["supersedes_id"] == plan_id and new["status"] == "draft"
    assert new["version"] == 2


def test_no_individualisation_without_a_model_with_published_variability(
    client: Any, clinic: dict[str, Any], login_page: Any
) -> None:
    from plan_helpers import _signed

    plan = _signed(client, clinic)  # racemic IV: only models without variability exist
    csrf = login_page("physician")
    # the plan page says so where the button would be, instead of a button to a dead end
    shown = client.get(f"/plans/{plan['id']}").text
    assert f'href="/plans/{plan["id"]}/personalise"' not in shown
    assert 'data-testid="personalise-unavailable"' in shown
    assert "individualisation is not available" in shown
    page = client.get(f"/plans/{plan['id']}/personalise").text
    assert "individualisation is not available" in page
    # said first, above the levels; no level entry form where no fit can use the level
    assert page.index("individualisation is not available") < page.index("Measured levels")
    assert f'action="/plans/{plan["id"]}/levels"' not in page
    # and the address the form would post to refuses, storing nothing
    r = client.post(
        f"/plans/{plan['id']}/levels",
        data={
            "sampled_at": "2026-03-02T09:30",
            "analyte": "plasma",
            "value": "120",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert r.status_code == 422 and "individualisation is not available" in r.text
    assert "None yet." in client.get(f"/plans/{plan['id']}/personalise").text


def test_a_level_below_the_lloq_needs_the_lloq(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    plan_id = esketamine_course_with_one_dose(client, clinic["team"], clock)
    csrf = login_page("nurse")
    clock.now += timedelta(hours=2)
    r = client.post(
        f"/plans/{plan_id}/levels",
        data={
            "sampled_at": "2026-03-02T11:30",
            "analyte": "plasma",
            "below_lloq": "yes",
            "csrf_token": csrf,
        },
    )
    assert r.status_code == 422 and "needs the LLOQ" in r.text


def test_a_level_without_a_readable_sample_time_is_refused_saying_what_to_give(
    client: Any, clinic: dict[str, Any], clock: Any, login_page: Any
) -> None:
    plan_id = esketamine_course_with_one_dose(client, clinic["team"], clock)
    csrf = login_page("nurse")
    before = client.get(f"/plans/{plan_id}/personalise").text.count("ng/mL")
    for raw, said in (
        ("", "sample time is missing: give a day and a time (YYYY-MM-DD HH:MM)"),
        ("yesterday", "sample time 'yesterday' is not a day and a time: give YYYY-MM-DD HH:MM"),
    ):
        r = client.post(
            f"/plans/{plan_id}/levels",
            data={"sampled_at": raw, "analyte": "plasma", "value": "40", "csrf_token": csrf},
        )
        assert r.status_code == 422 and said in unescape(r.text), raw
    assert client.get(f"/plans/{plan_id}/personalise").text.count("ng/mL") == before
