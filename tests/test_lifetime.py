"""Keep-alive and live-view decisions, without I/O: remaining lifetime, extensions, schedule."""

from __future__ import annotations

import doctest
import importlib
import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from skyvern_cdp import InvalidArgumentError, InvalidArgumentTypeError
from skyvern_cdp.errors import SessionNotFoundError
from skyvern_cdp.lifetime import (
    MAX_LIFETIME_MINUTES,
    Capped,
    Extend,
    KeepAlive,
    Lifetime,
    Look,
    Notify,
    Sleep,
    Stop,
    describe,
    extension_minutes,
    keep_alive_policy,
    next_check_delay,
    remaining_lifetime,
    retry_delay,
)
from skyvern_cdp.models import BrowserSessionResponse
from skyvern_cdp.notebook_view import (
    frame_changed,
    may_have_dropped,
    quiet_period,
    wait_before_showing,
)

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=timezone.utc)


def session(**fields: Any) -> BrowserSessionResponse:
    body = {
        "browser_session_id": "pbs_1",
        "organization_id": "o_1",
        "status": "running",
        "timeout": 60,
        "started_at": T0.isoformat(),
        "created_at": T0.isoformat(),
        "modified_at": T0.isoformat(),
        **fields,
    }
    return BrowserSessionResponse.model_validate(body)


# ---- remaining lifetime -------------------------------------------------------------------


def test_remaining_lifetime_from_started_at_and_timeout() -> None:
    assert remaining_lifetime(session(), now=T0 + timedelta(minutes=50)) == 600.0
    assert remaining_lifetime(session(), now=T0 + timedelta(minutes=61)) == 0.0
    # a zone-less started_at (self-hosted Skyvern) is read as UTC
    naive = session(started_at="2026-11-28T15:00:00")
    assert remaining_lifetime(naive, now=T0 + timedelta(minutes=59)) == 60.0


def test_the_servers_remaining_lifetime_seconds_wins_over_arithmetic() -> None:
    # e.g. the local backend at minute_seconds=0.5: 60 minutes are 30 real seconds
    sent = session(remaining_lifetime_seconds=12.5)
    assert remaining_lifetime(sent, now=T0) == 12.5
    assert remaining_lifetime(session(remaining_lifetime_seconds=-3), now=T0) == 0.0


@pytest.mark.parametrize("odd", [None, "12", True, float("nan"), float("inf"), [1]])
def test_an_odd_remaining_lifetime_seconds_falls_back_to_arithmetic(odd: object) -> None:
    assert remaining_lifetime(
        session(remaining_lifetime_seconds=odd), now=T0 + timedelta(minutes=59)
    ) == 60.0


def test_unknown_before_the_start_and_zero_once_final() -> None:
    assert remaining_lifetime(session(status="created", started_at=None), now=T0) is None
    assert remaining_lifetime(session(timeout=None), now=T0) is None
    assert remaining_lifetime(session(status="timeout"), now=T0) == 0.0
    ended = session(status="completed", remaining_lifetime_seconds=99)
    assert remaining_lifetime(ended, now=T0) == 0


# ---- how much, and when -------------------------------------------------------------------


def test_extensions_stop_at_the_cap() -> None:
    policy = KeepAlive(extend_minutes=30)
    assert extension_minutes(60, policy) == 30
    assert extension_minutes(340, policy) == 20
    assert extension_minutes(MAX_LIFETIME_MINUTES, policy) == 0
    assert extension_minutes(400, policy) == 0  # a server that went past it: still nothing
    assert extension_minutes(None, policy) == 30  # unknown: ask; the server caps


def test_checks_come_sooner_as_the_end_nears() -> None:
    policy = KeepAlive(margin=300.0, max_interval=600.0)
    remaining = [7200.0, 3600.0, 1200.0, 600.0, 400.0, 320.0, 305.0]
    delays = [next_check_delay(r, policy) for r in remaining]
    assert delays == sorted(delays, reverse=True)
    assert delays[0] == 600.0  # capped by max_interval
    for r, d in zip(remaining, delays, strict=True):
        assert d <= r - policy.margin  # never sleeps past the margin
    assert next_check_delay(300.0, policy) == next_check_delay(10.0, policy) == 0.0
    assert next_check_delay(None, policy) == 150.0  # not started yet: look again soon


