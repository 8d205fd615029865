"""Every decision of the attach path, as pure functions with no I/O.

The async and sync layers only do I/O around these. Each function answers one question:

>>> from skyvern_cdp.policy import poll_delay, readiness, Readiness
>>> round(poll_delay(0.0, jitter=0.0), 3), round(poll_delay(60.0, jitter=0.0), 3)
(0.15, 2.5)
>>> readiness(None) is Readiness.WAITING
True

- Is this session ready, ended, or still coming? :func:`readiness`, :func:`missing_for_ready`,
  and :class:`Waiter` for a whole wait.
- How long until the next poll? :func:`poll_delay`, :func:`sleep_before_next_poll`
- Is this failure worth another try, and after how long? :func:`is_retryable_api_error`,
  :func:`is_retryable_create_error`, :func:`retry_delay`, :func:`parse_retry_after`
- How long may one request or one CDP attempt take? :func:`request_timeout`,
  :func:`connect_attempt_timeout`
- Which address to dial, with which headers? :func:`cdp_target`
- What did Playwright's connect failure mean? :func:`classify_cdp_failure`
"""

from __future__ import annotations

import enum
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import httpx

from skyvern_cdp.config import (
    Settings,
    check_transport,
    host_of,
    is_loopback_host,
    validate_timeout,
)
from skyvern_cdp.errors import APIError, InvalidArgumentError, InvalidArgumentTypeError

if TYPE_CHECKING:
    from skyvern_cdp.models import BrowserSessionResponse

__all__ = [
    "CDPTarget",
    "Deadline",
    "Readiness",
    "cdp_target",
    "classify_cdp_failure",
    "connect_attempt_timeout",
    "is_retryable_api_error",
    "is_retryable_create_error",
    "missing_for_ready",
    "parse_retry_after",
    "poll_delay",
    "readiness",
    "request_timeout",
    "retry_delay",
    "same_site",
    "sleep_before_next_poll",
    "validate_session_id",
]

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


# -- HTTP retries ---------------------------------------------------------------------------

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
#: How long one GET may take: Skyvern's slow GETs (collecting downloads) take about a minute.
READ_TIMEOUT = 65.0
CONNECT_TIMEOUT = 10.0
#: The last request at the deadline still gets this long, so that "poll once more at the
#: deadline" is a real request. It bounds how far past the deadline a call may finish.
MIN_REQUEST_TIMEOUT = 0.5
MAX_RETRY_AFTER = 60.0
_BACKOFF_BASE = 0.2
_BACKOFF_CAP = 5.0

_RETRYABLE_TRANSPORT = (httpx.TransportError,)
#: Errors raised before the request could have reached the server: safe to retry a create.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)


def request_timeout(remaining: float, read_timeout: float = READ_TIMEOUT) -> httpx.Timeout:
    """The timeouts of one request, always inside what is left of the caller's deadline.

    A read that takes longer than ``read_timeout`` is abandoned and retried while the
    deadline allows.
    """
    budget = max(MIN_REQUEST_TIMEOUT, remaining)
    return httpx.Timeout(
        connect=min(CONNECT_TIMEOUT, budget),
        read=min(read_timeout, budget),
        write=min(CONNECT_TIMEOUT, budget),
        pool=min(CONNECT_TIMEOUT, budget),
    )


def is_retryable_api_error(exc: BaseException) -> bool:
    """For idempotent calls (GET, close, list): transport failures and 429/500/502/503/504."""
    if isinstance(exc, APIError):
        return exc.status_code in RETRYABLE_STATUS
    return isinstance(exc, _RETRYABLE_TRANSPORT) and not isinstance(exc, httpx.UnsupportedProtocol)


