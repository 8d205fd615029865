"""What the async and sync shells share about one attached Browser: its record, and the
text of the errors of the connect phase. No I/O here."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skyvern_cdp._client_base import build_create_body
from skyvern_cdp.config import Settings, redact_address, redact_text, validate_timeout
from skyvern_cdp.errors import (
    CDPConnectError,
    CDPConnectTimeoutError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    SessionClosedError,
)
from skyvern_cdp.models import BrowserSessionResponse
from skyvern_cdp.policy import (
    CDPFailure,
    CDPTarget,
    Deadline,
    cdp_target,
    classify_cdp_failure,
    connect_attempt_timeout,
    connect_retry_delay,
)
from skyvern_cdp.policy.profiles import ProfileRef, profile_ref

logger = logging.getLogger("skyvern_cdp.attach")

#: Overall deadline of ``connect`` / ``launch`` (wait + connect), in seconds.
DEFAULT_TIMEOUT = 120.0
#: How long teardown (disconnect, closing a launched session) may take.
DEFAULT_CLOSE_TIMEOUT = 10.0

#: ``connect_over_cdp`` options the helper sets itself.
_RESERVED_OPTIONS = frozenset({"endpoint_url", "timeout"})


@dataclass
class AttachOptions:
    """Checked arguments of ``connect`` / ``launch``: validated once, before any request."""

    timeout: float
    connect_attempt_timeout: float
    close_timeout: float
    playwright_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def check(
        cls,
        *,
        timeout: object,
        connect_attempt_timeout: object,
        close_timeout: object,
        playwright_options: dict[str, Any],
    ) -> AttachOptions:
        reserved = _RESERVED_OPTIONS & playwright_options.keys()
        if reserved:
            raise InvalidArgumentError(
                f"{', '.join(sorted(reserved))} cannot be passed to connect_over_cdp here:"
                " timeout= is the overall deadline in seconds"
            )
        headers = playwright_options.get("headers")
        if headers is not None and not isinstance(headers, dict):
            raise InvalidArgumentTypeError("headers must be a dict of str to str")
        return cls(
            timeout=validate_timeout(timeout, "timeout"),
            connect_attempt_timeout=validate_timeout(
                connect_attempt_timeout, "connect_attempt_timeout"
            ),
            close_timeout=validate_timeout(close_timeout, "close_timeout"),
            playwright_options=dict(playwright_options),
        )


def check_launch(
    *,
    timeout: object,
    connect_attempt_timeout: object,
    close_timeout: object,
    playwright_options: object,
    session_timeout_minutes: int | None,
    create_fields: Mapping[str, Any],
) -> AttachOptions:
    """Check everything a ``launch`` was given, before it creates anything: a typo in a
    create field fails here, not after a session was made."""
    if playwright_options is not None and not isinstance(playwright_options, dict):
        raise InvalidArgumentTypeError("playwright_options must be a dict")
    options = AttachOptions.check(
        timeout=timeout,
        connect_attempt_timeout=connect_attempt_timeout,
        close_timeout=close_timeout,
        playwright_options=playwright_options or {},
    )
    build_create_body(session_timeout_minutes, dict(create_fields))
    return options


def check_profile(browser_profile: object, create_fields: Mapping[str, Any]) -> ProfileRef | None:
    """``launch(browser_profile=…)``: a ``bp_`` id or a name, checked before any request (a
    name is resolved once, through the list, inside the launch's deadline)."""
    if browser_profile is None:
        return None
    if create_fields.get("browser_profile_id") is not None:
        raise InvalidArgumentError(
            "give browser_profile= (an id or a name) or browser_profile_id=, not both"
        )
    return profile_ref(browser_profile)


def with_profile(fields: Mapping[str, Any], profile_id: str | None) -> dict[str, Any]:
    """The create fields with the resolved profile id (when there is one)."""
    return {**fields, "browser_profile_id": profile_id} if profile_id else dict(fields)


def dial_target(
    session: BrowserSessionResponse, settings: Settings, options: AttachOptions
) -> CDPTarget:
    """Where to dial for this session, logging (without secrets) whether the key goes along."""
    assert session.browser_address is not None
    target = cdp_target(
        session.browser_address, settings, options.playwright_options.get("headers")
    )
    if settings.api_key and not target.sends_key:
        logger.warning(
            "not sending the API key to %s: its host is not the API's (%s) nor in trusted_hosts",
            redact_address(target.endpoint),
            settings.api_host,
        )
    return target


def connect_kwargs(
    target: CDPTarget, options: AttachOptions, attempt_timeout: float
) -> dict[str, Any]:
    kwargs = {k: v for k, v in options.playwright_options.items() if k != "headers"}
    kwargs["headers"] = dict(target.headers)
    kwargs["timeout"] = attempt_timeout * 1000.0
    return kwargs


def failure_text(exc: BaseException, target: CDPTarget, settings: Settings) -> str:
    """Playwright's message with the endpoint, its tokens and the key taken out."""
    text = str(exc).replace(target.endpoint, redact_address(target.endpoint))
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return redact_text(first_line, settings.secrets)[:300]


def failure_error(
    kind: CDPFailure, text: str, session: BrowserSessionResponse
) -> CDPConnectError | None:
    """The error to raise at once for a CDP failure, or ``None`` to try again."""
    sid = session.browser_session_id
    if kind is CDPFailure.SESSION_CLOSED:
        return SessionClosedError(
            f"session {sid} is closed: its CDP endpoint answered 4410 'session closed';"
            " create a new session",
            session=session,
        )
    if kind is CDPFailure.REJECTED:
        return CDPConnectError(
            f"the CDP endpoint of session {sid} refused the connection ({text}); check the API"
            " key, and trusted_hosts= if the address is on another host",
            session=session,
        )
    return None


class CreateGuard:
    """Who closes a session whose create answered after its caller gave up (an interrupt, a
    cancellation, ``SystemExit``), in both shells: the request runs apart from the caller
    (a task, a thread) and whichever side learns the new session's id last closes it.

    >>> guard = CreateGuard()
    >>> guard.abandon() is None   # given up before the answer: the request side closes it
    True
    >>> guard.made("pbs_1")       # ... and is told so when the answer comes
    True

    The side that gave up waits for the request side at most :meth:`wait_for` seconds (its
    answer, then its close), so that the close is sent before the process ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abandoned = False
        self._made: object = None

    def made(self, session: object) -> bool:
        """The request answered with ``session``: whether the caller gave up (close it now)."""
        with self._lock:
            self._made = session
            return self._abandoned

    def abandon(self) -> object:
        """The caller gave up: the session to close now, or ``None`` if the request has not
        answered yet (then :meth:`made` will say to close it)."""
        with self._lock:
            self._abandoned = True
            return self._made

    @staticmethod
    def wait_for(close_timeout: float) -> float:
        """How long the caller that gave up waits for the request side: its answer and its
        close, each bounded by ``close_timeout``."""
        return 2 * close_timeout


class Teardown:
    """The steps of one Browser's teardown, in order, and which are done: a step that an
    interrupt cut short stays to do, so a second ``close()`` finishes the job (the session
    still ends, the Browser is still disconnected). One deadline, ``close_timeout``, bounds
    one ``close()`` in all.

    >>> t = Teardown(owns_session=True, owns_client=True)
    >>> t.todo()
    ['disconnect', 'close_session', 'close_client', 'release']
    >>> t.done("disconnect"); t.todo()
    ['close_session', 'close_client', 'release']

    The client is closed only once the session is (it is what closes it).
    """

    def __init__(self, *, owns_session: bool, owns_client: bool) -> None:
        self._left = ["disconnect"]
        if owns_session:
            self._left.append("close_session")
        if owns_client:
            self._left.append("close_client")
        self._left.append("release")

    def todo(self) -> list[str]:
        """The steps still to do, in order."""
        return list(self._left)

    def done(self, step: str) -> None:
        if step in self._left:
            self._left.remove(step)

    def may(self, step: str) -> bool:
        """Whether ``step`` may run now (the client only after the session is closed)."""
        return not (step == "close_client" and "close_session" in self._left)

    @property
    def finished(self) -> bool:
        return not self._left


@dataclass(frozen=True)
class DriverStats:
    """How many Playwright drivers were started (per event loop, or per thread in the sync
    API), whether one runs now, and how many Browsers hold it."""

    started: int
    running: bool
    references: int


class Dialer:
    """The decisions of the CDP phase: each attempt's endpoint, headers and time limit, and
    what a failed attempt means. The shells only call ``connect_over_cdp``::

        dialer = Dialer(session, settings, options, deadline)
        while True:
            endpoint, kwargs = dialer.next_attempt()   # raises once the deadline has passed
            try:
                return connect_over_cdp(endpoint, **kwargs)
            except PlaywrightError as exc:
                sleep(dialer.failed(exc))              # raises when retrying cannot help
    """

    def __init__(
        self,
        session: BrowserSessionResponse,
        settings: Settings,
        options: AttachOptions,
        deadline: Deadline,
    ) -> None:
        self.session = session
        self.settings = settings
        self.options = options
        self.deadline = deadline
        self.target = dial_target(session, settings, options)
        self.attempts = 0
        self.budget = 0.0
        self.last = ""

    def next_attempt(self) -> tuple[str, dict[str, Any]]:
        """The endpoint and ``connect_over_cdp`` options of the next attempt."""
        self.budget = connect_attempt_timeout(
            self.attempts + 1, self.deadline.remaining(), first=self.options.connect_attempt_timeout
        )
        if self.budget <= 0:
            raise connect_timed_out(
                self.session, self.deadline, self.attempts, self.last, "connecting over CDP"
            )
        self.attempts += 1
        return self.target.endpoint, connect_kwargs(self.target, self.options, self.budget)

    def failed(self, exc: BaseException | None) -> float:
        """Record a failed attempt (``None``: it ran out of time); the pause before the next.

        Raises :class:`SessionClosedError` or :class:`CDPConnectError` when another attempt
        cannot help.
        """
        if exc is None:
            self.last = f"attempt timed out after {self.budget:.1f}s"
        else:
            self.last = failure_text(exc, self.target, self.settings)
            error = failure_error(classify_cdp_failure(str(exc)), self.last, self.session)
            if error is not None:
                raise error from None
        logger.info(
            "CDP attempt %d on %s failed: %s",
            self.attempts,
            self.session.browser_session_id,
            self.last,
        )
        return min(connect_retry_delay(self.attempts), self.deadline.remaining())


def connect_timed_out(
    session: BrowserSessionResponse, deadline: Deadline, attempts: int, last: str, phase: str
) -> CDPConnectTimeoutError:
    return CDPConnectTimeoutError(
        f"could not attach to session {session.browser_session_id} within the"
        f" {deadline.seconds:g}s timeout ({phase}; {attempts} attempt(s); last: {last or 'none'});"
        " pass a longer timeout=, or check that the session is still running",
        session=session,
    )
