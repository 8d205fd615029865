"""What :class:`~skyvern_cdp.client.SkyvernClient` and
:class:`~skyvern_cdp.client.AsyncSkyvernClient` share, with no I/O: settings, the requests
they send, what an answer means, and the retry rules wired into tenacity.

>>> from skyvern_cdp._client_base import build_create_body
>>> build_create_body(15, {"url": "https://example.com"})
{'url': 'https://example.com', 'timeout': 15}

Which servers have answered in this process is remembered here (:func:`note_answered`): a
server that never has is given up on after :data:`~skyvern_cdp.policy.UNREACHED_GRACE`
seconds with :class:`~skyvern_cdp.errors.APIUnreachableError`; one that has is retried
until the call's deadline.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any, TypedDict

import httpx
import pydantic
import tenacity

from skyvern_cdp import protocol
from skyvern_cdp.config import Settings, redact_text, resolve_settings, validate_timeout
from skyvern_cdp.errors import APIError, InvalidArgumentError, InvalidArgumentTypeError
from skyvern_cdp.models import (
    BrowserSessionResponse,
    CreateBrowserSessionRequest,
    ExtendBrowserSessionRequest,
    Extensions,
    PersistentBrowserType,
)
from skyvern_cdp.policy import (
    Deadline,
    connect_timeout_for,
    gives_up_unreached,
    is_no_answer,
    is_retryable_api_error,
    is_retryable_create_error,
    request_budget,
    request_timeout,
    retry_delay,
    retry_window,
    validate_session_id,
)

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "ClientBase",
    "CreateSessionFields",
    "OnStatus",
    "build_create_body",
    "note_answered",
    "shared_ssl_context",
]

logger = logging.getLogger("skyvern_cdp.client")

#: Overall deadline of one call, retries included, when the caller gives none.
DEFAULT_REQUEST_TIMEOUT = 120.0
#: How long :meth:`wait_for_browser_session` waits by default.
DEFAULT_WAIT_TIMEOUT = 120.0

OnStatus = Callable[[BrowserSessionResponse], object]

#: Base URLs that have answered an HTTP request (any status) in this process.
_answered: set[str] = set()


def note_answered(base_url: str) -> None:
    """Remember that the server at ``base_url`` has answered: from now on its outages are
    retried until the caller's deadline instead of failing after the grace."""
    _answered.add(base_url)


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
def shared_ssl_context() -> ssl.SSLContext:
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


class ClientBase:
    """What both clients share: settings, requests, and answers. No I/O here."""

    settings: Settings
    _owns_http: bool

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

    def _headers(self) -> dict[str, str]:
        headers = {"user-agent": protocol.USER_AGENT, "accept": "application/json"}
        if self.settings.api_key:
            headers["x-api-key"] = self.settings.api_key
        return headers

    def _adopt_http(self, http_client: object, kind: type[Any]) -> bool:
        """Check a caller's ``http_client=``; ``True`` when this client makes its own.

        A caller's client is honoured: every request carries the absolute URL of
        ``base_url``, the key and this call's limits, so only its transport is the caller's
        (proxies, TLS, event hooks, limits), not its ``base_url``, headers or timeouts.
        """
        if http_client is None:
            return True
        if not isinstance(http_client, kind):
            raise InvalidArgumentTypeError(
                f"http_client must be an {kind.__module__}.{kind.__qualname__}, not"
                f" {type(http_client).__name__}"
            )
        if getattr(http_client, "is_closed", False):
            raise InvalidArgumentError("http_client is closed")
        return False

    def _request_kwargs(self, request: protocol.Request) -> dict[str, Any]:
        """``url=`` and, for a caller's ``http_client``, what its own settings would drop."""
        if self._owns_http:
            return {"url": request.path}
        return {
            "url": self.settings.base_url + request.path,
            "headers": self._headers(),
            "follow_redirects": False,
        }

    def _client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.settings.base_url,
            "headers": self._headers(),
            "timeout": request_timeout(DEFAULT_REQUEST_TIMEOUT),
            "follow_redirects": False,
            "verify": shared_ssl_context(),
        }

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.settings.base_url!r})"

    @property
    def ever_answered(self) -> bool:
        """Whether this client's server has answered any request in this process."""
        return self.settings.base_url in _answered

    def _timeout(self, deadline: Deadline) -> httpx.Timeout:
        """The limits of the next request, inside the deadline (and the grace, if unreached)."""
        connect = connect_timeout_for(
            ever_answered=self.ever_answered, trying_for=deadline.elapsed()
        )
        return request_timeout(deadline.remaining(), self.read_timeout, connect)

    @staticmethod
    def _budget(deadline: Deadline) -> float:
        """How long the next request may take in all (see :func:`request_budget`)."""
        return request_budget(deadline.remaining())

    def _gives_up(self, exc: BaseException | None, deadline: Deadline) -> bool:
        if deadline.expired:
            return True
        return exc is not None and gives_up_unreached(
            exc, ever_answered=self.ever_answered, trying_for=deadline.elapsed()
        )

    def _retrying_kwargs(
        self,
        request: protocol.Request,
        deadline: Deadline,
        on_failure: Callable[[BaseException], object] | None = None,
    ) -> dict[str, Any]:
        retryable = request.retry or (
            is_retryable_api_error if request.idempotent else is_retryable_create_error
        )

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            after = exc.retry_after if isinstance(exc, APIError) else None
            window = retry_window(
                exc,
                deadline.remaining(),
                ever_answered=self.ever_answered,
                trying_for=deadline.elapsed(),
            )
            return retry_delay(state.attempt_number, retry_after=after, remaining=window)

        def stop(state: tenacity.RetryCallState) -> bool:
            return self._gives_up(state.outcome.exception() if state.outcome else None, deadline)

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

    def _transport_error(
        self, request: protocol.Request, exc: httpx.TransportError, deadline: Deadline
    ) -> APIError:
        """The typed error for a transport failure that ended its retries."""
        return protocol.unreachable(
            request,
            self.base_url,
            exc,
            self.settings.secrets,
            never_answered=not self.ever_answered and is_no_answer(exc),
            tried_for=deadline.elapsed(),
        )

    def _check(self, request: protocol.Request, response: httpx.Response) -> None:
        note_answered(self.settings.base_url)
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
        return protocol.Request(
            "POST",
            "/v1/browser_sessions",
            json=body,
            idempotent=False,
            profile_id=body.get("browser_profile_id"),  # its 404 means an unknown profile
        )

    _LIST = protocol.Request("GET", "/v1/browser_sessions")
