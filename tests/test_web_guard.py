"""A key-less ``serve`` that a web page cannot use: DNS rebinding, cross-site requests, file: URLs.

Every request here carries the headers a browser sends (``Host``, ``Origin``, ``Sec-Fetch-*``),
to a real key-less local backend; one test drives a real headless Chromium page on another
origin, and one a real ``skyvern-cdp serve`` process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pages import serve_html

from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS
from skyvern_cdp.local.registry import DEFAULT_MAX_SESSIONS
from skyvern_cdp.policy.web import create_url_refusal, listen_names, same_origin, web_refusal

from conftest import LONG_LIVED_PIDS

EVIL = "https://evil.example"
#: What Chrome sends with a cross-site fetch()/form POST (the Origin is added per test).
CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
              "Sec-Fetch-Dest": "empty"}


# ---- the rule, as a table -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "host", "origin", "site", "mode", "refused"),
    [
        # Skyvern's SDK, skyvern-lite, httpx, Playwright: no Origin, no Sec-Fetch-*.
        ("POST", "127.0.0.1:8000", None, None, None, None),
        ("GET", "localhost:8000", None, None, None, None),
        ("GET", "[::1]:8000", None, None, None, None),
        ("GET", None, None, None, None, None),  # HTTP/1.0, as Chrome allows
        # The server's own page (the live view) calling back: same origin.
        ("POST", "127.0.0.1:8000", "http://127.0.0.1:8000", "same-origin", "cors", None),
        ("GET", "localhost", "http://localhost:80", "same-origin", "cors", None),
        # A person following a link to the live view from elsewhere.
        ("GET", "127.0.0.1:8000", None, "cross-site", "navigate", None),
        ("GET", "127.0.0.1:8000", None, "none", "navigate", None),
        # DNS rebinding: the page's own name, resolved to 127.0.0.1.
        ("GET", "rebind.evil.example:8000", None, "same-origin", "cors", "host"),
        ("POST", "localhost.evil.example", "http://localhost.evil.example", None, None, "host"),
        ("GET", "evil.example:8000@127.0.0.1", None, None, None, "host"),
        # A trailing dot is another DNS name, not localhost; case is not.
        ("GET", "localhost.:8000", None, None, None, "host"),
        ("POST", "localhost.", None, None, None, "host"),
        ("GET", "LOCALHOST:8000", None, None, None, None),
        # Cross-site requests.
        ("POST", "127.0.0.1:8000", EVIL, "cross-site", "no-cors", "origin"),
        ("POST", "127.0.0.1:8000", "null", "cross-site", "no-cors", "origin"),
        ("POST", "127.0.0.1:8000", "http://127.0.0.1:8001", "same-site", "cors", "origin"),
        ("POST", "127.0.0.1:8000", "http://localhost:8000", "same-site", "cors", "origin"),
        ("POST", "127.0.0.1:8000", "https://127.0.0.1:8000", "same-site", "cors", "origin"),
        ("GET", "127.0.0.1:8000", None, "cross-site", "no-cors", "origin"),  # <img>, no-cors
        ("POST", "127.0.0.1:8000", None, "cross-site", "navigate", "origin"),  # form, no Origin
    ],
)
def test_the_web_rule(
    method: str, host: str | None, origin: str | None, site: str | None, mode: str | None,
    refused: str | None,
) -> None:
    got = web_refusal(method=method, host=host, origin=origin, sec_fetch_site=site,
                      sec_fetch_mode=mode)
    assert (got.kind if got else None) == refused


@pytest.mark.parametrize(
    ("method", "site", "mode", "dest", "frameable", "refused"),
    [
        # A top-level navigation, as before (no Sec-Fetch-Dest: a browser older than it).
        ("GET", "cross-site", "navigate", "document", False, False),
        ("GET", "cross-site", "navigate", None, False, False),
        # Before: any navigation passed, so every route could be framed by any page.
        ("GET", "cross-site", "navigate", "iframe", False, True),
        ("GET", "same-site", "navigate", "iframe", False, True),
        ("GET", "cross-site", "navigate", "frame", False, True),
        # The one exception: the live view page, in an <iframe>/<frame>, GET only.
        ("GET", "cross-site", "navigate", "iframe", True, False),
        ("GET", "same-site", "navigate", "iframe", True, False),
        ("GET", "cross-site", "navigate", "frame", True, False),
        ("POST", "cross-site", "navigate", "iframe", True, True),
        ("GET", "cross-site", "navigate", "object", True, True),
        ("GET", "cross-site", "navigate", "embed", True, True),
        ("GET", "cross-site", "navigate", "fencedframe", True, True),
        ("GET", "cross-site", "no-cors", "iframe", True, True),
        ("GET", "cross-site", "no-cors", "image", True, True),
        # The framed view's own requests are same-origin: a link it follows in its frame.
        ("GET", "same-origin", "navigate", "iframe", False, False),
        ("GET", "same-origin", "cors", "empty", False, False),
    ],
)
def test_frames_only_of_a_frameable_route(
    method: str, site: str, mode: str, dest: str | None, frameable: bool, refused: bool
) -> None:
    got = web_refusal(method=method, host="127.0.0.1:8000", origin=None, sec_fetch_site=site,
                      sec_fetch_mode=mode, sec_fetch_dest=dest, frameable=frameable)
    assert (got is not None) == refused, got
    if got is not None:
        assert got.kind == "origin" and got.status == 403
    # Host and Origin come first: being frameable opens neither.
    frame = {"method": "GET", "sec_fetch_site": "cross-site", "sec_fetch_mode": "navigate",
             "sec_fetch_dest": "iframe", "frameable": True}
    assert web_refusal(host="evil.example:8000", origin=None, **frame).kind == "host"
    assert web_refusal(host="127.0.0.1:8000", origin=EVIL, **frame).kind == "origin"


def test_a_server_told_its_name_accepts_that_name_only() -> None:
    names = listen_names("devbox.lan")
    assert web_refusal(method="GET", host="devbox.lan:8000", origin=None, names=names) is None
    assert web_refusal(method="GET", host="evil.example", origin=None, names=names) is not None
    assert listen_names("0.0.0.0") == listen_names("::1") == listen_names("localhost") == ()
    assert same_origin("http://devbox.lan:8000", "DEVBOX.lan:8000")


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "FILE:///etc/passwd", " file:/etc/passwd", "chrome://settings",
     "chrome-extension://abc/x.html", "view-source:file:///etc/passwd", "javascript:alert(1)",
     "about:config", "blob:http://127.0.0.1/x", "filesystem:http://x/y", "devtools://devtools"],
)
def test_dangerous_first_urls_are_refused(url: str) -> None:
    assert create_url_refusal(url) is not None


@pytest.mark.parametrize(
    "url", ["http://example.com", "HTTPS://example.com/x?y", "about:blank", "ABOUT:BLANK",
            "data:text/html,<p>hi</p>", None],
)
def test_web_first_urls_are_allowed(url: str | None) -> None:
    assert create_url_refusal(url) is None


# ---- a real key-less backend ------------------------------------------------------------


@pytest.fixture(scope="module")
def keyless() -> Iterator[LocalBackend]:
    """``LocalBackend()`` as ``skyvern-cdp serve`` runs it by default: no key."""
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS) as server:
        pid = server.watchdog_pid
        LONG_LIVED_PIDS.add(pid or -1)
        try:
            yield server
        finally:
            LONG_LIVED_PIDS.discard(pid or -1)


def _netloc(base_url: str) -> str:
    return base_url.split("://", 1)[1]


def _live(backend: LocalBackend) -> int:
    http = httpx.get(f"{backend.base_url}/v1/browser_sessions", trust_env=False)
    assert http.status_code == 200
    return len(http.json())


@pytest.fixture
def running(keyless: LocalBackend) -> Iterator[dict[str, Any]]:
    """A running session of ``keyless`` (opened by a program: no Origin), closed after."""
    base = keyless.base_url
    body = httpx.post(f"{base}/v1/browser_sessions", json={"url": "about:blank"},
                      trust_env=False).json()
    sid = body["browser_session_id"]
    deadline = time.monotonic() + 30
    while body["status"] != "running":
        assert time.monotonic() < deadline, body
        body = httpx.get(f"{base}/v1/browser_sessions/{sid}", trust_env=False).json()
    try:
        yield body
    finally:
        httpx.post(f"{base}/v1/browser_sessions/{sid}/close", trust_env=False)


def test_a_rebinding_page_reaches_no_route(keyless: LocalBackend, running: dict[str, Any]) -> None:
    base, sid = keyless.base_url, running["browser_session_id"]
    port = _netloc(base).rsplit(":", 1)[1]
    rebound = {"Host": f"rebind.evil.example:{port}", "Sec-Fetch-Site": "same-origin",
               "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
    posted = {**rebound, "Origin": f"http://rebind.evil.example:{port}"}
    with httpx.Client(base_url=base, trust_env=False) as http:
        before = _live(keyless)
        answers = {
            "list": http.get("/v1/browser_sessions", headers=rebound),
            "get": http.get(f"/v1/browser_sessions/{sid}", headers=rebound),
            "create": http.post("/v1/browser_sessions", headers=posted,
                                json={"url": "file:///etc/passwd"}),
            "create bodiless": http.post("/v1/browser_sessions", headers=posted),
            "live view": http.get(f"/sessions/{sid}", headers=rebound),
            "info": http.get(f"/sessions/{sid}/info", headers=rebound),
            "screenshot": http.get(f"/sessions/{sid}/screenshot", headers=rebound),
            "close": http.post(f"/v1/browser_sessions/{sid}/close", headers=posted),
            "docs": http.get("/openapi.json", headers=rebound),
        }
        assert {k: a.status_code for k, a in answers.items()} == dict.fromkeys(answers, 403)
        assert all("not an IP address or localhost" in a.text for a in answers.values())
        assert _live(keyless) == before
        assert http.get(f"/v1/browser_sessions/{sid}").json()["status"] == "running"
    router = running["browser_address"].replace("ws://", "http://").split("/devtools/")[0]
    router_port = _netloc(router).split("/")[0].rsplit(":", 1)[1]
    version = httpx.get(f"{router}/json/version", trust_env=False,
                        headers={**rebound, "Host": f"rebind.evil.example:{router_port}"})
    assert version.status_code == 403
    assert httpx.get(f"{router}/json/version", trust_env=False).status_code == 200


def test_a_trailing_dot_localhost_reaches_no_route(
    keyless: LocalBackend, running: dict[str, Any]
) -> None:
    """Before: ``Host: localhost.`` passed as ``localhost``, on the API, the live view and
    the router alike (one rule, policy.web)."""
    base, sid = keyless.base_url, running["browser_session_id"]
    port = _netloc(base).rsplit(":", 1)[1]
    router = running["browser_address"].replace("ws://", "http://").split("/devtools/")[0]
    router_port = _netloc(router).split("/")[0].rsplit(":", 1)[1]
    with httpx.Client(base_url=base, trust_env=False) as http:
        before = _live(keyless)
        for host in (f"localhost.:{port}", "localhost.", f"LocalHost.:{port}"):
            answers = {
                "create": http.post("/v1/browser_sessions", headers={"Host": host}, json={}),
                "get": http.get(f"/v1/browser_sessions/{sid}", headers={"Host": host}),
                "live view": http.get(f"/sessions/{sid}", headers={"Host": host}),
                "router": httpx.get(f"{router}/json/version", trust_env=False,
                                    headers={"Host": host.replace(port, router_port)}),
            }
            assert {k: a.status_code for k, a in answers.items()} == dict.fromkeys(answers, 403)
        assert _live(keyless) == before
        for host in (f"LOCALHOST:{port}", f"localhost:{port}"):
            assert http.get(f"/sessions/{sid}", headers={"Host": host}).status_code == 200
        assert httpx.get(f"{router}/json/version", trust_env=False,
                         headers={"Host": f"LocalHost:{router_port}"}).status_code == 200


def test_a_cross_site_request_reaches_no_route(
    keyless: LocalBackend, running: dict[str, Any]
) -> None:
    sid = running["browser_session_id"]
    with httpx.Client(base_url=keyless.base_url, trust_env=False) as http:
        before = _live(keyless)
        for origin in (EVIL, "null", "http://localhost:1"):
            headers = {**CROSS_SITE, "Origin": origin}
            for method, path in [("POST", "/v1/browser_sessions"), ("GET", "/v1/browser_sessions"),
                                 ("POST", f"/v1/browser_sessions/{sid}/close"),
                                 ("POST", f"/v1/browser_sessions/{sid}/extend")]:
                answer = http.request(method, path, headers=headers)  # bodiless, as a form's
                assert answer.status_code == 403, (origin, method, path, answer.text)
                assert "access-control-allow-origin" not in answer.headers
        shot = http.get(f"/sessions/{sid}/screenshot", headers={
            "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"})
        assert shot.status_code == 403
        assert _live(keyless) == before
        # The backend's own live view page, calling back same-origin, still works.
        own = {"Origin": keyless.base_url, "Sec-Fetch-Site": "same-origin",
               "Sec-Fetch-Mode": "cors"}
        assert http.get(f"/sessions/{sid}/info", headers=own).status_code == 200
        page = http.get(f"/sessions/{sid}", headers={"Sec-Fetch-Site": "cross-site",
                                                     "Sec-Fetch-Mode": "navigate"})
        assert page.status_code == 200 and "screenshot" in page.text


def test_only_the_live_view_page_may_be_framed(
    keyless: LocalBackend, running: dict[str, Any]
) -> None:
    """What a cross-site <iframe> of each route gets: the API, the view's data, the files
    and the docs refuse it; the live view page answers, with who may frame it."""
    sid = running["browser_session_id"]
    frame = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
             "Sec-Fetch-Dest": "iframe"}
    with httpx.Client(base_url=keyless.base_url, trust_env=False) as http:
        for path in ("/v1/browser_sessions", f"/v1/browser_sessions/{sid}", f"/sessions/{sid}/info",
                     f"/sessions/{sid}/screenshot", f"/sessions/{sid}/recordings/x.mp4",
                     f"/sessions/{sid}/files/x", "/openapi.json", "/docs", f"/sessions/{sid}/"):
            answer = http.get(path, headers=frame)
            assert answer.status_code == 403, path
            assert "only a session's live view may be framed" in answer.json()["detail"]
        page = http.get(f"/sessions/{sid}", headers=frame)
        assert page.status_code == 200 and "Take control" in page.text
        assert page.headers["content-security-policy"] == (
            "frame-ancestors 'self' http://localhost:* https://localhost:* http://127.0.0.1:*"
            " https://127.0.0.1:*")
        assert http.get(f"/sessions/{sid}", headers={**frame, "Sec-Fetch-Dest": "object"}
                        ).status_code == 403


def test_file_and_browser_urls_never_open(keyless: LocalBackend) -> None:
    """The attack of the issue: create on file:///etc/passwd, then read its screenshot."""
    with httpx.Client(base_url=keyless.base_url, trust_env=False) as http:
        before = _live(keyless)
        for url in ("file:///etc/passwd", "view-source:file:///etc/passwd", "chrome://version",
                    "javascript:alert(1)", "FILE:///etc/passwd"):
            answer = http.post("/v1/browser_sessions", json={"url": url})
            assert answer.status_code == 422, (url, answer.text)
            assert "is not allowed" in answer.text
            assert "browser_session_id" not in answer.json()
        assert _live(keyless) == before


