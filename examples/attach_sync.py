"""Attach sync Playwright to a Skyvern session, fill in a form, detach.

    SKYVERN_API_KEY=sk-... python examples/attach_sync.py   # the Skyvern cloud
    python examples/attach_sync.py                          # a local backend, no account

The same as ``attach_async.py`` without asyncio. (In a notebook, use the async API: the
sync one refuses to run inside an event loop.)
"""

from __future__ import annotations

from _backend import skyvern_backend

from skyvern_cdp import SkyvernClient
from skyvern_cdp.sync_api import connect, default_page

FORM = """<form><label>Name <input id="name"></label>
<label><input type="checkbox" id="news"> Newsletter</label></form>"""


def main() -> None:
    with SkyvernClient() as client:
        session = client.create_browser_session(session_timeout_minutes=10)
        session_id = session.browser_session_id
        print("created", session_id)
        try:
            with connect(session_id, timeout=120) as browser:
                page = default_page(browser)
                page.set_content(FORM)
                page.get_by_label("Name").fill("Ada")
                page.get_by_label("Newsletter").check()
                print("name:", page.get_by_label("Name").input_value())
                print("newsletter:", page.get_by_label("Newsletter").is_checked())
        finally:
            client.close_browser_session(session_id)
            print("closed", session_id)


if __name__ == "__main__":
    with skyvern_backend():
        main()
