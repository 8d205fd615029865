"""Browser profiles in both clients, against a scripted server: models, every error typed, the
transient 400 retried within the deadline and the final ones not, bad input refused before
any request."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from client_calls import Call, client_calls

from skyvern_cdp import (
    BrowserProfile,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    ProfileExistsError,
    ProfileNotFoundError,
    ProfileSourceError,
    ProfileUploadPendingError,
    SessionNotFoundError,
)
from skyvern_cdp.policy.profiles import (
    classify_profile_400,
    is_retryable_profile_create,
    match_profile,
    profile_ref,
)

from scripted_api import Reply, ScriptedAPI

KEY = "sk-profile-key-0042"
CREATE = "/v1/browser_profiles"
PENDING = (
    "Browser session does not have a persisted profile archive. Close the session and wait for"
    " upload before creating a browser profile."
)
NOT_CONFIGURED = (
    "This browser session was not configured to generate a browser profile. Start a session"
    " with generate_browser_profile enabled to capture a profile."
)
REUSED = (
    "This browser session reused profile bp_old, whose archive is unavailable. Create a profile"
    " from that session's source profile instead, or start a session with"
    " generate_browser_profile enabled to capture a new profile."
)


def profile(pid: str = "bp_1", name: str = "crm", **extra: Any) -> dict[str, Any]:
    now = datetime.now(timezone.utc).isoformat()
    body = {
        "browser_profile_id": pid,
        "organization_id": "o_test",
        "name": name,
        "description": None,
        "created_at": now,
        "modified_at": now,
        "deleted_at": None,
    }
    body.update(extra)
    return body


@pytest.fixture
def api() -> Iterator[ScriptedAPI]:
    with ScriptedAPI() as server:
        yield server


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest, api: ScriptedAPI) -> Iterator[Call]:
    """``call(method, *args, **kw)`` on a SkyvernClient or an AsyncSkyvernClient."""
    with client_calls(request.param, api.base_url, KEY) as call:
        yield call


def test_create_sends_the_body_and_keeps_unknown_fields(api: ScriptedAPI, call: Call) -> None:
    api.script("POST", CREATE, Reply(200, profile(brand_new=7, source_browser_type="chrome")))
    made = call("create_browser_profile", "crm", description="d", browser_session_id="pbs_9")
    assert isinstance(made, BrowserProfile)
    assert made.browser_profile_id == "bp_1" and made.name == "crm"
    assert made.model_extra == {"brand_new": 7}
    assert made.created_at is not None and made.created_at.tzinfo is not None
    sent = json.loads(api.requests[-1].body)
    assert sent == {"name": "crm", "description": "d", "browser_session_id": "pbs_9"}
    assert api.requests[-1].headers["x-api-key"] == KEY


def test_list_sends_the_filters_and_get_and_delete_work(api: ScriptedAPI, call: Call) -> None:
    api.script(
        "GET",
        CREATE + "?page=2&page_size=5&search_key=cr&include_deleted=true",
        Reply(200, [profile(), profile("bp_2", "crm2", deleted_at="2026-11-28T15:42:24")]),
    )
    listed = call(
        "list_browser_profiles", page=2, page_size=5, search_key="cr", include_deleted=True
    )
    assert [p.browser_profile_id for p in listed] == ["bp_1", "bp_2"]
    assert listed[1].deleted_at is not None and listed[1].deleted_at.tzinfo is not None
    api.script("GET", CREATE + "/bp_1", Reply(200, profile()))
    assert call("get_browser_profile", "bp_1").name == "crm"
    api.script("DELETE", CREATE + "/bp_1", Reply(204))
    assert call("delete_browser_profile", "bp_1") is None
    assert api.count("DELETE", CREATE + "/bp_1") == 1


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_profile_is_profile_not_found(api: ScriptedAPI, call: Call, method: str) -> None:
    gone = Reply(404, {"detail": "Browser profile bp_gone not found"})
    api.script(method, CREATE + "/bp_gone", gone)
    name = "get_browser_profile" if method == "GET" else "delete_browser_profile"
    with pytest.raises(ProfileNotFoundError, match="bp_gone"):
        call(name, "bp_gone")
    assert api.count(method, CREATE + "/bp_gone") == 1


def test_duplicate_name_is_profile_exists_and_not_retried(api: ScriptedAPI, call: Call) -> None:
    detail = "A browser profile named 'crm' already exists."
    api.script("POST", CREATE, Reply(409, {"detail": detail}))
    with pytest.raises(ProfileExistsError, match="already exists.*replace=True"):
        call("create_browser_profile", "crm", browser_session_id="pbs_1")
    assert api.count("POST", CREATE) == 1


def test_unknown_source_session_is_session_not_found(api: ScriptedAPI, call: Call) -> None:
    api.script(
        "POST",
        CREATE,
        Reply(404, {"detail": "Browser session pbs_x does not exist or is not live."}),
    )
    with pytest.raises(SessionNotFoundError, match="pbs_x"):
        call("create_browser_profile", "crm", browser_session_id="pbs_x")
    assert api.count("POST", CREATE) == 1


def test_unknown_profile_on_session_create_is_profile_not_found(
    api: ScriptedAPI, call: Call
) -> None:
    api.script(
        "POST", "/v1/browser_sessions", Reply(404, {"detail": "Browser profile bp_nope not found"})
    )
    with pytest.raises(ProfileNotFoundError, match="bp_nope"):
        call("create_browser_session", browser_profile_id="bp_nope")


@pytest.mark.parametrize(
    ("detail", "reason"), [(NOT_CONFIGURED, "not_configured"), (REUSED, "reused_unavailable")]
)
def test_final_400s_are_raised_at_once(
    api: ScriptedAPI, call: Call, detail: str, reason: str
) -> None:
    api.script("POST", CREATE, Reply(400, {"detail": detail}))
    started = time.monotonic()
    with pytest.raises(ProfileSourceError) as info:
        call("create_browser_profile", "crm", browser_session_id="pbs_1", timeout=20)
    assert info.value.reason == reason
    assert not isinstance(info.value, ProfileUploadPendingError)
    assert api.count("POST", CREATE) == 1
    assert time.monotonic() - started < 5


def test_transient_400_is_retried_until_the_profile_exists(api: ScriptedAPI, call: Call) -> None:
    pending = Reply(400, {"detail": PENDING})
    api.script("POST", CREATE, pending, pending, pending, Reply(200, profile()))
    made = call("create_browser_profile", "crm", browser_session_id="pbs_1", timeout=30)
    assert made.browser_profile_id == "bp_1"
    assert api.count("POST", CREATE) == 4


def test_transient_400_past_the_deadline_is_upload_pending(api: ScriptedAPI, call: Call) -> None:
    api.script("POST", CREATE, Reply(400, {"detail": PENDING}))
    started = time.monotonic()
    with pytest.raises(ProfileUploadPendingError) as info:
        call("create_browser_profile", "crm", browser_session_id="pbs_1", timeout=1.5)
    elapsed = time.monotonic() - started
    assert isinstance(info.value, TimeoutError) and info.value.reason == "upload_pending"
    assert api.count("POST", CREATE) >= 2
    assert 1.0 <= elapsed < 3.0


def test_resolve_a_name_through_the_list_and_an_id_without_a_request(
    api: ScriptedAPI, call: Call
) -> None:
    api.script(
        "GET",
        CREATE + "?page=1&page_size=100&search_key=crm",
        Reply(200, [profile("bp_9", "crm old"), profile("bp_7", "crm")]),
    )
    assert call("resolve_browser_profile", "crm") == "bp_7"
    assert call("resolve_browser_profile", "bp_direct") == "bp_direct"
    assert len(api.requests) == 1


def test_resolve_an_unknown_name_is_profile_not_found(api: ScriptedAPI, call: Call) -> None:
    api.script(
        "GET",
        CREATE + "?page=1&page_size=100&search_key=nobody",
        Reply(200, [profile("bp_9", "nobody else")]),
    )
    with pytest.raises(ProfileNotFoundError, match="'nobody'"):
        call("resolve_browser_profile", "nobody")


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "error"),
    [
        ("create_browser_profile", ("",), {}, InvalidArgumentError),
        ("create_browser_profile", ("bp_looks_like_an_id",), {}, InvalidArgumentError),
        ("create_browser_profile", ("a\nb",), {}, InvalidArgumentError),
        # Control characters by Unicode category, not only ASCII's: C1 NEL, bidi override,
        # line separator, zero-width format character.
        ("create_browser_profile", ("a\x85b",), {}, InvalidArgumentError),
        ("create_browser_profile", ("a\u202eb",), {}, InvalidArgumentError),
        ("create_browser_profile", ("a\u2028b",), {}, InvalidArgumentError),
        ("create_browser_profile", ("a\u200bb",), {}, InvalidArgumentError),
        ("create_browser_profile", ("ok",), {"description": "a\x85b"}, InvalidArgumentError),
        ("resolve_browser_profile", ("a\x9bb",), {}, InvalidArgumentError),
        ("create_browser_profile", ("x" * 256,), {}, InvalidArgumentError),
        ("create_browser_profile", (42,), {}, InvalidArgumentTypeError),
        ("create_browser_profile", ("ok",), {"browser_session_id": "nope"}, InvalidArgumentError),
        ("create_browser_profile", ("ok",), {"description": 3}, InvalidArgumentTypeError),
        ("get_browser_profile", ("pbs_1",), {}, InvalidArgumentError),
        ("get_browser_profile", ("bp_../x",), {}, InvalidArgumentError),
        ("delete_browser_profile", (None,), {}, InvalidArgumentTypeError),
        ("list_browser_profiles", (), {"page": 0}, InvalidArgumentError),
        ("list_browser_profiles", (), {"page_size": 1000}, InvalidArgumentError),
        ("list_browser_profiles", (), {"page": "1"}, InvalidArgumentTypeError),
        ("resolve_browser_profile", ("",), {}, InvalidArgumentError),
        ("resolve_browser_profile", (b"bp_1",), {}, InvalidArgumentTypeError),
    ],
)
def test_bad_input_is_refused_before_any_request(
    api: ScriptedAPI, call: Call, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        call(method, *args, **kwargs)
    assert api.requests == []


# ---- the pure decisions ------------------------------------------------------------------


def test_names_of_any_script_stay_allowed() -> None:
    """The Unicode-category rule refuses controls, not letters, marks or symbols."""
    from skyvern_cdp.policy.profiles import validate_profile_name

    for name in ("Zürich login", "登录 crm", "ünïcode ✓ ☃", "tab-less name"):
        assert validate_profile_name(name) == name


def test_classify_profile_400() -> None:
    assert classify_profile_400(PENDING) == "upload_pending"
    assert classify_profile_400(NOT_CONFIGURED) == "not_configured"
    assert classify_profile_400(REUSED) == "reused_unavailable"
    assert classify_profile_400("Workflow does not persist browser sessions") == "other"


def test_retry_rule_of_a_profile_create() -> None:
    assert is_retryable_profile_create(ProfileUploadPendingError("x", reason="upload_pending"))
    for reason in ("not_configured", "reused_unavailable", "other"):
        assert not is_retryable_profile_create(ProfileSourceError("x", reason=reason))
    assert not is_retryable_profile_create(ProfileExistsError("x", status_code=409))


def test_match_profile_wants_the_exact_live_name() -> None:
    items = [
        BrowserProfile.model_validate(profile("bp_1", "crm", deleted_at="2026-01-01T00:00:00")),
        BrowserProfile.model_validate(profile("bp_2", "CRM")),
        BrowserProfile.model_validate(profile("bp_3", "crm")),
    ]
    found = match_profile("crm", items)
    assert found is not None and found.browser_profile_id == "bp_3"
    assert match_profile("cr", items) is None


def test_profile_ref_tells_ids_from_names() -> None:
    assert profile_ref("bp_1").profile_id == "bp_1"
    assert profile_ref("my login").name == "my login"
    with pytest.raises(InvalidArgumentTypeError):
        profile_ref(None)


def test_policy_docstring_examples() -> None:
    import doctest

    import skyvern_cdp.policy.profiles as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_resolve_stops_on_a_server_that_ignores_the_page(api: ScriptedAPI, call: Call) -> None:
    full = Reply(200, [profile(f"bp_{i}", f"other {i}") for i in range(100)])
    for page in (1, 2, 3):
        api.script("GET", CREATE + f"?page={page}&page_size=100&search_key=crm", full)
    with pytest.raises(ProfileNotFoundError, match="'crm'"):
        call("resolve_browser_profile", "crm")
    assert len(api.requests) == 2  # the second page repeated the first: the end
