"""The pytest plugin's failure report against a hung API: a short GET of its own, once a run.

Before: every failing test's report made a fresh GET that waited the whole --skyvern-timeout
(4 failing tests, --skyvern-timeout 3: 15 s, 5 GETs).
"""

from __future__ import annotations

import re

import pytest

from skyvern_cdp._pytest.report import REPORT_GET_TIMEOUT, is_unanswered, report_get_timeout
from skyvern_cdp.errors import APITimeoutError, APIUnreachableError, SessionNotFoundError

from scripted_api import Reply, ScriptedAPI

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


def test_failing_tests_against_a_hung_api_ask_for_report_details_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SKYVERN_API_KEY", raising=False)
    pytester.makepyfile("".join(f"def test_{i}(skyvern_session):\n    pass\n" for i in range(4)))
    with ScriptedAPI() as api:
        api.script("GET", PATH, Reply(200, body=b" ", drip=0.2, endless=True))
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--skyvern-session", SID, "--skyvern-base-url",
            api.base_url, "--skyvern-api-key", "k", "--skyvern-timeout", str(TIMEOUT),
            timeout=60,
        )
        gets = api.count("GET", PATH)
    result.assert_outcomes(errors=4)
    assert gets == 2  # the fixture's wait, then the first report's GET; no more
    text = result.stdout.str()
    assert text.count("details not fetched") == 3
    # the run (pytest's own clock: its start-up in a subprocess is not the plugin's): the
    # wait and one short report GET, each within request_budget's 0.5 s floor, and slack for
    # collection under load; before, one full-timeout GET per report: 3 + 4 x 3 s
    took = float(re.search(r" in ([\d.]+)s", result.stdout.lines[-1]).group(1))  # type: ignore[union-attr]
    assert took < TIMEOUT + REPORT_GET_TIMEOUT + 3.0, took
