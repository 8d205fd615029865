"""The pure decisions of the attach path, tested without I/O."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from skyvern_cdp import (
    APIError,
    InsecureTransportError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    SessionEndedError,
    SessionNotReadyError,
    policy,
)
from skyvern_cdp.config import resolve_settings
from skyvern_cdp.models import BrowserSessionResponse
from skyvern_cdp.policy import (
    MAX_POLL_DELAY,
    CDPFailure,
    CDPObservation,
    Deadline,
    PollAgain,
    Readiness,
    Waiter,
    cdp_target,
    classify_cdp_failure,
    connect_attempt_timeout,
    is_retryable_api_error,
    is_retryable_create_error,
    missing_for_ready,
    observe_cdp_failure,
    parse_retry_after,
    poll_delay,
    readiness,
    request_timeout,
    retry_delay,
    same_site,
    sleep_before_next_poll,
    validate_session_id,
)

#: version-sensitive throughout: runs on every Python of the minimum-versions matrix
pytestmark = pytest.mark.matrix

NOW = "2026-11-28T15:42:24+00:00"


def make(status: str | None = "created", **fields: object) -> BrowserSessionResponse:
    body = {
        "browser_session_id": "pbs_1",
        "organization_id": "o_1",
        "created_at": NOW,
        "modified_at": NOW,
        "status": status,
        **fields,
    }
    return BrowserSessionResponse.model_validate(body)


READY = {"browser_address": "ws://127.0.0.1:9222/devtools/browser/x", "started_at": NOW}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- session ids ----------------------------------------------------------------------------

BAD_IDS = [
    pytest.param("", InvalidArgumentError, "empty", id="empty"),
    pytest.param(None, InvalidArgumentTypeError, "str", id="none"),
    pytest.param(123, InvalidArgumentTypeError, "str", id="int"),
    pytest.param(b"pbs_1", InvalidArgumentTypeError, "str", id="bytes"),
    pytest.param("abc_123", InvalidArgumentError, "pbs_", id="no-prefix"),
    pytest.param("pbs_", InvalidArgumentError, "only letters", id="prefix-only"),
    pytest.param("pbs_../x", InvalidArgumentError, "only letters", id="path-traversal"),
    pytest.param("pbs_" + "a" * 10_000, InvalidArgumentError, "at most", id="10kB"),
    pytest.param("pbs_ü", InvalidArgumentError, "only letters", id="unicode"),
    pytest.param("pbs_a\nb", InvalidArgumentError, "only letters", id="newline"),
    pytest.param("pbs_a?x=1", InvalidArgumentError, "only letters", id="query"),
]


@pytest.mark.parametrize(("value", "error", "says"), BAD_IDS)
def test_bad_session_ids_are_refused_with_the_rule(value: object, error: type, says: str) -> None:
    with pytest.raises(error, match=says):
        validate_session_id(value)


@pytest.mark.parametrize("value", ["pbs_1", "pbs_123456", "pbs_AbC-9_x", "pbs_" + "a" * 124])
def test_good_session_ids_pass(value: str) -> None:
    assert validate_session_id(value) == value


def test_long_ids_are_not_echoed_whole() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_session_id("xyz" + "a" * 5000)
    assert len(str(info.value)) < 200


# -- deadline -------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [-1, 0, math.nan, math.inf, -math.inf])
def test_deadline_rejects_non_positive_and_non_finite(seconds: float) -> None:
    with pytest.raises(InvalidArgumentError):
        Deadline(seconds)


@pytest.mark.parametrize("seconds", ["5", None, True, [1]])
def test_deadline_rejects_wrong_types(seconds: object) -> None:
    with pytest.raises(InvalidArgumentTypeError):
        Deadline(seconds)  # type: ignore[arg-type]


def test_deadline_counts_down_and_expires() -> None:
    clock = FakeClock()
    deadline = Deadline(5.0, clock=clock)
    clock.now += 2
    assert deadline.remaining() == pytest.approx(3.0)
    assert deadline.elapsed() == pytest.approx(2.0)
    clock.now += 10
    assert deadline.remaining() == 0.0 and deadline.expired


# -- readiness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "fields", "state", "missing"),
    [
        ("created", {}, Readiness.WAITING, ("status", "browser_address", "started_at")),
        ("retry", {}, Readiness.WAITING, ("status", "browser_address", "started_at")),
        ("provisioning-v2", {}, Readiness.WAITING, ("status", "browser_address", "started_at")),
        (None, {}, Readiness.WAITING, ("status", "browser_address", "started_at")),
        # an address alone proves nothing: the cloud issues it before any browser exists
        ("created", {"browser_address": "wss://x/y"}, Readiness.WAITING, ("status", "started_at")),
        ("running", {"started_at": NOW}, Readiness.WAITING, ("browser_address",)),
        ("running", {"browser_address": "ws://h/x"}, Readiness.WAITING, ("started_at",)),
        ("running", READY, Readiness.READY, ()),
        ("completed", READY, Readiness.ENDED, ("status",)),
        ("failed", {}, Readiness.ENDED, None),
        ("timeout", {}, Readiness.ENDED, None),
    ],
)
def test_readiness_needs_running_address_and_start(
    status: str | None, fields: dict[str, str], state: Readiness, missing: tuple[str, ...] | None
) -> None:
    session = make(status, **fields)
    assert readiness(session) is state
    if missing is not None:
        assert missing_for_ready(session) == missing
    assert session.is_ready is (state is Readiness.READY)
    assert session.is_final is (state is Readiness.ENDED)


# -- poll schedule --------------------------------------------------------------------------


def gets_for(wait: float, rng: random.Random) -> int:
    """GETs a waiter makes over ``wait`` seconds (simulated clock; the first at t=0)."""
    clock = FakeClock()
    deadline = Deadline(wait, clock=clock)
    waiter = Waiter("pbs_1", deadline, rng=rng)
    gets = 0
    while True:
        gets += 1
        try:
            step = waiter.observe(make("created"))
        except SessionNotReadyError:
            return gets
        assert isinstance(step, PollAgain)
        clock.now += step.sleep


@pytest.mark.parametrize(("wait", "budget"), [(20.0, 25), (60.0, 60)])
def test_poll_schedule_stays_within_its_get_budget(wait: float, budget: int) -> None:
    rng = random.Random(7)
    counts = [gets_for(wait, rng) for _ in range(50)]
    assert max(counts) <= budget, counts


def test_poll_schedule_starts_fast_and_is_capped() -> None:
    assert poll_delay(0.0, jitter=0.0) == pytest.approx(0.15)
    assert poll_delay(2.5, jitter=0.0) < 0.6  # a session ready after 2-3 s is seen quickly
    assert poll_delay(3600.0, jitter=0.3) <= MAX_POLL_DELAY
    rng = random.Random(1)
    delays = {round(poll_delay(5.0, rng=rng), 4) for _ in range(20)}
    assert len(delays) > 1, "jitter spreads the polls of many waiters"


def test_last_poll_lands_on_the_deadline_not_before() -> None:
    assert sleep_before_next_poll(2.0, 0.3) == pytest.approx(0.3)
    assert sleep_before_next_poll(0.1, 5.0) == pytest.approx(0.1)
    assert sleep_before_next_poll(1.0, 0.0) is None


def test_waiter_polls_once_more_at_the_deadline_then_names_what_is_missing() -> None:
    clock = FakeClock()
    waiter = Waiter("pbs_1", Deadline(1.0, clock=clock))
    seen = 0
    with pytest.raises(SessionNotReadyError) as info:
        while True:
            step = waiter.observe(make("running", started_at=NOW))
            seen += 1
            assert isinstance(step, PollAgain)
            clock.now += step.sleep
    assert clock.now == pytest.approx(1001.0), "the final poll happened at the deadline"
    assert info.value.missing == ("browser_address",)
    assert "never set a browser_address" in str(info.value)
    assert info.value.session is not None and info.value.session.status == "running"
    assert isinstance(info.value, TimeoutError)


def test_waiter_fails_fast_on_a_final_status_and_keeps_the_session() -> None:
    waiter = Waiter("pbs_1", Deadline(60.0))
    assert isinstance(waiter.observe(make("created")), PollAgain)
    with pytest.raises(SessionEndedError, match="failed") as info:
        waiter.observe(make("failed"))
    assert info.value.session is not None and info.value.session.status == "failed"
    assert info.value.session_id == "pbs_1"


def test_waiter_reports_each_status_change_once() -> None:
    changes: list[str | None] = []
    waiter = Waiter("pbs_1", Deadline(60.0), on_status=lambda s: changes.append(s.status))
    for status in ["created", "created", "retry", "retry", "created"]:
        waiter.observe(make(status))
    ready = waiter.observe(make("running", **READY))
    assert isinstance(ready, BrowserSessionResponse)
    assert changes == ["created", "retry", "created", "running"]


# -- retries --------------------------------------------------------------------------------


def api_error(status: int) -> APIError:
    return APIError("x", status_code=status)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried_for_idempotent_calls(status: int) -> None:
    assert is_retryable_api_error(api_error(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501])
def test_client_errors_are_not_retried(status: int) -> None:
    assert not is_retryable_api_error(api_error(status))
    assert not is_retryable_create_error(api_error(status))


def test_transport_failures_are_retried_for_idempotent_calls() -> None:
    request = httpx.Request("GET", "http://x")
    for exc in (
        httpx.ConnectError("refused", request=request),
        httpx.ReadTimeout("slow", request=request),
        httpx.RemoteProtocolError("reset", request=request),
    ):
        assert is_retryable_api_error(exc)
    assert not is_retryable_api_error(ValueError("bug"))


def test_create_is_retried_only_when_nothing_can_have_been_created() -> None:
    request = httpx.Request("POST", "http://x")
    assert is_retryable_create_error(httpx.ConnectError("refused", request=request))
    assert is_retryable_create_error(httpx.ConnectTimeout("no route", request=request))
    assert is_retryable_create_error(api_error(429))
    # sent, maybe processed: retrying could make a second session
    assert not is_retryable_create_error(httpx.ReadTimeout("slow", request=request))
    assert not is_retryable_create_error(httpx.RemoteProtocolError("reset", request=request))
    for status in (500, 502, 503, 504):
        assert not is_retryable_create_error(api_error(status))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("600", 60.0),
        ("-4", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_seconds_are_read_and_capped(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_http_date_is_read() -> None:
    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
    later = (now + timedelta(seconds=7)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(later, now=now) == pytest.approx(7.0)


def test_retry_delay_honours_retry_after_but_never_passes_the_deadline() -> None:
    rng = random.Random(3)
    assert retry_delay(1, retry_after=4.0, remaining=30.0, rng=rng) == pytest.approx(4.0)
    assert retry_delay(1, retry_after=40.0, remaining=2.0, rng=rng) == pytest.approx(2.0)
    delays = [retry_delay(n, retry_after=None, remaining=100.0, rng=rng) for n in range(1, 12)]
    assert delays[0] <= 0.2 and max(delays) <= 5.0
    assert delays[5] > delays[0], "backs off"


def test_request_timeout_fits_the_deadline_and_allows_slow_gets() -> None:
    roomy = request_timeout(600.0)
    assert roomy.read is not None and roomy.read >= 60.0, "Skyvern's slow GETs take ~1 min"
    tight = request_timeout(3.0)
    assert tight.read == pytest.approx(3.0) and tight.connect == pytest.approx(3.0)
    last = request_timeout(0.0)
    assert last.read is not None and 0 < last.read <= 0.5, "the final poll is still a request"


def test_connect_attempts_are_well_under_the_deadline() -> None:
    assert connect_attempt_timeout(1, 120.0) == pytest.approx(5.0)
    assert connect_attempt_timeout(2, 120.0) == pytest.approx(10.0)
    assert connect_attempt_timeout(9, 120.0) == pytest.approx(20.0)
    assert connect_attempt_timeout(1, 1.5) == pytest.approx(1.5)
    assert connect_attempt_timeout(3, 0.0) == 0.0


# -- CDP ------------------------------------------------------------------------------------


# Messages as Playwright 1.65 words them (tests/test_attach.py checks a real one of each). The
# session ids and paths are chosen to contain what a text search would take for a verdict.
_HOSTILE = "ws://127.0.0.1:9222/pbs_closed_401_4410/devtools/browser/forbidden-session-closed"


def _ws_refused(status: str, body: str = "") -> str:
    shown = f"{_HOSTILE} {status}" + (f"\n{body}" if body else "")
    return (
        f"BrowserType.connect_over_cdp: WebSocket error: {shown}\nCall log:\n"
        f"  - <ws connecting> {_HOSTILE}\n  - <ws unexpected response> {shown}\n"
        f"  - <ws error> {_HOSTILE} error WebSocket was closed before the connection was"
        f" established\n  - <ws disconnected> {_HOSTILE} code=1006 reason=\n"
    )


def _ws_closed(code: int, reason: str) -> str:
    return (
        "BrowserType.connect_over_cdp: Timeout 5000ms exceeded.\nCall log:\n"
        f"  - <ws connecting> {_HOSTILE}\n  - <ws connected> {_HOSTILE}\n"
        f"  - <ws disconnected> {_HOSTILE} code={code} reason={reason}\n"
    )


def _http_status(status: int) -> str:
    url = "http://127.0.0.1:9222/pbs_closed_401_4410"
    return (
        f"BrowserType.connect_over_cdp: Unexpected status {status} when connecting to"
        f" {url}/json/version/.\nThis does not look like a DevTools server, try connecting via"
        f" ws://.\nCall log:\n  - <ws preparing> retrieving websocket url from {url}\n"
    )


_REFUSED_CONNECTION = (
    f"BrowserType.connect_over_cdp: WebSocket error: connect ECONNREFUSED 127.0.0.1:9222\n"
    f"Call log:\n  - <ws connecting> {_HOSTILE}\n  - <ws error> {_HOSTILE} error connect"
    f" ECONNREFUSED 127.0.0.1:9222\n  - <ws disconnected> {_HOSTILE} code=1006 reason=\n"
)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (_REFUSED_CONNECTION, CDPFailure.RETRY),
        (_ws_refused("503 Service Unavailable"), CDPFailure.RETRY),
        (_ws_refused("502 Bad Gateway", "401 4410 session closed forbidden"), CDPFailure.RETRY),
        (_ws_refused("404 Not Found", "Call log:\n  - <ws disconnected> u code=4410 reason=x"),
         CDPFailure.RETRY),
        (_ws_closed(1011, "internal error"), CDPFailure.RETRY),
        (_ws_closed(1000, "session closed 401"), CDPFailure.RETRY),
        (_http_status(503), CDPFailure.RETRY),
        (f"Timeout 5000ms exceeded.\nCall log:\n  - <ws connecting> {_HOSTILE}\n",
         CDPFailure.RETRY),
        (_ws_closed(4410, "session closed"), CDPFailure.SESSION_CLOSED),
        (_ws_closed(4410, ""), CDPFailure.SESSION_CLOSED),
        (_http_status(410), CDPFailure.SESSION_CLOSED),
        (_ws_refused("401 Unauthorized", "x-api-key is missing or wrong"), CDPFailure.REJECTED),
        (_ws_refused("403 Forbidden"), CDPFailure.REJECTED),
        (_http_status(401), CDPFailure.REJECTED),
        ("BrowserType.connect_over_cdp: headers: expected array, got object", CDPFailure.ARGUMENT),
        ("slow_mo: expected float, got string", CDPFailure.ARGUMENT),
    ],
)
def test_cdp_failures_are_classified_by_status_and_close_code(
    message: str, kind: CDPFailure
) -> None:
    assert classify_cdp_failure(observe_cdp_failure(message)) is kind


def test_what_a_cdp_failure_saw() -> None:
    assert observe_cdp_failure(_ws_refused("401 Unauthorized")) == CDPObservation(status=401)
    assert observe_cdp_failure(_ws_closed(4410, "x")) == CDPObservation(close_code=4410)
    assert observe_cdp_failure(_http_status(410)) == CDPObservation(status=410)
    assert observe_cdp_failure(_REFUSED_CONNECTION) == CDPObservation()
    # Playwright's ValidationError (by type) is an argument error whatever its words
    assert observe_cdp_failure("anything", validation_error=True).argument_error


@pytest.mark.parametrize(
    "message",
    [
        f"Timeout 5000ms exceeded. {_HOSTILE} closed 401 4410 forbidden unauthorized",
        f"WebSocket error: connect ECONNRESET {_HOSTILE}?close=4410&status=401",
        "Target page, context or browser has been closed",
    ],
)
def test_words_in_a_message_decide_nothing(message: str) -> None:
    """Before, "4410", "closed", "401" or "forbidden" anywhere (a session id, a URL) decided."""
    assert classify_cdp_failure(observe_cdp_failure(message)) is CDPFailure.RETRY


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("sessions.skyvern.com", "api.skyvern.com", True),
        ("api.skyvern.com", "api.skyvern.com", True),
        ("API.Skyvern.com.", "api.skyvern.com", True),
        ("skyvern.com.evil.io", "api.skyvern.com", False),
        ("evilskyvern.com", "api.skyvern.com", False),
        ("a.example.co.uk", "b.example.co.uk", True),
        ("a.example.co.uk", "b.other.co.uk", False),
        # tenants of a shared suffix (the PSL's private section) are different sites
        ("attacker.herokuapp.com", "myapi.herokuapp.com", False),
        ("attacker.github.io", "me.github.io", False),
        ("attacker.s3.amazonaws.com", "mine.s3.amazonaws.com", False),
        ("a.b.execute-api.us-east-1.amazonaws.com", "c.execute-api.us-east-1.amazonaws.com",
         False),
        ("cdp.myapi.herokuapp.com", "myapi.herokuapp.com", True),
        ("127.0.0.1", "127.0.0.1", True),
        # loopback is one host: every name and address of it
        ("127.0.0.1", "localhost", True),
        ("127.0.0.2", "127.0.0.1", True),
        ("::1", "localhost", True),
        ("[::1]", "127.0.0.1", True),
        ("10.0.0.1", "127.0.0.1", False),
        ("localhost", "intranet", False),
        ("intranet", "other", False),
        ("co.uk", "co.uk", True),
        ("example.co.uk", "co.uk", False),
    ],
)
def test_same_site(a: str, b: str, same: bool) -> None:
    assert same_site(a, b) is same


def settings(base_url: str = "https://api.skyvern.com", **kw: object) -> object:
    return resolve_settings(api_key="sk-test-KEY", base_url=base_url, **kw)  # type: ignore[arg-type]


def test_cdp_target_strips_the_fragment_and_keeps_the_query() -> None:
    target = cdp_target("wss://sessions.skyvern.com/pbs_1/devtools?token=t0k#frag", settings())
    assert target.endpoint == "wss://sessions.skyvern.com/pbs_1/devtools?token=t0k"
    assert target.headers == {"x-api-key": "sk-test-KEY"} and target.sends_key
    assert "t0k" not in repr(target) and "sk-test-KEY" not in repr(target)


@pytest.mark.parametrize(
    ("address", "trusted", "sends"),
    [
        ("wss://api.skyvern.com/cdp", (), True),
        ("wss://sessions.skyvern.com/cdp", (), True),
        ("wss://browser.other-cloud.net/cdp", (), False),
        ("wss://browser.other-cloud.net/cdp", ("browser.other-cloud.net",), True),
        ("wss://skyvern.com.attacker.io/cdp", (), False),
        ("wss://BROWSER.other-cloud.net./cdp", ("browser.other-cloud.net",), True),
    ],
)
def test_the_key_goes_only_to_trusted_hosts(
    address: str, trusted: tuple[str, ...], sends: bool
) -> None:
    target = cdp_target(address, settings(trusted_hosts=trusted))  # type: ignore[arg-type]
    assert target.sends_key is sends
    assert ("x-api-key" in target.headers) is sends


@pytest.mark.parametrize("api_url", ["http://127.0.0.1:8000", "http://localhost:8000", "local",
                                      "http://[::1]:8000"])
@pytest.mark.parametrize(
    "address",
    ["ws://127.0.0.1:9222/devtools/browser/x", "ws://localhost:9222/x", "ws://[::1]:9222/x",
     "http://127.0.0.5:9222/pbs_1"],
)
def test_loopback_is_one_host_for_the_key(api_url: str, address: str) -> None:
    """``SKYVERN_BASE_URL=http://localhost:8000`` with serve's ws://127.0.0.1 addresses."""
    assert cdp_target(address, settings(api_url)).sends_key  # type: ignore[arg-type]


