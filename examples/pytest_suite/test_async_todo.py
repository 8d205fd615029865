"""An asyncio test on the same session, through the plugin's async fixtures."""

from __future__ import annotations

from playwright.async_api import Page, expect


async def test_add_item_async(skyvern_async_page: Page, app_url: str) -> None:
    page = skyvern_async_page
    await page.goto(app_url)
    await page.get_by_label("New item").fill("eggs")
    await page.keyboard.press("Enter")
    await expect(page.locator("#items li")).to_have_text(["eggs"])
