"""The ``skyvern-cdp`` command.

::

    skyvern-cdp serve --port 8000          # the local backend
    skyvern-cdp demo                       # launch a session on it and drive a page

Commands that only talk to the API never import Playwright, so they start fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_AUTH_OR_NOT_FOUND = 3
EXIT_SESSION_ENDED = 4
EXIT_TIMED_OUT = 5
EXIT_ERROR = 1


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the local backend (Skyvern's API over Chromium)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument("--max-sessions", type=int, default=None)
    serve.add_argument("--ready-delay", type=float, default=0.0, metavar="S",
                       help="seconds a session stays 'created' before it runs")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow a --host that is not loopback")
    serve.add_argument("--chromium-arg", action="append", default=[], metavar="ARG",
                       help="extra Chromium argument (repeatable)")
    serve.set_defaults(handler="skyvern_cdp.local.serve:run")


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser("demo", help="launch a session on the local backend, open a page")
    demo.add_argument("--cloud", action="store_true",
                      help="use SKYVERN_BASE_URL / cloud instead of the local backend")
    demo.set_defaults(handler="skyvern_cdp.local.demo:run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skyvern-cdp", description="Attach to Skyvern browser sessions over CDP."
    )
    parser.add_argument("--base-url", default=None, help="API URL or cloud/staging/local")
    parser.add_argument("--api-key", default=None,
                        help="API key (prefer the SKYVERN_API_KEY environment variable)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_demo(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    module_name, _, func_name = args.handler.partition(":")
    import importlib

    handler = getattr(importlib.import_module(module_name), func_name)
    try:
        code: int = handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
