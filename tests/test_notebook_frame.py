"""``notebook.show(interactive=True)``: the live view framed in a cell, driven in a real browser.

A real ipykernel runs ``show(interactive=True)``; the HTML it displays is served by a small
server on another loopback port (the notebook's front end, reached as ``localhost`` the way
Jupyter prints it: a cross-site frame of ``127.0.0.1``). A headless Chromium opens it, takes
control through the frame, clicks a button and types into a field of the session's page,
and the notebook's own Playwright sees both. The same cell output on a page of another
origin (``hostile.test``, resolved to 127.0.0.1), and frames without the token or of other
routes, show no view. Also: a cloud ``app_url`` is a link, never a frame; bad input is a
typed error; and the pure decisions of :mod:`skyvern_cdp.policy.framing`.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from notebook_kernel import Kernel
from playwright.async_api import Browser, Frame, Page, async_playwright

from skyvern_cdp import InvalidArgumentError, InvalidArgumentTypeError, notebook
from skyvern_cdp.policy.framing import embedding, frame_ancestors

from conftest import LOCAL_API_KEY, full_chromium
from scripted_api import Reply, ScriptedAPI, session

pytestmark = pytest.mark.browser

KEY = {"x-api-key": LOCAL_API_KEY}
PAGE = (
    "data:text/html,<title>target</title><body style='margin:0'>"
    "<button id=b style='position:absolute;left:40px;top:40px;width:240px;height:90px'"
    " onclick='window.clicks=(window.clicks||0)+1'>Press</button>"
    "<input id=f style='position:absolute;left:40px;top:200px;width:360px;height:40px'>"
    "</body>"
)
#: The viewer's browser: no network but loopback, and one foreign name that resolves to it.
VIEWER_ARGS = ["--host-resolver-rules=MAP hostile.test 127.0.0.1, MAP * ~NOTFOUND,"
               " EXCLUDE localhost, EXCLUDE 127.0.0.1"]


# ---- the pure decisions -------------------------------------------------------------------


def test_who_may_frame_the_live_view() -> None:
    loopback = ("'self' http://localhost:* https://localhost:* http://127.0.0.1:*"
                " https://127.0.0.1:*")
    assert frame_ancestors("127.0.0.1:8000") == f"frame-ancestors {loopback}"
    assert frame_ancestors("localhost:8000") == frame_ancestors(None) == (
        f"frame-ancestors {loopback}")
    # The machine the view was reached on, and the names the server was told, any port.
    assert frame_ancestors("192.168.1.5:8000", ["devbox.lan"]) == (
        f"frame-ancestors {loopback} http://192.168.1.5:* https://192.168.1.5:*"
        " http://devbox.lan:* https://devbox.lan:*")
    # Nothing a request or a name sends becomes a directive; CSP has no IPv6 literals.
    for odd in ("a;b", "x y", "*", "'none'", "evil.example; script-src *", "", "[::1]"):
        assert frame_ancestors("[::1]:8000", [odd]) == f"frame-ancestors {loopback}", odd
    assert frame_ancestors("DevBox.LAN:8000", ["devbox.lan"]).count("devbox.lan") == 2


@pytest.mark.parametrize(
    ("app_url", "api", "frame", "says"),
    [
        ("http://127.0.0.1:8000/sessions/pbs_1?token=t", "http://127.0.0.1:8000", True,
         "if the frame stays empty"),
        ("http://127.0.0.1:8000/sessions/pbs_1", "http://127.0.0.1:8000/", True, "stays empty"),
        ("HTTP://LOCALHOST/sessions/pbs_1", "http://localhost:80", True, "stays empty"),
        # Skyvern's cloud: its web app, its own framing rule and login.
        ("https://app.skyvern.com/browser-session/pbs_1", "https://api.skyvern.com", False,
         "app.skyvern.com serves this live view and decides itself"),
        # Self-hosted Skyvern: its UI on another port than its API.
        ("http://localhost:8080/browser-session/pbs_1", "http://localhost:8000", False,
         "localhost serves this live view"),
        # The local backend's layout, but another session's page, or another route.
        ("http://127.0.0.1:8000/sessions/pbs_2", "http://127.0.0.1:8000", False, "serves"),
        ("http://127.0.0.1:8000/sessions/pbs_1/info", "http://127.0.0.1:8000", False, "serves"),
        ("https://127.0.0.1:8000/sessions/pbs_1", "http://127.0.0.1:8000", False, "serves"),
        (None, "http://127.0.0.1:8000", False, "the session has no app_url"),
        ("", "http://127.0.0.1:8000", False, "the session has no app_url"),
        ("javascript:alert(1)", "http://127.0.0.1:8000", False, "not an http(s) address"),
        ("http://[::1", "http://127.0.0.1:8000", False, "not an http(s) address"),
    ],
)
def test_what_a_notebook_frames(app_url: str | None, api: str, frame: bool, says: str) -> None:
    decision = embedding(app_url, "pbs_1", api)
    assert decision.frame is frame
    assert says in decision.reason and "\n" not in decision.reason


# ---- bad input, and outside a notebook ------------------------------------------------------


def test_bad_input_to_interactive_show_is_a_typed_error() -> None:
    with pytest.raises(InvalidArgumentTypeError, match="interactive must be True or False"):
        notebook.show(interactive="yes")  # type: ignore[call-overload]
    with pytest.raises(InvalidArgumentTypeError, match="browser must be an async Playwright"):
        notebook.show("pbs_123", interactive=True)  # type: ignore[call-overload]
    with pytest.raises(InvalidArgumentError, match="page and max_fps are the picture's"):
        notebook.show(page=object(), interactive=True)  # type: ignore[call-overload]
    with pytest.raises(InvalidArgumentError, match="page and max_fps are the picture's"):
        notebook.show(max_fps=10, interactive=True)  # type: ignore[call-overload]
    with pytest.raises(InvalidArgumentTypeError, match="max_fps must be a number"):
        notebook.show(max_fps="4", interactive=True)  # type: ignore[call-overload]
    with pytest.raises(InvalidArgumentError, match="height is the interactive view's"):
        notebook.show(height=600)  # type: ignore[call-overload]
    with pytest.raises(InvalidArgumentError, match="no Browser to show: attach one first"):
        notebook.show(interactive=True)
    # The height is checked first: before, -1 with no Browser said "no Browser to show".
    with pytest.raises(InvalidArgumentError, match="height must be 100 to 4000 pixels"):
        notebook.show(interactive=True, height=-1)
    from skyvern_cdp.notebook_embed import check_height

    for height in ("600", 600.0, True, None):
        with pytest.raises(InvalidArgumentTypeError, match="height must be an int"):
            check_height(height)
    for height in (99, 4001, -1):
        with pytest.raises(InvalidArgumentError, match="height must be 100 to 4000 pixels"):
            check_height(height)
    assert check_height(100) == 100


def test_outside_a_notebook_it_says_so_in_one_line_with_the_link(backend: Any) -> None:
    script = (
        "import asyncio\n"
        "from skyvern_cdp import notebook\n"
        "async def main():\n"
        "    await notebook.launch(session_timeout_minutes=10)\n"
        "    view = notebook.show(interactive=True, height=500)\n"
        "    print(repr(view))\n"
        "    browser = notebook.live_browsers()[-1]\n"
        "    await notebook.close()\n"
        "    try:\n"  # before: a closed Browser framed its ended session's view
        "        notebook.show(browser, interactive=True)\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "SKYVERN_BASE_URL": backend.base_url, "SKYVERN_API_KEY": LOCAL_API_KEY}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line, shown, closed = done.stdout.splitlines()
    assert closed.startswith("InvalidArgumentError this Browser of session pbs_")
    assert closed.endswith(" is closed: attach again (`browser = await notebook.attach(id)`)"
                           " to show its live view")
    assert line.startswith("skyvern_cdp: not in a notebook, so there is nothing to show here;"
                           f" take control at {backend.base_url}/sessions/pbs_")
    assert "?token=" in line  # the link a person needs, as show()'s own line has it
    assert "framed=False" in shown and "reason='not in a notebook'" in shown
    assert "?<redacted>" in shown and "token=" not in shown, "the repr hides the token"
    assert LOCAL_API_KEY not in done.stdout + done.stderr


# ---- in a real kernel, framed by a real browser ---------------------------------------------


class FrontEnd:
    """Pages by path, served on a loopback port of their own: the notebook's front end."""

    def __init__(self) -> None:
        pages: dict[str, bytes] = {}
        self.pages = pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests look at the browser, not at this server's log."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path: str, cell_output: str) -> None:
        self.pages[path] = (
            "<!doctype html><meta charset=utf-8><title>notebook</title>"
            f"<div class=output style='width:1100px'>{cell_output}</div>").encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def front_end() -> Iterator[FrontEnd]:
    served = FrontEnd()
    try:
        yield served
    finally:
        served.close()


