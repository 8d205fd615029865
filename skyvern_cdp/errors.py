"""One exception tree for everything ``skyvern_cdp`` raises.

>>> import skyvern_cdp
>>> try:
...     skyvern_cdp.SkyvernClient(api_key="k").get_browser_session("not-an-id")
... except skyvern_cdp.InvalidArgumentError as exc:
...     print(exc)
session id must start with 'pbs_' (got 'not-an-id')

::

    SkyvernCDPError
    ├── InvalidArgumentError (ValueError)          bad input, raised before any request
    │   └── InvalidArgumentTypeError (TypeError)
    ├── InsecureTransportError                     would send the key over plain http
    ├── SyncAPIInAsyncLoopError (RuntimeError)     sync API called inside a running loop
    ├── MissingExtraError (ImportError)            a feature's extra is not installed
    ├── WrongThreadError (RuntimeError)            a sync Browser closed from another thread
    ├── APIError                                   an HTTP failure: .status_code, .body
    │   ├── APIConnectionError                     unreachable until the deadline
    │   │   ├── APITimeoutError (TimeoutError)     no answer in time
    │   │   └── APIUnreachableError                never answered once: wrong URL?
    │   ├── AuthenticationError                    403
    │   ├── SessionNotFoundError                   404
    │   ├── RequestRejectedError                   422, .detail parsed
    │   ├── ProfileNotFoundError                   404 for a browser profile (bp_…)
    │   ├── ProfileExistsError                     409: a profile of that name exists
    │   └── ProfileSourceError                     400: that session cannot become a profile
    │       └── ProfileUploadPendingError (TimeoutError)  its state was not saved in time
    └── SessionError                               about one session: .session
        ├── SessionEndedError                      a final status
        ├── SessionNotReadyError (TimeoutError)    the deadline passed while waiting
        └── CDPConnectError                        Playwright could not attach
            ├── CDPConnectTimeoutError (TimeoutError)
            └── SessionClosedError                 the endpoint said 4410 "session closed"

Messages say what happened and what to do next; they never contain the API key or a
token from a ``browser_address``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skyvern_cdp.models import BrowserSessionResponse, ValidationError

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "APIUnreachableError",
    "AuthenticationError",
    "CDPConnectError",
    "CDPConnectTimeoutError",
    "InsecureTransportError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "MissingExtraError",
    "ProfileExistsError",
    "ProfileNotFoundError",
    "ProfileSourceError",
    "ProfileUploadPendingError",
    "RequestRejectedError",
    "SessionClosedError",
    "SessionEndedError",
    "SessionError",
    "SessionNotFoundError",
    "SessionNotReadyError",
    "SkyvernCDPError",
    "SyncAPIInAsyncLoopError",
    "WrongThreadError",
]


class SkyvernCDPError(Exception):
    """Base of every error this library raises on purpose."""


class InvalidArgumentError(SkyvernCDPError, ValueError):
    """An argument broke a rule; raised before any request is sent."""


class InvalidArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument had the wrong type; raised before any request is sent."""


class InsecureTransportError(SkyvernCDPError):
    """The API key would travel over plain ``http://`` to a host that is not loopback.

    Use ``https://``, or pass ``allow_insecure_http=True`` if the network is trusted.
    """


class SyncAPIInAsyncLoopError(SkyvernCDPError, RuntimeError):
    """``skyvern_cdp.sync_api`` was called where an asyncio loop is running.

    Playwright's sync API cannot run inside a running event loop (a notebook cell, an async
    test). Use ``await skyvern_cdp.async_api.connect(...)`` there instead.
    """


