"""pytest-playwright-asyncio's async ``browser``/``context``/``page`` are the Skyvern session.

Runs in ``.venv-asyncio-plugin``: pytest-playwright-asyncio instead of pytest-playwright
(scripts/test; made by scripts/setup_asyncio_plugin). In the main ``.venv`` tests/conftest.py
leaves this folder out.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import httpx
import pytest

from conftest import LOCAL_API_KEY

if TYPE_CHECKING:
    from skyvern_cdp.local import LocalBackend

pytestmark = pytest.mark.browser

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_test_loop_scope = session
asyncio_default_fixture_loop_scope = session
"""

TESTS = '''
import json, pathlib
from skyvern_cdp.async_api import session_of

async def test_page_runs_on_the_session(browser, context, page):
    await page.set_content("<title>on skyvern</title>")
    assert await page.title() == "on skyvern"
    line = {"session": session_of(browser).browser_session_id,
            "default": context is browser.contexts[0], "pages": len(context.pages)}
    with open(pathlib.Path(__file__).parent / "seen.jsonl", "a") as out:
        out.write(json.dumps(line) + "\\n")

async def test_a_second_test_shares_the_browser(browser, page):
    assert session_of(browser).browser_session_id
    assert await page.evaluate("1 + 1") == 2
'''


def _live(backend: LocalBackend) -> set[str]:
    answer = httpx.get(f"{backend.base_url}/v1/browser_sessions",
                       headers={"x-api-key": LOCAL_API_KEY}, trust_env=False)
    return {s["browser_session_id"] for s in answer.json()}


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in list(os.environ):
        if name.startswith(("SKYVERN_", "PYTEST_XDIST")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SKYVERN_API_KEY", LOCAL_API_KEY)
    pytester.makeini(INI)
    pytester.makepyfile(test_suite=TESTS)
    return pytester


def _seen(pytester: pytest.Pytester) -> list[dict[str, object]]:
    path = pytester.path / "seen.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_this_venv_has_the_asyncio_plugin_and_not_the_sync_one() -> None:
    import importlib.util

    assert importlib.util.find_spec("pytest_playwright_asyncio") is not None
    assert importlib.util.find_spec("pytest_playwright") is None


@pytest.mark.parametrize("default_context", [False, True], ids=["new-context", "default"])
def test_launch_makes_the_async_browser_the_session(
    backend: LocalBackend, suite: pytest.Pytester, default_context: bool
) -> None:
    before = _live(backend)
    args = ["-p", "no:cacheprovider", "--skyvern-launch", "--skyvern-base-url",
            backend.base_url, "--browser-channel", "chromium-not-installed"]
    if default_context:
        args.append("--skyvern-default-context")
    result = suite.runpytest_subprocess(*args, timeout=120)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["skyvern_cdp: launch a session per worker*", "*2 passed*"])
    seen = _seen(suite)
    assert len(seen) == 1 and str(seen[0]["session"]).startswith("pbs_")
    assert seen[0]["session"] not in before
    assert seen[0]["default"] is default_context
    assert _live(backend) == before  # the launched session was closed at the end


def test_attach_makes_the_async_browser_that_session(
    backend: LocalBackend, suite: pytest.Pytester
) -> None:
    with httpx.Client(base_url=backend.base_url, headers={"x-api-key": LOCAL_API_KEY},
                      trust_env=False, timeout=30) as http:
        sid = http.post("/v1/browser_sessions").json()["browser_session_id"]
        try:
            result = suite.runpytest_subprocess(
                "-p", "no:cacheprovider", "--skyvern-session", sid, "--skyvern-base-url",
                backend.base_url, timeout=120,
            )
            assert result.ret == 0, result.stdout.str() + result.stderr.str()
            assert [line["session"] for line in _seen(suite)] == [sid]
            assert http.get(f"/v1/browser_sessions/{sid}").json()["status"] == "running"
        finally:
            http.post(f"/v1/browser_sessions/{sid}/close")
