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

The API key comes from ``SKYVERN_API_KEY`` (preferred) or ``--api-key``; the server from
``SKYVERN_BASE_URL`` or ``--base-url`` (a URL, or ``cloud``/``staging``/``local``).

Exit codes: 0 done, 1 any other error, 2 usage, 3 auth or not found, 4 session ended,
5 timed out, 130 interrupted. An error prints one line on stderr, never a traceback.
Progress goes to stderr; stdout carries only the result. ``info``, ``wait``, ``launch``,
``close``, ``extend`` and ``list`` never import Playwright, so they start fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

if TYPE_CHECKING:
    from skyvern_cdp.client import SkyvernClient
    from skyvern_cdp.models import BrowserSessionResponse

__all__ = ["build_parser", "exit_code_for", "main"]

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


# -- commands -------------------------------------------------------------------------------


def _add_call_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_CALL_TIMEOUT, metavar="S",
                        help="give up after S seconds, retries included"
                        f" (default {DEFAULT_CALL_TIMEOUT:g})")


def _add_info(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    info = commands.add_parser("info", help="print a session as JSON")
    info.add_argument("session_id", type=_session_id, metavar="ID")
    info.add_argument("--show-secrets", action="store_true",
                      help="print the browser_address and file URLs as they are (they may"
                      " carry a token or a signature)")
    _add_call_timeout(info)
    info.set_defaults(handler=_info)


def _add_wait(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wait = commands.add_parser(
        "wait",
        help="wait until a session is ready; print its browser_address",
        description="Wait until the session is ready and print only its browser_address on"
        " stdout (addr=$(skyvern-cdp wait ID)); progress goes to stderr. Exit codes: 0 ready,"
        " 3 auth or not found, 4 session ended, 5 timed out.",
    )
    wait.add_argument("session_id", type=_session_id, metavar="ID")
    wait.add_argument("--timeout", type=_seconds, default=DEFAULT_READY_TIMEOUT, metavar="S",
                      help=f"give up after S seconds (default {DEFAULT_READY_TIMEOUT:g})")
    wait.set_defaults(handler=_wait)


#: ``PersistentBrowserType``'s values, spelled out so that building the parser (``--help``)
#: does not load the models (pydantic); a test keeps the two equal.
BROWSER_TYPES = ("msedge", "chrome", "stealth-chromium")


def _add_launch(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    launch = commands.add_parser(
        "launch",
        help="create a session, wait until it is ready, print 'ID ADDRESS'",
        description="Create a session, wait until it is ready, and print its id and"
        " browser_address on one line (read -r id addr < <(skyvern-cdp launch)). A session"
        " that does not become ready is closed again.",
    )
    launch.add_argument("--timeout-minutes", type=int, default=None, metavar="N",
                        help="the session's lifetime in minutes (at least 5; server default 60)")
    launch.add_argument("--url", default=None, help="the page the session opens")
    launch.add_argument("--browser-type", default=None,
                        choices=BROWSER_TYPES)
    launch.add_argument("--ready-timeout", type=_seconds, default=DEFAULT_READY_TIMEOUT,
                        metavar="S", help="how long to wait until it is ready")
    launch.set_defaults(handler=_launch)


def _add_close(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    close = commands.add_parser("close", help="end a session (closing twice is harmless)")
    close.add_argument("session_id", type=_session_id, metavar="ID")
    _add_call_timeout(close)
    close.set_defaults(handler=_close)


def _add_extend(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    extend = commands.add_parser("extend", help="give a session more minutes of life")
    extend.add_argument("session_id", type=_session_id, metavar="ID")
    extend.add_argument("minutes", type=_minutes, metavar="MINUTES")
    _add_call_timeout(extend)
    extend.set_defaults(handler=_extend)


def _add_list(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listing = commands.add_parser("list", help="list the live sessions")
    listing.add_argument("--show-secrets", action="store_true",
                         help="with --json: print each browser_address as it is")
    _add_call_timeout(listing)
    listing.set_defaults(handler=_list)


def _add_screenshot(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    shot = commands.add_parser(
        "screenshot",
        help="attach, save a screenshot of the default page, detach",
        description="Attach to the session over CDP, save a screenshot of its default page,"
        " and detach (the session keeps running). A smoke test of a session.",
    )
    shot.add_argument("session_id", type=_session_id, metavar="ID")
    shot.add_argument("out", type=_image_path, metavar="OUT.png")
    shot.add_argument("--timeout", type=_seconds, default=DEFAULT_READY_TIMEOUT, metavar="S",
                      help="overall deadline: wait, attach and screenshot")
    shot.add_argument("--full-page", action="store_true", help="the whole page, not the viewport")
    shot.set_defaults(handler=_screenshot)


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
    if "--verbose" not in taken:
        parser.add_argument("-v", "--verbose", action="store_true", default=default(False),
                            help="debug logs on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Attach to Skyvern browser sessions over CDP.")
    _add_global_options(parser, top=True)
    commands = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"),
    )
    for add in (_add_info, _add_wait, _add_launch, _add_close, _add_extend, _add_list,
                _add_screenshot, _add_serve, _add_demo):
        add(commands)
    for sub in commands.choices.values():
        _add_global_options(sub, top=False)
    return parser


# -- output ---------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> SkyvernClient:
    from skyvern_cdp.client import SkyvernClient

    return SkyvernClient(api_key=args.api_key, base_url=args.base_url)


def _secrets(args: argparse.Namespace) -> list[str | None]:
    from skyvern_cdp.config import API_KEY_ENV

    return [args.api_key, os.environ.get(API_KEY_ENV)]


def _session_data(session: BrowserSessionResponse, *, show_address: bool) -> dict[str, Any]:
    """The session as JSON-ready data; ``browser_address`` and the query of file URLs redacted
    unless ``show_address``."""
    from skyvern_cdp.config import redact_address

    data: dict[str, Any] = session.model_dump(mode="json")
    if not show_address and data.get("browser_address"):
        data["browser_address"] = redact_address(data["browser_address"])
    if not show_address:  # presigned file URLs carry their signature in the query
        for name in ("downloaded_files", "recordings"):
            for item in data.get(name) or ():
                if isinstance(item, dict) and isinstance(item.get("url"), str):
                    item["url"] = _without_query(item["url"])
    return data


def _without_query(url: str) -> str:
    base, sep, _ = url.partition("?")
    return f"{base}?<redacted>" if sep else url


def _print_json(data: object, args: argparse.Namespace, *, redact: bool = True) -> None:
    from skyvern_cdp.config import redact_text

    text = json.dumps(data, indent=2, sort_keys=False)
    print(redact_text(text, _secrets(args)) if redact else text)


def _warn_if_any(session: BrowserSessionResponse) -> None:
    warning = (session.model_extra or {}).get("warning")
    if warning:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)


class Progress:
    """The state of a wait, on stderr: one live line on a terminal, plain lines otherwise.

    >>> with Progress(sys.stderr, "pbs_123") as progress:  # doctest: +SKIP
    ...     session = client.wait_for_browser_session("pbs_123", on_status=progress.update)
    ...     progress.ready()

    On a terminal the line ``pbs_123: created  1.4s`` is redrawn in place (carriage return)
    every :data:`PROGRESS_INTERVAL`; piped, each status change is one plain line.
    """

    def __init__(self, stream: IO[str], session_id: str, *, live: bool | None = None) -> None:
        self.stream = stream
        self.session_id = session_id
        self.live = _isatty(stream) if live is None else live
        self.status = "waiting"
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._width = 0
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        self.started = time.monotonic()
        if self.live:
            self._draw()
            self._thread = threading.Thread(target=self._tick, name="skyvern-cdp-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(None)

    def update(self, session: BrowserSessionResponse) -> None:
        """``on_status`` callback: the session's status changed."""
        from skyvern_cdp.policy import missing_for_ready

        status = session.status or "unknown"
        if status == "running" and "browser_address" in missing_for_ready(session):
            status = "running, no browser_address yet"
        with self._lock:
            if status == self.status:
                return
            self.status = status
            if self.live:
                self._draw_locked()
            else:
                self._line(f"{self.session_id}: {status} ({self._elapsed():.1f}s)")

    def ready(self, word: str = "ready") -> None:
        """The wait is over: say so (``word``) and end the line."""
        self._finish(word)

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _tick(self) -> None:
        while not self._stop.wait(PROGRESS_INTERVAL):
            self._draw()

    def _draw(self) -> None:
        with self._lock:
            if not self._stop.is_set():
                self._draw_locked()

    def _draw_locked(self, status: str | None = None) -> None:
        text = f"{self.session_id}: {status or self.status}  {self._elapsed():.1f}s"
        pad = " " * max(0, self._width - len(text))
        self._width = len(text)
        self._write("\r" + text + pad)

    def _line(self, text: str) -> None:
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr went away: progress is optional
            pass

    def _finish(self, final: str | None) -> None:
        if self._stop.is_set():
            return
        with self._lock:
            self._stop.set()
            if self.live:
                self._draw_locked(final)
                self._write("\n")
            elif final is not None:
                self._line(f"{self.session_id}: {final} ({self._elapsed():.1f}s)")
        if self._thread is not None:
            self._thread.join()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- handlers -------------------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    with _client(args) as client:
        session = client.get_browser_session(args.session_id, timeout=args.timeout)
    _print_json(
        _session_data(session, show_address=args.show_secrets), args,
        redact=not args.show_secrets,
    )
    return EXIT_OK


def _print_ready(
    session: BrowserSessionResponse, args: argparse.Namespace, *, with_id: bool
) -> None:
    # wait and launch print the real address: delivering it is their job.
    if args.json:
        _print_json(_session_data(session, show_address=True), args, redact=False)
    elif with_id:
        print(f"{session.browser_session_id} {session.browser_address}")
    else:
        print(session.browser_address)


def _wait(args: argparse.Namespace) -> int:
    with _client(args) as client, Progress(sys.stderr, args.session_id) as progress:
        session = client.wait_for_browser_session(
            args.session_id, timeout=args.timeout, on_status=progress.update
        )
        progress.ready()
    _print_ready(session, args, with_id=False)
    return EXIT_OK


def _launch(args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {}
    if args.url is not None:
        fields["url"] = args.url
    if args.browser_type is not None:
        fields["browser_type"] = args.browser_type
    with _client(args) as client:
        session = client.create_browser_session(
            session_timeout_minutes=args.timeout_minutes, **fields
        )
        sid = session.browser_session_id
        _warn_if_any(session)
        try:
            with Progress(sys.stderr, sid) as progress:
                progress.update(session)
                session = client.wait_for_browser_session(
                    sid, timeout=args.ready_timeout, on_status=progress.update
                )
                progress.ready()
        except BaseException:
            # A session we cannot hand over would run (and bill) until its timeout.
            try:
                client.close_browser_session(sid, timeout=10.0)
                print(f"{PROG}: closed session {sid}, which did not become ready", file=sys.stderr)
            except Exception as exc:
                print(f"{PROG}: could not close session {sid}: {exc}", file=sys.stderr)
            raise
    _print_ready(session, args, with_id=True)
    return EXIT_OK


def _close(args: argparse.Namespace) -> int:
    with _client(args) as client:
        answer = client.close_browser_session(args.session_id, timeout=args.timeout)
    if args.json:
        _print_json({"browser_session_id": args.session_id, "message": answer.message}, args)
    else:
        print(f"closed {args.session_id}")
    return EXIT_OK


def _extend(args: argparse.Namespace) -> int:
    with _client(args) as client:
        session = client.extend_browser_session(
            args.session_id, args.minutes, timeout=args.timeout
        )
    _warn_if_any(session)
    if args.json:
        _print_json(_session_data(session, show_address=False), args)
    else:
        print(f"{session.browser_session_id}: timeout is now {session.timeout} minutes")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        sessions = client.list_browser_sessions(timeout=args.timeout)
    if args.json:
        shown = [_session_data(s, show_address=args.show_secrets) for s in sessions]
        _print_json(shown, args, redact=not args.show_secrets)
        return EXIT_OK
    if not sessions:
        print("no live sessions", file=sys.stderr)
        return EXIT_OK
    rows = [("ID", "STATUS", "TIMEOUT", "STARTED")]
    for s in sessions:
        started = s.started_at.strftime("%Y-%m-%d %H:%M:%S") if s.started_at else "-"
        timeout = f"{s.timeout} min" if s.timeout is not None else "-"
        rows.append((s.browser_session_id, s.status or "-", timeout, started))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return EXIT_OK


def _screenshot(args: argparse.Namespace) -> int:
    from skyvern_cdp import sync_api  # the only API-side command that needs Playwright

    started = time.monotonic()
    with Progress(sys.stderr, args.session_id) as progress:
        browser = sync_api.connect(
            args.session_id,
            api_key=args.api_key,
            base_url=args.base_url,
            timeout=args.timeout,
            on_status=progress.update,
        )
        progress.ready("attached")
    try:
        page = sync_api.default_page(browser)
        left = max(1.0, args.timeout - (time.monotonic() - started))
        page.screenshot(path=str(args.out), full_page=args.full_page, timeout=left * 1000.0)
        url = page.url
    finally:
        browser.close()
    size = args.out.stat().st_size
    if args.json:
        _print_json({"path": str(args.out), "bytes": size, "url": url}, args)
    else:
        print(f"{args.out} ({size} bytes, {url})")
    return EXIT_OK


# -- errors and the entry point -------------------------------------------------------------


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an error: 2 usage, 3 auth or not found, 4 ended, 5 timed out, else 1."""
    from skyvern_cdp.errors import (
        AuthenticationError,
        InsecureTransportError,
        InvalidArgumentError,
        SessionClosedError,
        SessionEndedError,
        SessionNotFoundError,
    )

    if isinstance(exc, (InvalidArgumentError, InsecureTransportError)):
        return EXIT_USAGE
    if isinstance(exc, (AuthenticationError, SessionNotFoundError)):
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
