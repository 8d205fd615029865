"""Attach Playwright to a Skyvern browser session over CDP.

>>> from skyvern_cdp.async_api import connect
>>> async with connect("pbs_123") as browser:  # doctest: +SKIP
...     page = browser.contexts[0].pages[0]

``skyvern_cdp.async_api`` and ``skyvern_cdp.sync_api`` hold ``connect``, ``launch`` and
``default_page``; this package holds the API clients, the models and the exceptions.
"""

from skyvern_cdp.client import AsyncSkyvernClient, SkyvernClient
from skyvern_cdp.config import PRESETS
from skyvern_cdp.errors import (
    APIError,
    AuthenticationError,
    CDPConnectError,
    CDPConnectTimeoutError,
    InsecureTransportError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    RequestRejectedError,
    SessionClosedError,
    SessionEndedError,
    SessionError,
    SessionNotFoundError,
    SessionNotReadyError,
    SkyvernCDPError,
    SyncAPIInAsyncLoopError,
)
from skyvern_cdp.models import (
    BrowserSessionResponse,
    CreateBrowserSessionRequest,
    Extensions,
    FileInfo,
    PersistentBrowserType,
    SessionStatus,
)

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "APIError",
    "AsyncSkyvernClient",
    "AuthenticationError",
    "BrowserSessionResponse",
    "CDPConnectError",
    "CDPConnectTimeoutError",
    "CreateBrowserSessionRequest",
    "Extensions",
    "FileInfo",
    "InsecureTransportError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "PersistentBrowserType",
    "RequestRejectedError",
    "SessionClosedError",
    "SessionEndedError",
    "SessionError",
    "SessionNotFoundError",
    "SessionNotReadyError",
    "SessionStatus",
    "SkyvernCDPError",
    "SkyvernClient",
    "SyncAPIInAsyncLoopError",
]
