"""The pytest plugin, run the way users run it: inner pytest sessions (pytester) against the
local backend, with real Chromium and real Playwright; sessions are checked on the backend.

Runs that start browsers go through a subprocess (one sync Playwright driver per process);
runs that only parse options or talk HTTP run in-process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from skyvern_cdp import InsecureTransportError, InvalidArgumentError, SkyvernClient
from skyvern_cdp.pytest_plugin import PluginUsageError, resolve_options

from conftest import LOCAL_API_KEY, wait_for
from scripted_api import Reply, ScriptedAPI, session

if TYPE_CHECKING:
    from skyvern_cdp.local import LocalBackend

pytestmark = pytest.mark.browser

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pytest_suite"
SECRET = "sk-recognisable-secret-0123456789"  # must never show in any output

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

# Appends what a test saw to ids.jsonl, so the outer test can check sessions per worker.
RECORD_CONFTEST = '''
import json, os
import pytest

@pytest.fixture
def record(request, pytestconfig):
    def write(session_id, **extra):
        line = {"test": request.node.nodeid, "session": session_id, "pid": os.getpid(),
                "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), **extra}
        with open(pytestconfig.rootpath / "ids.jsonl", "a") as out:
            out.write(json.dumps(line) + "\\n")
    return write
'''


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester directory with the example app's conftest, the recorder and a clean env."""
    for name in list(os.environ):
        if name.startswith(("SKYVERN_", "PYTEST_XDIST")):
            monkeypatch.delenv(name)
    pytester.makeini(INI)
    app_conftest = (EXAMPLE / "conftest.py").read_text()
    pytester.makeconftest(app_conftest + "\n" + RECORD_CONFTEST)
    return pytester


@pytest.fixture
def client(backend: LocalBackend) -> Iterator[SkyvernClient]:
    with SkyvernClient(backend.api_key, backend.base_url) as made:
        yield made


def live_ids(client: SkyvernClient) -> set[str]:
    return {s.browser_session_id for s in client.list_browser_sessions(timeout=10)}


@contextlib.contextmanager
def closing_new_sessions(client: SkyvernClient) -> Iterator[set[str]]:
    """Yield the live sessions from before; afterwards close any new one (if a test failed)."""
    before = live_ids(client)
    try:
        yield before
    finally:
        for sid in live_ids(client) - before:
            client.close_browser_session(sid)


