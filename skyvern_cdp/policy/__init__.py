"""Every decision of the attach path, as pure functions with no I/O.

The async and sync layers only do I/O around these. Each function answers one question:

>>> from skyvern_cdp.policy import poll_delay, readiness, Readiness
>>> round(poll_delay(0.0, jitter=0.0), 3), round(poll_delay(60.0, jitter=0.0), 3)
(0.15, 2.5)
>>> readiness(None) is Readiness.WAITING
True

- Is this session ready, ended, or still coming? How long until the next poll?
  :mod:`.session`: :func:`readiness`, :func:`missing_for_ready`, :func:`poll_delay`,
  :func:`sleep_before_next_poll`, :class:`Deadline`, :func:`validate_session_id`.
- The decisions of one whole wait: :mod:`.waiter` (:class:`Waiter`).
- Is this failure worth another try, and after how long? Has this server ever answered?
  :mod:`.retry`: :func:`is_retryable_api_error`, :func:`is_retryable_create_error`,
  :func:`retry_delay`, :func:`parse_retry_after`, :func:`request_budget` (the bound of a
  whole request), :func:`request_timeout`,
  :func:`gives_up_unreached` (with :data:`UNREACHED_GRACE`).
- Which address to dial, with which headers, which host gets the key, and what did a failed
  attempt mean? :mod:`.cdp`: :func:`cdp_target`, :func:`key_goes_to`,
  :func:`connect_attempt_timeout`, :func:`observe_cdp_failure`, :func:`classify_cdp_failure`.
"""

from __future__ import annotations

from skyvern_cdp.policy.cdp import (
    CONNECT_ATTEMPT_TIMEOUT,
    SESSION_CLOSED_CODE,
    CDPFailure,
    CDPObservation,
    CDPTarget,
    cdp_target,
    classify_cdp_failure,
    connect_attempt_timeout,
    connect_retry_delay,
    key_goes_to,
    observe_cdp_failure,
    same_site,
)
from skyvern_cdp.policy.retry import (
    CONNECT_TIMEOUT,
    MAX_RETRY_AFTER,
    MIN_REQUEST_TIMEOUT,
    READ_TIMEOUT,
    RETRYABLE_STATUS,
    UNREACHED_GRACE,
    connect_timeout_for,
    gives_up_unreached,
    is_no_answer,
    is_retryable_api_error,
    is_retryable_create_error,
    parse_retry_after,
    request_budget,
    request_timeout,
    retry_delay,
    retry_window,
)
from skyvern_cdp.policy.session import (
    FIRST_POLL_DELAY,
    LATE_POLL_DELAY_GROWTH,
    MAX_POLL_DELAY,
    POLL_DELAY_GROWTH,
    POLL_GROWTH_KNEE,
    POLL_JITTER,
    SESSION_ID_MAX_LENGTH,
    SESSION_ID_PREFIX,
    Deadline,
    Readiness,
    describe_not_ready,
    missing_for_ready,
    poll_delay,
    readiness,
    sleep_before_next_poll,
    validate_session_id,
)
from skyvern_cdp.policy.waiter import PollAgain, Waiter, build_reconnect_delay

__all__ = [
    "CONNECT_ATTEMPT_TIMEOUT",
    "CONNECT_TIMEOUT",
    "FIRST_POLL_DELAY",
    "LATE_POLL_DELAY_GROWTH",
    "MAX_POLL_DELAY",
    "MAX_RETRY_AFTER",
    "MIN_REQUEST_TIMEOUT",
    "POLL_DELAY_GROWTH",
    "POLL_GROWTH_KNEE",
    "POLL_JITTER",
    "READ_TIMEOUT",
    "RETRYABLE_STATUS",
    "SESSION_CLOSED_CODE",
    "SESSION_ID_MAX_LENGTH",
    "SESSION_ID_PREFIX",
    "UNREACHED_GRACE",
    "CDPFailure",
    "CDPObservation",
    "CDPTarget",
    "Deadline",
    "PollAgain",
    "Readiness",
    "Waiter",
    "build_reconnect_delay",
    "cdp_target",
    "classify_cdp_failure",
    "connect_attempt_timeout",
    "connect_retry_delay",
    "connect_timeout_for",
    "describe_not_ready",
    "gives_up_unreached",
    "is_no_answer",
    "is_retryable_api_error",
    "is_retryable_create_error",
    "key_goes_to",
    "missing_for_ready",
    "observe_cdp_failure",
    "parse_retry_after",
    "poll_delay",
    "readiness",
    "request_budget",
    "request_timeout",
    "retry_delay",
    "retry_window",
    "same_site",
    "sleep_before_next_poll",
    "validate_session_id",
]