@pytest.fixture
def kernel(backend: Any) -> Iterator[Kernel]:
    env = {**os.environ, "SKYVERN_BASE_URL": backend.base_url, "SKYVERN_API_KEY": LOCAL_API_KEY}
    started = Kernel(env)
    pid = started.pid
    try:
        yield started
    finally:
        started.shutdown()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.fixture
async def viewer() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=full_chromium(), args=VIEWER_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def _open(page: Page, url: str) -> Frame:
    """Open the front end's page; its one frame, loaded (the page's load event waits for it,
    a refused frame's error page included)."""
    await page.goto(url)
    [_, frame] = page.frames
    return frame


async def _refused(page: Page, url: str) -> Frame:
    """Open a page whose one frame the browser must refuse; that frame, once on its error page.

    The load event may come before the frame's refusal lands (seen under load), and the error
    page's text after its URL (seen under load: an empty body), so both are waited on with a
    deadline rather than read once.
    """
    frame = await _open(page, url)
    give_up = time.monotonic() + 30
    while not (frame.url.startswith("chrome-error://")
               and (await frame.inner_text("body")).strip()):
        assert time.monotonic() < give_up, f"the frame was not refused: {frame.url!r}"
        await asyncio.sleep(0.05)
    return frame


async def _click_through(page: Page, frame: Frame, x: float, y: float) -> None:
    """Click the session's page at CSS (x, y), through the framed view's picture of it."""
    live = frame.locator("#live")
    box = await live.bounding_box()  # in the top page's coordinates
    assert box is not None
    width = float(await live.get_attribute("data-width") or 0)
    height = float(await live.get_attribute("data-height") or 0)
    assert width > 0 and height > 0
    border = 3
    inner_w, inner_h = box["width"] - 2 * border, box["height"] - 2 * border
    await page.mouse.click(box["x"] + border + x * inner_w / width,
                           box["y"] + border + y * inner_h / height)


