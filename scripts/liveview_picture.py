"""Save a picture of the live view in the middle of a take-over: docs/liveview-takeover.png.

    .venv/bin/python scripts/liveview_picture.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS, find_chromium

PAGE = ("data:text/html,<title>Sign in</title><body style='font:20px sans-serif;margin:30px'>"
        "<h2>Enter the code we sent you</h2><input id=f style='font-size:20px'>"
        " <button>Verify</button></body>")
OUT = Path(__file__).resolve().parents[1] / "docs" / "liveview-takeover.png"


async def main() -> None:
    with LocalBackend(api_key="sk-local", chromium_args=CLOSED_NETWORK_ARGS,
                      recordings=False) as backend:
        key = {"x-api-key": "sk-local"}
        async with httpx.AsyncClient(base_url=backend.base_url, headers=key,
                                     trust_env=False) as http:
            sid = (await http.post("/v1/browser_sessions", json={"url": PAGE})).json()[
                "browser_session_id"]
            try:
                while True:
                    body = (await http.get(f"/v1/browser_sessions/{sid}")).json()
                    if body["status"] == "running":
                        break
                    await asyncio.sleep(0.1)
                async with async_playwright() as pw:
                    viewer = await pw.chromium.launch(executable_path=find_chromium(),
                                                      args=list(CLOSED_NETWORK_ARGS))
                    page = await viewer.new_page(viewport={"width": 1100, "height": 1000})
                    await page.goto(body["app_url"])
                    await page.wait_for_function(
                        "Number(document.getElementById('live').dataset.frames) > 0")
                    await page.click("#control")
                    await page.wait_for_function("document.body.dataset.control === 'mine'")
                    box = await page.locator("#live").bounding_box()
                    assert box is not None
                    width = float(await page.locator("#live").get_attribute("data-width") or 1)
                    scale = (box["width"] - 6) / width
                    await page.mouse.click(box["x"] + 3 + 120 * scale, box["y"] + 3 + 95 * scale)
                    await page.keyboard.type("428 913")
                    frames = int(await page.locator("#live").get_attribute("data-frames") or 0)
                    await page.wait_for_function(
                        f"Number(document.getElementById('live').dataset.frames) > {frames}")
                    await page.screenshot(path=str(OUT), full_page=True)
                    await viewer.close()
            finally:
                await http.post(f"/v1/browser_sessions/{sid}/close")
    print(OUT)


if __name__ == "__main__":
    asyncio.run(main())
