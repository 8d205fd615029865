"""The pytest plugin's profiles, run as users run it (inner pytest runs against the local
backend, real Chromium): --skyvern-profile, and the log-in-once hook, once per run also under
pytest-xdist -n 2, reused by a rerun, and one clear error when the login fails."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from skyvern_cdp import SkyvernClient

if TYPE_CHECKING:
    from skyvern_cdp.local import LocalBackend

from pages import serve_html

pytestmark = pytest.mark.browser

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

# The login sets a lasting cookie and a localStorage value on the site, and counts its calls.
LOGIN_CONFTEST = '''
import json, os

def pytest_skyvern_login(browser):
    with open(os.environ["LOGIN_CALLS"], "a") as calls:
        calls.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\\n")
    if os.environ.get("LOGIN_FAILS"):
        raise RuntimeError("wrong password for me@example.com")
    page = browser.contexts[0].pages[0]
    page.goto(os.environ["SITE"])
    page.evaluate("() => { document.cookie = 'session=s3cr3t; max-age=3600; path=/';"
                  " localStorage.setItem('user', 'me'); }")
'''

LOGGED_IN_TEST = '''
import json, os

def test_starts_logged_in(skyvern_page, skyvern_session):
    skyvern_page.goto(os.environ["SITE"])
    seen = {"worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            "session": skyvern_session.browser_session_id,
            "profile": skyvern_session.browser_profile_id}
    with open(os.environ["SEEN"], "a") as out:
        out.write(json.dumps(seen) + "\\n")
    assert "session=s3cr3t" in skyvern_page.evaluate("document.cookie")
    assert skyvern_page.evaluate("localStorage.getItem('user')") == "me"
'''


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve_html(b"<title>app</title>") as url:
        yield url


@pytest.fixture
def suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, backend: LocalBackend, site: str
) -> pytest.Pytester:
    for name in list(os.environ):
        if name.startswith(("SKYVERN_", "PYTEST_XDIST")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SKYVERN_API_KEY", backend.api_key or "")
    monkeypatch.setenv("SKYVERN_BASE_URL", backend.base_url)
    monkeypatch.setenv("SITE", site)
    monkeypatch.setenv("LOGIN_CALLS", str(pytester.path / "login_calls.txt"))
    monkeypatch.setenv("SEEN", str(pytester.path / "seen.jsonl"))
    pytester.makeini(INI)
    return pytester


@pytest.fixture
def client(backend: LocalBackend) -> Iterator[SkyvernClient]:
    with SkyvernClient(backend.api_key, backend.base_url) as made:
        yield made


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=180)


def calls(pytester: pytest.Pytester) -> list[str]:
    path = pytester.path / "login_calls.txt"
    return path.read_text().split() if path.exists() else []


def seen(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    import json

    path = pytester.path / "seen.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _forget(client: SkyvernClient, name: str) -> None:
    found = client.find_browser_profile(name)
    if found is not None:
        client.delete_browser_profile(found.browser_profile_id)


def test_log_in_once_under_xdist(suite: pytest.Pytester, client: SkyvernClient) -> None:
    name = f"suite-{uuid.uuid4().hex[:8]}"
    suite.makeconftest(LOGIN_CONFTEST)
    suite.makepyfile(test_0_worker_a=LOGGED_IN_TEST, test_0_worker_b=LOGGED_IN_TEST)
    try:
        result = run(
            suite, "-n", "2", "--dist", "loadfile", "--no-loadscope-reorder",
            "--skyvern-profile", name,
        )
        result.assert_outcomes(passed=2)
        assert calls(suite) == ["main"]  # once, in the controller, before the workers
        lines = seen(suite)
        assert len({line["worker"] for line in lines}) == 2  # both workers saw the login
        assert len({line["session"] for line in lines}) == 2  # each in its own session
        profile_id = client.resolve_browser_profile(name)
        assert {line["profile"] for line in lines} == {profile_id}
        result.stdout.fnmatch_lines([f"*logged in once: captured profile '{name}' ({profile_id})*"])
        assert "s3cr3t" not in result.stdout.str()
        assert client.list_browser_sessions() == []
    finally:
        _forget(client, name)


def test_a_rerun_reuses_a_fresh_login_and_max_age_0_logs_in_anew(
    suite: pytest.Pytester, client: SkyvernClient
) -> None:
    name = f"rerun-{uuid.uuid4().hex[:8]}"
    suite.makeconftest(LOGIN_CONFTEST)
    suite.makepyfile(test_seen=LOGGED_IN_TEST)
    try:
        run(suite, "--skyvern-profile", name).assert_outcomes(passed=1)
        assert calls(suite) == ["main"]
        profile_id = client.resolve_browser_profile(name)

        # A rerun within --skyvern-login-max-age reuses the profile: no login.
        result = run(suite, "--skyvern-profile", name)
        result.assert_outcomes(passed=1)
        assert calls(suite) == ["main"]
        result.stdout.fnmatch_lines([f"*reused profile '{name}' ({profile_id})*"])

        # --skyvern-login-max-age 0: log in anew, the old profile replaced.
        result = run(suite, "--skyvern-profile", name, "--skyvern-login-max-age", "0")
        result.assert_outcomes(passed=1)
        assert calls(suite) == ["main", "main"]
        assert client.resolve_browser_profile(name) != profile_id
        assert [line["profile"] for line in seen(suite)][-1] != profile_id
    finally:
        _forget(client, name)


def test_a_failing_login_fails_the_run_once(
    suite: pytest.Pytester, client: SkyvernClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.makeconftest(LOGIN_CONFTEST)
    suite.makepyfile(test_0_worker_a=LOGGED_IN_TEST, test_0_worker_b=LOGGED_IN_TEST)
    monkeypatch.setenv("LOGIN_FAILS", "1")
    result = run(suite, "-n", "2", "--skyvern-launch", "--skyvern-login-max-age", "0")
    assert result.ret == 1
    message = "logging in once (pytest_skyvern_login) failed, so no test ran"
    # One error (pytest's Exit: on stderr, and its line in the summary), not one per test.
    assert result.stderr.str().count(message) == 1, result.stderr.str()
    assert result.stdout.str().count(message) == 1, result.stdout.str()
    assert "RuntimeError: wrong password for me@example.com" in result.stderr.str()
    assert "ERROR at setup" not in result.stdout.str()
    assert calls(suite) == ["main"]
    assert seen(suite) == []
    assert client.list_browser_sessions() == []


def test_collect_only_does_not_log_in(suite: pytest.Pytester, client: SkyvernClient) -> None:
    suite.makeconftest(LOGIN_CONFTEST)
    suite.makepyfile(test_seen=LOGGED_IN_TEST)
    result = run(suite, "--skyvern-launch", "--collect-only", "-q")
    assert result.ret == 0
    assert calls(suite) == []
    assert client.list_browser_sessions() == []


def test_skyvern_profile_without_a_hook_starts_every_session_from_it(
    suite: pytest.Pytester, client: SkyvernClient
) -> None:
    name = f"given-{uuid.uuid4().hex[:8]}"
    suite.makeconftest(LOGIN_CONFTEST.replace("def pytest_skyvern_login", "def _not_a_hook"))
    suite.makepyfile(test_seen=LOGGED_IN_TEST.replace("    assert", "    # assert"))
    pid = client.create_browser_profile(name).browser_profile_id
    try:
        result = run(suite, "--skyvern-profile", name)
        result.assert_outcomes(passed=1)
        assert [line["profile"] for line in seen(suite)] == [pid]
        result = run(suite, "--skyvern-profile", name + "-unknown")
        assert result.ret == 1
        result.stderr.fnmatch_lines([f"*the profile '{name}-unknown' could not be found*"])
        assert calls(suite) == []
    finally:
        client.delete_browser_profile(pid)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--skyvern-profile", "bp_"], "profile id may contain only"),
        (["--skyvern-profile", ""], "profile name must not be empty"),
        (["--skyvern-profile", "crm", "--skyvern-session", "pbs_1"], "exclude each other"),
        (["--skyvern-launch", "--skyvern-login-max-age", "-1"], "must be a number"),
        (["--skyvern-login-max-age", "10"], "has no effect without"),
    ],
)
def test_bad_profile_options_are_usage_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    for name in list(os.environ):
        if name.startswith("SKYVERN_"):
            monkeypatch.delenv(name)
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
