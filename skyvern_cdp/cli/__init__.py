"""The ``skyvern-cdp`` command.

::

    addr=$(skyvern-cdp wait pbs_123)          # wait until ready; print only its browser_address
    skyvern-cdp info pbs_123                  # the session as JSON (address tokens redacted)
    skyvern-cdp launch --timeout-minutes 15   # create a session, wait, print "ID ADDRESS"
    skyvern-cdp screenshot pbs_123 shot.png   # attach, screenshot the default page, detach
    skyvern-cdp extend pbs_123 30             # 30 more minutes of life
    skyvern-cdp close pbs_123
    skyvern-cdp list
    skyvern-cdp serve --port 8000             # the local backend
    skyvern-cdp demo                          # launch a session on it and drive a page
    skyvern-cdp relay pbs_123 --port 9222     # a plain CDP endpoint for Selenium & co.
    skyvern-cdp profile list                  # browser profiles (also get, create, delete)
    skyvern-cdp launch --profile crm          # a session that starts logged in
    skyvern-cdp files pbs_123 --save out      # save its recordings and downloaded files

The API key comes from ``SKYVERN_API_KEY`` (preferred) or ``--api-key``; the server from
``SKYVERN_BASE_URL`` or ``--base-url`` (a URL, or ``cloud``/``staging``/``local``).

Exit codes: 0 done, 1 any other error, 2 usage, 3 auth or not found, 4 session ended,
5 timed out, 130 interrupted. An error prints one line on stderr, never a traceback.
Progress goes to stderr; stdout carries only the result. ``info``, ``wait``, ``launch``,
``close``, ``extend`` and ``list`` never import Playwright, so they start fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import cast

from skyvern_cdp.cli import sessions
from skyvern_cdp.cli._args import (
    DEFAULT_READY_TIMEOUT,
    EXIT_AUTH_OR_NOT_FOUND,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SESSION_ENDED,
    EXIT_TIMED_OUT,
    EXIT_USAGE,
    PROG,
    _add_global_options,
    _Parser,
    _seconds,
    _session_id,
)
from skyvern_cdp.cli._output import _secrets
from skyvern_cdp.cli.files import add_files
from skyvern_cdp.cli.profiles import add_profile
from skyvern_cdp.cli.sessions import BROWSER_TYPES
from skyvern_cdp.local.registry import DEFAULT_MAX_SESSIONS

__all__ = [
    "BROWSER_TYPES",
    "EXIT_AUTH_OR_NOT_FOUND",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SESSION_ENDED",
    "EXIT_TIMED_OUT",
    "EXIT_USAGE",
    "build_parser",
    "exit_code_for",
    "main",
]

logger = logging.getLogger("skyvern_cdp.cli")


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the local backend (Skyvern's API over Chromium)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument("--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS, metavar="N",
                       help=f"live sessions at most (default {DEFAULT_MAX_SESSIONS}); past it,"
                       " create answers 429")
    serve.add_argument("--ready-delay", type=float, default=0.0, metavar="S",
                       help="seconds a session stays 'created' before it runs")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow a --host that is not loopback")
    serve.add_argument("--chromium-arg", action="append", default=[], metavar="ARG",
                       help="extra Chromium argument (repeatable)")
    serve.add_argument("--profiles-dir", default=None, metavar="DIR",
                       help="where browser profiles live (default: the user's data directory,"
                       " ~/.local/share/skyvern-cdp/profiles on Linux)")
    serve.add_argument("--no-recordings", dest="recordings", action="store_false",
                       help="do not record sessions as videos (recorded by default)")
    serve.add_argument("--recordings-dir", default=None, metavar="DIR",
                       help="keep the sessions' videos here, after serve stops (default: a"
                       " temporary directory removed when it stops)")
    serve.set_defaults(handler="skyvern_cdp.local.serve:run")


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser("demo", help="launch a session on the local backend, open a page")
    demo.add_argument("--cloud", action="store_true",
                      help="use SKYVERN_BASE_URL / cloud instead of the local backend")
    demo.set_defaults(handler="skyvern_cdp.local.demo:run")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535 (0 picks a free one), got {text!r}")
    return value


def _add_relay(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    relay = commands.add_parser(
        "relay",
        help="serve a session as a plain local CDP endpoint (Selenium, Puppeteer, DevTools)",
        description="Wait until the session is ready, then serve what Chrome's debugging port"
        " serves (/json/*, browser and page websockets) on HOST:PORT, for CDP clients that"
        " cannot send x-api-key; print http://HOST:PORT on stdout. Runs until the session ends"
        " (exit 4) or Ctrl-C (130); 3 for a bad key or an unknown session.",
    )
    relay.add_argument("session_id", nargs="?", type=_session_id, metavar="ID")
    relay.add_argument("--port", type=_port, default=9222, help="default 9222; 0 picks one")
    relay.add_argument("--host", default="127.0.0.1",
                       help="where to listen (default loopback; elsewhere is warned about)")
    relay.add_argument("--launch", action="store_true",
                       help="create a session first, and close it when the relay ends")
    relay.add_argument("--timeout-minutes", type=int, default=None, metavar="N",
                       help="with --launch: the session's lifetime in minutes")
    relay.add_argument("--url", default=None, help="with --launch: the page the session opens")
    relay.add_argument("--browser-type", default=None, choices=BROWSER_TYPES)
    relay.add_argument("--profile", default=None, metavar="NAME|bp_ID",
                       help="with --launch: start from this browser profile (a name or an id)")
    relay.add_argument("--ready-timeout", type=_seconds, default=DEFAULT_READY_TIMEOUT,
                       metavar="S", help="how long to wait until the session is ready")
    relay.set_defaults(handler="skyvern_cdp.relay.command:run")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Attach to Skyvern browser sessions over CDP.")
    _add_global_options(parser, top=True)
    commands = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"),
    )
    for name in sessions.ADD_COMMANDS:
        getattr(sessions, name)(commands)
    for add in (_add_serve, _add_demo, _add_relay, add_profile, add_files):
        add(commands)
    for sub in commands.choices.values():
        _add_global_options(sub, top=False)
    return parser


# -- errors and the entry point -------------------------------------------------------------


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an error: 2 usage, 3 auth or not found, 4 ended, 5 timed out, else 1."""
    from skyvern_cdp.errors import (
        AuthenticationError,
        InsecureTransportError,
        InvalidArgumentError,
        ProfileNotFoundError,
        SessionClosedError,
        SessionEndedError,
        SessionNotFoundError,
    )

    if isinstance(exc, (InvalidArgumentError, InsecureTransportError)):
        return EXIT_USAGE
    if isinstance(exc, (AuthenticationError, SessionNotFoundError, ProfileNotFoundError)):
        return EXIT_AUTH_OR_NOT_FOUND
    if isinstance(exc, (SessionEndedError, SessionClosedError)):
        return EXIT_SESSION_ENDED
    if isinstance(exc, TimeoutError):
        return EXIT_TIMED_OUT
    return EXIT_ERROR


