"""``skyvern-cdp relay``: serve a session as a plain local CDP endpoint until it ends.

::

    $ skyvern-cdp relay pbs_123 --port 9222
    http://127.0.0.1:9222
    $ skyvern-cdp relay --launch --url https://example.com   # a new session, closed at the end

stdout carries only the endpoint (``--json``: an object with ``url`` and ``session_id``);
progress and notes go to stderr. Exit codes: 4 when the session ends (the relay's normal
end), 3 for a bad key or an unknown session, 2 for bad arguments or an address it cannot
listen on, 5 when the session is not ready in time, 130 on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import signal
import socket
import sys
from typing import Any

from skyvern_cdp.cli._args import (
    EXIT_INTERRUPTED,
    EXIT_SESSION_ENDED,
    EXIT_USAGE,
    PROG,
    network_options,
)
from skyvern_cdp.cli._output import Progress
from skyvern_cdp.config import is_loopback_host
from skyvern_cdp.errors import InvalidArgumentError

__all__ = ["run"]

logger = logging.getLogger("skyvern_cdp.relay.command")


def _say(message: str) -> None:
    print(f"{PROG} relay: {message}", file=sys.stderr, flush=True)


def _create_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if args.timeout_minutes is not None:
        fields["session_timeout_minutes"] = args.timeout_minutes
    if args.url is not None:
        fields["url"] = args.url
    if args.browser_type is not None:
        fields["browser_type"] = args.browser_type
    if getattr(args, "profile", None) is not None:
        fields["browser_profile"] = args.profile
    return fields


def run(args: argparse.Namespace) -> int:
    """Run the relay until the session ends (4), Ctrl-C/SIGTERM (130), or an error."""
    if (args.session_id is None) == (not args.launch):
        _say("give a session ID, or --launch to create one (not both)")
        return EXIT_USAGE
    if not args.launch and (
        args.url or args.timeout_minutes or args.browser_type or getattr(args, "profile", None)
    ):
        _say("--url, --timeout-minutes, --browser-type and --profile go with --launch")
        return EXIT_USAGE
    from skyvern_cdp.relay import check_host

    args.host = check_host(args.host)  # a bad one is a usage error (exit 2) before any request
    if not is_loopback_host(args.host):
        _say(
            f"warning: listening on {args.host!r}, beyond loopback: anyone who can reach it"
            " drives the session with your key, and no key is asked of them"
        )
    return asyncio.run(_main(args))


async def _main(args: argparse.Namespace) -> int:
    from skyvern_cdp.relay import relay

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    interrupted: list[str] = []

    def interrupt(name: str) -> None:
        interrupted.append(name)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt, sig.name)
    progress = Progress(sys.stderr, args.session_id or "new session")
    try:
        with progress:
            async with relay(
                args.session_id,
                create=_create_fields(args) if args.launch else None,
                host=args.host,
                port=args.port,
                timeout=args.ready_timeout,
                api_key=args.api_key,
                base_url=args.base_url,
                **network_options(args),
                on_status=progress.update,
            ) as endpoint:
                progress.ready("relaying")
                if args.json:
                    print(json.dumps({"url": endpoint.url, "session_id": endpoint.session_id}),
                          flush=True)
                else:
                    print(endpoint.url, flush=True)
                made = " (created by this relay; closed when it ends)" if endpoint.launched else ""
                _say(f"{endpoint.session_id}{made} on {endpoint.url}; Ctrl-C stops it")
                status = await endpoint.wait_ended()
        _say(f"session {endpoint.session_id} ended ({status})")
        return EXIT_SESSION_ENDED
    except asyncio.CancelledError:
        if not interrupted:
            raise
        _say(f"{interrupted[0]}: stopped")
        return EXIT_INTERRUPTED
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES) or isinstance(
            exc, socket.gaierror
        ):
            raise InvalidArgumentError(
                f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
            ) from None
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