def test_retries_back_off_but_never_past_a_quarter_of_what_is_left() -> None:
    policy = KeepAlive(margin=300.0, max_interval=300.0)
    delays = [retry_delay(n, 10_000.0, policy) for n in range(1, 8)]
    assert delays == [15.0, 30.0, 60.0, 120.0, 240.0, 300.0, 300.0]
    assert retry_delay(5, 100.0, policy) == 25.0
    assert retry_delay(5, 0.0, policy) == 3.0  # the end passed: still not a busy loop
    assert retry_delay(10_000, None, policy) == 300.0


# ---- the state machine ----------------------------------------------------------------------


def test_extends_within_the_margin_and_sleeps_otherwise() -> None:
    life = Lifetime(KeepAlive(margin=300.0, extend_minutes=10))
    step = life.observe(session(), remaining=1000.0, at=50.0)
    assert isinstance(step, Sleep) and 0 < step.seconds <= 350.0
    assert life.remaining_at(150.0) == 900.0  # the end is remembered on the monotonic clock
    assert life.observe(session(), remaining=299.0, at=60.0) == Extend(10)
    after = life.extended(session(timeout=70), remaining=899.0, at=61.0)
    assert isinstance(after, Sleep) and after.seconds > 0
    assert life.extensions == 1


def test_an_extension_that_leaves_it_within_the_margin_does_not_spin() -> None:
    life = Lifetime(KeepAlive(margin=300.0, extend_minutes=1))
    assert life.observe(session(), remaining=100.0, at=0.0) == Extend(1)
    assert life.extended(session(timeout=61), remaining=160.0, at=1.0) == Sleep(30.0)


def test_the_cap_is_reported_once_and_ends_the_keeping() -> None:
    life = Lifetime(KeepAlive(margin=300.0, extend_minutes=10))
    assert life.observe(session(timeout=355), remaining=200.0, at=0.0) == Extend(5)
    capped = life.extended(
        session(timeout=360, warning="capped at 360 minutes"), remaining=500.0, at=1.0
    )
    assert isinstance(capped, Sleep)  # 500 s left: nothing to do yet
    step = life.observe(session(timeout=360), remaining=250.0, at=300.0)
    assert step == Capped(250.0)
    assert life.capped


def test_a_final_session_stops_the_keeping() -> None:
    life = Lifetime(KeepAlive())
    assert life.observe(session(status="timeout"), remaining=0.0, at=0.0) == Stop(
        "the session is timeout"
    )


def test_failures_back_off_until_a_success() -> None:
    life = Lifetime(KeepAlive(margin=300.0))
    life.observe(session(), remaining=1000.0, at=0.0)
    assert life.failed(at=10.0) == Sleep(15.0)
    assert life.failed(at=20.0) == Sleep(30.0)
    # a look that succeeds but still needs an extension keeps the count (extends keep failing)
    assert life.observe(session(), remaining=200.0, at=30.0) == Extend(10)
    assert life.failed(at=31.0) == Sleep(49.75)  # capped at a quarter of the 199 s left
    life.extended(session(timeout=70), remaining=800.0, at=40.0)
    assert life.failures == 0
    assert life.failed(at=50.0) == Sleep(15.0)


def test_watch_only_notifies_once_then_again_after_more_time() -> None:
    life = Lifetime(KeepAlive(margin=300.0), extend=False)
    assert isinstance(life.observe(session(), remaining=900.0, at=0.0), Sleep)
    step = life.observe(session(), remaining=250.0, at=600.0)
    assert isinstance(step, Notify) and step.remaining == 250.0
    assert step.then.seconds >= KeepAlive(margin=300.0).min_interval  # no busy loop
    again = life.observe(session(), remaining=200.0, at=650.0)
    assert isinstance(again, Sleep)  # said once
    life.observe(session(timeout=90), remaining=1500.0, at=700.0)  # someone extended it
    assert isinstance(life.observe(session(timeout=90), remaining=100.0, at=2100.0), Notify)


# ---- what a keeper does next, and what an answer leads to -----------------------------------

NOW = T0 + timedelta(minutes=50)  # session() has 600 s left then


def test_a_keeper_starts_with_a_look_that_stays_until_answered() -> None:
    life = Lifetime(KeepAlive(margin=300.0))
    assert life.next_action() == Look()
    assert life.next_action() == Look()  # no answer yet: look (again)


