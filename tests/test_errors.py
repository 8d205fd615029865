"""Right errors for the right reasons, and no secret in a traceback, across every entry point:
``async_api``/``sync_api`` ``connect``/``launch``, ``notebook.attach``/``launch``, the CLI,
the pytest plugin and the relay (issue 15, sections 3 and 4).

Each entry point is driven for real: the local backend with real Chromium for what must
work, a scripted API (tests/scripted_api.py) and misbehaving CDP endpoints on loopback for
what must fail, and how fast.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest
from faults import ThreadedHTTPServer, closing_endpoint

from skyvern_cdp import (
    AsyncSkyvernClient,
    CDPConnectError,
    CDPConnectTimeoutError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    SessionClosedError,
    SessionNotReadyError,
    SkyvernClient,
    async_api,
    notebook,
    sync_api,
)
from skyvern_cdp.cli import main as cli_main
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

from scripted_api import Reply, ScriptedAPI, session

KEY = "sk-ERRORS-recognisable-key-4417"
TOKEN = "TOKEN-path-and-query-8812"
# A session id and a path made of what a text search would take for a verdict.
SID = "pbs_closed_4410_401_forbidden"
PATH = f"/v1/browser_sessions/{SID}"


# -- every entry point that attaches, as one callable ------------------------------------------


async def _async_connect(sid: str, **kw: Any) -> str:
    browser = await async_api.connect(sid, **kw)
    try:
        return async_api.session_of(browser).browser_session_id
    finally:
        await browser.close()


async def _async_launch(**kw: Any) -> str:
    browser = await async_api.launch(**kw)
    try:
        return async_api.session_of(browser).browser_session_id
    finally:
        await browser.close()


def _sync_connect(sid: str, **kw: Any) -> str:
    browser = sync_api.connect(sid, **kw)
    try:
        return sync_api.session_of(browser).browser_session_id
    finally:
        browser.close()


def _sync_launch(**kw: Any) -> str:
    browser = sync_api.launch(**kw)
    try:
        return sync_api.session_of(browser).browser_session_id
    finally:
        browser.close()


async def _notebook(attach: Callable[[], Any]) -> str:
    try:
        browser = await attach()
        return async_api.session_of(browser).browser_session_id
    finally:
        await notebook.close()


def _launch_kw(kw: dict[str, Any]) -> dict[str, Any]:
    """``connect``'s Playwright options as ``launch`` takes them."""
    options = {k: kw.pop(k) for k in list(kw) if k in ("slowmo", "slow_mo", "headers")}
    return {**kw, "playwright_options": options} if options else kw


#: name -> run(session id, **connect arguments); launch entries ignore the id (the server
#: names the session).
ATTACH: dict[str, Callable[..., str]] = {
    "async_api.connect": lambda sid, **kw: asyncio.run(_async_connect(sid, **kw)),
    "async_api.launch": lambda sid, **kw: asyncio.run(_async_launch(**_launch_kw(kw))),
    "sync_api.connect": _sync_connect,
    "sync_api.launch": lambda sid, **kw: _sync_launch(**_launch_kw(kw)),
    "notebook.attach": lambda sid, **kw: asyncio.run(_notebook(lambda: notebook.attach(sid, **kw))),
    "notebook.launch": lambda sid, **kw: asyncio.run(
        _notebook(lambda: notebook.launch(**_launch_kw(kw)))
    ),
}


# -- CDP endpoints that refuse --------------------------------------------------------------


