"""Plain pytest-playwright tests: they use ``page`` and know nothing about Skyvern."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_add_items(page: Page, app_url: str) -> None:
    page.goto(app_url)
    for item in ("milk", "bread"):
        page.get_by_label("New item").fill(item)
        page.get_by_role("button", name="Add").click()
    expect(page.locator("#items li")).to_have_text(["milk", "bread"])


def test_navigate_to_about(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/about")
    expect(page).to_have_title("About")
    page.get_by_role("link", name="Home").click()
    expect(page.get_by_role("heading", name="Todo")).to_be_visible()
