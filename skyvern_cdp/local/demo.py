"""``skyvern-cdp demo``: a session from create to teardown, with the time each phase took.

::

    $ skyvern-cdp demo
    skyvern-cdp demo: using the built-in local backend at http://127.0.0.1:41234
    ...
    page title: skyvern-cdp demo page

    phase          seconds
    create           0.012
    wait             0.471
    connect          0.233
    first page       0.061
    total            0.777

What it does: 1. starts the local backend in this process (``LocalBackend``); 2. ``launch``:
creates a session and waits until it is ready while the Playwright driver starts, then
connects over CDP (the phases are cut at the status changes it saw); 3. opens a small page
the demo serves itself on loopback (no internet needed); 4. prints the page's title and the
table; 5. closes the browser and the session, stops the backend, exits 0.

With ``--cloud`` it uses ``--base-url`` / ``SKYVERN_BASE_URL`` (cloud by default) and
``SKYVERN_API_KEY`` instead, and opens the same page as a ``data:`` URL (a cloud browser
cannot reach this machine's loopback). A ``SKYVERN_API_KEY`` in the environment alone does
not switch to the cloud: the demo says which server it used.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from skyvern_cdp.models import BrowserSessionResponse

__all__ = ["DEMO_PAGE", "run"]

#: The page the demo opens.
DEMO_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>skyvern-cdp demo page</title></head>
<body><h1>Hello from skyvern-cdp</h1>
<p>This page was served by the demo itself; the browser reached it over loopback.</p>
</body></html>
"""

#: Overall deadline for create + wait + connect, in seconds.
DEMO_TIMEOUT = 60.0
#: The session's own lifetime, in minutes (the demo closes it long before).
SESSION_MINUTES = 10

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def _say(message: str) -> None:
    print(f"skyvern-cdp demo: {message}", file=sys.stderr, flush=True)


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = DEMO_PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_page() -> Iterator[str]:
    """Serve :data:`DEMO_PAGE` on ``127.0.0.1`` and a free port; yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, name="demo-page", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Timings:
    """Seconds per phase, in the order they ran."""

    phases: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = time.perf_counter() - started

    def table(self) -> str:
        total = sum(self.phases.values())
        rows = [*self.phases.items(), ("total", total)]
        width = max(len(name) for name, _ in rows) + 4
        lines = [f"{'phase':<{width}}{'seconds':>8}"]
        lines += [f"{name:<{width}}{seconds:>8.3f}" for name, seconds in rows]
        return "\n".join(lines)


@dataclass
class Outcome:
    server: str
    base_url: str
    session_id: str
    app_url: str | None
    title: str
    timings: Timings


@asynccontextmanager
async def _local_server() -> AsyncIterator[tuple[str, str]]:
    from skyvern_cdp.local.backend import LocalBackend
    from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

    key = "sk-demo-" + secrets.token_urlsafe(16)
    async with LocalBackend(api_key=key, chromium_args=CLOSED_NETWORK_ARGS) as backend:
        yield backend.base_url, key


async def drive(base_url: str, api_key: str | None, page_url: str, server: str) -> Outcome:
    """Launch (create, wait, connect) the way the library does, open ``page_url``, close.

    The phases are cut at the status changes the launch saw: *create* ends when the API
    first shows the session, *wait* when it is ``running``, *connect* when the Browser is in
    hand. The Playwright driver starts in the background while the session is polled, so
    *connect* is only the CDP dial: no phase of its own is spent starting the driver.
    """
    from skyvern_cdp.async_api import default_page, launch, session_of

    timings = Timings()
    seen: dict[str, float] = {}
    deadline = time.monotonic() + DEMO_TIMEOUT

    def remaining() -> float:
        return max(deadline - time.monotonic(), 1.0)

    def on_status(session: BrowserSessionResponse) -> None:
        now = time.perf_counter()
        seen.setdefault("first", now)
        if session.status == "running":
            seen.setdefault("running", now)

    started = time.perf_counter()
    browser = await launch(
        api_key=api_key,
        base_url=base_url,
        timeout=remaining(),
        session_timeout_minutes=SESSION_MINUTES,
        on_status=on_status,
    )
    in_hand = time.perf_counter()
    try:
        session = session_of(browser)
        running = seen.get("running", in_hand)
        first = min(seen.get("first", running), running)
        timings.phases["create"] = first - started
        timings.phases["wait"] = running - first
        timings.phases["connect"] = in_hand - running
        with timings.phase("first page"):
            page = await default_page(browser)
            await page.goto(page_url, timeout=remaining() * 1000)
            title = await page.title()
    finally:
        await browser.close()  # closes the launched session too
    return Outcome(server, base_url, session.browser_session_id, session.app_url, title, timings)


async def _main(args: argparse.Namespace) -> Outcome:
    if args.cloud:
        from skyvern_cdp.config import resolve_settings

        settings = resolve_settings(api_key=args.api_key, base_url=args.base_url)
        if not settings.api_key:
            raise _UsageError("--cloud needs an API key: set SKYVERN_API_KEY (or --api-key)")
        _say(f"using Skyvern at {settings.base_url} (--cloud)")
        page_url = "data:text/html;charset=utf-8," + quote(DEMO_PAGE)
        return await drive(settings.base_url, settings.api_key, page_url, "cloud")
    if os.environ.get("SKYVERN_API_KEY") or args.api_key:
        _say(
            "an API key is set, but the demo still uses the built-in local backend;"
            " pass --cloud to use SKYVERN_BASE_URL (or Skyvern's cloud) instead"
        )
    from skyvern_cdp.local import require_local_extra

    require_local_extra("skyvern-cdp demo (without --cloud)")
    started = time.perf_counter()
    async with _local_server() as (base_url, key):
        _say(
            f"using the built-in local backend at {base_url}"
            f" (started in {time.perf_counter() - started:.2f} s)"
        )
        with serve_page() as page_url:
            return await drive(base_url, key, page_url, "local")


class _UsageError(Exception):
    pass


def run(args: argparse.Namespace) -> int:
    """The ``demo`` command: the exit code (0 when every phase succeeded)."""
    try:
        outcome = asyncio.run(_main(args))
    except _UsageError as exc:
        _say(str(exc))
        return EXIT_USAGE
    if getattr(args, "json", False):
        print(
            json.dumps(
                {
                    "server": outcome.server,
                    "base_url": outcome.base_url,
                    "browser_session_id": outcome.session_id,
                    "title": outcome.title,
                    "seconds": {k: round(v, 4) for k, v in outcome.timings.phases.items()},
                }
            )
        )
        return EXIT_OK
    print(f"server: {outcome.server} ({outcome.base_url})")
    print(f"session: {outcome.session_id}")
    print(f"page title: {outcome.title}")
    print()
    print(outcome.timings.table())
    print("(launch: the Playwright driver started while the session was polled;")
    print(" create, wait and connect are cut at the status changes the launch saw)")
    _say("closed the browser and the session; done")
    return EXIT_OK