class Refusing(ThreadedHTTPServer):
    """An HTTP server that answers every request (a websocket handshake too) with ``status``
    and counts them."""

    def __init__(self, status: int) -> None:
        self.count = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read what the server was sent, not its log."""

            def do_GET(self) -> None:
                owner.count += 1
                self.close_connection = True
                body = b"Unauthorized: x-api-key is missing or wrong"
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)


def hostile_address(port: int) -> str:
    return (
        f"ws://127.0.0.1:{port}/{SID}/devtools/browser/closed-4410-{TOKEN}?token={TOKEN}"
        "&close=4410&status=401"
    )


def serve_session(api: ScriptedAPI, address: str | None, **fields: Any) -> None:
    """The scripted API's session ``SID``: created by a POST, ready at ``address``."""
    body = session(SID, ready=True, browser_address=address, **fields)
    api.script("GET", PATH, Reply(200, body))
    api.script("POST", "/v1/browser_sessions", Reply(200, session(SID)))
    api.script("POST", f"{PATH}/close", Reply(200, {"message": "Browser session closed"}))


@pytest.fixture
def scripted() -> Iterator[ScriptedAPI]:
    with ScriptedAPI() as api:
        yield api


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SKYVERN_BASE_URL", "SKYVERN_API_KEY"):
        monkeypatch.delenv(name, raising=False)


# -- loopback is one host -------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_backend() -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, chromium_args=CLOSED_NETWORK_ARGS) as local:
        yield local


def localhost_url(backend: LocalBackend) -> str:
    """The backend's base URL as the ``local`` preset spells it: ``http://localhost:PORT``."""
    url = backend.base_url
    assert url.startswith("http://127.0.0.1:")
    return url.replace("127.0.0.1", "localhost")


@pytest.fixture
def keyed_session(keyed_backend: LocalBackend) -> Iterator[str]:
    with SkyvernClient(KEY, keyed_backend.base_url) as api:
        sid = api.create_browser_session().browser_session_id
        try:
            ready = api.wait_for_browser_session(sid, timeout=60)
            assert (ready.browser_address or "").startswith("ws://127.0.0.1:")
            yield sid
        finally:
            api.close_browser_session(sid)


@pytest.mark.parametrize("entry", list(ATTACH))
def test_loopback_is_one_host_for_every_attach(
    entry: str, keyed_backend: LocalBackend, keyed_session: str, no_env: None
) -> None:
    """``SKYVERN_BASE_URL=http://localhost:PORT`` and serve's ``ws://127.0.0.1`` addresses:
    before, the key was withheld and every attach failed with 401."""
    base_url = localhost_url(keyed_backend)
    got = ATTACH[entry](keyed_session, base_url=base_url, api_key=KEY, timeout=60)
    assert got.startswith("pbs_")
    if entry.endswith("launch"):  # launch made (and closed) a session of its own
        assert got != keyed_session


