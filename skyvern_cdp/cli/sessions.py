"""The session commands: ``info``, ``wait``, ``launch``, ``close``, ``extend``, ``list`` and
``screenshot``; each a parser builder (``_add_*``) and a handler. Only ``screenshot`` loads
Playwright, and only when it runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from skyvern_cdp.models import BrowserSessionResponse

from skyvern_cdp.cli._args import (
    DEFAULT_READY_TIMEOUT,
    EXIT_OK,
    PROG,
    _add_call_timeout,
    _image_path,
    _minutes,
    _seconds,
    _session_id,
    network_options,
)
from skyvern_cdp.cli._output import (
    Progress,
    _client,
    _print_json,
    _session_data,
    _warn_if_any,
)

#: How long closing a session ``launch`` made may take (it did not become ready, or Ctrl-C).
LAUNCH_CLOSE_TIMEOUT = 10.0

ADD_COMMANDS = ("_add_info", "_add_wait", "_add_launch", "_add_close", "_add_extend",
                "_add_list", "_add_screenshot")


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
    launch.add_argument("--profile", default=None, metavar="NAME|bp_ID",
                        help="start from this browser profile (a name, or its bp_ id)")
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
    from skyvern_cdp._sessions import close_session_sync, create_sync
    from skyvern_cdp.policy import Deadline

    fields: dict[str, Any] = {}
    if args.url is not None:
        fields["url"] = args.url
    if args.browser_type is not None:
        fields["browser_type"] = args.browser_type
    if args.profile is not None:
        from skyvern_cdp.policy.profiles import profile_ref

        profile_ref(args.profile)  # a bad id or name is a usage error, before any request
    deadline = Deadline(args.ready_timeout)  # one deadline: the lookup, the create, the wait
    with _client(args) as client:
        if args.profile is not None:  # a name is looked up once, through the list
            fields["browser_profile_id"] = client.resolve_browser_profile(
                args.profile, timeout=max(deadline.remaining(), 0.001)
            )
        # Ctrl-C (or SIGTERM) while the create is in flight: what it makes is closed.
        session = create_sync(
            client, deadline, args.timeout_minutes, cast(Any, fields), LAUNCH_CLOSE_TIMEOUT
        )
        sid = session.browser_session_id
        _warn_if_any(session)
        try:
            with Progress(sys.stderr, sid) as progress:
                progress.update(session)
                session = client.wait_for_browser_session(
                    sid, timeout=max(deadline.remaining(), 0.001), on_status=progress.update
                )
                progress.ready()
        except BaseException:
            # A session we cannot hand over would run (and bill) until its timeout.
            if close_session_sync(client, sid, LAUNCH_CLOSE_TIMEOUT, ", not ready"):
                print(f"{PROG}: closed session {sid}, which did not become ready", file=sys.stderr)
            else:
                print(f"{PROG}: could not close session {sid}", file=sys.stderr)
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
            **network_options(args),
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
