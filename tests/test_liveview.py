"""The interactive live view at ``app_url``, driven in a real browser.

A headless Chromium (Playwright) opens ``app_url``, takes control, clicks a button and types
into a field of the session's page through the view; the session's page (read over CDP by a
second, automation-side connection) sees both. Also: a take-over holds the automation's
input, the view refuses a foreign Host and a wrong or missing token, and a viewer that
leaves, or a session that ends, leaves no CDP session behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from websockets.asyncio.client import connect

from skyvern_cdp.cdp_client import CDPConnection
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS, find_chromium

from conftest import LOCAL_API_KEY

KEY = {"x-api-key": LOCAL_API_KEY}
PAGE = (
    "data:text/html,<title>target</title><body style='margin:0'>"
    "<button id=b style='position:absolute;left:40px;top:40px;width:240px;height:90px'"
    " onclick='window.clicks=(window.clicks||0)+1'>Press</button>"
    "<input id=f style='position:absolute;left:40px;top:200px;width:360px;height:40px'>"
    "</body>"
)


@pytest.fixture(scope="module")
def backend(long_lived_pids: set[int]) -> Iterator[LocalBackend]:
    """A backend of this module's own, without recordings (a recorder is a CDP session on the
    page too, and these tests count them)."""
    with LocalBackend(
        api_key=LOCAL_API_KEY, chromium_args=CLOSED_NETWORK_ARGS, recordings=False
    ) as server:
        pid = server.watchdog_pid
        long_lived_pids.add(pid or -1)
        try:
            yield server
        finally:
            long_lived_pids.discard(pid or -1)


async def _running(http: httpx.AsyncClient, url: str = PAGE) -> dict[str, Any]:
    sid = (await http.post("/v1/browser_sessions", json={"url": url})).json()["browser_session_id"]
    async with asyncio.timeout(30):
        while True:
            body: dict[str, Any] = (await http.get(f"/v1/browser_sessions/{sid}")).json()
            if body["status"] == "running":
                return body
            await asyncio.sleep(0.05)


@pytest.fixture
async def session(backend: LocalBackend) -> AsyncIterator[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=backend.base_url, headers=KEY, trust_env=False) as http:
        body = await _running(http)
        try:
            yield body
        finally:
            await http.post(f"/v1/browser_sessions/{body['browser_session_id']}/close")


@pytest.fixture
async def viewer() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=find_chromium(), args=list(CLOSED_NETWORK_ARGS))
        try:
            yield browser
        finally:
            await browser.close()


async def _attached_pages(session: dict[str, Any]) -> list[bool]:
    """Which of the session's pages have a CDP session attached (read on a fresh connection
    of the browser level, which attaches to none)."""
    async with await CDPConnection.open(session["browser_address"], headers=KEY) as cdp:
        targets = await cdp.send("Target.getTargets")
    return [bool(t["attached"]) for t in targets["targetInfos"] if t["type"] == "page"]


async def _eventually(check: Any, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 (polls Chromium over CDP)
            await asyncio.sleep(0.05)


async def _upgrade_status(port: int | None, target: str, headers: dict[str, str]) -> int:
    """The HTTP status a websocket handshake with exactly these headers gets."""
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"GET {target} HTTP/1.1", "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
                 *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        status = await asyncio.wait_for(reader.readline(), 10)
        return int(status.split()[1])
    finally:
        writer.close()


async def _open_view(viewer: Browser, app_url: str) -> Page:
    page = await viewer.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(app_url)
    await page.wait_for_function("Number(document.getElementById('live').dataset.frames) > 0")
    return page


async def _click_through(view: Page, x: float, y: float) -> None:
    """Click the session's page at CSS (x, y), through the view's picture of it."""
    box = await view.locator("#live").bounding_box()
    assert box is not None
    width = float(await view.locator("#live").get_attribute("data-width") or 0)
    height = float(await view.locator("#live").get_attribute("data-height") or 0)
    assert width > 0 and height > 0
    border = 3  # the picture's frame
    inner_w, inner_h = box["width"] - 2 * border, box["height"] - 2 * border
    await view.mouse.click(box["x"] + border + x * inner_w / width,
                           box["y"] + border + y * inner_h / height)


async def test_a_person_clicks_and_types_into_the_sessions_page_through_the_view(
    session: dict[str, Any], viewer: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="skyvern_cdp")
    app_url = session["app_url"]
    token = urlsplit(app_url).query.removeprefix("token=")
    assert len(token) == 32, "a keyed backend's app_url carries the session's token"
    async with async_playwright() as pw:
        automation = await pw.chromium.connect_over_cdp(session["browser_address"], headers=KEY)
        try:
            target = automation.contexts[0].pages[0]
            view = await _open_view(viewer, app_url)
            assert await view.locator("#tabs button.current").text_content() == "target"
            assert await view.locator("#control").text_content() == "Take control"
            await view.click("#control")
            await view.wait_for_function("document.body.dataset.control === 'mine'")
            assert "You have control" in (await view.locator("#banner").text_content() or "")
            await _click_through(view, 160, 85)  # the button's middle
            await target.wait_for_function("window.clicks === 1")
            await _click_through(view, 200, 220)  # the field
            await target.wait_for_function("document.activeElement.id === 'f'")
            await view.keyboard.type("hello wrld")
            await target.wait_for_function("document.getElementById('f').value === 'hello wrld'")
            for _ in range(3):
                await view.keyboard.press("ArrowLeft")
            await view.keyboard.press("o")  # edit in the middle: the caret moved
            await target.wait_for_function("document.getElementById('f').value === 'hello world'")
            await view.keyboard.press("Control+a")  # a selection, replaced by what comes next
            await view.keyboard.press("Backspace")
            await target.wait_for_function("document.getElementById('f').value === ''")
            await view.evaluate("""() => { const data = new DataTransfer();
                data.setData('text/plain', 'pasted text');
                document.getElementById('keys').dispatchEvent(new ClipboardEvent('paste',
                    {clipboardData: data, bubbles: true, cancelable: true})); }""")
            await target.wait_for_function("document.getElementById('f').value === 'pasted text'")
            # What the person sees is the page: the typed text repaints into the view.
            frames = int(await view.locator("#live").get_attribute("data-frames") or 0)
            assert frames > 1
        finally:
            await automation.close()
    assert token not in caplog.text, "the view's token is a secret in logs"


async def test_a_take_over_holds_the_automations_input_until_given_back(
    session: dict[str, Any], viewer: Browser
) -> None:
    async with async_playwright() as pw:
        automation = await pw.chromium.connect_over_cdp(session["browser_address"], headers=KEY)
        # A second connection watches: the held one waits as a whole (its order is kept).
        watcher = await pw.chromium.connect_over_cdp(session["browser_address"], headers=KEY)
        try:
            target = automation.contexts[0].pages[0]
            watched = watcher.contexts[0].pages[0]
            view = await _open_view(viewer, session["app_url"])
            other = await _open_view(viewer, session["app_url"])  # a second viewer
            await view.click("#control")
            await view.wait_for_function("document.body.dataset.control === 'mine'")
            await other.wait_for_function("document.body.dataset.control === 'taken'")
            assert "A person has control" in (await other.locator("#banner").text_content() or "")
            held = asyncio.ensure_future(target.mouse.click(160, 85))
            await _click_through(other, 160, 85)  # a view without control reaches nothing
            await _click_through(view, 200, 220)  # the person drives the page
            await watched.wait_for_function("document.activeElement.id === 'f'")
            await view.keyboard.type("mine")
            await watched.wait_for_function("document.getElementById('f').value === 'mine'")
            assert not held.done(), "the automation's click went through during the take-over"
            assert await watched.evaluate("window.clicks || 0") == 0
            await view.click("#control")  # give back
            await view.wait_for_function("document.body.dataset.control === 'free'")
            await other.wait_for_function("document.body.dataset.control === 'free'")
            await asyncio.wait_for(held, 15)
            assert await watched.evaluate("window.clicks") == 1
        finally:
            await watcher.close()
            await automation.close()


async def test_a_click_that_timed_out_during_a_take_over_lands_when_control_comes_back(
    session: dict[str, Any], viewer: Browser
) -> None:
    """What the README says of a held command whose client stopped waiting (the outside
    review's "ghost click"): CDP cannot take it back, so it is sent on Give back."""
    async with async_playwright() as pw:
        automation = await pw.chromium.connect_over_cdp(session["browser_address"], headers=KEY)
        watcher = await pw.chromium.connect_over_cdp(session["browser_address"], headers=KEY)
        try:
            target = automation.contexts[0].pages[0]
            watched = watcher.contexts[0].pages[0]
            view = await _open_view(viewer, session["app_url"])
            await view.click("#control")
            await view.wait_for_function("document.body.dataset.control === 'mine'")
            with pytest.raises(PlaywrightTimeoutError):
                await target.click("#b", timeout=1500)
            assert await watched.evaluate("window.clicks || 0") == 0  # held, not lost
            await view.click("#control")  # give back
            await watched.wait_for_function("window.clicks === 1")  # the held click landed
            await asyncio.wait_for(target.evaluate("1"), 15)  # and the connection goes on
        finally:
            await watcher.close()
            await automation.close()


async def test_a_compressing_raw_cdp_client_is_held_too(
    session: dict[str, Any], viewer: Browser
) -> None:
    """Before: a client that negotiated permessage-deflate (``websockets``' default) was not
    held: its compressed ``Input.*`` frames passed the check, and it clicked during a take-over."""
    async with async_playwright() as pw:
        watcher = await pw.chromium.connect_over_cdp(session["browser_address"], headers=KEY)
        try:
            watched = watcher.contexts[0].pages[0]
            page_address = session["browser_address"].replace(
                "/devtools/browser/", "/devtools/page/").rsplit("/", 1)[0] + "/" + (
                await (await watched.context.new_cdp_session(watched)).send(
                    "Target.getTargetInfo"))["targetInfo"]["targetId"]
            view = await _open_view(viewer, session["app_url"])
            await view.click("#control")
            await view.wait_for_function("document.body.dataset.control === 'mine'")
            async with connect(page_address, additional_headers=KEY,
                               compression="deflate") as raw:
                assert "Sec-WebSocket-Extensions" not in raw.response.headers  # none agreed
                for n, kind in enumerate(("mousePressed", "mouseReleased"), start=1):
                    await raw.send(json.dumps({"id": n, "method": "Input.dispatchMouseEvent",
                        "params": {"type": kind, "x": 160, "y": 85, "button": "left",
                                   "clickCount": 1}}))
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(raw.recv(), 1.5)  # held: no answer
                assert await watched.evaluate("window.clicks || 0") == 0
                await view.click("#control")  # give back
                answers = [json.loads(await asyncio.wait_for(raw.recv(), 15)) for _ in "12"]
                assert sorted(a["id"] for a in answers) == [1, 2]
                await watched.wait_for_function("window.clicks === 1")
        finally:
            await watcher.close()


async def test_a_viewer_that_leaves_leaves_no_cdp_session_and_gives_control_back(
    session: dict[str, Any], viewer: Browser
) -> None:
    assert await _attached_pages(session) == [False]
    view = await _open_view(viewer, session["app_url"])
    await view.click("#control")
    await view.wait_for_function("document.body.dataset.control === 'mine'")
    assert await _attached_pages(session) == [True]
    await view.close()

    async def detached() -> bool:
        return await _attached_pages(session) == [False]

    await _eventually(detached)
    # Control went with the viewer: the automation's input is not held.
    async with async_playwright() as pw:
        automation = await pw.chromium.connect_over_cdp(session["browser_address"], headers=KEY)
        try:
            target = automation.contexts[0].pages[0]
            await asyncio.wait_for(target.mouse.click(160, 85), 15)
            assert await target.evaluate("window.clicks") == 1
        finally:
            await automation.close()


async def test_the_tab_strip_switches_pages(session: dict[str, Any], viewer: Browser) -> None:
    async with async_playwright() as pw:
        automation = await pw.chromium.connect_over_cdp(session["browser_address"], headers=KEY)
        try:
            view = await _open_view(viewer, session["app_url"])
            second = await automation.contexts[0].new_page()
            await second.goto("data:text/html,<title>second</title><body style='background:"
                              "%2300f'><input id=g></body>")
            tab = view.locator("#tabs button", has_text="second")
            await tab.wait_for()
            shown = int(await view.locator("#live").get_attribute("data-frames") or 0)
            await tab.click()
            await view.wait_for_function("document.querySelector('#tabs .current')?"
                                         ".title.includes('<title>second')")
            await view.wait_for_function(
                f"Number(document.getElementById('live').dataset.frames) > {shown}")
            await view.click("#control")
            await view.wait_for_function("document.body.dataset.control === 'mine'")
            await _click_through(view, 20, 12)  # the input at the top left of "second"
            await second.wait_for_function("document.activeElement.id === 'g'")
            await view.keyboard.type("on tab two")
            await second.wait_for_function(
                "document.getElementById('g').value === 'on tab two'")
            await second.close()  # the watched page closes: the view goes back to the first
            await view.wait_for_function("document.querySelector('#tabs .current')?"
                                         ".title.includes('<title>target')")
        finally:
            await automation.close()


async def test_the_view_refuses_a_foreign_host_and_a_wrong_or_missing_token(
    backend: LocalBackend, session: dict[str, Any]
) -> None:
    sid = session["browser_session_id"]
    app_url = session["app_url"]
    bare = app_url.split("?")[0]
    ws_base = bare.replace("http://", "ws://") + "/live"
    token = urlsplit(app_url).query
    async with httpx.AsyncClient(trust_env=False) as http:
        assert (await http.get(app_url)).status_code == 200
        for url in (bare, bare + "?token=" + "0" * 32, bare + "?token="):
            assert (await http.get(url)).status_code == 403, url
        for path in ("/info", "/screenshot"):
            assert (await http.get(bare + path)).status_code == 403
            assert (await http.get(f"{bare}{path}?{token}")).status_code == 200
        port = urlsplit(backend.base_url).port
        rebound = await http.get(app_url, headers={"Host": f"rebind.evil.example:{port}"})
        assert rebound.status_code == 403
    path = urlsplit(ws_base).path
    own = f"127.0.0.1:{port}"
    for target, headers in [
        (path, {"Host": own}),
        (path + "?token=" + "0" * 32, {"Host": own}),
        (f"{path}?{token}", {"Host": f"rebind.evil.example:{port}"}),
        (f"{path}?{token}", {"Host": own, "Origin": "https://evil.example"}),
    ]:
        assert await _upgrade_status(port, target, headers) == 403, (target, headers)
    assert await _upgrade_status(port, f"{path}?{token}", {"Host": own}) == 101
    async with connect(f"{ws_base}?{token}", proxy=None,
                       additional_headers={"Origin": backend.base_url}) as ws:
        assert '"type"' in str(await asyncio.wait_for(ws.recv(), 10))
    assert sid in app_url


async def test_a_session_that_ends_closes_its_viewers(
    backend: LocalBackend, viewer: Browser
) -> None:
    async with httpx.AsyncClient(base_url=backend.base_url, headers=KEY, trust_env=False) as http:
        body = await _running(http)
        sid = body["browser_session_id"]
        try:
            view = await _open_view(viewer, body["app_url"])
            await view.click("#control")
            await view.wait_for_function("document.body.dataset.control === 'mine'")
        finally:
            await http.post(f"/v1/browser_sessions/{sid}/close")
        await view.wait_for_function("document.body.dataset.control === 'free'")
        await view.wait_for_function(
            "document.getElementById('note').textContent === 'the session is completed'")
        token = urlsplit(body["app_url"]).query
        ws_url = body["app_url"].split("?")[0].replace("http://", "ws://") + f"/live?{token}"
        async with connect(ws_url, proxy=None) as ws:  # an ended session: closed at once
            await ws.wait_closed()
        assert ws.close_code == 4410
