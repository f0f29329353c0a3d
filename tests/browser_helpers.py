"""Helpers for browser tests."""

from __future__ import annotations

from typing import Any


def login(page: Any, base: str, username: str, password: str | None = None) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password or f"demo-{username}")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")
