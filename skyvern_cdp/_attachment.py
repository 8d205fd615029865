"""What the async and sync shells share about one attached Browser: its record, and the
text of the errors of the connect phase. No I/O here."""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

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
    observe_cdp_failure,
)
from skyvern_cdp.policy.profiles import ProfileRef, profile_ref

logger = logging.getLogger("skyvern_cdp.attach")

#: Overall deadline of ``connect`` / ``launch`` (wait + connect), in seconds.
DEFAULT_TIMEOUT = 120.0
#: How long teardown (disconnect, closing a launched session) may take.
DEFAULT_CLOSE_TIMEOUT = 10.0

#: ``connect_over_cdp`` options the helper sets itself.
_RESERVED_OPTIONS = frozenset({"endpoint_url", "timeout"})


@functools.lru_cache(maxsize=1)
def playwright_option_names() -> frozenset[str]:
    """The keyword options of the installed Playwright's ``connect_over_cdp``, from its own
    signature (so a newer Playwright's options are accepted, and a typo is not)."""
    from playwright.async_api import BrowserType

    parameters = inspect.signature(BrowserType.connect_over_cdp).parameters.values()
    names = {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
    return frozenset(names - _RESERVED_OPTIONS)


def check_playwright_options(options: Mapping[str, Any]) -> None:
    """Refuse, before any request, an option ``connect_over_cdp`` does not take (``slowmo=``)
    and ``headers`` that are not a dict of str to str."""
    reserved = _RESERVED_OPTIONS & options.keys()
    if reserved:
        raise InvalidArgumentError(
            f"{', '.join(sorted(reserved))} cannot be passed to connect_over_cdp here:"
            " timeout= is the overall deadline in seconds"
        )
    known = playwright_option_names()
    unknown = sorted(set(options) - known)
    if unknown:
        close = [difflib.get_close_matches(name, known, n=1) for name in unknown]
        hints = "".join(f" (did you mean {m[0]}=?)" for m in close if m)
        raise InvalidArgumentTypeError(
            f"unexpected option(s) {', '.join(f'{n}=' for n in unknown)}{hints}: they are"
            f" neither options of this call nor of connect_over_cdp ({', '.join(sorted(known))})"
        )
    headers = options.get("headers")
    if headers is not None and (
        not isinstance(headers, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise InvalidArgumentTypeError("headers must be a dict of str to str")


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
        check_playwright_options(playwright_options)
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
    if target.headers:  # Playwright 1.45-1.64 refuses headers={} ("expected array")
        kwargs["headers"] = dict(target.headers)
    kwargs["timeout"] = attempt_timeout * 1000.0
    return kwargs


def failure_text(exc: BaseException, target: CDPTarget, settings: Settings) -> str:
    """Playwright's message with the endpoint, its tokens and the key taken out."""
    parts = urlsplit(target.endpoint)
    origin = re.escape(f"{parts.scheme}://{parts.netloc}")
    del parts
    # Playwright shows the endpoint without its query, and /json/version after an http one
    text = re.sub(origin + r"[^\s'\"]*", redact_address(target.endpoint), str(exc))
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return redact_text(first_line, settings.secrets)[:300]


def failure_error(
    kind: CDPFailure, text: str, session: BrowserSessionResponse
) -> CDPConnectError | InvalidArgumentError | None:
    """The error to raise at once for a CDP failure, or ``None`` to try again."""
    sid = session.browser_session_id
    if kind is CDPFailure.SESSION_CLOSED:
        return SessionClosedError(
            f"session {sid} is closed: its CDP endpoint answered 4410 'session closed';"
            " create a new session",
            session=session,
        )
    if kind is CDPFailure.ARGUMENT:
        return InvalidArgumentError(
            f"connect_over_cdp refused its arguments for session {sid} ({text}); check the"
            " Playwright options passed to connect/launch"
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
                pause = dialer.failed(exc)
            dialer.raise_if_final()                    # when retrying cannot help
            sleep(pause)
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
        self.final: CDPConnectError | InvalidArgumentError | None = None

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

    def raise_if_final(self) -> None:
        """Raise :class:`SessionClosedError`, :class:`CDPConnectError` or
        :class:`InvalidArgumentError` if the last failure was final."""
        if self.final is not None:
            raise self.final

    def failed(self, exc: BaseException | None) -> float:
        """Record a failed attempt (``None``: it ran out of time); the pause before the next.

        When another attempt cannot help, :meth:`raise_if_final` raises why: call it outside
        the ``except`` block, so that Playwright's error (its message holds the endpoint) is
        not chained to it.
        """
        if exc is None:
            self.last = f"attempt timed out after {self.budget:.1f}s"
        else:
            self.last = failure_text(exc, self.target, self.settings)
            seen = observe_cdp_failure(str(exc), validation_error=_is_validation_error(exc))
            del exc  # its message holds the endpoint: keep it out of a traceback's locals
            self.final = failure_error(classify_cdp_failure(seen), self.last, self.session)
            if self.final is not None:
                return 0.0
        logger.info(
            "CDP attempt %d on %s failed: %s",
            self.attempts,
            self.session.browser_session_id,
            self.last,
        )
        return min(connect_retry_delay(self.attempts), self.deadline.remaining())


def _is_validation_error(exc: BaseException) -> bool:
    """Playwright's own argument check failed (its ``ValidationError``, from 1.50 or so)."""
    return any(kind.__name__ == "ValidationError" for kind in type(exc).__mro__)


def connect_timed_out(
    session: BrowserSessionResponse, deadline: Deadline, attempts: int, last: str, phase: str
) -> CDPConnectTimeoutError:
    return CDPConnectTimeoutError(
        f"could not attach to session {session.browser_session_id} within the"
        f" {deadline.seconds:g}s timeout ({phase}; {attempts} attempt(s); last: {last or 'none'});"
        " pass a longer timeout=, or check that the session is still running",
        session=session,
    )
