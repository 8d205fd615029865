"""``skyvern-cdp serve``: run the local backend until Ctrl-C or SIGTERM.

::

    $ skyvern-cdp serve --port 0
    http://127.0.0.1:41234
    $ SKYVERN_BASE_URL=http://127.0.0.1:41234 python my_attach_code.py

The first line on stdout is the base URL, printed once the server listens (so a script
that starts it with ``--port 0`` can read it); everything else goes to stderr. The key
comes from ``--api-key`` or ``SKYVERN_API_KEY``; without one, no key is required. On
SIGINT or SIGTERM every Chromium is stopped and every directory removed before it exits 0.
Browser profiles live in ``--profiles-dir`` (default: the user's data directory,
``~/.local/share/skyvern-cdp/profiles`` on Linux) and outlive the server.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from skyvern_cdp.config import API_KEY_ENV, is_loopback_host

__all__ = ["run"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def _say(message: str) -> None:
    print(f"skyvern-cdp serve: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; the exit code (0 after a clean shutdown)."""
    from skyvern_cdp.local import require_local_extra

    require_local_extra("skyvern-cdp serve")
    from skyvern_cdp.local.backend import LocalBackend
    from skyvern_cdp.local.chromium import BrowserNotFoundError
    from skyvern_cdp.local.profile_store import default_profiles_dir

    host: str = args.host
    if not is_loopback_host(host) and not args.allow_remote:
        _say(
            f"refusing to listen on {host!r}, which is not loopback: every session's browser"
            " would be reachable by anyone who can reach this port. Pass --allow-remote if"
            " that is intended (and set an API key)."
        )
        return EXIT_USAGE
    api_key = getattr(args, "api_key", None) or os.environ.get(API_KEY_ENV) or None
    try:
        backend = LocalBackend(
            api_key=api_key,
            host=host,
            port=args.port,
            max_sessions=args.max_sessions,
            ready_delay=args.ready_delay,
            chromium_args=list(getattr(args, "chromium_arg", None) or []),
            allow_remote=bool(args.allow_remote),
            profiles_dir=getattr(args, "profiles_dir", None) or default_profiles_dir(),
            recordings=getattr(args, "recordings", True),
            recordings_dir=getattr(args, "recordings_dir", None),
        )
    except ValueError as exc:
        _say(str(exc))
        return EXIT_USAGE

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            backend.start()
        except (BrowserNotFoundError, OSError) as exc:
            _say(f"could not start: {exc}")
            return EXIT_ERROR
        try:
            if getattr(args, "json", False):
                import json

                print(json.dumps({"base_url": backend.base_url}), flush=True)
            else:
                print(backend.base_url, flush=True)
            if not is_loopback_host(host) and not api_key:
                _say("warning: listening beyond loopback without an API key")
            _say(
                f"local backend ready ({'x-api-key required' if api_key else 'no key required'});"
                " Ctrl-C stops it"
            )
            while not stop.wait(0.5):
                pass
            name = signal.Signals(received[0]).name if received else "signal"
            _say(f"{name}: stopping every session")
        finally:
            backend.stop()
        _say("stopped")
        return EXIT_OK
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
