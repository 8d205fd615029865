"""Keep-alive and live-view decisions, without I/O: remaining lifetime, extensions, schedule."""

from __future__ import annotations

import doctest
import importlib
import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from skyvern_cdp import InvalidArgumentError, InvalidArgumentTypeError
from skyvern_cdp.lifetime import (
    MAX_LIFETIME_MINUTES,
    Capped,
    Extend,
    KeepAlive,
    Lifetime,
    Notify,
    Sleep,
    Stop,
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
