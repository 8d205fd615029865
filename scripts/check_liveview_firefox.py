"""The live view in a real Firefox: frames arrive, a person clicks, types, pastes and scrolls.

    apt-get install --no-install-recommends firefox-esr     # Debian's; about 45 s, 80 MB
    .venv/bin/python scripts/check_liveview_firefox.py [--firefox PATH] [--seconds 5]

Playwright cannot download its Firefox here, so this drives Debian's ``firefox-esr`` (headless)
over WebDriver BiDi (``--remote-debugging-port``), with the ``websockets`` package: it opens a
local session's ``app_url``, waits for the screencast's frames, takes control with a real
pointer click, clicks a button, types into a field, selects all and deletes, pastes and
scrolls through the view, and the session's page (read over CDP, the automation's side)
sees each. Then it counts the frames Firefox shows while the page animates and while it is
idle, and frames the view from a page on another loopback port (a notebook) and from a
foreign name (``hostile.test``, resolved to 127.0.0.1 by a Firefox preference), which must
show no view. Prints one JSON report; exits 1 on the first check that fails.

It is a script and not a test of the suite: installing Firefox (153.8 ESR, Debian 12) took
43.7 s, 79.7 MB downloaded and 312 MB on disk with ``--no-install-recommends`` (2 shared
cores; a fresh machine adds ``apt-get update``), and this check takes 21–28 s, over the
suite's budget of 40 s to install and 15 s to run; ``scripts/setup`` stays without Firefox.
Measured here (four runs, load average about 10): first frame 0.5–1.1 s after the page
loads; 23.6–28.6 frames/s while the page animates (cap 30), 0.0 while it is idle; click,
typing, Ctrl+A, paste and wheel reach the page within 0.4 s; framed from ``localhost`` the
view works the same, and a ``hostile.test`` frame stays blank (Firefox's CSP refusal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import json
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright
from websockets.asyncio.client import ClientConnection, connect

from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

KEY = "sk-firefox-check"
PAGE = ("data:text/html,<title>target</title><body style='margin:0;height:3000px'>"
        "<button id=b style='position:absolute;left:40px;top:40px;width:240px;height:90px'"
        " onclick='window.clicks=(window.clicks||0)+1'>Press</button>"
        "<input id=f style='position:absolute;left:40px;top:200px;width:360px;height:40px'>"
        "<div id=d style='position:absolute;top:300px;width:80px;height:80px;background:red'>"
        "</div></body>")
ANIMATE = ("() => { let x = 0; (function f() { window.stopped || (d.style.left ="
           " (x++ % 400) + 'px', requestAnimationFrame(f)); })(); }")
PREFS = """user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("network.dns.localDomains", "hostile.test");
"""
CONTROL, BACKSPACE = "\ue009", "\ue003"


class Bidi:
    """A WebDriver BiDi connection: commands by id, answers matched to them."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.next_id = ws, 0
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            future = self.waiting.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(message)

    async def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        future = self.waiting[self.next_id] = asyncio.get_running_loop().create_future()
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, 30)
        if answer.get("type") != "success":
            raise RuntimeError(f"{method}: {answer.get('error')}: {answer.get('message')}")
        result: dict[str, Any] = answer["result"]
        return result

    async def js(self, context: str, expression: str) -> Any:
        got = await self.send("script.evaluate", {
            "expression": expression, "target": {"context": context}, "awaitPromise": True})
        if got["type"] != "success":
            raise RuntimeError(f"{expression}: {got.get('exceptionDetails')}")
        return _value(got["result"])

    async def until(self, context: str, expression: str, timeout: float = 15.0) -> float:
        """Wait until ``expression`` is true in ``context``; the seconds it took."""
        start = time.monotonic()
        while not await self.js(context, expression):
            if time.monotonic() - start > timeout:
                raise AssertionError(f"not true within {timeout} s in Firefox: {expression}")
            await asyncio.sleep(0.05)  # polling Firefox, with a deadline
        return time.monotonic() - start

    async def click(self, context: str, x: float, y: float) -> None:
        await self.send("input.performActions", {"context": context, "actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "x": round(x), "y": round(y)},
                        {"type": "pointerDown", "button": 0},
                        {"type": "pointerUp", "button": 0}]}]})

    async def keys(self, context: str, *chords: str) -> None:
        """Press each chord: a string typed key by key, or CONTROL + a key held together."""
        steps: list[dict[str, str]] = []
        for chord in chords:
            if chord.startswith(CONTROL):
                keys = list(chord)
                steps += [{"type": "keyDown", "value": k} for k in keys]
                steps += [{"type": "keyUp", "value": k} for k in reversed(keys)]
            else:
                for k in chord:
                    steps += [{"type": "keyDown", "value": k}, {"type": "keyUp", "value": k}]
        await self.send("input.performActions", {"context": context, "actions": [
            {"type": "key", "id": "keyboard", "actions": steps}]})

    async def wheel(self, context: str, x: float, y: float, dy: int) -> None:
        await self.send("input.performActions", {"context": context, "actions": [{
            "type": "wheel", "id": "wheel", "actions": [
                {"type": "scroll", "x": round(x), "y": round(y), "deltaX": 0, "deltaY": dy}]}]})


