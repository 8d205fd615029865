"""A session's remaining lifetime and keep-alive decisions, as pure functions with no I/O.

>>> from datetime import datetime, timezone
>>> from skyvern_cdp.lifetime import KeepAlive, Lifetime, remaining_lifetime
>>> from skyvern_cdp.models import BrowserSessionResponse
>>> session = BrowserSessionResponse.model_validate({
...     "browser_session_id": "pbs_1", "organization_id": "o_1", "status": "running",
...     "timeout": 60, "started_at": "2026-11-28T15:00:00+00:00",
...     "created_at": "2026-11-28T15:00:00+00:00", "modified_at": "2026-11-28T15:00:00+00:00"})
>>> remaining_lifetime(session, now=datetime(2026, 11, 28, 15, 57, tzinfo=timezone.utc))
180.0
>>> life = Lifetime(KeepAlive(margin=300.0, extend_minutes=10))
>>> life.observe(session, remaining=180.0, at=0.0)
Extend(minutes=10)

The keepers (:mod:`skyvern_cdp.keeper`: asyncio; :mod:`skyvern_cdp.keeper_thread`: a
background thread) only do I/O around a :class:`Lifetime`: they ask it what to do next
(:meth:`Lifetime.next_action`: look, extend, notify, sleep, or end), do it, and hand what a
request answered (the session, or the exception it raised) back to :meth:`Lifetime.answered`:

>>> from skyvern_cdp.errors import SessionNotFoundError
>>> life = Lifetime(KeepAlive())
>>> life.next_action()
Look()
>>> from skyvern_cdp.lifetime import Look
>>> life.answered(Look(), TimeoutError("slow"), now=datetime.now(timezone.utc), at=10.0)
Sleep(seconds=15.0)
>>> life.next_action(), life.next_action()
(Sleep(seconds=15.0), Look())
>>> life.answered(Look(), SessionNotFoundError("gone"), now=datetime.now(timezone.utc), at=30)
Stop(reason='the session is not found')

- How long does the session have left? :func:`remaining_lifetime` — the server's
  ``remaining_lifetime_seconds`` when it sends one (the self-hosted server does), else
  ``started_at + timeout`` minutes.
- May it be extended, and by how much? :func:`extension_minutes` (360 minutes in all).
- When to look again? :func:`next_check_delay` (sooner as the end nears) and
  :func:`retry_delay` (after a failure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from skyvern_cdp.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    SessionNotFoundError,
)

if TYPE_CHECKING:
    from skyvern_cdp.models import BrowserSessionResponse

__all__ = [
    "MAX_LIFETIME_MINUTES",
    "NOTICE_MARGIN",
    "Action",
    "Capped",
    "Extend",
    "KeepAlive",
    "Lifetime",
    "Look",
    "Notify",
    "Sleep",
    "Step",
    "Stop",
    "describe",
    "extension_minutes",
    "keep_alive_policy",
    "next_check_delay",
    "remaining_lifetime",
    "retry_delay",
]

#: A session's lifetime is capped at this many minutes in all, extensions included.
MAX_LIFETIME_MINUTES = 360
#: A notebook says so once an attached session without keep-alive has less than this left.
NOTICE_MARGIN = 300.0


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentTypeError(
            f"{name} must be a number of seconds, not {type(value).__name__}"
        )
    number = float(value)
    if math.isnan(number) or math.isinf(number) or number <= 0:
        raise InvalidArgumentError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return number


@dataclass(frozen=True)
class KeepAlive:
    """How a session is kept alive: ``keep_alive=KeepAlive(...)`` (``True`` means the defaults).

    >>> KeepAlive().margin, KeepAlive().extend_minutes
    (300.0, 10)

    - ``margin``: extend once fewer than this many seconds of life are left.
    - ``extend_minutes``: minutes asked for per extension (the last one up to the cap is less).
    - ``max_interval``: the longest wait between two looks at the session, in seconds.
    """

    margin: float = 300.0
    extend_minutes: int = 10
    max_interval: float = 300.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "margin", _positive(self.margin, "margin"))
        object.__setattr__(self, "max_interval", _positive(self.max_interval, "max_interval"))
        minutes = self.extend_minutes
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            raise InvalidArgumentTypeError(
                f"extend_minutes must be an int, not {type(minutes).__name__}"
            )
        if not 1 <= minutes <= MAX_LIFETIME_MINUTES:
            raise InvalidArgumentError(
                f"extend_minutes must be 1..{MAX_LIFETIME_MINUTES}, got {minutes!r}"
            )

    @property
    def min_interval(self) -> float:
        """The shortest wait between two looks while nothing is wrong: a tenth of the margin."""
        return self.margin / 10


def keep_alive_policy(value: object) -> KeepAlive | None:
    """The policy a ``keep_alive=`` argument asks for: ``None`` for off.

    >>> keep_alive_policy(False) is None, keep_alive_policy(True) == KeepAlive()
    (True, True)
    """
    if value is None or value is False:
        return None
    if value is True:
        return KeepAlive()
    if isinstance(value, KeepAlive):
        return value
    raise InvalidArgumentTypeError(
        f"keep_alive must be a bool or a KeepAlive, not {type(value).__name__}"
    )


def remaining_lifetime(session: BrowserSessionResponse, *, now: datetime) -> float | None:
    """Seconds of life the session has left as of ``now`` (a zone-aware UTC time).

    ``remaining_lifetime_seconds`` when the server sent it, else ``started_at`` plus
    ``timeout`` minutes; ``None`` when neither can be known (not started yet). A final
    session has 0 left.
    """
    if session.is_final:
        return 0.0
    extra = session.model_extra or {}
    sent = extra.get("remaining_lifetime_seconds")
    if isinstance(sent, (int, float)) and not isinstance(sent, bool) and math.isfinite(sent):
        return max(0.0, float(sent))
    if session.started_at is None or session.timeout is None:
        return None
    ends = session.started_at.timestamp() + session.timeout * 60.0
    return max(0.0, ends - now.timestamp())


def extension_minutes(timeout: int | None, policy: KeepAlive) -> int:
    """Minutes to ask for now, given the session's ``timeout`` and the 360-minute cap.

    >>> extension_minutes(60, KeepAlive()), extension_minutes(355, KeepAlive())
    (10, 5)
    >>> extension_minutes(360, KeepAlive())
    0
    """
    if timeout is None:
        return policy.extend_minutes  # unknown: ask, and let the server cap it
    return max(0, min(policy.extend_minutes, MAX_LIFETIME_MINUTES - timeout))


def next_check_delay(remaining: float | None, policy: KeepAlive) -> float:
    """Seconds until the next look: half the time left before the margin, sooner as it nears.

    >>> p = KeepAlive(margin=300.0, max_interval=300.0)
    >>> next_check_delay(3600.0, p), next_check_delay(400.0, p), next_check_delay(310.0, p)
    (300.0, 50.0, 10.0)
    >>> next_check_delay(200.0, p)
    0.0
    """
    if remaining is None:
        return min(policy.max_interval, policy.margin / 2)  # not started: look again soon
    slack = remaining - policy.margin
    if slack <= 0:
        return 0.0
    return min(slack, max(policy.min_interval, min(policy.max_interval, slack / 2)))


def retry_delay(failures: int, remaining: float | None, policy: KeepAlive) -> float:
    """Seconds before retrying after ``failures`` failed looks or extensions in a row.

    Doubles from a twentieth of the margin, but never waits past a quarter of the time left.

    >>> p = KeepAlive(margin=300.0)
    >>> retry_delay(1, 280.0, p), retry_delay(2, 280.0, p), retry_delay(9, 40.0, p)
    (15.0, 30.0, 10.0)
    """
    base = policy.margin / 20 * 2.0 ** min(max(failures, 1) - 1, 16)
    delay = min(base, policy.max_interval)
    if remaining is not None:
        delay = min(delay, max(policy.margin / 100, remaining / 4))
    return delay


# -- the whole decision, step by step ------------------------------------------------------


@dataclass(frozen=True)
class Sleep:
    """Look again after ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Extend:
    """Ask the server for ``minutes`` more now."""

    minutes: int