SETUP = f"""
import json
from skyvern_cdp import notebook
from skyvern_cdp.async_api import default_page, session_of
browser = await notebook.launch(session_timeout_minutes=10, url={PAGE!r})
page = await default_page(browser)
await page.wait_for_selector("#f")
app_url = session_of(browser).app_url
"""


async def test_a_person_takes_control_through_the_cell_and_other_pages_get_no_view(
    kernel: Kernel, front_end: FrontEnd, viewer: Browser, backend: Any
) -> None:
    kernel.run(SETUP)
    app_url = kernel.run("print(app_url)").strip()
    token = urlsplit(app_url).query.removeprefix("token=")
    assert len(token) == 32
    mark = len(kernel.messages)
    shown = kernel.run("view = notebook.show(interactive=True)\nprint(repr(view))")
    assert "framed=True" in shown and token not in shown
    [cell] = kernel.displayed("text/html", mark)
    [plain] = kernel.displayed("text/plain", mark)
    assert "<iframe" in cell and "open the live view in a tab" in cell
    assert plain.startswith("the live view of session pbs_")
    front_end.serve("/", cell)

    # The notebook, as Jupyter prints its address: localhost, another port.
    started = time.monotonic()
    page = await viewer.new_page(viewport={"width": 1300, "height": 1000})
    frame = await _open(page, f"http://localhost:{front_end.port}/")
    await frame.wait_for_function("Number(document.getElementById('live').dataset.frames) > 0")
    first_frame = time.monotonic() - started
    assert await frame.locator("#facts").is_hidden(), "framed, the page shows only the view"
    await frame.click("#control")
    await frame.wait_for_function("document.body.dataset.control === 'mine'")
    await _click_through(page, frame, 160, 85)  # the button's middle
    kernel.run("await page.wait_for_function('window.clicks === 1', timeout=15000)")
    await _click_through(page, frame, 200, 220)  # the field
    await page.keyboard.type("typed in a cell")
    kernel.run("await page.wait_for_function(\"document.getElementById('f').value ==="
               " 'typed in a cell'\", timeout=15000)")
    await frame.click("#control")  # give back
    await frame.wait_for_function("document.body.dataset.control === 'free'")
    assert first_frame < 30

    # The same cell output on a page of another origin: the browser shows no view.
    front_end.serve("/stolen", cell)  # the token included
    hostile = await viewer.new_page()
    blocked = await _refused(hostile, f"http://hostile.test:{front_end.port}/stolen")
    assert "refused to connect" in await blocked.inner_text("body")
    assert await blocked.locator("#control").count() == 0
    # ... and without the token: the browser's refusal too, not the view's own 403 page.
    front_end.serve("/stolen-bare", f"<iframe src='{app_url.split('?')[0]}'></iframe>")
    bare_page = await viewer.new_page()
    blocked = await _refused(bare_page, f"http://hostile.test:{front_end.port}/stolen-bare")
    assert "refused to connect" in await blocked.inner_text("body")
    await bare_page.close()

    # An allowed page without the token, or framing another route, gets a refusal.
    bare = app_url.split("?")[0]
    for path, src, refusal in [
        ("/no-token", bare, "Could not validate credentials"),
        ("/wrong-token", f"{bare}?token={'0' * 32}", "Could not validate credentials"),
        ("/info", f"{bare}/info?token={token}", "only a session's live view may be framed"),
        ("/api", f"{backend.base_url}/v1/browser_sessions", "only a session's live view"),
    ]:
        front_end.serve(path, f"<iframe src='{src}' width=600 height=200></iframe>")
        other = await viewer.new_page()
        refused = await _open(other, f"http://localhost:{front_end.port}{path}")
        assert refusal in json.loads(await refused.inner_text("body"))["detail"], path
        assert await refused.locator("#control").count() == 0
        await other.close()
    assert kernel.run("print(await page.evaluate('window.clicks'))").strip() == "1"
    kernel.run("await notebook.close()")


