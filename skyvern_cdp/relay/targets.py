"""What the relay answers over HTTP, as Chrome's own debugging port answers it; no I/O.

>>> from skyvern_cdp.relay.targets import route, target_entry
>>> route("GET", "/json/list", "")
('list', '')
>>> route("GET", "/json/new", "about:blank")
('refuse', 'Using unsafe HTTP verb GET to invoke /json/new. This action supports only PUT verb.')
>>> target_entry({"targetId": "T1", "type": "page", "title": "t", "url": "about:blank"},
...              "localhost:9222", "@abc")["webSocketDebuggerUrl"]
'ws://localhost:9222/devtools/page/T1'

The facts (``../shared/spec``): ``/json/version``; ``/json/list`` and ``/json`` (one object
per target); ``PUT /json/new?<url>``; ``/json/activate/<id>``; ``/json/close/<id>``; a
``Host`` that is neither an IP literal nor ``localhost`` gets HTTP 500.
"""

from __future__ import annotations

import gzip
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from skyvern_cdp.policy.web import BAD_HOST  # Chrome's answer to a bad Host (HTTP 500)

__all__ = [
    "BAD_HOST",
    "PROTOCOL_FILE",
    "json_url",
    "listed",
    "page_id_of",
    "protocol_description",
    "route",
    "target_entry",
    "version_entry",
    "with_query_of",
]

#: The shipped protocol description (gzip of the merged JSON, about 140 kB).
PROTOCOL_FILE = "devtools_protocol.json.gz"
#: Target types Chrome's ``/json/list`` does not show.
_HIDDEN_TYPES = frozenset({"browser", "tab"})
_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def route(method: str, path: str, query: str) -> tuple[str, str]:
    """``(action, argument)`` for an HTTP request: ``version``, ``list``, ``new`` (url),
    ``activate``/``close`` (target id), ``protocol``, ``refuse`` (Chrome's 405 text) or
    ``missing``."""
    path = path.rstrip("/") or "/"
    if path == "/json/version":
        return "version", ""
    if path == "/json/protocol":
        return "protocol", ""
    if path in ("/json", "/json/list"):
        return "list", ""
    if path == "/json/new":
        if method != "PUT":
            return "refuse", (
                f"Using unsafe HTTP verb {method} to invoke /json/new. This action supports"
                " only PUT verb."
            )
        return "new", unquote(query) if query else "about:blank"
    for action in ("activate", "close"):
        prefix = f"/json/{action}/"
        if path.startswith(prefix):
            return action, unquote(path[len(prefix) :])
    return "missing", ""


def json_url(address: str, path: str) -> str:
    """``path`` (``/json/version``) under an ``http(s)://`` session address, its query kept.

    >>> json_url("https://cdp.example/pbs_1/?token=t", "/json/version")
    'https://cdp.example/pbs_1/json/version?token=t'
    """
    parts = urlsplit(address)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, ""))


def with_query_of(ws_url: str, address: str) -> str:
    """``ws_url`` with ``address``'s query when it has none: an endpoint that takes its token
    in the query wants it on the websocket too.

    >>> with_query_of("ws://cdp.example/devtools/browser/b", "https://cdp.example/?token=t")
    'ws://cdp.example/devtools/browser/b?token=t'
    """
    query = urlsplit(address).query
    if not query or urlsplit(ws_url).query:
        return ws_url
    return f"{ws_url}?{query}"


@cache
def protocol_description() -> bytes:
    """Chrome's ``/json/protocol`` (JSON bytes): the DevTools protocol description shipped
    with the package, from the ``devtools-protocol`` package of the ChromeDevTools project
    (``browser_protocol.json`` and ``js_protocol.json`` merged, as Chrome merges them; see
    ``devtools_protocol.NOTICE`` and ``scripts/update_devtools_protocol``)."""
    return gzip.decompress(Path(__file__).with_name(PROTOCOL_FILE).read_bytes())


def page_id_of(path: str) -> str | None:
    """The target id of ``/devtools/page/<id>``, if well formed."""
    prefix = "/devtools/page/"
    if not path.startswith(prefix):
        return None
    target = path[len(prefix) :]
    return target if _ID.fullmatch(target) else None


def version_entry(info: dict[str, Any], ws_url: str) -> dict[str, Any]:
    """``/json/version`` from ``Browser.getVersion``'s answer."""
    revision = str(info.get("revision", ""))
    agent = str(info.get("userAgent", ""))
    webkit = re.search(r"AppleWebKit/([\d.]+)", agent)
    return {
        "Browser": info.get("product", ""),
        "Protocol-Version": info.get("protocolVersion", "1.3"),
        "User-Agent": agent,
        "V8-Version": info.get("jsVersion", ""),
        "WebKit-Version": f"{webkit.group(1) if webkit else '537.36'} ({revision})",
        "webSocketDebuggerUrl": ws_url,
    }


def target_entry(info: dict[str, Any], netloc: str, revision: str) -> dict[str, Any]:
    """One ``/json/list`` object from a ``TargetInfo``; URLs point at the relay (``netloc``)."""
    target_id = str(info.get("targetId", ""))
    ws = f"{netloc}/devtools/page/{target_id}"
    entry: dict[str, Any] = {
        "description": "",
        "devtoolsFrontendUrl": (
            f"https://chrome-devtools-frontend.appspot.com/serve_rev/{revision}/inspector.html"
            f"?ws={ws}"
        ),
        "id": target_id,
        "title": info.get("title", ""),
        "type": info.get("type", ""),
        "url": info.get("url", ""),
        "webSocketDebuggerUrl": f"ws://{ws}",
    }
    if info.get("parentId"):
        entry["parentId"] = info["parentId"]
    return entry


def listed(infos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets ``/json/list`` shows (not the browser or tab targets themselves)."""
    return [i for i in infos if i.get("type") not in _HIDDEN_TYPES]