def test_a_session_answering_a_look_is_observed_from_when_it_was_asked() -> None:
    life, twin = Lifetime(KeepAlive(margin=300.0)), Lifetime(KeepAlive(margin=300.0))
    step = life.answered(Look(), session(), now=NOW, at=160.0, asked_at=100.0)
    assert step == twin.observe(session(), remaining=600.0, at=100.0) == Sleep(150.0)
    assert life.ends_at == 700.0  # counted from the question: the safe side
    # then: the sleep, a look, and the look stays until its answer comes
    assert [life.next_action() for _ in range(3)] == [Sleep(150.0), Look(), Look()]


def test_the_session_an_attach_saw_is_a_first_look_without_a_request() -> None:
    life = Lifetime(KeepAlive(margin=300.0))
    assert life.answered(Look(), session(), now=NOW, at=42.0) == Sleep(150.0)
    assert life.ends_at == 642.0  # no asked_at: the answer's time
    assert life.next_action() == Sleep(150.0)


@pytest.mark.parametrize("action", [Look(), Extend(10)])
def test_session_not_found_stops_for_good(action: Look | Extend) -> None:
    life = Lifetime(KeepAlive(margin=300.0))
    life.answered(Look(), session(), now=NOW, at=0.0)
    step = life.answered(action, SessionNotFoundError("gone"), now=NOW, at=5.0, asked_at=1.0)
    assert step == Stop("the session is not found")
    assert (life.failures, life.extensions, life.ends_at) == (0, 0, 600.0)  # nothing else
    assert [life.next_action() for _ in range(2)] == [step, step]  # it stays the end
    assert describe(step, "pbs_1") == "keep-alive for pbs_1 stops: the session is not found"


@pytest.mark.parametrize("action", [Look(), Extend(10)])
def test_another_exception_is_retried_counting_from_when_it_failed(
    action: Look | Extend,
) -> None:
    life = Lifetime(KeepAlive(margin=300.0))
    life.answered(Look(), session(), now=NOW, at=0.0)  # ends at 600
    step = life.answered(action, TimeoutError("slow"), now=NOW, at=560.0, asked_at=0.0)
    assert step == Sleep(10.0)  # a quarter of the 40 s left at 560 (from 0 it would be 15)
    assert (life.failures, life.extensions) == (1, 0)
    assert [life.next_action() for _ in range(2)] == [Sleep(10.0), Look()]
    assert life.answered(Look(), OSError("down"), now=NOW, at=570.0) == Sleep(7.5)
    assert life.failures == 2


def test_an_extension_is_asked_for_until_answered_then_counted() -> None:
    life = Lifetime(KeepAlive(margin=300.0, extend_minutes=10))
    near = session(remaining_lifetime_seconds=200)
    assert life.answered(Look(), near, now=NOW, at=0.0) == Extend(10)
    assert [life.next_action() for _ in range(2)] == [Extend(10), Extend(10)]
    life.failures = 3
    granted = session(timeout=70, remaining_lifetime_seconds=800)
    step = life.answered(Extend(10), granted, now=NOW, at=2.0, asked_at=1.0)
    assert step == Sleep(250.0)  # half of the 500 s before the margin
    assert (life.extensions, life.failures, life.ends_at) == (1, 0, 801.0)
    # a session answering a look is not an extension
    life.answered(Look(), granted, now=NOW, at=3.0)
    assert life.extensions == 1


def test_an_extension_still_within_the_margin_waits_instead_of_spinning() -> None:
    life = Lifetime(KeepAlive(margin=300.0, extend_minutes=1))
    short = session(timeout=61, remaining_lifetime_seconds=160)
    assert life.answered(Extend(1), short, now=NOW, at=1.0) == Sleep(30.0)
    assert life.next_action() == Sleep(30.0)


def test_the_cap_is_the_end_with_one_description() -> None:
    life = Lifetime(KeepAlive(margin=300.0, extend_minutes=10))
    capped = session(timeout=360, remaining_lifetime_seconds=250)
    step = life.answered(Look(), capped, now=NOW, at=0.0)
    assert step == Capped(250.0) and life.capped
    assert [life.next_action() for _ in range(2)] == [step, step]
    assert describe(step, "pbs_1") == (
        "session pbs_1 reached the 360-minute cap: it cannot be extended any more"
        " and ends in 250 s"
    )
    # the last extension up to the cap answers with a capped session: the same end, later
    life = Lifetime(KeepAlive(margin=300.0, extend_minutes=10))
    assert life.answered(Extend(5), capped, now=NOW, at=0.0) == Capped(250.0)
    assert life.extensions == 1