def is_retryable_create_error(exc: BaseException) -> bool:
    """For create, which must never make two sessions: only when nothing was created.

    That is a failure to connect at all (the request never left), or a 429: the server
    refused the request before doing anything. A timeout, a reset or a 5xx after the
    request was sent may have created a session, so it is not retried.
    """
    if isinstance(exc, APIError):
        return exc.status_code == 429
    return isinstance(exc, _NEVER_SENT) and not isinstance(exc, httpx.UnsupportedProtocol)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), capped at 60."""
    if value is None:
        return None
    value = value.strip()
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if math.isnan(seconds) or seconds < 0:
        return 0.0 if not math.isnan(seconds) else None
    return min(seconds, MAX_RETRY_AFTER)


def retry_delay(
    attempt: int,
    *,
    retry_after: float | None,
    remaining: float,
    rng: random.Random | None = None,
) -> float:
    """Sleep before retry number ``attempt`` (1-based): exponential backoff with full jitter,
    at least the server's ``Retry-After``, and never past the deadline."""
    ceiling = min(_BACKOFF_CAP, _BACKOFF_BASE * (2 ** max(0, attempt - 1)))
    delay = (rng or random).uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return max(0.0, min(delay, remaining))


# -- CDP ------------------------------------------------------------------------------------

#: The first CDP attempt may take this long; later ones get more, up to the cap.
CONNECT_ATTEMPT_TIMEOUT = 5.0
_CONNECT_ATTEMPT_CAP = 20.0


def connect_attempt_timeout(
    attempt: int, remaining: float, first: float = CONNECT_ATTEMPT_TIMEOUT
) -> float:
    """How long CDP attempt number ``attempt`` (1-based) may take: well under the deadline,
    so that a hung first attempt leaves time for a second one."""
    per_attempt = min(_CONNECT_ATTEMPT_CAP, first * 2.0 ** max(0, attempt - 1))
    return max(0.0, min(per_attempt, remaining))


def connect_retry_delay(attempt: int) -> float:
    """Pause between CDP attempts: short, since a ready endpoint usually opens within ms."""
    return float(min(1.0, 0.05 * (2 ** max(0, attempt - 1))))


class CDPFailure(enum.Enum):
    RETRY = "retry"
    SESSION_CLOSED = "session closed"
    REJECTED = "rejected"


_CLOSED_MARKERS = ("4410", "session closed")
_REJECTED = re.compile(r"\b(401|403)\b|unauthori[sz]ed|forbidden", re.IGNORECASE)


def classify_cdp_failure(message: str) -> CDPFailure:
    """What a failed ``connect_over_cdp`` means: try again, the session is over, or the
    endpoint refused our credentials (trying again will not help)."""
    lowered = message.lower()
    if any(marker in lowered for marker in _CLOSED_MARKERS):
        return CDPFailure.SESSION_CLOSED
    if _REJECTED.search(message):
        return CDPFailure.REJECTED
    return CDPFailure.RETRY


def same_site(host_a: str, host_b: str) -> bool:
    """Whether two hosts share a registrable domain (``sessions.skyvern.com`` and
    ``api.skyvern.com``). IP addresses and single-label names match only themselves."""
    a, b = host_a.lower().rstrip("."), host_b.lower().rstrip(".")
    if a == b:
        return True
    if _is_ip(a) or _is_ip(b):
        return False
    labels_a, labels_b = a.split("."), b.split(".")
    if len(labels_a) < 2 or len(labels_b) < 2:
        return False
    # Two-letter country domains with a generic second level (example.co.uk) need three.
    depth = 3 if len(labels_a[-1]) == 2 and labels_a[-2] in _GENERIC_SLDS else 2
    return len(labels_a) >= depth and labels_a[-depth:] == labels_b[-depth:]


_GENERIC_SLDS = frozenset({"co", "com", "net", "org", "gov", "ac", "edu"})


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class CDPTarget:
    """Where to dial and with which headers. ``sends_key`` says whether the key goes along."""

    endpoint: str
    headers: Mapping[str, str]
    sends_key: bool

    def __repr__(self) -> str:
        from skyvern_cdp.config import redact_address

        return f"CDPTarget(endpoint={redact_address(self.endpoint)!r}, sends_key={self.sends_key})"