def test_a_loopback_api_sends_no_key_to_another_host() -> None:
    local = settings("http://localhost:8000", allow_insecure_http=True)
    assert not cdp_target("ws://10.1.2.3:9222/x", local).sends_key  # type: ignore[arg-type]
    assert not cdp_target("wss://sessions.skyvern.com/x", local).sends_key  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("api_url", "address", "sends"),
    [
        ("https://myapi.herokuapp.com", "wss://attacker.herokuapp.com/cdp", False),
        ("https://myapi.herokuapp.com", "wss://myapi.herokuapp.com/cdp", True),
        ("https://me.github.io", "wss://attacker.github.io/cdp", False),
        ("https://api.mine.s3.amazonaws.com", "wss://attacker.s3.amazonaws.com/cdp", False),
    ],
)
def test_no_key_to_another_tenant_of_a_shared_suffix(
    api_url: str, address: str, sends: bool
) -> None:
    """Before, the last two labels decided: ``attacker.herokuapp.com`` got the key."""
    assert cdp_target(address, settings(api_url)).sends_key is sends  # type: ignore[arg-type]


def test_the_key_is_not_sent_over_plain_ws_to_a_remote_host() -> None:
    with pytest.raises(InsecureTransportError, match="plain ws://"):
        cdp_target("ws://sessions.skyvern.com/cdp", settings())  # type: ignore[arg-type]
    opted_in = settings(allow_insecure_http=True)
    assert cdp_target("ws://sessions.skyvern.com/cdp", opted_in).sends_key  # type: ignore[arg-type]