def recorded(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    path = pytester.path / "ids.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)


# -- one process: sync, async and an unchanged pytest-playwright suite ----------------------

SYNC_TESTS = '''
from skyvern_cdp.sync_api import session_of

def test_fixtures_share_one_session(skyvern_session, skyvern_browser, skyvern_context,
                                    skyvern_page, record):
    record(skyvern_session.browser_session_id)
    assert skyvern_session.status == "running"
    assert session_of(skyvern_browser).browser_session_id == skyvern_session.browser_session_id
    assert skyvern_context is not skyvern_browser.contexts[0]  # a new context per test
    assert skyvern_page.context is skyvern_context
    skyvern_page.goto("data:text/html,<title>sync</title>")
    assert skyvern_page.title() == "sync"

def test_storage_set_here(skyvern_page, app_url):
    skyvern_page.goto(app_url)
    skyvern_page.evaluate("localStorage.setItem('left', 'behind')")

def test_is_not_seen_by_the_next_test(skyvern_page, app_url):
    skyvern_page.goto(app_url)
    assert skyvern_page.evaluate("localStorage.getItem('left')") is None

def test_playwright_browser_is_the_session(browser, skyvern_session):
    assert session_of(browser).browser_session_id == skyvern_session.browser_session_id
'''

ASYNC_TESTS = '''
import asyncio
from skyvern_cdp.async_api import session_of

async def test_async_fixtures(skyvern_async_browser, skyvern_async_context,
                              skyvern_async_page, skyvern_session, record):
    record(skyvern_session.browser_session_id)
    assert session_of(skyvern_async_browser).browser_session_id == (
        skyvern_session.browser_session_id)
    assert skyvern_async_page.context is skyvern_async_context
    await skyvern_async_page.goto("data:text/html,<title>async</title>")
    assert await skyvern_async_page.title() == "async"
'''

FAILING_TEST = '''
from playwright.sync_api import Page

def test_fails_with_the_session_in_its_report(page: Page, app_url: str) -> None:
    page.goto(app_url)
    assert page.title() == "a title this page does not have"
'''


@pytest.mark.matrix
def test_sync_async_and_unchanged_playwright_suites_run_on_one_launched_session(
    suite: pytest.Pytester, backend: LocalBackend, client: SkyvernClient
) -> None:
    suite.makepyfile(
        test_a_sync=SYNC_TESTS,
        test_b_async=ASYNC_TESTS,  # after the sync tests: their driver is still running
        test_c_todo=(EXAMPLE / "test_todo.py").read_text(),  # pytest-playwright, unchanged
        test_d_failing=FAILING_TEST,
    )
    assert LOCAL_API_KEY is not None
    with closing_new_sessions(client):
        result = run(
            suite,
            "--skyvern-launch",
            "--skyvern-base-url", backend.base_url,
            "--skyvern-api-key", LOCAL_API_KEY,
        )
        live_after = live_ids(client)
    result.assert_outcomes(passed=7, failed=1)
    sessions = {line["session"] for line in recorded(suite)}
    assert len(sessions) == 1, sessions  # sync and async fixtures: one session per process
    (sid,) = sessions
    result.stdout.fnmatch_lines(
        [
            "*skyvern_cdp: launch a session per worker on http://127.0.0.1:* (api key: set;*",
            "*- skyvern session -*",
            f"session: {sid}",
            "status: running",
            f"app_url: http://127.0.0.1:*/sessions/{sid}?<redacted> (with its token:"
            f" skyvern-cdp info {sid} --show-secrets)",
            "recordings:",
            f"  - {sid}.mp4 (still recording): http://127.0.0.1:*/sessions/{sid}/recordings/"
            f"{sid}.mp4?<redacted>",
            "    this test: *:* to *:* into the video (0:00 is the session's started_at, * UTC)",
            f"    complete once the session ends: skyvern-cdp files {sid} --save DIR",
            "downloaded_files: (none)",
        ]
    )
    output = result.stdout.str() + result.stderr.str()
    assert LOCAL_API_KEY not in output
    # A failure without --skyvern-keep-on-failure still closes the launched session.
    assert sid not in live_after
    assert client.get_browser_session(sid).is_final


COLOR_TESTS = '''
import time

def show(page, color):
    page.goto(f"data:text/html,<body style='margin:0;background:{color}'>{color}</body>")
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    time.sleep(0.5)  # the test takes its time: the page is on screen this long

def test_a_green_passes(skyvern_page):
    show(skyvern_page, "green")

def test_b_blue_fails(skyvern_page):
    show(skyvern_page, "blue")
    assert False, "blue failed"
'''


def _seconds(offset: str) -> float:
    minutes, _, seconds = offset.partition(":")
    return int(minutes) * 60 + float(seconds)


def test_a_failed_test_is_found_in_the_session_video_where_its_report_says(
    suite: pytest.Pytester, backend: LocalBackend, client: SkyvernClient
) -> None:
    import io
    import re

    import av
    import httpx

    suite.makepyfile(test_colors=COLOR_TESTS)
    assert LOCAL_API_KEY is not None
    with closing_new_sessions(client):
        result = run(suite, "--skyvern-launch", "--skyvern-base-url", backend.base_url,
                     "--skyvern-api-key", LOCAL_API_KEY)
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    found = re.search(r"this test: (\d+:\d\d\.\d) to (\d+:\d\d\.\d) into the video", output)
    assert found, output
    start, end = _seconds(found.group(1)), _seconds(found.group(2))
    sid = re.search(r"session: (pbs_\w+)", output)
    assert sid
    (video,) = client.get_browser_session(sid.group(1)).recordings or []
    data = httpx.get(video.url, headers={"x-api-key": LOCAL_API_KEY}, trust_env=False).content
    frames = []
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            image = frame.to_image()
            pixel = image.getpixel((image.width // 2, image.height // 2))
            assert isinstance(pixel, tuple)
            blue = pixel[2] > 200 and pixel[0] < 40 and pixel[1] < 40
            green = pixel[1] > 100 and pixel[0] < 40 and pixel[2] < 40
            frames.append((float(frame.time or 0.0), blue, green))
    blue_times = [t for t, blue, _ in frames if blue]
    assert blue_times and start <= blue_times[0] <= end, (start, end, frames)
    assert any(green for t, _, green in frames if t < start)  # the test before, before it
    assert not any(blue for t, blue, _ in frames if t < start)


# -- pytest-xdist -----------------------------------------------------------------------------

# Files of these run with --dist loadfile --no-loadscope-reorder, named to sort first: each
# of the two workers starts on one of them.
PER_WORKER_TESTS = '''
def test_records_its_session(skyvern_session, skyvern_browser, skyvern_context, record):
    record(skyvern_session.browser_session_id,
           default=skyvern_context is skyvern_browser.contexts[0])
'''

ONE_FAILURE = '''
def test_one_failure(skyvern_session, record):
    record(skyvern_session.browser_session_id, failed=True)
    assert False, "fails on purpose"
'''


def test_xdist_launches_a_session_per_worker_and_keeps_only_the_failed_one(
    suite: pytest.Pytester,
    backend: LocalBackend,
    client: SkyvernClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    suite.makepyfile(test_todo=(EXAMPLE / "test_todo.py").read_text())  # the example, unchanged
    suite.makepyfile(
        test_0_worker_a=PER_WORKER_TESTS + ONE_FAILURE, test_0_worker_b=PER_WORKER_TESTS
    )
    monkeypatch.setenv("SKYVERN_API_KEY", backend.api_key or "")
    with closing_new_sessions(client) as before:
        result = run(
            suite, "-n", "2", "--dist", "loadfile", "--no-loadscope-reorder",
            "--skyvern-launch", "--skyvern-base-url", backend.base_url,
            "--skyvern-keep-on-failure",
        )
        result.assert_outcomes(passed=4, failed=1)
        lines = recorded(suite)
        by_worker: dict[str, set[str]] = {}
        for line in lines:
            by_worker.setdefault(line["worker"], set()).add(line["session"])
        assert len(by_worker) == 2, by_worker  # files a and b ran on different workers
        assert all(len(ids) == 1 for ids in by_worker.values()), by_worker
        sessions = {line["session"] for line in lines}
        assert len(sessions) == 2, "workers must not share a launched session"
        (kept,) = {line["session"] for line in lines if line.get("failed")}
        live = live_ids(client)
        assert kept in live  # the session of the worker that saw a failure stays open
        assert live - before == {kept}  # every other launched session is closed
        result.stdout.fnmatch_lines(
            [f"*kept session {kept} open after a failure; app_url: http://*/sessions/{kept}"
             f"?<redacted> (with its token: skyvern-cdp info {kept} --show-secrets)"]
        )
        assert "token=" not in result.stdout.str()  # the live view's token is a secret


def test_xdist_workers_attach_to_one_given_session_each_in_its_own_context(
    suite: pytest.Pytester, backend: LocalBackend, client: SkyvernClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    suite.makepyfile(test_0_worker_a=PER_WORKER_TESTS, test_0_worker_b=PER_WORKER_TESTS)
    given = client.create_browser_session(session_timeout_minutes=5).browser_session_id
    try:
        monkeypatch.setenv("SKYVERN_API_KEY", backend.api_key or "")
        monkeypatch.setenv("SKYVERN_BASE_URL", backend.base_url)  # the environment works too
        result = run(
            suite, "-n", "2", "--dist", "loadfile", "--no-loadscope-reorder",
            "--skyvern-session", given,
        )
        result.assert_outcomes(passed=2)
        lines = recorded(suite)
        assert {line["session"] for line in lines} == {given}
        assert len({line["worker"] for line in lines}) == 2
        assert not any(line["default"] for line in lines)
        assert given in live_ids(client)  # attaching never closes a session
    finally:
        client.close_browser_session(given)


DEFAULT_CONTEXT_TESTS = '''
def test_pages_go_in_the_default_context(skyvern_browser, skyvern_context, skyvern_page):
    assert skyvern_context is skyvern_browser.contexts[0]
    assert skyvern_page in skyvern_context.pages

def test_pages_opened_by_a_test_are_closed_after_it(skyvern_browser, skyvern_page):
    context = skyvern_browser.contexts[0]
    assert len(context.pages) == 2  # the session's own page, and this test's

def test_playwright_context_is_the_default_one(context, browser):
    assert context is browser.contexts[0]

SEEN = []

async def test_async_fixtures_use_the_default_context(skyvern_async_browser,
                                                      skyvern_async_context, skyvern_async_page):
    SEEN.append(skyvern_async_browser)
    assert skyvern_async_context is skyvern_async_browser.contexts[0]
    assert skyvern_async_page in skyvern_async_context.pages

async def test_session_loops_share_one_async_attachment(skyvern_async_browser):
    SEEN.append(skyvern_async_browser)
    assert SEEN[0] is SEEN[1]
'''

SESSION_LOOP_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""


def test_default_context_option_and_session_scoped_event_loops(
    suite: pytest.Pytester, backend: LocalBackend, client: SkyvernClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    suite.makeini(SESSION_LOOP_INI)
    suite.makepyfile(test_default=DEFAULT_CONTEXT_TESTS)
    given = client.create_browser_session(session_timeout_minutes=5).browser_session_id
    try:
        monkeypatch.setenv("SKYVERN_API_KEY", backend.api_key or "")
        monkeypatch.setenv("SKYVERN_CDP_DEFAULT_CONTEXT", "1")
        result = run(
            suite, "--skyvern-session", given, "--skyvern-base-url", backend.base_url
        )
        result.assert_outcomes(passed=5)
    finally:
        client.close_browser_session(given)


# -- Ctrl-C -----------------------------------------------------------------------------------

BLOCKING_TESTS = '''
import os, pathlib, threading
import pytest

@pytest.mark.parametrize("n", range(4))
def test_blocks(skyvern_session, pytestconfig, n):
    started = pytestconfig.rootpath / f"started-{os.getpid()}"
    started.write_text(skyvern_session.browser_session_id)
    threading.Event().wait(120)
'''


def test_a_crashed_worker_and_ctrl_c_leave_no_launched_session_open(
    suite: pytest.Pytester, backend: LocalBackend, client: SkyvernClient
) -> None:
    suite.makepyfile(test_blocking=BLOCKING_TESTS)
    env = dict(os.environ, SKYVERN_API_KEY=backend.api_key or "")
    argv = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
        "--max-worker-restart", "0", "--skyvern-launch", "--skyvern-base-url", backend.base_url,
    ]

    def started() -> list[Path]:  # each blocked worker writes its session id here
        return [path for path in suite.path.glob("started-*") if path.read_text()]

    with closing_new_sessions(client) as before, subprocess.Popen(
        argv,
        cwd=suite.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, like a terminal's foreground job
        # A shell may start us with SIGINT ignored, and children inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as proc:
        try:
            assert wait_for(lambda: len(started()) >= 2, 60)
            assert len(live_ids(client) - before) == 2  # both workers launched, both blocked
            crashed = sorted(started())[0]
            os.kill(int(crashed.name.split("-")[1]), signal.SIGKILL)  # no chance to clean up
            orphan = crashed.read_text()
            os.killpg(proc.pid, signal.SIGINT)  # then Ctrl-C, which reaches the whole group
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        left_open = live_ids(client) - before
    text = out.decode()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text[-3000:]
    # The live worker closed its own session; the controller closed the crashed worker's.
    assert f"closed session {orphan}, left open by a worker that stopped" in text, text[-3000:]
    assert left_open == set()


# -- failed setup, the report section, and bad input: in-process, HTTP only ----------------


def test_a_session_whose_setup_failed_is_closed(
    suite: pytest.Pytester
) -> None:
    suite.makepyfile(
        """
        def test_needs_the_session(skyvern_session):
            assert skyvern_session.browser_session_id
        """
    )
    with ScriptedAPI() as api:
        api.script("POST", "/v1/browser_sessions", Reply(200, session("pbs_stuck")))
        api.script("GET", "/v1/browser_sessions/pbs_stuck", Reply(200, session("pbs_stuck")))
        api.script("POST", "/v1/browser_sessions/pbs_stuck/close", Reply(200, {"message": "ok"}))
        result = suite.runpytest(
            "--skyvern-launch", "--skyvern-base-url", api.base_url, "--skyvern-timeout", "0.3"
        )
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*SessionNotReadyError*pbs_stuck*"])
        assert api.count("POST", "/v1/browser_sessions") == 1
        assert api.count("POST", "/v1/browser_sessions/pbs_stuck/close") == 1


@pytest.mark.matrix
def test_a_failed_attach_is_one_clear_line_that_never_shows_the_key(
    suite: pytest.Pytester,
) -> None:
    # In-process (asyncio only: its driver lives and dies inside the inner run's loop).
    suite.makepyfile(
        """
        async def test_async(skyvern_async_browser):
            assert skyvern_async_browser.is_connected()
        """
    )
    refused = session("pbs_refused", ready=True, browser_address="ws://127.0.0.1:1/devtools/b/x")
    with ScriptedAPI() as api:
        api.script("GET", "/v1/browser_sessions/pbs_refused", Reply(200, refused))
        result = suite.runpytest(
            "--showlocals", "--skyvern-session", "pbs_refused", "--skyvern-base-url",
            api.base_url, "--skyvern-api-key", SECRET, "--skyvern-timeout", "1",
        )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["CDPConnectTimeoutError: could not attach to session pbs_refused within the 1s*"
         "(here: --skyvern-timeout)"]
    )
    assert "Traceback" not in result.stdout.str()
    assert SECRET not in result.stdout.str() + result.stderr.str()


def test_report_section_comes_from_a_fresh_get(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        def test_fails(skyvern_session):
            assert skyvern_session.recordings in (None, [])
            assert False
        """
    )
    files = {
        "recordings": [{"url": "https://files.example/rec.webm", "filename": "rec.webm",
                        "file_size": 2048}],
        "downloaded_files": [{"url": "https://files.example/a.pdf", "filename": "a.pdf"}],
    }
    path = "/v1/browser_sessions/pbs_report1"
    with ScriptedAPI() as api:
        api.script(
            "GET",
            path,
            Reply(200, session("pbs_report1", ready=True, browser_address="ws://127.0.0.1:9/x")),
            Reply(200, session("pbs_report1", ready=True, browser_address="ws://127.0.0.1:9/x",
                               app_url="https://app.example/pbs_report1", **files)),
        )
        result = suite.runpytest("--skyvern-session", "pbs_report1", "--skyvern-base-url",
                                 api.base_url)
        assert api.count("GET", path) == 2  # the wait, then the report's own GET
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- skyvern session -*",
            "session: pbs_report1",
            "status: running",
            "app_url: https://app.example/pbs_report1",
            "recordings:",
            "  - rec.webm, 2048 bytes: https://files.example/rec.webm",
            "downloaded_files:",
            "  - a.pdf: https://files.example/a.pdf",
        ]
    )


@pytest.mark.matrix
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--skyvern-launch", "--skyvern-session", "pbs_1"], {}, "*exclude each other*"),
        (["--skyvern-session", "not-a-session"], {}, "*session id must start with 'pbs_'*"),
        (["--skyvern-launch", "--skyvern-timeout", "soon"], {}, "*number of seconds*"),
        (["--skyvern-launch", "--skyvern-timeout", "0"], {}, "*greater than 0*"),
        (["--skyvern-launch", "--skyvern-base-url", "ftp://x"], {}, "*http:// or https://*"),
        (
            ["--skyvern-launch", "--skyvern-base-url", "http://10.1.2.3", "--skyvern-api-key",
             SECRET],
            {},
            "*refusing to send the API key over plain http*",
        ),
        (["--skyvern-keep-on-failure"], {}, "*has no effect without --skyvern-session*"),
        (["--skyvern-launch", "--browser", "firefox"], {}, "*--browser firefox cannot run*"),
        ([], {"SKYVERN_CDP_LAUNCH": "maybe"}, "*SKYVERN_CDP_LAUNCH must be 1/0*"),
        ([], {"SKYVERN_CDP_SESSION": "pbs_bad id"}, "*may contain only letters*"),
    ],
    ids=["both", "bad-id", "timeout-text", "timeout-zero", "scheme", "insecure", "stray",
         "firefox", "env-flag", "env-id"],
)
def test_bad_options_stop_the_run_with_a_clear_message(
    suite: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    suite.makepyfile("def test_never_runs(): pass")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = suite.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert SECRET not in result.stdout.str() + result.stderr.str()


@pytest.mark.matrix
def test_bad_options_raise_typed_errors(suite: pytest.Pytester) -> None:
    config = suite.parseconfig("--skyvern-session", "nope")
    with pytest.raises(InvalidArgumentError, match="pbs_"):
        resolve_options(config)
    config = suite.parseconfig(
        "--skyvern-launch", "--skyvern-base-url", "http://10.1.2.3", "--skyvern-api-key", SECRET
    )
    with pytest.raises(PluginUsageError) as caught:
        resolve_options(config)
    assert isinstance(caught.value, InvalidArgumentError)
    assert isinstance(caught.value.__context__, InsecureTransportError)
    assert SECRET not in str(caught.value)


@pytest.mark.matrix
def test_command_line_beats_environment_beats_ini(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.makeini(INI + "skyvern_session = pbs_fromini\nskyvern_base_url = http://127.0.0.1:1\n")
    assert _header(suite) == "skyvern_cdp: attach to session pbs_fromini on http://127.0.0.1:1*"
    monkeypatch.setenv("SKYVERN_CDP_SESSION", "pbs_fromenv")
    monkeypatch.setenv("SKYVERN_BASE_URL", "http://127.0.0.1:2")
    assert _header(suite) == "skyvern_cdp: attach to session pbs_fromenv on http://127.0.0.1:2*"
    assert _header(
        suite, "--skyvern-session", "pbs_fromcli", "--skyvern-base-url", "http://127.0.0.1:3"
    ) == "skyvern_cdp: attach to session pbs_fromcli on http://127.0.0.1:3*"


def _header(pytester: pytest.Pytester, *args: str) -> str:
    result = pytester.runpytest("--co", *args)
    for line in result.stdout.lines:
        if line.startswith("skyvern_cdp:"):
            head = line.rsplit(" (", 1)[0]
            return head + "*"
    raise AssertionError(result.stdout.str())


# -- inactive ---------------------------------------------------------------------------------

INACTIVE_TESTS = '''
import sys
import psutil

def test_nothing_is_loaded_or_started(request):
    assert request.config.pluginmanager.get_plugin("skyvern_cdp_session") is None
    heavy = ("playwright", "httpx", "pydantic", "skyvern_cdp.sync_api", "skyvern_cdp.async_api")
    loaded = [name for name in heavy if name in sys.modules]
    assert loaded == []
    assert psutil.Process().children(recursive=True) == []

def test_remote_only_test(skyvern_page):
    assert skyvern_page.url
'''


@pytest.mark.matrix
def test_inactive_plugin_does_nothing(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.makepyfile(test_inactive=INACTIVE_TESTS)
    with ScriptedAPI() as api:
        monkeypatch.setenv("SKYVERN_BASE_URL", api.base_url)  # set, but nothing asked for
        result = run(suite, "-p", "no:playwright", "-rs")
        assert api.requests == []
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*no Skyvern session for this run; pass --skyvern-*"])
    assert not [line for line in result.stdout.lines if line.startswith("skyvern_cdp:")]


def test_pytest_playwright_is_untouched_unless_asked(suite: pytest.Pytester) -> None:
    suite.makepyfile("def test_x(): pass")

    def browser_fixture(*args: str) -> str:
        result = suite.runpytest("--fixtures", "-v", *args)
        lines = [line for line in result.stdout.lines if line.startswith("browser [")]
        return lines[-1]

    assert "pytest_playwright" in browser_fixture()
    active = browser_fixture("--skyvern-launch", "--skyvern-base-url", "http://127.0.0.1:1")
    assert "skyvern_cdp" in active and "pytest_plugin" in active

