"""HTTP clients of Skyvern's browser-session API: :class:`SkyvernClient` and
:class:`AsyncSkyvernClient`, the same methods in both.

>>> from skyvern_cdp import SkyvernClient
>>> with SkyvernClient(base_url="local") as client:  # doctest: +SKIP
...     session = client.create_browser_session(session_timeout_minutes=15)
...     session = client.wait_for_browser_session(session.browser_session_id, timeout=120)
...     print(session.status)
running

One keep-alive connection is reused for every call. Idempotent calls (get, list, close,
extend) are retried on connection failures, timeouts and 429/500/502/503/504 with
exponential backoff and jitter, honouring ``Retry-After`` (up to 60 s), and never past the
caller's ``timeout``. Every ``timeout`` is an overall deadline in seconds. A read that takes
longer than ``read_timeout`` (65 s by default: Skyvern's slow GETs take about a minute) is
abandoned and retried.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypedDict

import httpx
import pydantic
import tenacity
from typing_extensions import Self, Unpack

from skyvern_cdp import protocol
from skyvern_cdp.config import (
    Settings,
    conceal,
    redact_text,
    resolve_settings,
    validate_timeout,
)
from skyvern_cdp.errors import (
    APIConnectionError,
    APIError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
)
from skyvern_cdp.models import (
    BrowserSessionResponse,
    CloseBrowserSessionResponse,
    CreateBrowserSessionRequest,
    ExtendBrowserSessionRequest,
    Extensions,
    PersistentBrowserType,
)
from skyvern_cdp.policy import (
    READ_TIMEOUT,
    Deadline,
    PollAgain,
    Waiter,
    is_retryable_api_error,
    is_retryable_create_error,
    request_timeout,
    retry_delay,
    validate_session_id,
)

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "AsyncSkyvernClient",
    "CreateSessionFields",
    "OnStatus",
    "SkyvernClient",
]

logger = logging.getLogger("skyvern_cdp.client")

#: Overall deadline of one call, retries included, when the caller gives none.
DEFAULT_REQUEST_TIMEOUT = 120.0
#: How long :meth:`wait_for_browser_session` waits by default.
DEFAULT_WAIT_TIMEOUT = 120.0

OnStatus = Callable[[BrowserSessionResponse], object]


class CreateSessionFields(TypedDict, total=False):
    """Fields of the create body (every one optional); see :class:`CreateBrowserSessionRequest`."""

    url: str
    proxy_location: str
    proxy_session_id: str
    extensions: list[Extensions | str]
    browser_type: PersistentBrowserType | str
    browser_profile_id: str
    generate_browser_profile: bool
    needs_live_view: bool


@functools.lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: building one (loading the CA bundle)
    costs tens of milliseconds and about a megabyte, far more than the rest of an attach.
    Built as httpx builds its default, so ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` still apply."""
    return httpx.create_ssl_context()


def build_create_body(
    session_timeout_minutes: int | None, fields: CreateSessionFields | dict[str, Any]
) -> dict[str, Any]:
    """The JSON body of a create, validated here so a typo fails before anything is sent."""
    if "timeout" in fields:
        raise InvalidArgumentError(
            "the session's lifetime is spelled session_timeout_minutes=; timeout= is the"
            " overall deadline in seconds"
        )
    if session_timeout_minutes is not None and (
        isinstance(session_timeout_minutes, bool) or not isinstance(session_timeout_minutes, int)
    ):
        raise InvalidArgumentTypeError("session_timeout_minutes must be a whole number of minutes")
    try:
        model = CreateBrowserSessionRequest.model_validate(
            {**fields, "timeout": session_timeout_minutes}
        )
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidArgumentError(f"invalid session fields: {problems}") from None
    return model.model_dump(mode="json", exclude_none=True)


