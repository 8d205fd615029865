"""Where the examples' sessions come from.

With ``SKYVERN_API_KEY`` or ``SKYVERN_BASE_URL`` set, the examples use that server (the
Skyvern cloud by default). With neither set, they start skyvern_cdp's local backend
(Skyvern's browser-session API over a local Chromium) in their own process and point
``SKYVERN_BASE_URL`` at it, so they run with no account at all.

In your own code, leave this out: set the environment, or pass ``api_key=`` / ``base_url=``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS


def local_backend_if_unset() -> LocalBackend | None:
    """Start a local backend when ``SKYVERN_*`` are unset (call ``.stop()`` when done)."""
    if os.environ.get("SKYVERN_API_KEY") or os.environ.get("SKYVERN_BASE_URL"):
        return None
    # The examples open only pages they serve themselves: keep the browser off the internet.
    backend = LocalBackend(chromium_args=CLOSED_NETWORK_ARGS).start()
    os.environ["SKYVERN_BASE_URL"] = backend.base_url
    return backend


@contextlib.contextmanager
def skyvern_backend() -> Iterator[None]:
    """``with skyvern_backend():`` the environment names a server for the duration."""
    backend = local_backend_if_unset()
    try:
        yield
    finally:
        if backend is not None:
            del os.environ["SKYVERN_BASE_URL"]
            backend.stop()