async def test_a_cloud_app_url_is_a_link_with_one_line_never_a_frame(
    kernel: Kernel, backend: Any
) -> None:
    async with httpx.AsyncClient(base_url=backend.base_url, headers=KEY, trust_env=False) as http:
        made = (await http.post("/v1/browser_sessions", json={})).json()
        real = made["browser_session_id"]
        try:
            deadline = time.monotonic() + 30
            while made["status"] != "running":
                assert time.monotonic() < deadline, made
                made = (await http.get(f"/v1/browser_sessions/{real}")).json()
            cloud = "https://app.skyvern.com/browser-session/pbs_cloud1"
            with ScriptedAPI() as api:
                api.script("GET", "/v1/browser_sessions/pbs_cloud1", Reply(200, session(
                    "pbs_cloud1", ready=True, browser_address=made["browser_address"],
                    app_url=cloud, timeout=60)))
                mark = len(kernel.messages)
                shown = kernel.run(
                    "from skyvern_cdp import notebook\n"
                    f"b = await notebook.attach('pbs_cloud1', base_url={api.base_url!r})\n"
                    "v = notebook.show(b, interactive=True)\n"
                    "print(v.framed, v.reason)\n"
                    "await notebook.close(b)\n")
            assert shown.strip() == ("False app.skyvern.com serves this live view and decides"
                                     " itself whether another page may frame it, so it is not"
                                     " framed here")
            [cell] = kernel.displayed("text/html", mark)
            [plain] = kernel.displayed("text/plain", mark)
            assert "<iframe" not in cell and f'href="{cloud}"' in cell
            assert plain == ("skyvern_cdp: app.skyvern.com serves this live view and decides"
                             " itself whether another page may frame it, so it is not framed"
                             f" here; open it at {cloud}")
            # A Playwright Browser that skyvern_cdp did not attach has no session to show.
            refused = kernel.run("from playwright.async_api import async_playwright\n"
                       "pw = await async_playwright().start()\n"
                       f"plain = await pw.chromium.connect_over_cdp({made['browser_address']!r},"
                       f" headers={KEY!r})\n"
                       "try:\n"
                       "    notebook.show(plain, interactive=True)\n"
                       "except Exception as exc:\n"
                       "    print(type(exc).__name__, exc)\n"
                       "await plain.close()\nawait pw.stop()\n")
            assert refused.strip() == (
                "InvalidArgumentTypeError this Browser was not attached by skyvern_cdp")
        finally:
            await http.post(f"/v1/browser_sessions/{real}/close")


def test_an_app_url_that_is_not_http_is_never_made_a_link() -> None:
    """Before: a ``javascript:`` app_url was rendered ``<a href="javascript:…">`` in the cell."""
    from skyvern_cdp.notebook_embed import _link

    shown = _link("javascript:alert(document.domain)", "open the live view")
    assert "<a " not in shown and "href" not in shown
    assert shown == "open the live view: <code>javascript:alert(document.domain)</code>"
    assert _link("https://app.skyvern.com/x?a=1&b=2", "open").startswith(
        '<a href="https://app.skyvern.com/x?a=1&amp;b=2" target="_blank"')
