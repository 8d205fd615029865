"""``skyvern-cdp profile``: list, read, make and delete browser profiles.

::

    skyvern-cdp profile list [--search KEY]         # ID  NAME  MODIFIED  DESCRIPTION
    skyvern-cdp profile get crm                     # one profile as JSON (a name or a bp_ id)
    bp=$(skyvern-cdp profile create crm --from pbs_123)   # from a closed session: prints its id
    skyvern-cdp profile delete crm

``create --from`` waits (up to ``--timeout``, 60 s by default) while the session's state is
still being saved after its close. Exit codes as for every command: 0 done, 2 usage, 3 auth
or not found, 5 timed out (the state was not saved in time), 1 anything else (a taken name).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from skyvern_cdp.cli._args import (
    EXIT_OK,
    _add_call_timeout,
    _add_global_options,
    _seconds,
    _session_id,
)
from skyvern_cdp.cli._output import _client, _print_json

if TYPE_CHECKING:
    from skyvern_cdp.client import SkyvernClient
    from skyvern_cdp.models import BrowserProfile

__all__ = ["add_profile"]

#: ``profile create --from``: how long to wait for the session's saved state by default.
DEFAULT_CREATE_TIMEOUT = 60.0


def _ref(text: str) -> str:
    from skyvern_cdp.errors import InvalidArgumentError
    from skyvern_cdp.policy.profiles import profile_ref

    try:
        profile_ref(text)
    except InvalidArgumentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _name(text: str) -> str:
    from skyvern_cdp.errors import InvalidArgumentError
    from skyvern_cdp.policy.profiles import validate_profile_name

    try:
        return validate_profile_name(text)
    except InvalidArgumentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_profile(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    profile = commands.add_parser(
        "profile",
        help="browser profiles: list, get, create --from pbs_…, delete",
        description="Browser profiles: a saved browser state (logins) a session can start from"
        " (skyvern-cdp launch --profile NAME).",
    )
    actions = profile.add_subparsers(dest="profile_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="the profiles, newest first")
    listing.add_argument("--search", default=None, metavar="KEY",
                         help="only those whose name or description contains KEY")
    listing.add_argument("--page", type=int, default=1)
    listing.add_argument("--page-size", type=int, default=50)
    _add_call_timeout(listing)
    listing.set_defaults(handler=_list)

    get = actions.add_parser("get", help="one profile as JSON")
    get.add_argument("profile", type=_ref, metavar="NAME|bp_ID")
    _add_call_timeout(get)
    get.set_defaults(handler=_get)

    create = actions.add_parser(
        "create", help="make a profile (from a session's saved state with --from)"
    )
    create.add_argument("name", type=_name, metavar="NAME")
    create.add_argument("--from", dest="source", type=_session_id, default=None, metavar="ID",
                        help="the session (created with generate_browser_profile) to save;"
                        " without it the profile is blank")
    create.add_argument("--description", default=None)
    create.add_argument("--timeout", type=_seconds, default=DEFAULT_CREATE_TIMEOUT, metavar="S",
                        help="how long to wait while the session's state is being saved"
                        f" (default {DEFAULT_CREATE_TIMEOUT:g})")
    create.set_defaults(handler=_create)

    delete = actions.add_parser("delete", help="delete a profile and its saved state")
    delete.add_argument("profile", type=_ref, metavar="NAME|bp_ID")
    _add_call_timeout(delete)
    delete.set_defaults(handler=_delete)
    for action in (listing, get, create, delete):
        _add_global_options(action, top=False)


def _data(profile: BrowserProfile) -> dict[str, Any]:
    data: dict[str, Any] = profile.model_dump(mode="json")
    return data


def _resolved(client: SkyvernClient, args: argparse.Namespace) -> str:
    return client.resolve_browser_profile(args.profile, timeout=args.timeout)


def _list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        profiles = client.list_browser_profiles(
            page=args.page, page_size=args.page_size, search_key=args.search, timeout=args.timeout
        )
    if args.json:
        _print_json([_data(p) for p in profiles], args)
        return EXIT_OK
    if not profiles:
        print("no browser profiles", file=sys.stderr)
        return EXIT_OK
    rows = [("ID", "NAME", "MODIFIED", "DESCRIPTION")]
    for p in profiles:
        when = p.modified_at or p.created_at
        shown = when.strftime("%Y-%m-%d %H:%M:%S") if when else "-"
        rows.append((p.browser_profile_id, p.name, shown, (p.description or "")[:60]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def _get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        profile = client.get_browser_profile(_resolved(client, args), timeout=args.timeout)
    _print_json(_data(profile), args)
    return EXIT_OK


def _create(args: argparse.Namespace) -> int:
    with _client(args) as client:
        made = client.create_browser_profile(
            args.name,
            description=args.description,
            browser_session_id=args.source,
            timeout=args.timeout,
        )
    if args.json:
        _print_json(_data(made), args)
    else:
        print(made.browser_profile_id)
    return EXIT_OK


def _delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        profile_id = _resolved(client, args)
        client.delete_browser_profile(profile_id, timeout=args.timeout)
    if args.json:
        _print_json({"browser_profile_id": profile_id, "deleted": True}, args)
    else:
        print(f"deleted {profile_id}")
    return EXIT_OK
