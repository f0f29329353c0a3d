"""New passwords: 12+ characters, not a common password, not the user's name, not guessable.

Each expected rule below is worked out by hand from the rule, not read from the code:
``qazwsxedcrfv`` is a keyboard walk listed among zxcvbn's 30,000 common passwords
(the xato.net 10-million set), ``123456789012`` a digit sequence, ``aaaaaaaaaaaa`` a repeat.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.accounts.passwords import password_problem
from ketacare.clinic.demo import DEMO_PASSWORD


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("eleven-char", "at least 12 characters (this one has 11)"),
        ("aaaaaaaaaa", "at least 12 characters (this one has 10)"),
        ("aaaaaaaaaaaa", "too easy to guess"),
        ("123456789012", "too easy to guess"),
        (" " * 12, "too easy to guess"),
        ("qwertyuiop[]", "too easy to guess"),
        ("qazwsxedcrfv", "one of the 30,000 most common passwords"),
        ("Password1234", "one of the 30,000 most common passwords"),
        ("nursenursenurse", "must not contain your username or name ('nurse')"),
        ("NOOR-and-the-sea-7", "must not contain your username or name ('noor')"),
    ],
)
def test_weak_passwords_are_refused_naming_the_rule(password: str, rule: str) -> None:
    problem = password_problem(password, username="nurse", full_name="Noor Nurse")
    assert problem is not None and rule in problem


@pytest.mark.parametrize("password", ["quiet-lantern-orbit-42", "harbour-lantern-9", DEMO_PASSWORD])
def test_long_unrelated_passphrases_are_allowed(password: str) -> None:
    assert password_problem(password, username="nurse", full_name="Noor Nurse") is None


def _nurse_hash(app: Any) -> str:
    with app.state.ctx.sessions() as session:
        return session.scalar(select(User.password_hash).where(User.username == "nurse"))


def test_an_account_with_a_weak_password_is_not_created(
    client: Any, app: Any, login_api: Any
) -> None:
    admin = login_api("admin")
    for password, rule in (
        ("too-short-1", "at least 12 characters"),
        ("1qaz2wsx3edc", "30,000 most common passwords"),
        ("dr-okafor-on-call", "name ('okafor')"),
        ("tempnurse-winter", "username or name ('tempnurse')"),
    ):
        r = client.post(
            "/api/v1/users",
            headers=admin,
            json={
                "username": "tempnurse",
                "full_name": "Ada Okafor",
                "role": "nurse",
                "password": password,
            },
        )
        assert r.status_code == 422 and rule in r.json()["detail"], r.text
    with app.state.ctx.sessions() as session:
        assert session.scalar(select(User.id).where(User.username == "tempnurse")) is None


def test_a_weak_new_password_is_refused_at_a_change_and_the_old_one_stays(
    client: Any, app: Any, login_page: Any
) -> None:
    before = _nurse_hash(app)
    csrf = login_page("nurse")
    r = client.post(
        "/account/password",
        data={"current": DEMO_PASSWORD, "new": "aaaaaaaaaaaa", "csrf_token": csrf},
    )
    assert r.status_code == 422 and "too easy to guess" in r.text
    assert _nurse_hash(app) == before
    page = client.get("/account")
    assert re.search(r'minlength="12"', page.text)


def test_an_admin_reset_follows_the_same_rules(client: Any, app: Any, login_page: Any) -> None:
    before = _nurse_hash(app)
    csrf = login_page("admin")
    with app.state.ctx.sessions() as session:
        nurse_id = session.scalar(select(User.id).where(User.username == "nurse"))
    r = client.post(
        f"/admin/users/{nurse_id}",
        data={"action": "reset", "password": "noor-nurse-reset", "csrf_token": csrf},
    )
    assert r.status_code == 422 and "username or name" in r.text
    assert _nurse_hash(app) == before


def test_the_demo_printout_shows_the_password_that_opens_each_account(app: Any) -> None:
    """A demo seeded before the rules keeps ``demo-<username>``; a changed one says so."""
    from ketacare.clinic import demo
    from ketacare.clinic.accounts.service import hash_password

    with app.state.ctx.sessions() as session, session.begin():
        users = {u.username: u for u in session.scalars(select(User))}
        users["nurse"].password_hash = hash_password("demo-nurse", settings=app.state.ctx.settings)
        users["therapist"].password_hash = hash_password(
            "someone-changed-it", settings=app.state.ctx.settings
        )
        printed = {u: pw for u, pw, _ in demo.logins(session=session)}
    assert printed["nurse"] == "demo-nurse"
    assert printed["therapist"] == "(changed since seeding)"
    assert printed["physician"] == printed["patient1"] == DEMO_PASSWORD