def test_loopback_is_one_host_for_the_cli(
    keyed_backend: LocalBackend,
    keyed_session: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SKYVERN_BASE_URL", localhost_url(keyed_backend))
    monkeypatch.setenv("SKYVERN_API_KEY", KEY)
    shot = tmp_path / "shot.png"
    assert cli_main(["screenshot", keyed_session, str(shot), "--timeout", "60"]) == 0, (
        capsys.readouterr().err
    )
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_loopback_is_one_host_for_the_plugin(
    keyed_backend: LocalBackend, keyed_session: str, pytester: pytest.Pytester, no_env: None
) -> None:
    pytester.makepyfile(
        """
        def test_attached(skyvern_browser):
            assert skyvern_browser.is_connected() and skyvern_browser.contexts
        """
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--skyvern-session",
        keyed_session,
        "--skyvern-base-url",
        localhost_url(keyed_backend),
        "--skyvern-api-key",
        KEY,
        timeout=120,
    )
    result.assert_outcomes(passed=1)


async def test_loopback_is_one_host_for_the_relay(
    keyed_backend: LocalBackend, keyed_session: str
) -> None:
    from playwright.async_api import async_playwright

    from skyvern_cdp.relay import relay

    async with (
        relay(keyed_session, port=0, api_key=KEY, base_url=localhost_url(keyed_backend)) as ep,
        async_playwright() as pw,
    ):
        browser = await pw.chromium.connect_over_cdp(ep.url, timeout=30_000)
        try:
            assert browser.contexts
        finally:
            await browser.close()


# -- a permanent refusal is final, whatever the words of the address -----------------------


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("entry", list(ATTACH))
def test_a_refused_key_is_final_in_every_attach(
    entry: str, status: int, scripted: ScriptedAPI, no_env: None
) -> None:
    """Before: retried until the deadline (the session id and path aside)."""
    with Refusing(status) as endpoint:
        serve_session(scripted, hostile_address(endpoint.port))
        started = time.monotonic()
        with pytest.raises(CDPConnectError, match="refused the connection") as info:
            ATTACH[entry](SID, base_url=scripted.base_url, api_key=KEY, timeout=20)
        took = time.monotonic() - started
    assert type(info.value) is CDPConnectError  # neither closed nor timed out
    assert endpoint.count == 1, "a refusal is not tried again"
    assert took < 10, f"a refusal should fail at once, took {took:.1f}s"
    assert TOKEN not in str(info.value) and KEY not in str(info.value)


@pytest.mark.parametrize("entry", list(ATTACH))
def test_a_retryable_refusal_is_retried_whatever_the_address_says(
    entry: str, scripted: ScriptedAPI, no_env: None
) -> None:
    """A 503 at an address full of "closed", "401" and "4410" is waited out to the deadline,
    not taken for a closed session or a refused key."""
    with Refusing(503) as endpoint:
        serve_session(scripted, hostile_address(endpoint.port))
        # 8 s: a cold driver start on a loaded machine comes out of the same deadline
        with pytest.raises(CDPConnectTimeoutError, match=r"\d+ attempt\(s\)"):
            ATTACH[entry](SID, base_url=scripted.base_url, api_key=KEY, timeout=8)
    assert endpoint.count >= 1, "it was dialled (and, being a 503, not taken as final)"


@pytest.mark.parametrize("entry", ["async_api.connect", "sync_api.connect"])
def test_a_closed_endpoint_is_known_by_its_close_code(
    entry: str, scripted: ScriptedAPI, no_env: None
) -> None:
    with closing_endpoint(4410, "bye") as port:  # the reason says nothing
        serve_session(scripted, f"ws://127.0.0.1:{port}/{SID}/devtools/browser/x")
        with pytest.raises(SessionClosedError):
            ATTACH[entry](SID, base_url=scripted.base_url, api_key=KEY, timeout=20)
    accepted: list[float] = []
    with closing_endpoint(1011, "session closed 4410", accepted) as port:  # words mean nothing
        serve_session(scripted, f"ws://127.0.0.1:{port}/{SID}/devtools/browser/x")
        with pytest.raises(CDPConnectTimeoutError):
            ATTACH[entry](SID, base_url=scripted.base_url, api_key=KEY, timeout=8)
    assert accepted, "it was dialled"


def test_the_cli_and_the_relay_stop_at_a_refused_key(
    scripted: ScriptedAPI,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from skyvern_cdp.errors import AuthenticationError
    from skyvern_cdp.relay import relay

    monkeypatch.setenv("SKYVERN_BASE_URL", scripted.base_url)
    monkeypatch.setenv("SKYVERN_API_KEY", KEY)
    with Refusing(401) as endpoint:
        serve_session(scripted, hostile_address(endpoint.port))
        started = time.monotonic()
        code = cli_main(["screenshot", SID, str(tmp_path / "s.png"), "--timeout", "20"])
        assert code != 0 and time.monotonic() - started < 10
        assert endpoint.count == 1
        err = capsys.readouterr().err
        assert "refused" in err and TOKEN not in err and KEY not in err

        async def through_relay() -> None:
            async with relay(SID, port=0, api_key=KEY, base_url=scripted.base_url, timeout=20):
                raise AssertionError("the relay should not start")

        with pytest.raises(AuthenticationError):
            asyncio.run(through_relay())


async def test_async_for_raises_a_refused_key_instead_of_reattaching(
    scripted: ScriptedAPI, no_env: None
) -> None:
    """Before: the loop reattached silently, forever."""
    with Refusing(401) as endpoint:
        serve_session(scripted, hostile_address(endpoint.port))
        rounds = 0

        async def loop() -> None:
            nonlocal rounds
            async for _ in async_api.connect(
                SID, base_url=scripted.base_url, api_key=KEY, timeout=5
            ):
                rounds += 1

        with pytest.raises(CDPConnectError, match="refused"):
            await asyncio.wait_for(loop(), 15)
    assert rounds == 0 and endpoint.count == 1


async def test_async_for_raises_when_the_server_never_gives_an_address(
    scripted: ScriptedAPI, no_env: None
) -> None:
    """A running session that never gets a ``browser_address``: before, waited forever."""
    serve_session(scripted, None)
    started = time.monotonic()

    async def loop() -> None:
        async for _ in async_api.connect(SID, base_url=scripted.base_url, api_key=KEY, timeout=1):
            raise AssertionError("there is nothing to attach to")

    with pytest.raises(SessionNotReadyError) as info:
        await asyncio.wait_for(loop(), 15)
    assert info.value.missing == ("browser_address",)
    assert time.monotonic() - started < 10  # one deadline (1 s) and a driver start, not forever


# -- bad input fails before any request -----------------------------------------------------


@pytest.mark.parametrize("entry", list(ATTACH))
def test_a_misspelled_playwright_option_fails_before_any_request(
    entry: str, scripted: ScriptedAPI, no_env: None
) -> None:
    """``slowmo=`` (for ``slow_mo=``): before, it failed after the whole wait, and ``launch``
    had created (and billed) a session first."""
    serve_session(scripted, "ws://127.0.0.1:9/devtools/browser/x")
    with pytest.raises(InvalidArgumentTypeError, match=r"slowmo=.*did you mean slow_mo="):
        ATTACH[entry](SID, base_url=scripted.base_url, api_key=KEY, timeout=5, slowmo=100)
    assert scripted.requests == []


@pytest.mark.parametrize("entry", list(ATTACH))
def test_headers_that_are_not_str_fail_before_any_request(
    entry: str, scripted: ScriptedAPI, no_env: None
) -> None:
    serve_session(scripted, "ws://127.0.0.1:9/devtools/browser/x")
    with pytest.raises(InvalidArgumentTypeError, match="headers"):
        ATTACH[entry](SID, base_url=scripted.base_url, api_key=KEY, headers={"x-n": 1})
    assert scripted.requests == []


def test_the_options_are_playwrights_own() -> None:
    import inspect

    from playwright.async_api import BrowserType

    from skyvern_cdp._attachment import playwright_option_names

    own = {
        p.name
        for p in inspect.signature(BrowserType.connect_over_cdp).parameters.values()
        if p.kind is p.KEYWORD_ONLY
    }
    assert playwright_option_names() == own - {"timeout"}
    assert {"slow_mo", "headers"} <= playwright_option_names()


@pytest.mark.parametrize("entry", ["async_api.connect", "sync_api.connect", "sync_api.launch"])
def test_an_argument_playwright_refuses_is_final(
    entry: str, keyed_backend: LocalBackend, keyed_session: str, no_env: None
) -> None:
    """``slow_mo="fast"`` passes the name check; Playwright refuses the value. Before, that
    was retried until the deadline."""
    started = time.monotonic()
    with pytest.raises(InvalidArgumentError, match="slow_mo"):
        ATTACH[entry](
            keyed_session,
            base_url=keyed_backend.base_url,
            api_key=KEY,
            timeout=30,
            slow_mo="fast",
        )
    assert time.monotonic() - started < 15


@pytest.mark.matrix
def test_no_empty_headers_go_to_playwright() -> None:
    """Playwright 1.45-1.64 refuse ``headers={}``: an attach that sends no key sends none."""
    from skyvern_cdp._attachment import AttachOptions, connect_kwargs
    from skyvern_cdp.config import resolve_settings
    from skyvern_cdp.policy import cdp_target

    options = AttachOptions.check(
        timeout=5, connect_attempt_timeout=5, close_timeout=5, playwright_options={}
    )
    keyless = cdp_target("ws://127.0.0.1:9/x", resolve_settings(base_url="http://127.0.0.1:1"))
    assert "headers" not in connect_kwargs(keyless, options, 5.0)
    keyed = cdp_target(
        "ws://127.0.0.1:9/x", resolve_settings(api_key=KEY, base_url="http://127.0.0.1:1")
    )
    assert connect_kwargs(keyed, options, 5.0)["headers"] == {"x-api-key": KEY}


@pytest.mark.matrix
def test_a_keyless_attach_works_end_to_end() -> None:
    """No key at all (a key-less backend): the attach that used to pass ``headers={}``."""
    with (
        LocalBackend(chromium_args=CLOSED_NETWORK_ARGS) as local,
        SkyvernClient(base_url=local.base_url) as api,
    ):
        sid = api.create_browser_session().browser_session_id
        try:
            assert _sync_connect(sid, base_url=local.base_url, timeout=60) == sid
        finally:
            api.close_browser_session(sid)


# -- http_client= is honoured ---------------------------------------------------------------


def test_a_callers_http_client_keeps_the_base_url_key_and_deadline(
    scripted: ScriptedAPI, no_env: None
) -> None:
    """Before: the base URL and the key were dropped (a relative URL, no x-api-key)."""
    scripted.script("GET", PATH, Reply(200, session(SID)))
    with httpx.Client(headers={"x-trace": "mine"}) as http:
        client = SkyvernClient(KEY, scripted.base_url, http_client=http)
        assert client.get_browser_session(SID).browser_session_id == SID
        client.close()
        assert not http.is_closed  # the caller's client is the caller's to close
    seen = scripted.requests[-1]
    assert seen.headers["x-api-key"] == KEY and seen.headers["x-trace"] == "mine"

    scripted.script("GET", PATH, Reply(200, session(SID), delay=5.0))
    with httpx.Client() as http:
        client = SkyvernClient(KEY, scripted.base_url, http_client=http)
        started = time.monotonic()
        with pytest.raises(Exception):  # noqa: B017, PT011 - any timeout error, but in time
            client.get_browser_session(SID, timeout=1.0)
        assert time.monotonic() - started < 2.5


async def test_a_callers_async_http_client_keeps_the_base_url_and_key(
    scripted: ScriptedAPI, no_env: None
) -> None:
    scripted.script("GET", PATH, Reply(200, session(SID)))
    async with httpx.AsyncClient() as http:
        client = AsyncSkyvernClient(KEY, scripted.base_url, http_client=http)
        assert (await client.get_browser_session(SID)).browser_session_id == SID
    assert scripted.requests[-1].headers["x-api-key"] == KEY


@pytest.mark.parametrize(
    ("kind", "wrong"),
    [(SkyvernClient, httpx.AsyncClient), (AsyncSkyvernClient, httpx.Client)],
)
def test_a_wrong_http_client_is_a_typed_error(kind: Any, wrong: Any) -> None:
    http = wrong()
    with pytest.raises(InvalidArgumentTypeError, match="http_client must be"):
        kind(KEY, "http://127.0.0.1:9", http_client=http)
    if isinstance(http, httpx.Client):
        http.close()


# -- no secret in a traceback ---------------------------------------------------------------


def _shown_locals(exc: BaseException) -> list[str]:
    """What ``pytest --showlocals`` / Sentry print: every local of every frame outside this
    file (the library's, Playwright's, asyncio's), chained exceptions included."""
    shown: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        for frame, _ in traceback.walk_tb(current.__traceback__):
            if frame.f_code.co_filename == __file__:
                continue  # this test's own frames hold the key it passed
            shown += [f"{frame.f_code.co_name}: {n}={v!r}" for n, v in frame.f_locals.items()]
        pending.append(current.__cause__)
        if not current.__suppress_context__:
            pending.append(current.__context__)
        assert "connect_over_cdp" not in repr(current.__context__), "Playwright's error is chained"
    return shown


@pytest.mark.parametrize("status", [401, 404])  # final at once, and retried to the deadline
@pytest.mark.parametrize(
    "entry", ["async_api.connect", "async_api.launch", "sync_api.connect", "sync_api.launch"]
)
def test_no_token_of_the_address_in_traceback_locals(
    entry: str, status: int, scripted: ScriptedAPI, no_env: None
) -> None:
    """Before: the CDP address (tokens in its path and query) was a plain str in the frames."""
    with Refusing(status) as endpoint:
        serve_session(scripted, hostile_address(endpoint.port))
        with pytest.raises(CDPConnectError) as info:
            ATTACH[entry](SID, base_url=scripted.base_url, api_key=KEY, timeout=6)
    assert endpoint.count >= 1, "it was dialled: Playwright's error was there to leak"
    shown = _shown_locals(info.value)
    assert len(shown) > 10
    leaks = [text for text in shown if TOKEN in text or KEY in text]
    assert not leaks, leaks[:3]
    assert TOKEN not in str(info.value)


FILE_TOKEN = "FILETOKEN-recording-query-5151"


def _files(port: int) -> dict[str, Any]:
    """A session's recordings and downloads, each URL signed by a ``?token=`` query."""
    url = f"http://127.0.0.1:{port}/r.mp4?token={FILE_TOKEN}&X-Amz-Signature={FILE_TOKEN}"
    entry = {"url": url, "checksum": None, "filename": "r.mp4", "file_size": 3}
    return {"recordings": [entry], "downloaded_files": [{**entry, "filename": "d.pdf"}]}


@pytest.mark.parametrize("entry", ["async_api.connect", "sync_api.connect"])
def test_no_file_url_token_in_traceback_locals(
    entry: str, scripted: ScriptedAPI, no_env: None
) -> None:
    """Before: FileInfo.url was a plain str, so every frame holding the session (and its
    repr) showed the recording's and the download's ``?token=`` to ``pytest --showlocals``."""
    with Refusing(401) as endpoint:
        serve_session(scripted, hostile_address(endpoint.port), **_files(endpoint.port))
        with pytest.raises(CDPConnectError) as info:
            ATTACH[entry](SID, base_url=scripted.base_url, api_key=KEY, timeout=6)
    shown = _shown_locals(info.value)
    held = [text for text in shown if "r.mp4?<redacted>" in text]
    assert held, "a frame held the session with its files: the token was there to leak"
    leaks = [text for text in shown if FILE_TOKEN in text]
    assert not leaks, leaks[:3]


def test_file_urls_work_as_str_and_never_show_in_a_repr(scripted: ScriptedAPI) -> None:
    serve_session(scripted, "ws://127.0.0.1:9/devtools/browser/x", **_files(9))
    with SkyvernClient(KEY, scripted.base_url) as api:
        got = api.get_browser_session(SID)
    assert got.recordings and got.downloaded_files
    for info in (got.recordings[0], got.downloaded_files[0]):
        assert str(info.url).endswith(f"X-Amz-Signature={FILE_TOKEN}")  # usable as it is
        assert httpx.URL(info.url).params["token"] == FILE_TOKEN
        assert info.model_dump()["url"] == info.url and FILE_TOKEN in info.model_dump_json()
        for text in (repr(info), repr(info.url), repr(got), repr([info]), f"{info!r}"):
            assert FILE_TOKEN not in text, text
        assert "r.mp4?<redacted>" in repr(info)


# -- a key that is not ASCII ----------------------------------------------------------------

BAD_KEY = "sk-ERRORS-\u201cquoted\u201d-key\u00a0"


def _relay_with(**kw: Any) -> None:
    from skyvern_cdp.relay import relay

    async def run() -> None:
        async with relay(SID, port=0, **kw):
            raise AssertionError("the relay started with a key it cannot send")

    asyncio.run(run())


NON_ASCII_ENTRIES: dict[str, Callable[..., object]] = {
    **ATTACH,
    "SkyvernClient": lambda sid, **kw: SkyvernClient(kw["api_key"], kw["base_url"]),
    "AsyncSkyvernClient": lambda sid, **kw: AsyncSkyvernClient(kw["api_key"], kw["base_url"]),
    "relay": lambda sid, **kw: _relay_with(**kw),
}


@pytest.mark.parametrize("entry", list(NON_ASCII_ENTRIES))
def test_a_non_ascii_key_is_a_typed_error_before_any_request(
    entry: str, scripted: ScriptedAPI, no_env: None
) -> None:
    """Before: ``UnicodeEncodeError: 'ascii' codec can't encode ...`` with the key in it."""
    serve_session(scripted, "ws://127.0.0.1:9/devtools/browser/x")
    with pytest.raises(InvalidArgumentError, match="api_key must be ASCII") as info:
        NON_ASCII_ENTRIES[entry](SID, base_url=scripted.base_url, api_key=BAD_KEY)
    assert "quoted" not in str(info.value) and "quoted" not in repr(info.value.args)
    assert scripted.requests == []


def test_a_non_ascii_key_in_the_cli_is_one_line_without_it(
    scripted: ScriptedAPI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_session(scripted, "ws://127.0.0.1:9/devtools/browser/x")
    monkeypatch.setenv("SKYVERN_BASE_URL", scripted.base_url)
    monkeypatch.setenv("SKYVERN_API_KEY", BAD_KEY)
    for command in (["info", SID], ["wait", SID], ["list"], ["launch"]):
        assert cli_main(command) == 2, command
        err = capsys.readouterr().err
        assert "api_key must be ASCII" in err and "quoted" not in err
        assert len(err.strip().splitlines()) == 1, err
    assert scripted.requests == []


def test_a_non_ascii_key_in_the_plugin_is_a_usage_error(
    scripted: ScriptedAPI,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    no_env: None,
) -> None:
    pytester.makepyfile("def test_x(skyvern_session):\n    pass\n")
    monkeypatch.setenv("SKYVERN_API_KEY", BAD_KEY)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--skyvern-session",
        SID,
        "--skyvern-base-url",
        scripted.base_url,
        timeout=60,
    )
    assert result.ret != 0
    text = result.stdout.str() + result.stderr.str()
    assert "api_key must be ASCII" in text and "quoted" not in text
    assert "UnicodeEncodeError" not in text
    assert scripted.requests == []


# -- the plugin's report redacts presigned URLs ----------------------------------------------


def test_the_failure_report_redacts_signed_file_urls(
    scripted: ScriptedAPI, pytester: pytest.Pytester, no_env: None
) -> None:
    """Before: the report printed download and recording URLs with their signatures."""
    signature = "X-Amz-Signature=SIG-never-shown-3390"
    files = {
        "recordings": [{"url": f"https://files.example/rec.webm?{signature}", "filename": "r"}],
        "downloaded_files": [
            {"url": f"https://files.example/a.pdf?X-Amz-Expires=60&{signature}", "filename": "a"}
        ],
    }
    address = "ws://127.0.0.1:9/devtools/browser/x"
    scripted.script(
        "GET",
        PATH,
        Reply(200, session(SID, ready=True, browser_address=address)),
        Reply(200, session(SID, ready=True, browser_address=address, **files)),
    )
    pytester.makepyfile("def test_fails(skyvern_session):\n    assert False\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--skyvern-session",
        SID,
        "--skyvern-base-url",
        scripted.base_url,
        timeout=60,
    )
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "https://files.example/rec.webm?<redacted>" in text
    assert "https://files.example/a.pdf?<redacted>" in text
    assert "SIG-never-shown" not in text