@pytest.mark.parametrize("address", ["", "not a url", "file:///etc/passwd", "ftp://h/x"])
def test_unusable_addresses_are_refused(address: str) -> None:
    with pytest.raises(InvalidArgumentError):
        cdp_target(address, settings())  # type: ignore[arg-type]


# -- a server that has never answered ---------------------------------------------------------


class TestUnreached:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    no_name = httpx.ConnectError("[Errno -2] Name or service not known")
    no_tcp = httpx.ConnectTimeout("timed out")
    tls = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")

    @pytest.mark.parametrize("exc", [refused, no_name, no_tcp, tls])
    def test_failures_before_any_answer_are_no_answers(self, exc: BaseException) -> None:
        assert policy.is_no_answer(exc)

    @pytest.mark.parametrize(
        "exc",
        [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof"), httpx.ReadError("reset"),
         APIError("503", status_code=503), ValueError("x")],
    )
    def test_failures_after_contact_are_not(self, exc: BaseException) -> None:
        assert not policy.is_no_answer(exc)

    def test_gives_up_only_after_the_grace_on_a_server_that_never_answered(self) -> None:
        grace = policy.UNREACHED_GRACE
        assert grace == 5.0  # documented in the README and the errors
        assert not policy.gives_up_unreached(self.refused, ever_answered=False, trying_for=4.99)
        assert policy.gives_up_unreached(self.refused, ever_answered=False, trying_for=grace)
        assert not policy.gives_up_unreached(self.refused, ever_answered=True, trying_for=500.0)
        # a slow read is an answer of sorts: the deadline decides, not the grace
        assert not policy.gives_up_unreached(
            httpx.ReadTimeout("slow"), ever_answered=False, trying_for=60.0
        )

    def test_the_grace_is_a_parameter(self) -> None:
        assert policy.gives_up_unreached(self.refused, ever_answered=False, trying_for=1.0,
                                         grace=1.0)

    def test_the_last_try_lands_at_the_end_of_the_grace(self) -> None:
        window = policy.retry_window(self.refused, 100.0, ever_answered=False, trying_for=4.2)
        assert window == pytest.approx(0.8)
        assert policy.retry_window(self.refused, 100.0, ever_answered=False, trying_for=6.0) == 0
        assert policy.retry_window(self.refused, 3.0, ever_answered=True, trying_for=4.2) == 3.0
        assert policy.retry_window(None, 3.0, ever_answered=False, trying_for=4.2) == 3.0
        # a retry delay is then never longer than that window
        delay = policy.retry_delay(8, retry_after=None, remaining=window)
        assert delay <= window

    def test_a_host_that_drops_packets_gets_no_more_than_the_grace_to_connect(self) -> None:
        assert policy.connect_timeout_for(ever_answered=True, trying_for=0.0) == 10.0
        assert policy.connect_timeout_for(ever_answered=False, trying_for=0.0) == 5.0
        assert policy.connect_timeout_for(ever_answered=False, trying_for=3.5) == 1.5
        assert policy.connect_timeout_for(ever_answered=False, trying_for=9.0) == (
            policy.MIN_REQUEST_TIMEOUT
        )
        limits = policy.request_timeout(100.0, connect_timeout=1.5)
        assert limits.connect == 1.5 and limits.read == policy.READ_TIMEOUT