def test_programs_without_origin_keep_working(keyless: LocalBackend) -> None:
    """What Skyvern's SDK and skyvern-lite send: no Origin, an IP or localhost Host."""
    port = _netloc(keyless.base_url).rsplit(":", 1)[1]
    with httpx.Client(base_url=keyless.base_url, trust_env=False) as http:
        made = http.post("/v1/browser_sessions", headers={"Host": f"localhost:{port}"},
                         json={"url": "data:text/html,<title>ok</title>", "timeout": 5})
        assert made.status_code == 200, made.text
        sid = made.json()["browser_session_id"]
        assert http.get(f"/v1/browser_sessions/{sid}").status_code == 200
        assert http.post(f"/v1/browser_sessions/{sid}/close").status_code == 200


# ---- a real Chromium page on another origin -----------------------------------------------


@pytest.fixture
def other_origin() -> Iterator[str]:
    """``http://127.0.0.1:PORT/``: a page of another origin, served by a thread."""
    with serve_html(b"<!doctype html><title>attacker</title>", host="127.0.0.1") as url:
        yield url


_ATTACK = """async ([base]) => {
  const out = {};
  const tryit = async (name, init, path) => {
    try {
      const r = await fetch(base + (path || "/v1/browser_sessions"), init);
      out[name] = r.type === "opaque" ? "opaque" : r.status + " " + (await r.text());
    } catch (e) { out[name] = "blocked: " + e.message; }
  };
  await tryit("cors list", {});
  await tryit("no-cors create", {method: "POST", mode: "no-cors"});
  await tryit("no-cors create file", {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: '{"url": "file:///etc/passwd"}'});
  return out;
}"""


