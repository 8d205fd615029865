"""The local backend: Skyvern's browser-session API over local Chromium, with no account.

>>> from skyvern_cdp.local import LocalBackend
>>> with LocalBackend() as backend:  # doctest: +SKIP
...     print(backend.base_url)       # point SKYVERN_BASE_URL (or base_url=) here
http://127.0.0.1:41234

From a shell: ``skyvern-cdp serve --port 8000``. Importing this package is cheap: the
server (FastAPI, uvicorn) loads only when :class:`LocalBackend` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skyvern_cdp.local.backend import LocalBackend

__all__ = ["LocalBackend"]


def __getattr__(name: str) -> Any:
    if name == "LocalBackend":
        from skyvern_cdp.local.backend import LocalBackend

        return LocalBackend
    raise AttributeError(f"module 'skyvern_cdp.local' has no attribute {name!r}")
