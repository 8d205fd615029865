"""What a person and Playwright see of a local session: the live view and the downloads."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pages import QuietHandler, serve_handler
from playwright.async_api import async_playwright

from skyvern_cdp.config import redact_address
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS, find_chromium
from skyvern_cdp.local.tokens import session_token

from conftest import LOCAL_API_KEY, full_chromium

pytestmark = pytest.mark.browser

Check = Callable[[Any], Any]

REPORT = b"id,name\n1,alpha\n2,beta\n" * 50


class _Pages(QuietHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/report.csv"):
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Disposition", 'attachment; filename="report.csv"')
            self.send_header("Content-Length", str(len(REPORT)))
            self.end_headers()
            self.wfile.write(REPORT)
            return
        self.send_html(b'<title>downloads</title><a id="get" href="/report.csv">get the report</a>')


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """A page with a download link, on loopback (``localhost``: the closed network allows it)."""
    with serve_handler(_Pages) as url:
        yield url.rstrip("/")


def api(backend: LocalBackend) -> httpx.Client:
    headers = {"x-api-key": backend.api_key} if backend.api_key else {}
    return httpx.Client(base_url=backend.base_url, headers=headers, timeout=30, trust_env=False)


def wait_session(
    http: httpx.Client, sid: str, check: Check, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        answer = http.get(f"/v1/browser_sessions/{sid}")
        assert answer.status_code == 200
        body: dict[str, Any] = check(answer.json())
        if done(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def running(body: dict[str, Any]) -> bool:
    assert body["status"] in ("created", "running"), body["status"]
    return bool(body["status"] == "running")


def check_report(info: dict[str, Any], session_id: str, base_url: str) -> None:
    assert info["filename"] == "report.csv"
    assert info["file_size"] == len(REPORT)
    assert info["checksum"] == hashlib.sha256(REPORT).hexdigest()
    assert info["modified_at"].endswith("+00:00")
    bare = f"{base_url}/sessions/{session_id}/files/report.csv"
    assert info["url"] == f"{bare}?token={session_token(LOCAL_API_KEY, session_id)}"
    served = httpx.get(info["url"], trust_env=False)
    assert served.status_code == 200
    assert served.content == REPORT
    # A keyed backend's files need the URL's token (or the key), as its recordings do.
    other = session_token(LOCAL_API_KEY, "pbs_other")
    for refused in (bare, f"{bare}?token=wrong", f"{bare}?token={other}"):
        answer = httpx.get(refused, trust_env=False)
        assert answer.status_code == 403, refused
        assert answer.content != REPORT
    keyed = httpx.get(bare, headers={"x-api-key": LOCAL_API_KEY}, trust_env=False)
    assert keyed.content == REPORT


async def test_live_view_shows_the_session_and_its_page(
    backend: LocalBackend, check_session: Check
) -> None:
    page_url = "data:text/html,<body style='background:%23c00'><h1>live view</h1></body>"
    with api(backend) as http:
        sid = http.post("/v1/browser_sessions", json={"url": page_url}).json()["browser_session_id"]
        try:
            body = wait_session(http, sid, check_session, running)
            shot = http.get(f"/sessions/{sid}/screenshot")
            assert shot.status_code == 200
            assert shot.headers["content-type"] == "image/jpeg"
            assert shot.content[:3] == b"\xff\xd8\xff"
            async with async_playwright() as pw:
                viewer = await pw.chromium.launch(
                    executable_path=find_chromium(), args=list(CLOSED_NETWORK_ARGS)
                )
                try:
                    page = await viewer.new_page()
                    await page.goto(body["app_url"])
                    html = await page.content()
                    assert sid in html
                    assert body["browser_address"] not in html, "the address is redacted"
                    shown = await page.locator("[data-field=browser_address]").text_content()
                    assert shown == redact_address(body["browser_address"])
                    await page.wait_for_function(
                        "document.getElementById('live').naturalWidth > 0", timeout=10_000
                    )
                    # Live from the screencast (no polled screenshots): a frame came in.
                    await page.wait_for_function(
                        "Number(document.getElementById('live').dataset.frames) > 0"
                        " && document.getElementById('live').src.startsWith('data:image/jpeg')",
                        timeout=10_000,
                    )
                    status = page.locator("[data-field=status]")
                    assert await status.text_content() == "running"
                    http.post(f"/v1/browser_sessions/{sid}/close")
                    await page.wait_for_function(
                        "document.querySelector('[data-field=status]').textContent"
                        " === 'completed'",
                        timeout=10_000,
                    )
                finally:
                    await viewer.close()
        finally:
            http.post(f"/v1/browser_sessions/{sid}/close")
        gone = http.get(f"/sessions/{sid}/screenshot")
        assert gone.status_code == 409
        unknown = http.get("/sessions/pbs_404")
        assert unknown.status_code == 404


def test_download_without_a_cdp_client_lands_in_download_path(
    check_session: Check, site: str
) -> None:
    # The full browser: with no CDP client attached it saves by the profile's preferences,
    # which the headless shell the rest of the suite starts (tests/conftest.py) does not read.
    with LocalBackend(api_key=LOCAL_API_KEY, chromium_args=CLOSED_NETWORK_ARGS,
                      chromium_executable=full_chromium()) as backend, api(backend) as http:
        created = http.post("/v1/browser_sessions", json={"url": f"{site}/report.csv"}).json()
        sid = created["browser_session_id"]
        try:
            # Chromium may save the file even before the session is marked running.
            wait_session(http, sid, check_session, running)
            body = wait_session(http, sid, check_session, lambda b: bool(b["downloaded_files"]))
            assert body["status"] == "running"
            [info] = body["downloaded_files"]
            check_report(info, sid, backend.base_url)
            assert (Path(body["download_path"]) / "report.csv").read_bytes() == REPORT
        finally:
            http.post(f"/v1/browser_sessions/{sid}/close")
        # The files outlive the session (until the backend stops).
        after = check_session(http.get(f"/v1/browser_sessions/{sid}").json())
        assert after["status"] == "completed"
        check_report(after["downloaded_files"][0], sid, backend.base_url)


async def test_download_through_playwright_is_also_listed(
    backend: LocalBackend, check_session: Check, site: str
) -> None:
    with api(backend) as http:
        sid = http.post("/v1/browser_sessions").json()["browser_session_id"]
        try:
            body = wait_session(http, sid, check_session, running)
            async with async_playwright() as pw:
                browser = await pw.chromium.connect_over_cdp(
                    body["browser_address"], headers={"x-api-key": backend.api_key or ""}
                )
                try:
                    page = browser.contexts[0].pages[0]
                    await page.goto(f"{site}/")
                    async with page.expect_download() as event:
                        await page.click("#get")
                    download = await event.value
                    assert download.suggested_filename == "report.csv"
                    # Playwright keeps its own copy as well.
                    saved = Path(await download.path())
                    assert await asyncio.to_thread(saved.read_bytes) == REPORT
                finally:
                    await browser.close()
            body = wait_session(http, sid, check_session, lambda b: bool(b["downloaded_files"]))
            [info] = body["downloaded_files"]
            check_report(info, sid, backend.base_url)
            assert body["status"] == "running", "disconnecting Playwright keeps the session"
        finally:
            http.post(f"/v1/browser_sessions/{sid}/close")


def test_file_urls_cannot_leave_the_download_directory(backend: LocalBackend) -> None:
    with api(backend) as http:
        sid = http.post("/v1/browser_sessions").json()["browser_session_id"]
        try:
            for name in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "%2E%2E", "missing.txt"):
                answer = http.get(f"/sessions/{sid}/files/{name}")  # with the key
                assert answer.status_code == 404, name
        finally:
            http.post(f"/v1/browser_sessions/{sid}/close")
