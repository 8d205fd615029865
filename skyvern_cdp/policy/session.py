"""Decisions about one session and one wait, no I/O: is this id valid, is the session ready or
over, how long until the next poll, how much time is left.

>>> from skyvern_cdp.policy.session import Deadline, Readiness, poll_delay, readiness
>>> round(poll_delay(0.0, jitter=0.0), 3), round(poll_delay(60.0, jitter=0.0), 3)
(0.15, 2.5)
>>> readiness(None) is Readiness.WAITING
True
>>> Deadline(5.0, clock=lambda: 100.0).remaining()
5.0
"""

from __future__ import annotations

import enum
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from skyvern_cdp.config import validate_timeout
from skyvern_cdp.errors import InvalidArgumentError, InvalidArgumentTypeError

if TYPE_CHECKING:
    from skyvern_cdp.models import BrowserSessionResponse

# -- input ----------------------------------------------------------------------------------

SESSION_ID_PREFIX = "pbs_"
SESSION_ID_MAX_LENGTH = 128
_SESSION_ID_CHARS = re.compile(r"[A-Za-z0-9_-]+")


def validate_session_id(value: object) -> str:
    """Check a session id before it goes into a URL: ``pbs_`` + ``[A-Za-z0-9_-]``, ≤ 128 chars.

    >>> validate_session_id("pbs_123456")
    'pbs_123456'
    """
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(
            f"session id must be a str like 'pbs_123', not {type(value).__name__}"
        )
    if not value:
        raise InvalidArgumentError("session id must not be empty (it looks like 'pbs_123')")
    shown = value[:40] + ("…" if len(value) > 40 else "")
    if len(value) > SESSION_ID_MAX_LENGTH:
        raise InvalidArgumentError(
            f"session id is {len(value)} characters long; at most {SESSION_ID_MAX_LENGTH} allowed"
        )
    if not value.startswith(SESSION_ID_PREFIX):
        raise InvalidArgumentError(f"session id must start with 'pbs_' (got {shown!r})")
    if not _SESSION_ID_CHARS.fullmatch(value) or len(value) == len(SESSION_ID_PREFIX):
        raise InvalidArgumentError(
            f"session id may contain only letters, digits, '_' and '-' after 'pbs_' (got {shown!r})"
        )
    return value


# -- time -----------------------------------------------------------------------------------


@dataclass
class Deadline:
    """One overall deadline, created once and passed down (never re-derived per phase).

    >>> d = Deadline(5.0, clock=lambda: 100.0)
    >>> d.remaining(), d.expired
    (5.0, False)
    """

    seconds: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.seconds = validate_timeout(self.seconds)
        self.started = self.clock()

    @property
    def at(self) -> float:
        return self.started + self.seconds

    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0


# -- readiness ------------------------------------------------------------------------------


class Readiness(enum.Enum):
    """What a poll's answer means for the waiter."""

    READY = "ready"
    ENDED = "ended"
    WAITING = "waiting"


def missing_for_ready(session: BrowserSessionResponse | None) -> tuple[str, ...]:
    """What the session lacks to be dialled: ``status``, ``browser_address``, ``started_at``."""
    if session is None:
        return ("status", "browser_address", "started_at")
    missing = []
    if session.status != "running":
        missing.append("status")
    if not session.browser_address:
        missing.append("browser_address")
    if session.started_at is None:
        missing.append("started_at")
    return tuple(missing)


def readiness(session: BrowserSessionResponse | None) -> Readiness:
    """``READY`` to dial, ``ENDED`` for good, or ``WAITING`` (``created``, ``retry``, unknown)."""
    if session is None:
        return Readiness.WAITING
    if session.is_final:
        return Readiness.ENDED
    return Readiness.READY if session.is_ready else Readiness.WAITING


def describe_not_ready(session: BrowserSessionResponse | None, waited: float) -> str:
    """The message of a wait that ran out: what was missing, and what to do."""
    if session is None:
        return (
            f"no answer about the session within {waited:.1f}s; check the base URL and the"
            " network, or pass a longer timeout="
        )
    missing = missing_for_ready(session)
    status = session.status or "unknown"
    if session.status == "running" and "browser_address" in missing:
        return (
            f"session {session.browser_session_id} is running but its server never set a"
            f" browser_address (waited {waited:.1f}s); this server does not expose CDP for it"
            " (a self-hosted Skyvern in cdp-connect mode does this)"
        )
    return (
        f"session {session.browser_session_id} was not ready within {waited:.1f}s (status"
        f" {status!r}; missing: {', '.join(missing)}); pass a longer timeout= or check the"
        " session's app_url"
    )


# -- polling --------------------------------------------------------------------------------

#: The first re-poll comes this soon after the first GET ...
FIRST_POLL_DELAY = 0.15
#: ... the delay grows by this many seconds per second waited, for the first few seconds
#: (most sessions get ready then: they are seen within about 0.2 s) ...
POLL_DELAY_GROWTH = 0.12
POLL_GROWTH_KNEE = 3.0
#: ... then faster, up to the cap. A 20 s wait costs about 23 GETs, a minute about 39.
LATE_POLL_DELAY_GROWTH = 0.4
MAX_POLL_DELAY = 2.5
#: Each delay is spread by up to ±this fraction, so that many waiters do not poll in step.
POLL_JITTER = 0.1


def poll_delay(
    elapsed: float, *, jitter: float | None = None, rng: random.Random | None = None
) -> float:
    """How long to sleep before the next poll, having waited ``elapsed`` seconds so far.

    Fast at first (a session that is nearly ready is seen at once), growing with the time
    already waited, gently for the first seconds and then faster, to a cap: the expected
    lag past readiness stays a fraction of the time waited, and a long wait costs few
    requests.
    """
    waited = max(0.0, elapsed)
    base = FIRST_POLL_DELAY + POLL_DELAY_GROWTH * min(waited, POLL_GROWTH_KNEE)
    base += LATE_POLL_DELAY_GROWTH * max(0.0, waited - POLL_GROWTH_KNEE)
    base = min(MAX_POLL_DELAY, base)
    spread = POLL_JITTER if jitter is None else jitter
    if spread:
        base *= 1.0 + (rng or random).uniform(-spread, spread)
    return max(0.0, min(base, MAX_POLL_DELAY))


def sleep_before_next_poll(delay: float, remaining: float) -> float | None:
    """How long to sleep before polling again, or ``None`` when the deadline has passed.

    Never sleeps past the deadline: when the next poll would land after it, poll once more
    *at* the deadline instead of giving up early.
    """
    if remaining <= 0.0:
        return None
    return min(delay, remaining)
