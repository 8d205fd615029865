"""``--skyvern-default-context`` under ``-n 2 --skyvern-session ID``: one worker's teardown
closes only the pages its test opened, never the page another worker is using."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from skyvern_cdp._pytest.pages import opened_by

from conftest import LOCAL_API_KEY

if TYPE_CHECKING:
    from skyvern_cdp.local import LocalBackend

pytestmark = pytest.mark.browser

WAIT = '''
import pathlib, time

def wait_for_file(name, timeout=60.0):
    path = pathlib.Path(__file__).parent / name
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{name} never appeared"
        time.sleep(0.02)

def touch(name):
    (pathlib.Path(__file__).parent / name).write_text("x")
'''

# Worker A opens a page, then keeps using it until B's teardown is over.
TEST_A = WAIT + '''
def test_a_keeps_its_page(skyvern_context):
    page = skyvern_context.new_page()
    page.set_content("<title>mine-a</title>")
    touch("a_open")
    wait_for_file("b_done")
    assert not page.is_closed()
    assert page.evaluate("document.title") == "mine-a"
'''

# Worker B's context is set up before A's page exists; its teardown must leave A's page alone,
# and close its own page and the popup that page opened.
TEST_B = WAIT + '''
import pytest

@pytest.fixture
def done_after_teardown():
    yield
    touch("b_done")

def test_b_ends_first(done_after_teardown, skyvern_context, skyvern_page):
    wait_for_file("a_open")
    with skyvern_page.expect_popup() as popup:
        skyvern_page.evaluate("window.open('about:blank#popup-b')")
    assert popup.value.opener() == skyvern_page
'''


@pytest.fixture
def shared_session(backend: LocalBackend) -> Iterator[str]:
    with httpx.Client(base_url=backend.base_url, headers={"x-api-key": LOCAL_API_KEY},
                      trust_env=False, timeout=30) as http:
        sid = http.post("/v1/browser_sessions").json()["browser_session_id"]
        try:
            deadline = time.monotonic() + 30
            while http.get(f"/v1/browser_sessions/{sid}").json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            yield sid
        finally:
            http.post(f"/v1/browser_sessions/{sid}/close")


def test_teardown_closes_only_this_tests_pages_under_xdist(
    backend: LocalBackend, shared_session: str, pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith(("SKYVERN_", "PYTEST_XDIST")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SKYVERN_API_KEY", LOCAL_API_KEY)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_a=TEST_A, test_b=TEST_B)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile", "--skyvern-session",
        shared_session, "--skyvern-base-url", backend.base_url, "--skyvern-default-context",
        timeout=120,
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*2 passed*"])
    # Afterwards only the session's own first page is left: B's page and popup were closed.
    from playwright.sync_api import sync_playwright

    from skyvern_cdp import sync_api

    with sync_playwright() as pw:
        browser = sync_api.connect(shared_session, playwright=pw, base_url=backend.base_url,
                                   api_key=LOCAL_API_KEY)
        try:
            urls = [p.url for p in browser.contexts[0].pages]
        finally:
            browser.close()
    assert not any("popup-b" in url for url in urls), urls


def test_opened_by_follows_openers_and_nothing_else() -> None:
    assert opened_by(["a", "b", "c", "x", "y"], ["a"],
                     {"b": "a", "c": "b", "x": None, "y": "x"}) == ["a", "b", "c"]
    assert opened_by(["a", "b"], [], {"a": "b", "b": "a"}) == []  # a cycle ends
