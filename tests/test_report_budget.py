"""The pytest plugin's failure report against a hung API: a short GET of its own, once a run.

Before: every failing test's report made a fresh GET that waited the whole --skyvern-timeout
(4 failing tests, --skyvern-timeout 3: 15 s, 5 GETs). Real servers: tests/scripted_api.py
answers, then drips an endless body (each read in time, the answer never done).
"""

from __future__ import annotations

import re

import pytest

from skyvern_cdp._pytest.report import REPORT_GET_TIMEOUT, is_unanswered, report_get_timeout
from skyvern_cdp.errors import (
    APITimeoutError,
    APIUnreachableError,
    SessionNotFoundError,
    SessionNotReadyError,
)

from scripted_api import Reply, ScriptedAPI, session

SID = "pbs_hung1"
PATH = f"/v1/browser_sessions/{SID}"
TIMEOUT = 3.0


def test_a_report_get_is_short_and_not_tried_again_once_unanswered() -> None:
    assert 0 < REPORT_GET_TIMEOUT <= 5
    assert report_get_timeout(60.0, unanswered=False) == REPORT_GET_TIMEOUT
    assert report_get_timeout(0.5, unanswered=False) == 0.5  # never more than the timeout
    assert report_get_timeout(60.0, unanswered=True) is None
    assert is_unanswered(APITimeoutError("slow")) and is_unanswered(APIUnreachableError("x"))
    assert not is_unanswered(SessionNotFoundError("an answer: 404"))
    waited = SessionNotReadyError("not ready", session_id=SID)
    waited.__cause__ = APITimeoutError("no answer")
    assert is_unanswered(waited)  # the fixture's wait never got an answer
    assert not is_unanswered(SessionNotReadyError("still 'created'", session_id=SID))


def run(pytester: pytest.Pytester, api: ScriptedAPI) -> tuple[pytest.RunResult, float]:
    """The run and its duration on pytest's own clock (its start-up in a subprocess, slow
    under load, is not the plugin's)."""
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--skyvern-session", SID, "--skyvern-base-url",
        api.base_url, "--skyvern-api-key", "k", "--skyvern-timeout", str(TIMEOUT), timeout=60,
    )
    took = re.search(r" in ([\d.]+)s", result.stdout.lines[-1])
    assert took is not None, result.stdout.lines[-1]
    return result, float(took.group(1))


def test_a_hung_report_get_is_short_and_the_later_reports_do_not_ask(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait got the session; then the API hangs: one short report GET, no more."""
    monkeypatch.delenv("SKYVERN_API_KEY", raising=False)
    pytester.makepyfile(
        "".join(f"def test_{i}(skyvern_session):\n    assert False\n" for i in range(4))
    )
    ready = session(SID, ready=True, browser_address="ws://127.0.0.1:9/devtools/browser/x")
    with ScriptedAPI() as api:
        api.script("GET", PATH, Reply(200, ready), Reply(200, body=b" ", drip=0.2, endless=True))
        result, took = run(pytester, api)
        gets = api.count("GET", PATH)
    result.assert_outcomes(failed=4)
    assert gets == 2  # the wait, then the first report's GET; no more
    text = result.stdout.str()
    assert text.count("could not read it: APITimeoutError") == 1
    assert text.count("details not fetched") == 3
    # one short report GET (within request_budget's 0.5 s floor) and slack for collection
    # under load; before: four GETs of the whole 3 s timeout each
    assert took < REPORT_GET_TIMEOUT + 0.5 + 2.0, took


def test_failing_tests_against_an_api_hung_from_the_start_ask_for_no_report_details(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixture's wait went unanswered: no report asks again (before: 5 GETs, 15 s)."""
    monkeypatch.delenv("SKYVERN_API_KEY", raising=False)
    pytester.makepyfile("".join(f"def test_{i}(skyvern_session):\n    pass\n" for i in range(4)))
    with ScriptedAPI() as api:
        api.script("GET", PATH, Reply(200, body=b" ", drip=0.2, endless=True))
        result, took = run(pytester, api)
        gets = api.count("GET", PATH)
    result.assert_outcomes(errors=4)
    assert gets == 1  # the fixture's wait only
    assert result.stdout.str().count("details not fetched") == 4
    assert took < TIMEOUT + 0.5 + 2.0, took  # the one --skyvern-timeout, and slack