@pytest.mark.parametrize("action", [Look(), Extend(10)])
def test_a_final_session_stops(action: Look | Extend) -> None:
    life = Lifetime(KeepAlive())
    step = life.answered(action, session(status="completed"), now=NOW, at=0.0)
    assert step == Stop("the session is completed")
    assert life.next_action() == step
    assert describe(step, "pbs_1") == "keep-alive for pbs_1 stops: the session is completed"


def test_a_notice_comes_once_then_its_sleep_then_a_look() -> None:
    life = Lifetime(KeepAlive(margin=300.0), extend=False)
    near = session(remaining_lifetime_seconds=250)
    step = life.answered(Look(), near, now=NOW, at=0.0)
    assert isinstance(step, Notify) and step.remaining == 250.0
    assert [life.next_action() for _ in range(3)] == [step, step.then, Look()]
    assert life.answered(Look(), near, now=NOW, at=60.0) == step.then  # said once
    assert describe(step.then, "pbs_1") == "keep-alive for pbs_1: Sleep(seconds=30.0)"


# ---- input ------------------------------------------------------------------------------


def test_keep_alive_argument() -> None:
    assert keep_alive_policy(False) is None
    assert keep_alive_policy(None) is None
    assert keep_alive_policy(True) == KeepAlive()
    custom = KeepAlive(margin=5.0, extend_minutes=5)
    assert keep_alive_policy(custom) is custom
    for bad in ("yes", 1, 0, 1.0, object()):
        with pytest.raises(InvalidArgumentTypeError, match="must be a bool or a KeepAlive"):
            keep_alive_policy(bad)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"margin": 0}, InvalidArgumentError, "margin must be a finite number of seconds > 0"),
        ({"margin": -5.0}, InvalidArgumentError, "margin"),
        ({"margin": float("nan")}, InvalidArgumentError, "margin"),
        ({"margin": float("inf")}, InvalidArgumentError, "margin"),
        ({"margin": "300"}, InvalidArgumentTypeError, "margin must be a number of seconds"),
        ({"margin": True}, InvalidArgumentTypeError, "margin"),
        ({"extend_minutes": 0}, InvalidArgumentError, "extend_minutes must be 1..360"),
        ({"extend_minutes": 361}, InvalidArgumentError, "extend_minutes"),
        ({"extend_minutes": 2.5}, InvalidArgumentTypeError, "extend_minutes must be an int"),
        ({"extend_minutes": True}, InvalidArgumentTypeError, "extend_minutes"),
        ({"max_interval": 0.0}, InvalidArgumentError, "max_interval"),
    ],
)
def test_bad_keep_alive_settings(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        KeepAlive(**kwargs)


# ---- the live view's decisions ------------------------------------------------------------


def test_frames_are_throttled_to_max_fps() -> None:
    assert wait_before_showing(5.0, None, 4.0) == 0.0
    assert wait_before_showing(5.0, 5.0, 4.0) == 0.25
    assert wait_before_showing(5.2, 5.0, 4.0) == 0.05
    assert wait_before_showing(5.3, 5.0, 4.0) == 0.0
    # a burst of frames 10 ms apart is shown at 2 fps at most
    shown, now = [], 0.0
    for _ in range(300):
        if wait_before_showing(now, shown[-1] if shown else None, 2.0) == 0.0:
            shown.append(now)
        now += 0.01
    assert len(shown) == 6 and all(b - a >= 0.5 - 1e-9 for a, b in itertools.pairwise(shown))


def test_a_catch_up_is_due_only_when_chromium_may_have_skipped_a_repaint() -> None:
    assert [may_have_dropped(n) for n in range(5)] == [False, False, False, True, True]
    assert quiet_period(1.0) == 1.5  # quiet = no frame for 1.5 frame intervals
    assert quiet_period(30.0) == 0.2


def test_only_a_changed_frame_is_shown() -> None:
    assert frame_changed(None, "x")
    assert not frame_changed("/9j/AAA", "/9j/AAA")
    assert frame_changed("/9j/AAA", "/9j/AAB")


@pytest.mark.parametrize(
    "name", ["skyvern_cdp.lifetime", "skyvern_cdp.notebook_view", "skyvern_cdp.local.registry"]
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
