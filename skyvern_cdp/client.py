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
abandoned and retried. A server that has never answered in this process (refused, unknown
name, TLS failure) is tried for :data:`~skyvern_cdp.policy.UNREACHED_GRACE` (5 s) only, then
:class:`~skyvern_cdp.errors.APIUnreachableError` names the base URL: a typo fails in seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TypeVar

import httpx
import tenacity
from typing_extensions import Self, Unpack

from skyvern_cdp import protocol
from skyvern_cdp._bounded import bound_transports, bounded_request, within
from skyvern_cdp._client_base import (
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
    ClientBase,
    CreateSessionFields,
    OnStatus,
    build_create_body,
)
from skyvern_cdp.client_profiles import AsyncProfileMethods, ProfileMethods
from skyvern_cdp.config import conceal
from skyvern_cdp.errors import (
    APIConnectionError,
    APIError,
    APIUnreachableError,
    InvalidArgumentTypeError,
)
from skyvern_cdp.models import BrowserSessionResponse, CloseBrowserSessionResponse
from skyvern_cdp.policy import (
    READ_TIMEOUT,
    Deadline,
    PollAgain,
    Waiter,
    is_retryable_api_error,
    validate_session_id,
)

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "AsyncSkyvernClient",
    "CreateSessionFields",
    "OnStatus",
    "SkyvernClient",
    "build_create_body",
]


class SkyvernClient(ClientBase, ProfileMethods):
    """Blocking client. Use it as a context manager, or call :meth:`close`.

    >>> client = SkyvernClient(api_key="sk-…", base_url="https://api.skyvern.com")  # doctest: +SKIP
    >>> client.get_browser_session("pbs_123").status  # doctest: +SKIP
    'running'

    ``http_client=`` (an ``httpx.Client``) is used as the transport (its proxies, TLS,
    limits, hooks), with ``base_url``, the key and each call's limits still applied to every
    request; it is not closed here. Another type is an :class:`InvalidArgumentTypeError`.
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
        self._owns_http = self._adopt_http(http_client, httpx.Client)
        # a caller's client too: its pools honour the call's deadline (only inside our calls)
        self._http = bound_transports(http_client or httpx.Client(**self._client_kwargs()))

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
                with attempt, within(self._budget(deadline)):
                    response = self._http.request(
                        request.method,
                        json=request.json,
                        params=request.params,
                        **self._request_kwargs(request),
                        timeout=self._timeout(deadline),
                    )
                    self._check(request, response)
        except httpx.TransportError as exc:
            raise self._transport_error(request, exc, deadline) from exc
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
            except APIUnreachableError:
                raise  # a wrong base URL: say so, not "the session was not ready"
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


class AsyncSkyvernClient(ClientBase, AsyncProfileMethods):
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
        self._owns_http = self._adopt_http(http_client, httpx.AsyncClient)
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
                    response = await bounded_request(
                        self._http.request(
                            request.method,
                            json=request.json,
                            params=request.params,
                            **self._request_kwargs(request),
                            timeout=self._timeout(deadline),
                        ),
                        self._budget(deadline),
                    )
                    self._check(request, response)
        except httpx.TransportError as exc:
            raise self._transport_error(request, exc, deadline) from exc
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
            except APIUnreachableError:
                raise  # a wrong base URL: say so, not "the session was not ready"
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


_Client = TypeVar("_Client", SkyvernClient, AsyncSkyvernClient)


def client_for(
    kind: type[_Client],
    client: _Client | None,
    api_key: str | None,
    base_url: str | None,
    trusted_hosts: Iterable[str] | None,
    allow_insecure_http: bool,
) -> tuple[_Client, bool]:
    """The client of one attach (the caller's, checked to be a ``kind``, or a new one) and
    whether the attach owns it, and so closes it."""
    if client is not None:
        if not isinstance(client, kind):
            article = "an" if kind.__name__[0] in "AEIOU" else "a"
            raise InvalidArgumentTypeError(f"client must be {article} {kind.__name__}")
        return client, False
    made = kind(
        api_key, base_url, trusted_hosts=trusted_hosts, allow_insecure_http=allow_insecure_http
    )
    return made, True
