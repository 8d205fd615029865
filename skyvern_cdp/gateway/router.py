"""The local backend's CDP router: every session's ``browser_address`` points here.

>>> from skyvern_cdp.gateway.router import Route, Router, State, decide, session_address
>>> session_address("127.0.0.1", 9333, "pbs_1", "/devtools/browser/b")
'ws://127.0.0.1:9333/pbs_1/devtools/browser/b'
>>> router = Router(lookup=lambda sid: Route(State.UNKNOWN), api_key="k")  # doctest: +SKIP
>>> await router.start(sock)                                               # doctest: +SKIP

A request for ``/<session id>/devtools/...`` is checked the way the cloud checks it, then
its bytes are piped to that session's Chromium (which stays on loopback):

- a ``Host`` that is not an IP literal or ``localhost``, or a web page's ``Origin``: HTTP 403
  (:mod:`skyvern_cdp.policy.web`, the rule of the backend's API and of the relay too).
- ``x-api-key`` missing or wrong (when the backend has a key): HTTP 401. A backend started
  without a key checks nothing, as its API checks nothing then.
- unknown session: 404; not running yet: 503 with ``Retry-After`` (clients retry);
- ended (closed, timed out, Chromium died): the handshake is accepted and closed at once with
  code 4410 "session closed"; open connections of a session are closed when it ends.
- running: the handshake goes to Chromium without the key, and bytes are piped both ways.

``GET /<session id>/json/version`` answers Chromium's, with ``webSocketDebuggerUrl``
pointing back here, so ``http://HOST:PORT/<session id>`` works as an address too.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from skyvern_cdp._wait_within import wait_within
from skyvern_cdp.gateway.handshake import (
    HeadError,
    RequestHead,
    accept_and_close,
    http_response,
    key_matches,
    parse_request_head,
    parse_response_head,
)
from skyvern_cdp.gateway.pipe import (
    HANDSHAKE_TIMEOUT,
    Upstream,
    close_writer,
    forward_websocket,
    open_upstream,
    read_head,
)
from skyvern_cdp.policy.web import web_refusal

__all__ = [
    "Forward",
    "Gone",
    "Refuse",
    "Route",
    "Router",
    "State",
    "Version",
    "decide",
    "reachable_address",
    "session_address",
    "split_session_path",
]

logger = logging.getLogger("skyvern_cdp.gateway.router")


class State(enum.Enum):
    UNKNOWN = "unknown"
    STARTING = "starting"
    RUNNING = "running"
    ENDED = "ended"


@dataclass(frozen=True)
class Route:
    """What the backend knows of a session: its state and, while running, its Chromium."""

    state: State
    upstream: Upstream | None = None


@dataclass(frozen=True)
class Refuse:
    status: int
    body: str
    retry_after: int | None = None


@dataclass(frozen=True)
class Gone:
    """Accept, then close with 4410 "session closed"."""


@dataclass(frozen=True)
class Forward:
    upstream: Upstream
    target: str


@dataclass(frozen=True)
class Version:
    upstream: Upstream


Decision = Refuse | Gone | Forward | Version


def session_address(host: str, port: int, session_id: str, ws_path: str) -> str:
    """The ``browser_address`` the backend hands out for a session."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"ws://{netloc}/{session_id}{ws_path}"


def split_session_path(path: str) -> tuple[str, str] | None:
    """``/pbs_1/devtools/browser/b`` → ``("pbs_1", "/devtools/browser/b")``."""
    if not path.startswith("/pbs_"):
        return None
    sid, sep, rest = path[1:].partition("/")
    if not sep or not sid:
        return None
    return sid, "/" + rest


def decide(
    head: RequestHead,
    *,
    api_key: str | None,
    lookup: Callable[[str], Route],
    names: tuple[str, ...] = (),
) -> Decision:
    """What to do with one request to the router; the order of checks is the cloud's, after
    the web guard (:func:`~skyvern_cdp.policy.web.web_refusal`: 403 for a foreign ``Host`` or
    ``Origin``, so a web page can use no session even when the backend has no key)."""
    refusal = web_refusal(
        method=head.method,
        host=head.header("host"),
        origin=head.header("origin"),
        sec_fetch_site=head.header("sec-fetch-site"),
        sec_fetch_mode=head.header("sec-fetch-mode"),
        sec_fetch_dest=head.header("sec-fetch-dest"),
        names=names,
    )
    if refusal is not None:
        return Refuse(refusal.status, refusal.detail)
    if not key_matches(head.header("x-api-key"), api_key):
        return Refuse(401, "Unauthorized: x-api-key is missing or wrong")
    split = split_session_path(head.path)
    if split is None:
        return Refuse(404, "Not found: the path is /<browser_session_id>/devtools/...")
    sid, rest = split
    route = lookup(sid)
    if route.state is State.UNKNOWN:
        return Refuse(404, f"Browser session {sid[:200]} not found")
    if route.state is State.STARTING:
        return Refuse(503, "the session's browser is not running yet; retry", retry_after=1)
    if route.state is State.ENDED or route.upstream is None:
        return Gone()
    if head.is_websocket and rest.startswith("/devtools/"):
        target = rest + (f"?{head.query}" if head.query else "")
        return Forward(route.upstream, target)
    if head.method == "GET" and rest.rstrip("/") == "/json/version" and not head.is_websocket:
        return Version(route.upstream)
    return Refuse(404, "Not found: only /devtools/... websockets and /json/version are served")


