"""The local backend: Skyvern's browser-session API over local Chromium, with no account.

>>> from skyvern_cdp.local import LocalBackend
>>> with LocalBackend() as backend:  # doctest: +SKIP
...     print(backend.base_url)       # point SKYVERN_BASE_URL (or base_url=) here
http://127.0.0.1:41234

From a shell: ``skyvern-cdp serve --port 8000``. Importing this package is cheap: the
server (FastAPI, uvicorn) loads only when :class:`LocalBackend` is first used.

The server stack is the ``local`` extra (``pip install "skyvern-cdp[local]"``); without it,
``LocalBackend()``, ``skyvern-cdp serve`` and ``skyvern-cdp demo`` raise
:class:`~skyvern_cdp.errors.MissingExtraError`, whose one line says what to install.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from skyvern_cdp.errors import MissingExtraError

if TYPE_CHECKING:
    from skyvern_cdp.local.backend import LocalBackend

__all__ = ["LocalBackend", "require_local_extra"]

#: What the ``local`` extra installs and the local backend imports.
LOCAL_EXTRA_MODULES = ("fastapi", "starlette", "uvicorn")
LOCAL_EXTRA_HINT = 'pip install "skyvern-cdp[local]"'


def require_local_extra(feature: str = "the local backend") -> None:
    """Raise :class:`MissingExtraError` unless the ``local`` extra's modules are installed.

    >>> require_local_extra()  # doctest: +SKIP
    Traceback (most recent call last):
    skyvern_cdp.errors.MissingExtraError: the local backend needs fastapi, starlette, uvicorn \
(not installed): pip install "skyvern-cdp[local]"
    """
    missing = [name for name in LOCAL_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"{feature} needs {', '.join(missing)} (not installed): {LOCAL_EXTRA_HINT}",
            extra="local",
        )


def __getattr__(name: str) -> Any:
    if name == "LocalBackend":
        from skyvern_cdp.local.backend import LocalBackend

        return LocalBackend
    raise AttributeError(f"module 'skyvern_cdp.local' has no attribute {name!r}")