def _value(remote: dict[str, Any]) -> Any:
    """A BiDi remote value (numbers, strings, booleans, arrays of them) as Python."""
    if remote.get("type") == "array":
        return [_value(item) for item in remote.get("value", [])]
    return remote.get("value")


async def _point(bidi: Bidi, context: str, x: float, y: float) -> tuple[float, float]:
    """Where in Firefox's viewport the session page's CSS point (x, y) is shown."""
    box = await bidi.js(context, "(() => { const l = document.getElementById('live');"
                        " const r = l.getBoundingClientRect(); return [r.left, r.top, r.width,"
                        " r.height, Number(l.dataset.width), Number(l.dataset.height)]; })()")
    left, top, width, height, page_w, page_h = box
    border = 3
    return (left + border + x * (width - 2 * border) / page_w,
            top + border + y * (height - 2 * border) / page_h)


async def _center(bidi: Bidi, context: str, selector: str) -> tuple[float, float]:
    r = await bidi.js(context, f"(() => {{ const r = document.querySelector({selector!r})"
                      ".getBoundingClientRect(); return [r.left + r.width / 2,"
                      " r.top + r.height / 2]; })()")
    return r[0], r[1]


async def _seen(target: Page, expression: str) -> float:
    start = time.monotonic()
    await target.wait_for_function(expression, timeout=15000)
    return time.monotonic() - start


async def _frames_over(bidi: Bidi, context: str, seconds: float) -> float:
    count = "Number(document.getElementById('live').dataset.frames)"
    before = await bidi.js(context, count)
    await asyncio.sleep(seconds)  # the measurement's window
    return (await bidi.js(context, count) - before) / seconds


def _front_end(pages: dict[str, bytes]) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def _child(bidi: Bidi, context: str) -> dict[str, Any]:
    tree = await bidi.send("browsingContext.getTree", {"root": context})
    [child] = tree["contexts"][0]["children"]
    return dict(child)