class Router:
    """The asyncio server in front of the backend's browsers; see the module docstring."""

    def __init__(
        self,
        *,
        lookup: Callable[[str], Route],
        api_key: str | None,
        host_names: tuple[str, ...] = (),
        hold: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``hold(session_id)`` returns once a client's input may go on (a live view's
        take-over; see :mod:`skyvern_cdp.gateway.hold`)."""
        self._lookup = lookup
        self._hold = hold
        self._api_key = api_key
        self._names = host_names
        self._server: asyncio.Server | None = None
        self._tasks: dict[str, set[asyncio.Task[None]]] = {}

    async def start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._handle, sock=sock)

    def connections(self, session_id: str) -> int:
        """How many connections of ``session_id`` are being piped now."""
        return len(self._tasks.get(session_id, ()))

    def session_ended(self, session_id: str) -> None:
        """Close every open connection of an ended session (new ones get 4410)."""
        for task in self._tasks.pop(session_id, set()):
            task.cancel()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [task for group in self._tasks.values() for task in group]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await wait_within(self._server.wait_closed(), 5.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = parse_request_head(await read_head(reader))
            except (HeadError, asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
                writer.write(http_response(400, "Bad Request"))
                return
            decision = decide(head, api_key=self._api_key, lookup=self._lookup, names=self._names)
            if isinstance(decision, Refuse):
                extra = {"Retry-After": str(decision.retry_after)} if decision.retry_after else {}
                writer.write(http_response(decision.status, decision.body, headers=extra))
            elif isinstance(decision, Gone):
                writer.write(accept_and_close(head))
                with contextlib.suppress(Exception):  # let the client read the close frame
                    await wait_within(reader.read(1024), 1.0)
            elif isinstance(decision, Version):
                writer.write(await _version(head, decision.upstream))
            else:
                sid = (split_session_path(head.path) or ("", ""))[0]
                await self._forward(sid, head, reader, writer, decision)
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("the CDP router failed on a connection")
        finally:
            await close_writer(writer)

    async def _forward(
        self,
        sid: str,
        head: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decision: Forward,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        group = self._tasks.setdefault(sid, set())
        group.add(task)
        try:
            # Origin goes along: Chromium's own check still refuses a web page's websocket.
            hold = self._hold
            await forward_websocket(head, reader, writer, decision.upstream, target=decision.target,
                                    hold=(lambda: hold(sid)) if hold is not None else None)
        finally:
            group.discard(task)
            if not group and self._tasks.get(sid) is group:
                del self._tasks[sid]


async def _version(head: RequestHead, upstream: Upstream) -> bytes:
    """Chromium's ``/json/version``, its ``webSocketDebuggerUrl`` pointing at the router."""
    up_reader, up_writer = await open_upstream(upstream)
    try:
        up_writer.write(
            f"GET /json/version HTTP/1.1\r\nHost: {upstream.netloc}\r\nConnection: close\r\n\r\n"
            .encode()
        )
        status, headers = parse_response_head(await read_head(up_reader))
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
        body = await wait_within(up_reader.readexactly(length), HANDSHAKE_TIMEOUT)
    finally:
        await close_writer(up_writer)
    if status != 200:
        return http_response(502, "the browser did not answer /json/version")
    data = json.loads(body)
    sid = (split_session_path(head.path) or ("", ""))[0]
    browser_path = "/" + str(data.get("webSocketDebuggerUrl", "")).split("/", 3)[-1]
    host = head.header("host") or upstream.netloc
    data["webSocketDebuggerUrl"] = f"ws://{host}/{sid}{browser_path}"
    return http_response(200, data)


def reachable_address(address: str | None, request_host: str | None) -> str | None:
    """``address`` with a wildcard host (``0.0.0.0``, ``::``) replaced by the host the client
    reached the API on: a server listening everywhere hands out an address that client can dial.

    >>> reachable_address("ws://0.0.0.0:9333/pbs_1/devtools/browser/b", "10.0.0.5")
    'ws://10.0.0.5:9333/pbs_1/devtools/browser/b'
    """
    if not address or not request_host:
        return address
    scheme, sep, rest = address.partition("://")
    netloc, slash, path = rest.partition("/")
    host, _, port = netloc.rpartition(":")
    if host.strip("[]") not in ("0.0.0.0", "::") or not sep:
        return address
    shown = f"[{request_host}]" if ":" in request_host else request_host
    return f"{scheme}://{shown}:{port}{slash}{path}"