class _ClientBase:
    """What both clients share: settings, requests, and answers. No I/O here."""

    settings: Settings

    def _setup(
        self,
        api_key: str | None,
        base_url: str | None,
        trusted_hosts: Iterable[str] | None,
        allow_insecure_http: bool,
        read_timeout: float,
    ) -> None:
        self.read_timeout = validate_timeout(read_timeout, "read_timeout")
        self.settings = resolve_settings(
            api_key=api_key,
            base_url=base_url,
            trusted_hosts=trusted_hosts,
            allow_insecure_http=allow_insecure_http,
        )

    def _client_kwargs(self) -> dict[str, Any]:
        headers = {"user-agent": protocol.USER_AGENT, "accept": "application/json"}
        if self.settings.api_key:
            headers["x-api-key"] = self.settings.api_key
        return {
            "base_url": self.settings.base_url,
            "headers": headers,
            "timeout": request_timeout(DEFAULT_REQUEST_TIMEOUT),
            "follow_redirects": False,
            "verify": _default_ssl_context(),
        }

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.settings.base_url!r})"

    def _retrying_kwargs(
        self,
        request: protocol.Request,
        deadline: Deadline,
        on_failure: Callable[[BaseException], object] | None = None,
    ) -> dict[str, Any]:
        retryable = is_retryable_api_error if request.idempotent else is_retryable_create_error

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            after = exc.retry_after if isinstance(exc, APIError) else None
            return retry_delay(
                state.attempt_number, retry_after=after, remaining=deadline.remaining()
            )

        def stop(state: tenacity.RetryCallState) -> bool:
            return deadline.expired

        def log_retry(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if on_failure is not None and exc is not None:
                on_failure(exc)
            logger.info(
                "%s %s failed (%s); retrying in %.2fs",
                request.method,
                request.path,
                redact_text(f"{type(exc).__name__}: {exc}", self.settings.secrets),
                state.upcoming_sleep,
            )

        return {
            "retry": tenacity.retry_if_exception(retryable),
            "wait": wait,
            "stop": stop,
            "reraise": True,
            "before_sleep": log_retry,
        }

    def _check(self, request: protocol.Request, response: httpx.Response) -> None:
        error = protocol.error_for_status(
            response.status_code,
            response.headers,
            response.content,
            request,
            self.settings.secrets,
        )
        logger.debug(
            "%s %s → %s in %.0f ms",
            request.method,
            request.path,
            response.status_code,
            response.elapsed.total_seconds() * 1000,
        )
        if error is not None:
            raise error

    @staticmethod
    def _deadline(timeout: float | None, default: float = DEFAULT_REQUEST_TIMEOUT) -> Deadline:
        return Deadline(default if timeout is None else validate_timeout(timeout))

    @staticmethod
    def _get_request(session_id: str) -> protocol.Request:
        sid = validate_session_id(session_id)
        return protocol.Request("GET", protocol.session_path(sid), session_id=sid)

    @staticmethod
    def _close_request(session_id: str) -> protocol.Request:
        sid = validate_session_id(session_id)
        return protocol.Request("POST", protocol.session_path(sid, "close"), session_id=sid)

    @staticmethod
    def _extend_request(session_id: str, additional_minutes: int) -> protocol.Request:
        sid = validate_session_id(session_id)
        if isinstance(additional_minutes, bool) or not isinstance(additional_minutes, int):
            raise InvalidArgumentTypeError("additional_minutes must be a whole number of minutes")
        try:
            body = ExtendBrowserSessionRequest(additional_minutes=additional_minutes)
        except pydantic.ValidationError:
            raise InvalidArgumentError(
                f"additional_minutes must be at least 1, got {additional_minutes}"
            ) from None
        return protocol.Request(
            "POST", protocol.session_path(sid, "extend"), json=body.model_dump(), session_id=sid
        )

    @staticmethod
    def _create_request(
        session_timeout_minutes: int | None, fields: CreateSessionFields | dict[str, Any]
    ) -> protocol.Request:
        body = build_create_body(session_timeout_minutes, fields)
        return protocol.Request("POST", "/v1/browser_sessions", json=body, idempotent=False)

    _LIST = protocol.Request("GET", "/v1/browser_sessions")


def _is_closed(http: httpx.Client | httpx.AsyncClient) -> bool:
    return http.is_closed


class SkyvernClient(_ClientBase):
    """Blocking client. Use it as a context manager, or call :meth:`close`.

    >>> client = SkyvernClient(api_key="sk-…", base_url="https://api.skyvern.com")  # doctest: +SKIP
    >>> client.get_browser_session("pbs_123").status  # doctest: +SKIP
    'running'
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        trusted_hosts: Iterable[str] | None = None,
        allow_insecure_http: bool = False,
        read_timeout: float = READ_TIMEOUT,
        http_client: httpx.Client | None = None,
    ) -> None:
        api_key = conceal(api_key)  # a traceback's locals show '<redacted>'
        self._setup(api_key, base_url, trusted_hosts, allow_insecure_http, read_timeout)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(**self._client_kwargs())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (not any browser session)."""
        if self._owns_http:
            self._http.close()

    def _send(
        self,
        request: protocol.Request,
        deadline: Deadline,
        on_failure: Callable[[BaseException], object] | None = None,
    ) -> httpx.Response:
        try:
            for attempt in tenacity.Retrying(
                **self._retrying_kwargs(request, deadline, on_failure)
            ):
                with attempt:
                    response = self._http.request(
                        request.method,
                        request.path,
                        json=request.json,
                        timeout=request_timeout(deadline.remaining(), self.read_timeout),
                    )
                    self._check(request, response)
        except httpx.TransportError as exc:
            raise protocol.unreachable(request, self.base_url, exc, self.settings.secrets) from exc
        return response

    def get_browser_session(
        self, session_id: str, *, timeout: float | None = None
    ) -> BrowserSessionResponse:
        """``GET /v1/browser_sessions/{id}``: the session as it is now."""
        request = self._get_request(session_id)
        response = self._send(request, self._deadline(timeout))
        return protocol.parse_session(response.status_code, response.content, request)

    def list_browser_sessions(
        self, *, timeout: float | None = None
    ) -> list[BrowserSessionResponse]:
        """``GET /v1/browser_sessions``: the organization's live sessions."""
        response = self._send(self._LIST, self._deadline(timeout))
        return protocol.parse_session_list(response.status_code, response.content, self._LIST)

    def create_browser_session(
        self,
        *,
        timeout: float | None = None,
        session_timeout_minutes: int | None = None,
        **fields: Unpack[CreateSessionFields],
    ) -> BrowserSessionResponse:
        """``POST /v1/browser_sessions``: a new session (usually ``created``, not yet ready).

        ``session_timeout_minutes`` is the session's lifetime (at least 5); ``timeout`` the
        deadline of this call in seconds. Retried only when no session can have been made:
        a connection that never opened, or a 429. A timeout or a 5xx after the request was
        sent is raised, not retried, since retrying could create a second session.
        """
        request = self._create_request(session_timeout_minutes, fields)
        response = self._send(request, self._deadline(timeout))
        return protocol.parse_session(response.status_code, response.content, request)

    def close_browser_session(
        self, session_id: str, *, timeout: float | None = None
    ) -> CloseBrowserSessionResponse:
        """``POST /v1/browser_sessions/{id}/close``: end the session. Closing twice is harmless."""
        request = self._close_request(session_id)
        response = self._send(request, self._deadline(timeout))
        return protocol.parse_close(response.status_code, response.content, request)

    def extend_browser_session(
        self, session_id: str, additional_minutes: int, *, timeout: float | None = None
    ) -> BrowserSessionResponse:
        """``POST /v1/browser_sessions/{id}/extend``: more minutes of life (total capped at 360)."""
        request = self._extend_request(session_id, additional_minutes)
        response = self._send(request, self._deadline(timeout))
        return protocol.parse_session(response.status_code, response.content, request)

    def wait_for_browser_session(
        self,
        session_id: str,
        *,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        on_status: OnStatus | None = None,
    ) -> BrowserSessionResponse:
        """Poll until the session is ready to dial (running, with an address and a start time).

        Raises :class:`SessionEndedError` as soon as the session reaches a final status, and
        :class:`SessionNotReadyError` when ``timeout`` seconds pass first (it names what was
        missing). ``on_status(session)`` is called whenever the status changes.
        """
        return self._wait(Waiter(validate_session_id(session_id), Deadline(timeout), on_status))

    def _wait(self, waiter: Waiter) -> BrowserSessionResponse:
        session_id, deadline = waiter.session_id, waiter.deadline
        request = self._get_request(session_id)
        while True:
            try:
                response = self._send(request, deadline, waiter.note_failure)
                session = protocol.parse_session(response.status_code, response.content, request)
            except APIConnectionError as exc:
                raise waiter.timed_out(exc) from exc
            except APIError as exc:
                if deadline.expired and is_retryable_api_error(exc):
                    raise waiter.timed_out(exc) from exc
                raise
            step = waiter.observe(session)
            if not isinstance(step, PollAgain):
                return step
            time.sleep(step.sleep)


class AsyncSkyvernClient(_ClientBase):
    """Asyncio client; the same methods as :class:`SkyvernClient`, awaited.

    >>> async with AsyncSkyvernClient(base_url="local") as client:  # doctest: +SKIP
    ...     session = await client.wait_for_browser_session("pbs_123", timeout=60)
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        trusted_hosts: Iterable[str] | None = None,
        allow_insecure_http: bool = False,
        read_timeout: float = READ_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        api_key = conceal(api_key)  # a traceback's locals show '<redacted>'
        self._setup(api_key, base_url, trusted_hosts, allow_insecure_http, read_timeout)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(**self._client_kwargs())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (not any browser session)."""
        if self._owns_http:
            await self._http.aclose()

    async def _send(
        self,
        request: protocol.Request,
        deadline: Deadline,
        on_failure: Callable[[BaseException], object] | None = None,
    ) -> httpx.Response:
        retrying = tenacity.AsyncRetrying(**self._retrying_kwargs(request, deadline, on_failure))
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._http.request(
                        request.method,
                        request.path,
                        json=request.json,
                        timeout=request_timeout(deadline.remaining(), self.read_timeout),
                    )
                    self._check(request, response)
        except httpx.TransportError as exc:
            raise protocol.unreachable(request, self.base_url, exc, self.settings.secrets) from exc
        return response

    async def get_browser_session(
        self, session_id: str, *, timeout: float | None = None
    ) -> BrowserSessionResponse:
        """``GET /v1/browser_sessions/{id}``: the session as it is now."""
        request = self._get_request(session_id)
        response = await self._send(request, self._deadline(timeout))
        return protocol.parse_session(response.status_code, response.content, request)

    async def list_browser_sessions(
        self, *, timeout: float | None = None
    ) -> list[BrowserSessionResponse]:
        """``GET /v1/browser_sessions``: the organization's live sessions."""
        response = await self._send(self._LIST, self._deadline(timeout))
        return protocol.parse_session_list(response.status_code, response.content, self._LIST)

    async def create_browser_session(
        self,
        *,
        timeout: float | None = None,
        session_timeout_minutes: int | None = None,
        **fields: Unpack[CreateSessionFields],
    ) -> BrowserSessionResponse:
        """``POST /v1/browser_sessions``; see :meth:`SkyvernClient.create_browser_session`
        (retried only when no session can have been made)."""
        request = self._create_request(session_timeout_minutes, fields)
        response = await self._send(request, self._deadline(timeout))
        return protocol.parse_session(response.status_code, response.content, request)

    async def close_browser_session(
        self, session_id: str, *, timeout: float | None = None
    ) -> CloseBrowserSessionResponse:
        """``POST /v1/browser_sessions/{id}/close``: end the session. Closing twice is harmless."""
        request = self._close_request(session_id)
        response = await self._send(request, self._deadline(timeout))
        return protocol.parse_close(response.status_code, response.content, request)

    async def extend_browser_session(
        self, session_id: str, additional_minutes: int, *, timeout: float | None = None
    ) -> BrowserSessionResponse:
        """``POST /v1/browser_sessions/{id}/extend``: more minutes of life (total capped at 360)."""
        request = self._extend_request(session_id, additional_minutes)
        response = await self._send(request, self._deadline(timeout))
        return protocol.parse_session(response.status_code, response.content, request)

    async def wait_for_browser_session(
        self,
        session_id: str,
        *,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        on_status: OnStatus | None = None,
    ) -> BrowserSessionResponse:
        """Poll until ready; see :meth:`SkyvernClient.wait_for_browser_session`."""
        return await self._wait(
            Waiter(validate_session_id(session_id), Deadline(timeout), on_status)
        )

    async def _wait(self, waiter: Waiter) -> BrowserSessionResponse:
        session_id, deadline = waiter.session_id, waiter.deadline
        request = self._get_request(session_id)
        while True:
            try:
                response = await self._send(request, deadline, waiter.note_failure)
                session = protocol.parse_session(response.status_code, response.content, request)
            except APIConnectionError as exc:
                raise waiter.timed_out(exc) from exc
            except APIError as exc:
                if deadline.expired and is_retryable_api_error(exc):
                    raise waiter.timed_out(exc) from exc
                raise
            step = waiter.observe(session)
            if not isinstance(step, PollAgain):
                return step
            await asyncio.sleep(step.sleep)