async def check(firefox: str, seconds: float) -> dict[str, Any]:
    report: dict[str, Any] = {}
    step: Callable[[str, Awaitable[float]], Awaitable[None]]

    async def step(name: str, work: Awaitable[float]) -> None:
        report[name] = round(await work, 3)
        print(f"ok  {name}: {report[name]}", file=sys.stderr, flush=True)

    version = await asyncio.create_subprocess_exec(firefox, "--version",
                                                   stdout=asyncio.subprocess.PIPE)
    report["firefox"] = (await asyncio.wait_for(version.communicate(), 30))[0].decode().strip()
    profile = Path(tempfile.mkdtemp(prefix="scdp-firefox-"))
    (profile / "user.js").write_text(PREFS)
    with LocalBackend(api_key=KEY, chromium_args=CLOSED_NETWORK_ARGS) as backend:
        async with httpx.AsyncClient(base_url=backend.base_url, headers={"x-api-key": KEY},
                                     trust_env=False) as http, async_playwright() as pw:
            body = (await http.post("/v1/browser_sessions", json={"url": PAGE})).json()
            sid = body["browser_session_id"]
            while body["status"] != "running":
                body = (await http.get(f"/v1/browser_sessions/{sid}")).json()
                await asyncio.sleep(0.1)
            automation = await pw.chromium.connect_over_cdp(
                body["browser_address"], headers={"x-api-key": KEY})
            target = automation.contexts[0].pages[0]
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                firefox, "--headless", "--no-remote", "--profile", str(profile),
                "--remote-debugging-port=0", "about:blank",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            drain: asyncio.Future[None] | None = None
            pages: dict[str, bytes] = {}
            front = _front_end(pages)
            try:
                assert proc.stderr is not None
                line = ""
                while "WebDriver BiDi listening on" not in line:
                    line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
                    if not line:
                        raise AssertionError("Firefox ended before listening")
                drain = asyncio.ensure_future(_drain(proc.stderr))
                endpoint = re.search(r"ws://\S+", line).group(0)  # type: ignore[union-attr]
                report["firefox_start_s"] = round(time.monotonic() - started, 3)
                async with connect(f"{endpoint}/session", proxy=None, max_size=None) as ws:
                    bidi = Bidi(ws)
                    await bidi.send("session.new", {"capabilities": {}})
                    tree = await bidi.send("browsingContext.getTree", {})
                    ctx = tree["contexts"][0]["context"]
                    await bidi.send("browsingContext.setViewport", {
                        "context": ctx, "viewport": {"width": 1400, "height": 1000}})
                    opened = time.monotonic()
                    await bidi.send("browsingContext.navigate", {
                        "context": ctx, "url": body["app_url"], "wait": "complete"})
                    await bidi.until(ctx, "Number(document.getElementById('live')"
                                          ".dataset.frames) > 0")
                    report["first_frame_s"] = round(time.monotonic() - opened, 3)
                    await bidi.click(ctx, *await _center(bidi, ctx, "#control"))
                    await step("take_control_s", bidi.until(
                        ctx, "document.body.dataset.control === 'mine'"))
                    await bidi.click(ctx, *await _point(bidi, ctx, 160, 85))
                    await step("click_seen_s", _seen(target, "window.clicks === 1"))
                    await bidi.click(ctx, *await _point(bidi, ctx, 200, 220))
                    await step("focus_seen_s", _seen(target, "document.activeElement.id === 'f'"))
                    await bidi.keys(ctx, "typed in firefox")
                    await step("typing_seen_s", _seen(
                        target, "document.getElementById('f').value === 'typed in firefox'"))
                    await bidi.keys(ctx, CONTROL + "a", BACKSPACE)
                    await step("select_all_delete_seen_s", _seen(
                        target, "document.getElementById('f').value === ''"))
                    # A real paste: the clipboard written (a user's gesture), then Ctrl+V.
                    # (Firefox gives a synthetic ClipboardEvent's getData nothing.)
                    await bidi.send("script.evaluate", {
                        "expression": "navigator.clipboard.writeText('pasted in firefox')",
                        "target": {"context": ctx}, "awaitPromise": True,
                        "userActivation": True})
                    await bidi.keys(ctx, CONTROL + "v")
                    await step("paste_seen_s", _seen(
                        target, "document.getElementById('f').value === 'pasted in firefox'"))
                    await bidi.wheel(ctx, *await _point(bidi, ctx, 600, 400), 300)
                    await step("wheel_seen_s", _seen(target, "window.scrollY > 0"))
                    await target.evaluate("window.scrollTo(0, 0)")
                    await target.evaluate(ANIMATE)
                    report["fps_animating"] = round(await _frames_over(bidi, ctx, seconds), 1)
                    # Idle: no animation, and no caret blinking in a focused field (a repaint
                    # twice a second).
                    await target.evaluate("window.stopped = true; document.activeElement.blur()")
                    await asyncio.sleep(1.0)  # the last frames of the animation, and a catch-up
                    report["fps_idle"] = round(await _frames_over(bidi, ctx, seconds), 2)
                    await bidi.click(ctx, *await _center(bidi, ctx, "#control"))
                    await step("give_back_s", bidi.until(
                        ctx, "document.body.dataset.control === 'free'"))

                    # Framed by a notebook on another loopback port; and by a foreign name.
                    port = front.server_address[1]
                    frame = f"<iframe src='{body['app_url']}' width=1300 height=900></iframe>"
                    pages["/"] = frame.encode()
                    await bidi.send("browsingContext.navigate", {
                        "context": ctx, "url": f"http://localhost:{port}/", "wait": "complete"})
                    child = (await _child(bidi, ctx))["context"]
                    await step("framed_first_frame_s", bidi.until(
                        child, "Number(document.getElementById('live').dataset.frames) > 0"))
                    report["framed_shows_only_the_view"] = await bidi.js(
                        child, "getComputedStyle(document.getElementById('facts')).display"
                               " === 'none'")
                    # Into a cross-origin frame, Firefox's BiDi dispatches a pointer action
                    # of the top-level context to that context only: act in the frame's own.
                    await bidi.click(child, *await _center(bidi, child, "#control"))
                    await step("framed_take_control_s", bidi.until(
                        child, "document.body.dataset.control === 'mine'"))
                    await bidi.click(child, *await _point(bidi, child, 160, 85))
                    await step("framed_click_seen_s", _seen(target, "window.clicks === 2"))
                    await bidi.click(child, *await _point(bidi, child, 200, 220))
                    await bidi.keys(child, CONTROL + "a", "typed in a frame")
                    await step("framed_typing_seen_s", _seen(
                        target, "document.getElementById('f').value === 'typed in a frame'"))
                    await bidi.send("browsingContext.navigate", {
                        "context": ctx, "url": f"http://hostile.test:{port}/",
                        "wait": "complete"})
                    hostile = await _child(bidi, ctx)
                    shown = await _frame_text(bidi, hostile["context"])
                    report["hostile_frame"] = {"url": hostile["url"][:60],
                                               "shows": " ".join(shown.split())[:80]}
                    if "Take control" in shown or hostile["url"].startswith(body["app_url"]):
                        raise AssertionError("a foreign page framed the live view in Firefox")
                    await bidi.send("session.end", {})
                    bidi.reader.cancel()
            finally:
                front.shutdown()
                front.server_close()
                if proc.returncode is None:
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except asyncio.TimeoutError:
                    proc.kill()
                    await asyncio.wait_for(proc.wait(), 10)
                if drain is not None:
                    drain.cancel()
                await automation.close()
                await http.post(f"/v1/browser_sessions/{sid}/close")
                shutil.rmtree(profile, ignore_errors=True)
    return report


async def _drain(stream: asyncio.StreamReader) -> None:
    """Read Firefox's stderr to its end, so that a full pipe never blocks it."""
    while await stream.readline():
        pass


async def _frame_text(bidi: Bidi, context: str) -> str:
    """What a person sees in a frame: its text, or why the frame cannot be read."""
    with contextlib.suppress(RuntimeError):
        return str(await bidi.js(context, "document.body ? document.body.innerText : ''"))
    return "(unreadable)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--firefox", default=shutil.which("firefox-esr") or "firefox")
    parser.add_argument("--seconds", type=float, default=5.0, help="each frame-rate window")
    args = parser.parse_args()
    if not shutil.which(args.firefox):
        print(f"no Firefox at {args.firefox!r}: apt-get install firefox-esr", file=sys.stderr)
        return 2
    started = time.monotonic()
    report = asyncio.run(check(args.firefox, args.seconds))
    report["total_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
