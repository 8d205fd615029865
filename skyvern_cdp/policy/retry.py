"""Decisions about HTTP failures, no I/O: is this failure worth another try, after how long,
and how long may one request take.

>>> from skyvern_cdp.policy.retry import parse_retry_after, retry_delay
>>> parse_retry_after("3")
3.0
>>> retry_delay(1, retry_after=2.0, remaining=1.5)
1.5
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx

from skyvern_cdp.errors import APIError

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


def request_budget(remaining: float) -> float:
    """How long the next request may take in all, bytes of its answer included: what is left
    of the caller's deadline, and at least :data:`MIN_REQUEST_TIMEOUT` (the last poll at the
    deadline is a real request). Both clients bound each request by it, so a call ends within
    ``MIN_REQUEST_TIMEOUT`` of its deadline however slowly a server answers.

    >>> request_budget(3.0), request_budget(0.0)
    (3.0, 0.5)
    """
    return max(MIN_REQUEST_TIMEOUT, remaining)


def request_timeout(
    remaining: float, read_timeout: float = READ_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT
) -> httpx.Timeout:
    """The timeouts of one request, always inside what is left of the caller's deadline.

    A read that takes longer than ``read_timeout`` is abandoned and retried while the
    deadline allows.
    """
    budget = request_budget(remaining)
    return httpx.Timeout(
        connect=min(connect_timeout, budget),
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


# -- a server that has never answered ------------------------------------------------------

#: How long (seconds) a server that has never answered in this process is tried before the
#: call gives up with :class:`~skyvern_cdp.errors.APIUnreachableError`: long enough for a
#: server that is still starting (a local backend, a restart in progress), short enough that
#: a mistyped base URL fails in seconds instead of at the caller's deadline. A server that
#: has answered once is retried through its outages until the deadline.
UNREACHED_GRACE = 5.0

#: Failures that prove nothing ever answered: refused, unresolvable name, TLS handshake
#: failed, no TCP connection within the connect timeout.
_NO_ANSWER = (httpx.ConnectError, httpx.ConnectTimeout)


def is_no_answer(exc: BaseException) -> bool:
    """Whether a failure means the server did not answer at all (nothing was exchanged).

    >>> is_no_answer(httpx.ConnectError("[Errno 111] Connection refused"))
    True
    >>> is_no_answer(httpx.ReadTimeout("slow"))
    False
    """
    return isinstance(exc, _NO_ANSWER)


def gives_up_unreached(
    exc: BaseException, *, ever_answered: bool, trying_for: float, grace: float = UNREACHED_GRACE
) -> bool:
    """Whether to stop retrying now: the server has never answered in this process, this
    failure is one more non-answer, and the call has tried for ``grace`` seconds already.

    >>> refused = httpx.ConnectError("refused")
    >>> gives_up_unreached(refused, ever_answered=False, trying_for=5.2)
    True
    >>> gives_up_unreached(refused, ever_answered=False, trying_for=1.0)  # may be starting
    False
    >>> gives_up_unreached(refused, ever_answered=True, trying_for=60.0)  # an outage: retry
    False
    """
    return not ever_answered and is_no_answer(exc) and trying_for >= grace


def connect_timeout_for(
    *, ever_answered: bool, trying_for: float, grace: float = UNREACHED_GRACE
) -> float:
    """The TCP/TLS connect limit of the next request: the usual one to a server that has
    answered; to one that never has, no more than what is left of the grace, so that a host
    that drops packets is given up on as soon as one that refuses them.

    >>> connect_timeout_for(ever_answered=True, trying_for=0.0)
    10.0
    >>> connect_timeout_for(ever_answered=False, trying_for=4.0)
    1.0
    """
    if ever_answered:
        return CONNECT_TIMEOUT
    return max(MIN_REQUEST_TIMEOUT, min(CONNECT_TIMEOUT, grace - trying_for))


def retry_window(
    exc: BaseException | None,
    remaining: float,
    *,
    ever_answered: bool,
    trying_for: float,
    grace: float = UNREACHED_GRACE,
) -> float:
    """How long the pause before the next try may be: up to the deadline; after a
    non-answer from a server that never answered, no later than the end of its grace, so
    that the last try is made *at* the grace rather than a backoff step past it.

    >>> retry_window(httpx.ConnectError("refused"), 100.0, ever_answered=False, trying_for=4.5)
    0.5
    >>> retry_window(httpx.ConnectError("refused"), 100.0, ever_answered=True, trying_for=4.5)
    100.0
    """
    if ever_answered or exc is None or not is_no_answer(exc):
        return remaining
    return max(0.0, min(remaining, grace - trying_for))