def cdp_target(
    address: str, settings: Settings, extra_headers: Mapping[str, str] | None = None
) -> CDPTarget:
    """The endpoint to give ``connect_over_cdp`` and its headers.

    The ``#…`` fragment is dropped. The API key goes along only to the API's own host, a host
    of the same registrable domain, or one listed in ``settings.trusted_hosts``; any other host
    is dialled without it.
    """
    parts = urlsplit(address.strip())
    if parts.scheme.lower() not in ("ws", "wss", "http", "https") or not parts.hostname:
        raise InvalidArgumentError("browser_address is not a ws(s):// or http(s):// URL")
    endpoint = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
    headers = dict(extra_headers or {})
    host = host_of(endpoint)
    trusted = (
        host in settings.trusted_hosts
        or same_site(host, settings.api_host)
        or (is_loopback_host(host) and host == settings.api_host)
    )
    sends_key = bool(settings.api_key) and trusted
    if sends_key and settings.api_key:
        check_transport(endpoint, settings)
        headers["x-api-key"] = settings.api_key
    return CDPTarget(endpoint=endpoint, headers=headers, sends_key=sends_key)


# -- the waiter -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PollAgain:
    """Sleep this long, then poll again."""

    sleep: float


class Waiter:
    """The decisions of one wait, fed with each poll's answer; the shells do the I/O.

    >>> w = Waiter("pbs_1", Deadline(10.0))
    >>> isinstance(w.observe(None), PollAgain)
    True

    :meth:`observe` returns the ready session, a :class:`PollAgain`, or raises
    :class:`~skyvern_cdp.errors.SessionEndedError` /
    :class:`~skyvern_cdp.errors.SessionNotReadyError`.
    """

    def __init__(
        self,
        session_id: str,
        deadline: Deadline,
        on_status: Callable[[BrowserSessionResponse], object] | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.session_id = session_id
        self.deadline = deadline
        self.on_status = on_status
        self.last: BrowserSessionResponse | None = None
        self.last_failure: BaseException | None = None
        self.polls = 0
        self._rng = rng
        self._status_seen: object = object()

    def observe(self, session: BrowserSessionResponse | None) -> BrowserSessionResponse | PollAgain:
        from skyvern_cdp.errors import SessionEndedError

        self.polls += 1
        if session is not None:
            self.last = session
            if session.status != self._status_seen:
                self._status_seen = session.status
                if self.on_status is not None:
                    self.on_status(session)
        state = readiness(self.last)
        if state is Readiness.READY:
            assert self.last is not None
            return self.last
        if state is Readiness.ENDED:
            assert self.last is not None
            raise SessionEndedError(
                f"session {self.session_id} has ended (status {self.last.status!r}); it cannot"
                " be attached to: create a new one",
                session_id=self.session_id,
                session=self.last,
            )
        sleep = sleep_before_next_poll(
            poll_delay(self.deadline.elapsed(), rng=self._rng), self.deadline.remaining()
        )
        if sleep is None:
            raise self.timed_out()
        return PollAgain(sleep)

    def note_failure(self, failure: BaseException) -> None:
        """Remember a failed poll, so that a timeout can say why the API gave no answer."""
        self.last_failure = failure

    def timed_out(self, cause: BaseException | None = None) -> Exception:
        """The error for a wait whose deadline passed (``cause``: the last failure, if any)."""
        from skyvern_cdp.errors import SessionNotReadyError

        cause = cause or self.last_failure
        message = describe_not_ready(self.last, self.deadline.elapsed())
        if cause is not None and self.last is None:
            message = (
                f"session {self.session_id} was not ready within"
                f" {self.deadline.elapsed():.1f}s: the API kept failing ({cause})"
            )
        return SessionNotReadyError(
            message,
            session_id=self.session_id,
            session=self.last,
            missing=missing_for_ready(self.last),
        )


def build_reconnect_delay(failures: int, rng: random.Random | None = None) -> float:
    """Pause before reattaching after ``failures`` failed rounds in a row (reconnecting form)."""
    ceiling = min(10.0, 0.5 * 2.0 ** max(0, failures - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)
