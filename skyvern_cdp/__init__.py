"""Attach Playwright to a Skyvern browser session over CDP.

>>> from skyvern_cdp.async_api import connect
>>> async with connect("pbs_123") as browser:  # doctest: +SKIP
...     page = browser.contexts[0].pages[0]

``skyvern_cdp.async_api`` and ``skyvern_cdp.sync_api`` hold ``connect``, ``launch`` and
``default_page``; this package holds the API clients, the models and the exceptions.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skyvern_cdp.client import AsyncSkyvernClient, SkyvernClient
    from skyvern_cdp.config import PRESETS
    from skyvern_cdp.errors import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        APIUnreachableError,
        AuthenticationError,
        CDPConnectError,
        CDPConnectTimeoutError,
        InsecureTransportError,
        InvalidArgumentError,
        InvalidArgumentTypeError,
        ProfileExistsError,
        ProfileNotFoundError,
        ProfileSourceError,
        ProfileUploadPendingError,
        RequestRejectedError,
        SessionClosedError,
        SessionEndedError,
        SessionError,
        SessionNotFoundError,
        SessionNotReadyError,
        SkyvernCDPError,
        SyncAPIInAsyncLoopError,
        WrongThreadError,
    )
    from skyvern_cdp.models import (
        BrowserProfile,
        BrowserSessionResponse,
        CreateBrowserSessionRequest,
        Extensions,
        FileInfo,
        PersistentBrowserType,
        SessionStatus,
    )

# Loaded on first use, so `import skyvern_cdp.<module>` (the pytest plugin, the CLI) stays
# cheap: httpx and pydantic load only when a client, a model or PRESETS is asked for.
_LAZY = {
    "AsyncSkyvernClient": "skyvern_cdp.client",
    "SkyvernClient": "skyvern_cdp.client",
    "PRESETS": "skyvern_cdp.config",
    **dict.fromkeys(
        (
            "APIConnectionError", "APIError", "APITimeoutError", "APIUnreachableError",
            "AuthenticationError",
            "CDPConnectError", "CDPConnectTimeoutError",
            "InsecureTransportError", "InvalidArgumentError", "InvalidArgumentTypeError",
            "ProfileExistsError", "ProfileNotFoundError", "ProfileSourceError",
            "ProfileUploadPendingError", "RequestRejectedError", "SessionClosedError",
            "SessionEndedError", "SessionError",
            "SessionNotFoundError", "SessionNotReadyError", "SkyvernCDPError",
            "SyncAPIInAsyncLoopError", "WrongThreadError",
        ),
        "skyvern_cdp.errors",
    ),
    **dict.fromkeys(
        (
            "BrowserProfile", "BrowserSessionResponse", "CreateBrowserSessionRequest",
            "Extensions", "FileInfo",
            "PersistentBrowserType", "SessionStatus",
        ),
        "skyvern_cdp.models",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'skyvern_cdp' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "APIUnreachableError",
    "AsyncSkyvernClient",
    "AuthenticationError",
    "BrowserProfile",
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
    "SessionStatus",
    "SkyvernCDPError",
    "SkyvernClient",
    "SyncAPIInAsyncLoopError",
    "WrongThreadError",
]