class MissingExtraError(SkyvernCDPError, ImportError):
    """A feature needs an extra that is not installed; the message names the ``pip install``.

    The local backend (``skyvern-cdp serve``, ``skyvern-cdp demo``, ``LocalBackend``) needs
    ``skyvern-cdp[local]``; ``extra`` is that name (``"local"``).
    """

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class APIError(SkyvernCDPError):
    """The API answered with an HTTP failure (or an answer that is not a valid session).

    ``status_code`` is the HTTP status, ``body`` the decoded JSON body (or the text when it
    was not JSON), and ``retry_after`` the server's ``Retry-After`` in seconds, if it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.retry_after = retry_after


class APIConnectionError(APIError):
    """The API could not be reached (refused, reset, DNS) until the call's deadline.

    ``status_code`` is ``None``. Check the base URL and the network.
    """


class APITimeoutError(APIConnectionError, TimeoutError):
    """The API did not answer in time, on every try until the call's deadline."""


class APIUnreachableError(APIConnectionError):
    """The server has never answered in this process (refused, unknown name, TLS failed)
    for :data:`~skyvern_cdp.policy.UNREACHED_GRACE` seconds: most likely a wrong base URL.

    Raised in seconds rather than at the caller's deadline; the message names the base URL.
    """


class AuthenticationError(APIError):
    """403: the API key is missing or wrong."""


class SessionNotFoundError(APIError):
    """404: no such session for this API key's organization."""


class RequestRejectedError(APIError):
    """422: the server refused the request; ``detail`` lists why."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 422,
        body: Any = None,
        detail: Sequence[ValidationError] = (),
    ) -> None:
        super().__init__(message, status_code=status_code, body=body)
        self.detail = list(detail)


class ProfileNotFoundError(APIError):
    """404: no browser profile with that id (or name) for this API key's organization."""


class ProfileExistsError(APIError):
    """409: a browser profile with that name exists already. Choose another name, delete the
    old profile, or (when capturing) pass ``replace=True``."""


class ProfileSourceError(APIError):
    """400: the session cannot become a browser profile. ``reason`` says why:

    - ``"not_configured"``: it was not created with ``generate_browser_profile=True`` (final);
    - ``"reused_unavailable"``: it reused a profile whose archive is gone (final);
    - ``"upload_pending"``: its state is not saved yet (it is saved once the session ends);
      retried within the deadline, raised as :class:`ProfileUploadPendingError` after it;
    - ``"other"``: any other 400.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 400,
        body: Any = None,
        reason: str = "other",
    ) -> None:
        super().__init__(message, status_code=status_code, body=body)
        self.reason = reason


class ProfileUploadPendingError(ProfileSourceError, TimeoutError):
    """The session's saved state was not there before the deadline: close the session (its
    state is saved when it ends) and create the profile again a little later."""


class SessionError(SkyvernCDPError):
    """An error about one session; ``session`` is the last state seen (or ``None``)."""

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        session: BrowserSessionResponse | None = None,
    ) -> None:
        super().__init__(message)
        self.session_id = (
            session_id
            if session_id is not None
            else (session.browser_session_id if session is not None else None)
        )
        self.session = session


class SessionEndedError(SessionError):
    """The session reached a final status (``completed``, ``failed``, ``timeout``)."""


class SessionNotReadyError(SessionError, TimeoutError):
    """The deadline passed before the session was ready.

    ``missing`` names what was still missing: ``"status"`` (not ``running`` yet),
    ``"browser_address"`` or ``"started_at"``.
    """

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        session: BrowserSessionResponse | None = None,
        missing: Sequence[str] = (),
    ) -> None:
        super().__init__(message, session_id=session_id, session=session)
        self.missing = tuple(missing)


class CDPConnectError(SessionError):
    """Playwright could not attach to the session's CDP endpoint."""


class CDPConnectTimeoutError(CDPConnectError, TimeoutError):
    """The deadline passed while connecting over CDP."""


class SessionClosedError(CDPConnectError):
    """The CDP endpoint answered 4410 "session closed": the session is over."""


class WrongThreadError(SkyvernCDPError, RuntimeError):
    """A sync Browser was closed from a thread other than the one that attached it: sync
    Playwright only works in its own thread. A session it launched is closed anyway; close
    the Browser again in its own thread to disconnect it and release the driver."""