async def test_a_real_page_on_another_origin_cannot_use_the_backend(
    keyless: LocalBackend, other_origin: str
) -> None:
    from playwright.async_api import async_playwright

    port = _netloc(keyless.base_url).rsplit(":", 1)[1]
    before = _live(keyless)
    rules = ("--host-resolver-rules=MAP rebind.test 127.0.0.1, MAP * ~NOTFOUND,"
             " EXCLUDE localhost, EXCLUDE 127.0.0.1")
    args = [rules, *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        try:
            page = await browser.new_page()
            await page.goto(other_origin)
            cross = await page.evaluate(_ATTACK, [keyless.base_url])
            # DNS rebinding: a page of rebind.test, whose name now resolves to 127.0.0.1.
            await page.goto(f"http://rebind.test:{port}/")
            rebound = await page.evaluate(_ATTACK, [""])
        finally:
            await browser.close()
    assert _live(keyless) == before, (cross, rebound)
    assert cross["cors list"].startswith("blocked"), cross  # no CORS header, and a 403
    assert all(not v.startswith("200") for v in rebound.values()), rebound
    assert rebound["cors list"].startswith("403"), rebound


# ---- the real `skyvern-cdp serve` ---------------------------------------------------------


def test_serve_caps_sessions_by_default_and_guards_every_route() -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("SKYVERN_API_KEY", None)
    argv = [sys.executable, "-m", "skyvern_cdp.cli", "serve", "--port", "0",
            "--ready-delay", "3600", f"--chromium-arg={CLOSED_NETWORK_ARGS[0]}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        with httpx.Client(base_url=base, trust_env=False) as http:
            foreign = http.post("/v1/browser_sessions",
                                headers={**CROSS_SITE, "Origin": EVIL})
            assert foreign.status_code == 403
            made = [http.post("/v1/browser_sessions").status_code
                    for _ in range(DEFAULT_MAX_SESSIONS + 1)]
            assert made == [200] * DEFAULT_MAX_SESSIONS + [429], made
            assert DEFAULT_MAX_SESSIONS <= 16
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        proc.communicate(timeout=5)


def test_local_backend_caps_sessions_by_default() -> None:
    """``LocalBackend()`` carries the same cap as ``serve`` (no Chromium needed to see it)."""
    with LocalBackend(ready_delay=3600.0) as server, httpx.Client(
        base_url=server.base_url, trust_env=False
    ) as http:
        codes = [http.post("/v1/browser_sessions").status_code
                 for _ in range(DEFAULT_MAX_SESSIONS + 1)]
    assert codes[-1] == 429 and codes[:-1] == [200] * DEFAULT_MAX_SESSIONS
