"""Attach asyncio Playwright to a Skyvern session, drive it, detach.

    SKYVERN_API_KEY=sk-... python examples/attach_async.py   # the Skyvern cloud
    python examples/attach_async.py                          # a local backend, no account

Usually the session exists already (a Skyvern task made it, or a colleague): then you only
need its id and the ``async with connect(...)`` block. Here the example creates one first,
and closes it at the end, since leaving the browser does not end a session.
"""

from __future__ import annotations

import asyncio

from _backend import skyvern_backend

from skyvern_cdp import AsyncSkyvernClient
from skyvern_cdp.async_api import connect, default_page


async def main() -> None:
    async with AsyncSkyvernClient() as client:
        session = await client.create_browser_session(session_timeout_minutes=10)
        session_id = session.browser_session_id
        print("created", session_id)
        try:
            # Waits until the session is ready, then connects over CDP.
            async with connect(session_id, timeout=120) as browser:
                page = await default_page(browser)
                await page.set_content("<h1>Hello from skyvern-cdp</h1>")
                print("heading:", await page.locator("h1").inner_text())
            session = await client.get_browser_session(session_id)
            print("detached; the session is still", session.status)
        finally:
            await client.close_browser_session(session_id)
            print("closed", session_id)


if __name__ == "__main__":
    with skyvern_backend():
        asyncio.run(main())