def _one_line(exc: BaseException, args: argparse.Namespace) -> str:
    from skyvern_cdp.config import redact_text
    from skyvern_cdp.errors import SkyvernCDPError

    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    if not isinstance(exc, SkyvernCDPError):  # an unexpected error: name its kind
        line = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return redact_text(line, _secrets(args))[:500]


@contextmanager
def _stdout_may_close() -> Iterator[None]:
    """``skyvern-cdp list | head -1``: a reader that leaves early is not an error."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise


#: The loggers of the HTTP stack, whose ``-v`` lines name each request's whole URL (a file
#: URL's ``?token=``, a presigned signature).
_URL_LOGGERS = ("httpx", "httpcore")


class _RedactRecord(logging.Filter):
    """Redacts a record's message before any handler formats it: the key, and any
    ``token=``-like query value (:func:`skyvern_cdp.config.redact_text`)."""

    def __init__(self, secrets: Sequence[str | None]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        from skyvern_cdp.config import redact_text

        message = record.getMessage()
        redacted = redact_text(message, self.secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (never raises, never prints a traceback)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    redacting = _RedactRecord(_secrets(args))
    for name in _URL_LOGGERS:  # their request lines name URLs whose query may be a token
        logging.getLogger(name).addFilter(redacting)
    try:
        return _run(args)
    finally:
        for name in _URL_LOGGERS:
            logging.getLogger(name).removeFilter(redacting)


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command: its exit code, its errors as one line."""
    handler: Callable[[argparse.Namespace], int] | str = args.handler
    try:
        with _stdout_may_close():
            if isinstance(handler, str):
                import importlib

                module_name, _, func_name = handler.partition(":")
                handler = getattr(importlib.import_module(module_name), func_name)
                assert callable(handler)
            return int(handler(args))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:
        print(f"{PROG}: error: {_one_line(exc, args)}", file=sys.stderr)
        return exit_code_for(exc)


if __name__ == "__main__":
    raise SystemExit(main())
