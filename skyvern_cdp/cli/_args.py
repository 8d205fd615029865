"""The command line's vocabulary: exit codes, defaults, argument types, and the options every
command takes. Nothing here imports more than the standard library at import time.

>>> _seconds("2.5"), _minutes("15")
(2.5, 15)
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    pass


EXIT_OK = 0
EXIT_USAGE = 2
EXIT_AUTH_OR_NOT_FOUND = 3
EXIT_SESSION_ENDED = 4
EXIT_TIMED_OUT = 5
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

PROG = "skyvern-cdp"
#: How often the live status line on a terminal is redrawn, in seconds.
PROGRESS_INTERVAL = 0.1
#: ``wait`` / ``launch`` / ``screenshot``: how long to wait for the session by default.
DEFAULT_READY_TIMEOUT = 120.0
#: ``info`` / ``close`` / ``extend`` / ``list``: the deadline of the call, retries included.
DEFAULT_CALL_TIMEOUT = 30.0

logger = logging.getLogger("skyvern_cdp.cli")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _minutes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of minutes: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 minute, got {text!r}")
    return value


def _session_id(text: str) -> str:
    from skyvern_cdp.errors import InvalidArgumentError
    from skyvern_cdp.policy import validate_session_id

    try:
        return validate_session_id(text)
    except InvalidArgumentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _image_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise argparse.ArgumentTypeError(f"the file name must end in .png, .jpg or .jpeg: {text!r}")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {str(path.parent)!r}")
    return path


def _add_call_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_CALL_TIMEOUT, metavar="S",
                        help="give up after S seconds, retries included"
                        f" (default {DEFAULT_CALL_TIMEOUT:g})")


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The global options; a subcommand also takes them (``skyvern-cdp info ID --json``)."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    taken = parser._option_string_actions
    if "--base-url" not in taken:
        parser.add_argument("--base-url", default=default(None),
                            help="API URL, or cloud/staging/local (default: $SKYVERN_BASE_URL,"
                            " else cloud)")
    if "--api-key" not in taken:
        parser.add_argument("--api-key", default=default(None),
                            help="API key (prefer the SKYVERN_API_KEY environment variable:"
                            " arguments show in the process list)")
    if "--json" not in taken:
        parser.add_argument("--json", action="store_true", default=default(False),
                            help="machine-readable output")
    if "--trusted-host" not in taken:
        parser.add_argument("--trusted-host", action="append", dest="trusted_hosts",
                            default=default(None), metavar="HOST",
                            help="also send the key to HOST's CDP endpoints (repeatable; also"
                            " $SKYVERN_CDP_TRUSTED_HOSTS, comma-separated)")
    if "--allow-insecure-http" not in taken:
        parser.add_argument("--allow-insecure-http", action="store_true",
                            default=default(None),
                            help="send the key over plain http:// to a host that is not"
                            " loopback, e.g. self-hosted Skyvern on a LAN (also"
                            " $SKYVERN_CDP_ALLOW_INSECURE_HTTP=1)")
    if "--verbose" not in taken:
        parser.add_argument("-v", "--verbose", action="store_true", default=default(False),
                            help="debug logs on stderr")


def network_options(args: argparse.Namespace) -> dict[str, Any]:
    """``trusted_hosts=`` / ``allow_insecure_http=`` from the flags, else the environment."""
    from skyvern_cdp.config import edge_network_options

    return edge_network_options(
        getattr(args, "trusted_hosts", None), getattr(args, "allow_insecure_http", None) or None
    )