@dataclass(frozen=True)
class Notify:
    """Tell the user (once) that ``remaining`` seconds are left; then look again."""

    remaining: float
    then: Sleep


@dataclass(frozen=True)
class Capped:
    """The 360-minute cap is reached: warn once and stop (no extension can help)."""

    remaining: float


@dataclass(frozen=True)
class Stop:
    """Nothing more to do: the session has ended."""

    reason: str


Step = Sleep | Extend | Notify | Capped | Stop


@dataclass(frozen=True)
class Look:
    """Look at the session now (a GET); its answer goes to :meth:`Lifetime.answered`."""


#: What a keeper does next (:meth:`Lifetime.next_action`).
Action = Look | Step


@dataclass
class Lifetime:
    """One session's keep-alive state; the keepers feed it answers and do what it returns.

    With ``extend=False`` it never extends: it returns :class:`Notify` once when fewer than
    ``policy.margin`` seconds are left (again only after the session got more time).

    Times (``at``) are monotonic seconds: the end is remembered as ``at + remaining``, so a
    later step needs no new answer to know how long is left.

    A keeper's loop: ``action = next_action()``, then do it — :class:`Look`: GET the session,
    :class:`Extend`: ask for the minutes, and hand the answer to :meth:`answered`;
    :class:`Notify`: tell the user; :class:`Sleep`: wait; :class:`Capped` or :class:`Stop`:
    log :func:`describe` and end. The session an attach has just fetched is handed to
    :meth:`answered` (as a :class:`Look`'s answer) before the loop: it needs no request.
    """

    policy: KeepAlive
    extend: bool = True
    ends_at: float | None = None
    failures: int = 0
    extensions: int = 0
    notified: bool = False
    capped: bool = False
    last_timeout: int | None = field(default=None)
    #: What :meth:`next_action` returns: the last step decided, or a look.
    pending: Action = field(default=Look())

    def remaining_at(self, at: float) -> float | None:
        return None if self.ends_at is None else max(0.0, self.ends_at - at)

    def observe(
        self, session: BrowserSessionResponse, *, remaining: float | None, at: float
    ) -> Step:
        """What to do after seeing ``session`` (fetched at monotonic time ``at``)."""
        self.last_timeout = session.timeout
        if session.is_final:
            return Stop(f"the session is {session.status}")
        self.ends_at = None if remaining is None else at + remaining
        if remaining is None or remaining > self.policy.margin:
            self.failures = 0
            self.notified = False
            return Sleep(next_check_delay(remaining, self.policy))
        if not self.extend:
            self.failures = 0
            wait = Sleep(max(self.policy.min_interval, next_check_delay(remaining, self.policy)))
            if self.notified:
                return wait
            self.notified = True
            return Notify(remaining, wait)
        minutes = extension_minutes(session.timeout, self.policy)
        if minutes <= 0:
            self.capped = True
            return Capped(remaining)
        return Extend(minutes)

    def extended(
        self, session: BrowserSessionResponse, *, remaining: float | None, at: float
    ) -> Step:
        """What to do after an extension answered with ``session``."""
        self.extensions += 1
        self.failures = 0
        step = self.observe(session, remaining=remaining, at=at)
        if isinstance(step, Extend):
            # Still within the margin after an extension: the margin is longer than one step.
            # Do not spin; look again after a short pause (the next look extends again).
            return Sleep(self.policy.min_interval)
        return step

    def failed(self, *, at: float) -> Sleep:
        """A look or an extension failed: when to retry."""
        self.failures += 1
        return Sleep(retry_delay(self.failures, self.remaining_at(at), self.policy))

    def next_action(self) -> Action:
        """What the keeper does now (see the class docstring); always the same until told more.

        After a :class:`Notify` comes its :class:`Sleep`, after a :class:`Sleep` a
        :class:`Look`; a :class:`Look` or an :class:`Extend` stays until its answer is handed
        to :meth:`answered`; :class:`Capped` and :class:`Stop` stay.
        """
        action = self.pending
        if isinstance(action, Notify):
            self.pending = action.then
        elif isinstance(action, Sleep):
            self.pending = Look()
        return action

    def answered(
        self,
        action: Look | Extend,
        answer: BrowserSessionResponse | Exception,
        *,
        now: datetime,
        at: float,
        asked_at: float | None = None,
    ) -> Step:
        """What to do after the request for ``action`` answered ``answer``: the session, or
        the exception it raised (:meth:`next_action` returns it from now on).

        ``now`` (wall clock, UTC) and ``at`` (monotonic) are when the answer came;
        ``asked_at`` (monotonic, default ``at``) is when the request was sent: the end is
        counted from then, the safe side. :class:`~skyvern_cdp.errors.SessionNotFoundError`
        stops; any other exception is retried (:meth:`failed`); a session goes to
        :meth:`observe` after a :class:`Look`, to :meth:`extended` after an :class:`Extend`.
        """
        step: Step
        if isinstance(answer, SessionNotFoundError):
            step = Stop("the session is not found")
        elif isinstance(answer, Exception):
            step = self.failed(at=at)
        else:
            remaining = remaining_lifetime(answer, now=now)
            sent = at if asked_at is None else asked_at
            if isinstance(action, Extend):
                step = self.extended(answer, remaining=remaining, at=sent)
            else:
                step = self.observe(answer, remaining=remaining, at=sent)
        self.pending = step
        return step


def describe(step: Step, session_id: str) -> str:
    """One log line for a step that ends a keeper.

    >>> describe(Capped(200.0), "pbs_1")
    'session pbs_1 reached the 360-minute cap: it cannot be extended any more and ends in 200 s'
    >>> describe(Stop("the session is not found"), "pbs_1")
    'keep-alive for pbs_1 stops: the session is not found'
    """
    if isinstance(step, Capped):
        return (
            f"session {session_id} reached the 360-minute cap: it cannot be extended any more"
            f" and ends in {step.remaining:.0f} s"
        )
    if isinstance(step, Stop):
        return f"keep-alive for {session_id} stops: {step.reason}"
    return f"keep-alive for {session_id}: {step}"
