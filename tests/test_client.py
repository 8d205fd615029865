"""Both API clients against a real HTTP server on 127.0.0.1 playing scripted answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from client_calls import Call, client_calls

from skyvern_cdp import (
    APIError,
    AuthenticationError,
    InvalidArgumentError,
    RequestRejectedError,
    SessionEndedError,
    SessionNotFoundError,
    SessionNotReadyError,
    SkyvernClient,
)

from scripted_api import Reply, ScriptedAPI, session

#: version-sensitive throughout: runs on every Python of the minimum-versions matrix
pytestmark = pytest.mark.matrix

SID = "pbs_client1"
PATH = f"/v1/browser_sessions/{SID}"
KEY = "sk-RECOGNISABLE-key-0042"
ADDRESS = "ws://127.0.0.1:9/devtools/browser/x?token=TOKEN-abc123"


@pytest.fixture
def api() -> Iterator[ScriptedAPI]:
    with ScriptedAPI() as server:
        yield server


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest, api: ScriptedAPI) -> Iterator[Call]:
    """``call(method, *args, **kw)`` on a SkyvernClient or an AsyncSkyvernClient."""
    with client_calls(request.param, api.base_url, KEY) as call:
        yield call


def test_get_sends_the_key_and_parses_the_session(api: ScriptedAPI, call: Call) -> None:
    api.script("GET", PATH, Reply(200, session(SID, ready=True, browser_address=ADDRESS)))
    got = call("get_browser_session", SID)
    assert got.browser_session_id == SID and got.is_ready
    assert api.requests[0].headers["x-api-key"] == KEY


@pytest.mark.parametrize(
    ("reply", "error", "says"),
    [
        (Reply(403, {"detail": "Invalid credentials"}), AuthenticationError, "Invalid credentials"),
        (Reply(403, {"detail": "Could not validate credentials"}), AuthenticationError, "API key"),
        (Reply(404, {"detail": f"Browser session {SID} not found"}), SessionNotFoundError, SID),
        (Reply(404, body=b""), SessionNotFoundError, "not found"),
        (Reply(400, {"detail": "bad"}), APIError, "HTTP 400"),
        (Reply(200, body=b"<html>not json"), APIError, "not a JSON object"),
        (Reply(200, {"browser_session_id": SID}), APIError, "organization_id"),
    ],
    ids=[
        "403-no-key",
        "403-wrong-key",
        "404",
        "404-empty",
        "400",
        "invalid-json",
        "missing-fields",
    ],
)
def test_errors_are_typed_and_say_what_to_do(
    api: ScriptedAPI, call: Call, reply: Reply, error: type[Exception], says: str
) -> None:
    api.script("GET", PATH, reply)
    with pytest.raises(error, match=says) as info:
        call("get_browser_session", SID)
    assert KEY not in str(info.value)
    assert api.count("GET", PATH) == 1, "not retried"


def test_422_detail_is_parsed(api: ScriptedAPI, call: Call) -> None:
    detail = [
        {"loc": ["body", "timeout"], "msg": "Input should be >= 5", "type": "greater_than_equal"}
    ]
    api.script("POST", "/v1/browser_sessions", Reply(422, {"detail": detail}))
    with pytest.raises(RequestRejectedError, match="body.timeout: Input should be >= 5") as info:
        call("create_browser_session", session_timeout_minutes=10)
    assert info.value.status_code == 422
    assert info.value.detail[0].loc == ["body", "timeout"]


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_transient_failures_are_retried(api: ScriptedAPI, call: Call, status: int) -> None:
    body = {"detail": {"code": "downloaded_files_unavailable", "retryable": True}}
    api.script("GET", PATH, Reply(status, body), Reply(status, body), Reply(200, session(SID)))
    assert call("get_browser_session", SID, timeout=10).status == "created"
    assert api.count("GET", PATH) == 3


def test_retry_after_is_honoured(api: ScriptedAPI, call: Call) -> None:
    api.script(
        "GET",
        PATH,
        Reply(429, {"detail": "slow down"}, headers={"Retry-After": "1"}),
        Reply(200, session(SID)),
    )
    call("get_browser_session", SID, timeout=10)
    first, second = api.requests
    assert second.at - first.at >= 0.95


def test_retry_after_never_passes_the_deadline(api: ScriptedAPI, call: Call) -> None:
    api.script("GET", PATH, Reply(503, {"detail": "busy"}, headers={"Retry-After": "30"}))
    started = time.monotonic()
    with pytest.raises(APIError, match="503"):
        call("get_browser_session", SID, timeout=1.5)
    assert time.monotonic() - started < 1.5 + 1.0


def test_a_reset_connection_is_retried(api: ScriptedAPI, call: Call) -> None:
    api.script("GET", PATH, Reply(reset=True), Reply(200, session(SID)))
    assert call("get_browser_session", SID, timeout=10).browser_session_id == SID


def test_a_read_slower_than_the_read_timeout_is_retried(api: ScriptedAPI) -> None:
    api.script("GET", PATH, Reply(200, session(SID), delay=3.0), Reply(200, session(SID)))
    with SkyvernClient(KEY, api.base_url, read_timeout=0.5) as client:
        started = time.monotonic()
        assert client.get_browser_session(SID, timeout=10).browser_session_id == SID
    assert time.monotonic() - started < 2.5
    assert api.count("GET", PATH) == 2


def test_create_is_not_retried_after_a_server_error(api: ScriptedAPI, call: Call) -> None:
    api.script(
        "POST",
        "/v1/browser_sessions",
        Reply(500, {"error": "Unexpected error: boom"}),
        Reply(200, session(SID)),
    )
    with pytest.raises(APIError, match="Unexpected error: boom"):
        call("create_browser_session", timeout=10)
    assert api.count("POST", "/v1/browser_sessions") == 1, "a retry could create a second session"


def test_create_is_retried_after_a_429(api: ScriptedAPI, call: Call) -> None:
    api.script(
        "POST",
        "/v1/browser_sessions",
        Reply(429, {"detail": "cap"}, headers={"Retry-After": "0"}),
        Reply(200, session(SID)),
    )
    assert call("create_browser_session", timeout=10).browser_session_id == SID
    assert api.count("POST", "/v1/browser_sessions") == 2


def test_create_sends_the_body_with_lifetime_in_minutes(api: ScriptedAPI, call: Call) -> None:
    import json

    api.script("POST", "/v1/browser_sessions", Reply(200, session(SID, timeout=15)))
    call(
        "create_browser_session",
        session_timeout_minutes=15,
        url="http://127.0.0.1/x",
        browser_type="chrome",
        extensions=["ad-blocker"],
    )
    sent = json.loads(api.requests[0].body)
    assert sent == {
        "timeout": 15,
        "url": "http://127.0.0.1/x",
        "browser_type": "chrome",
        "extensions": ["ad-blocker"],
    }


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"timeout_minutes": 10}, "timeout_minutes"),
        ({"session_timeout_minutes": 2}, "greater than or equal to 5"),
        ({"session_timeout_minutes": "10"}, "whole number"),
        ({"browser_type": "netscape"}, "browser_type"),
        ({"timeout": -1}, "greater than 0"),
        ({"timeout": float("nan")}, "finite"),
    ],
)
def test_bad_create_fields_fail_before_any_request(
    api: ScriptedAPI, call: Call, kwargs: dict[str, Any], says: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=says):
        call("create_browser_session", **kwargs)
    assert not api.requests


def test_close_list_and_extend(api: ScriptedAPI, call: Call) -> None:
    api.script("POST", f"{PATH}/close", Reply(200, {"message": "Browser session closed"}))
    api.script("GET", "/v1/browser_sessions", Reply(200, [session(SID), session("pbs_other")]))
    api.script("POST", f"{PATH}/extend", Reply(200, session(SID, timeout=90)))
    assert call("close_browser_session", SID).message == "Browser session closed"
    assert call("close_browser_session", SID).message == "Browser session closed"
    assert [s.browser_session_id for s in call("list_browser_sessions")] == [SID, "pbs_other"]
    assert call("extend_browser_session", SID, 30).timeout == 90
    with pytest.raises(InvalidArgumentError):
        call("extend_browser_session", SID, 0)


def test_one_connection_is_reused_across_polls(api: ScriptedAPI, call: Call) -> None:
    api.script(
        "GET",
        PATH,
        *[Reply(200, session(SID))] * 5,
        Reply(200, session(SID, ready=True, browser_address=ADDRESS)),
    )
    call("wait_for_browser_session", SID, timeout=20)
    assert len({r.client for r in api.requests}) == 1
    assert len(api.requests) == 6


def test_wait_follows_created_retry_running(api: ScriptedAPI, call: Call) -> None:
    api.script(
        "GET",
        PATH,
        Reply(200, session(SID)),
        Reply(200, session(SID, status="retry")),
        Reply(200, session(SID, status="running")),
        Reply(200, session(SID, ready=True, browser_address=ADDRESS)),
    )
    seen: list[str] = []
    ready = call(
        "wait_for_browser_session", SID, timeout=20, on_status=lambda s: seen.append(s.status)
    )
    assert ready.is_ready and seen == ["created", "retry", "running"]


def test_wait_fails_fast_when_the_session_fails(api: ScriptedAPI, call: Call) -> None:
    api.script("GET", PATH, Reply(200, session(SID)), Reply(200, session(SID, status="failed")))
    started = time.monotonic()
    with pytest.raises(SessionEndedError, match="failed") as info:
        call("wait_for_browser_session", SID, timeout=30)
    assert time.monotonic() - started < 5
    assert info.value.session is not None and info.value.session.status == "failed"


def test_wait_ends_within_the_deadline_and_names_what_was_missing(
    api: ScriptedAPI, call: Call
) -> None:
    api.script(
        "GET", PATH, Reply(200, session(SID, status="running", started_at=session()["created_at"]))
    )
    started = time.monotonic()
    with pytest.raises(SessionNotReadyError, match="never set a browser_address") as info:
        call("wait_for_browser_session", SID, timeout=1.5)
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 2.5
    assert info.value.missing == ("browser_address",)
    # From the call's start, as the deadline is (the first GET may come late on a loaded
    # machine: measured from it, a last poll at 1.46 s of the deadline read 1.33 s).
    last = api.requests[-1].at - started
    assert last >= 1.4, "kept polling until the deadline itself"


def test_wait_keeps_trying_through_a_failing_api_until_the_deadline(
    api: ScriptedAPI, call: Call
) -> None:
    api.script("GET", PATH, Reply(503, {"detail": "busy"}))
    started = time.monotonic()
    with pytest.raises(SessionNotReadyError, match="API kept failing"):
        call("wait_for_browser_session", SID, timeout=1.5)
    assert time.monotonic() - started < 2.5
    assert api.count("GET", PATH) >= 3


def test_wait_stops_at_a_permanent_error(api: ScriptedAPI, call: Call) -> None:
    api.script("GET", PATH, Reply(404, {"detail": f"Browser session {SID} not found"}))
    with pytest.raises(SessionNotFoundError):
        call("wait_for_browser_session", SID, timeout=10)
    assert api.count("GET", PATH) == 1


@pytest.mark.parametrize("sid", ["", "pbs_../x", "pbs_a\nb", "nope"])
def test_bad_ids_fail_before_any_request(api: ScriptedAPI, call: Call, sid: str) -> None:
    for method in ("get_browser_session", "close_browser_session", "wait_for_browser_session"):
        with pytest.raises(InvalidArgumentError):
            call(method, sid)
    assert not api.requests


def test_repr_hides_the_key(api: ScriptedAPI) -> None:
    with SkyvernClient(KEY, api.base_url) as client:
        assert KEY not in repr(client) and api.base_url in repr(client)


def test_an_unreachable_api_is_a_typed_error_within_the_deadline() -> None:
    from skyvern_cdp import APIConnectionError, SkyvernCDPError

    started = time.monotonic()
    with (
        SkyvernClient(KEY, "http://127.0.0.1:9") as client,
        pytest.raises(APIConnectionError) as info,
    ):
        client.get_browser_session(SID, timeout=1.0)
    assert time.monotonic() - started < 2.0
    assert isinstance(info.value, SkyvernCDPError) and info.value.status_code is None
    assert "127.0.0.1:9" in str(info.value) and KEY not in str(info.value)


def test_an_api_that_never_answers_is_a_timeout_error(api: ScriptedAPI, call: Call) -> None:
    from skyvern_cdp import APITimeoutError

    api.script("GET", PATH, Reply(200, session(SID), delay=5.0))
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as info:
        call("get_browser_session", SID, timeout=1.0)
    assert time.monotonic() - started < 2.0
    assert isinstance(info.value, TimeoutError)


def test_tls_settings_of_the_environment_are_honoured(tmp_path: Any) -> None:
    """One TLS context is shared by every client, built like httpx's own: a corporate CA
    named by ``SSL_CERT_FILE`` still applies (here: a missing file is reported)."""
    import os
    import subprocess
    import sys

    code = "from skyvern_cdp import SkyvernClient; SkyvernClient(base_url='https://h.example')"
    env = dict(os.environ, SSL_CERT_FILE=str(tmp_path / "corporate-ca.pem"))
    missing = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert missing.returncode != 0
    assert "FileNotFoundError" in missing.stderr, "the named CA file was looked for"
    import certifi

    env["SSL_CERT_FILE"] = certifi.where()
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
