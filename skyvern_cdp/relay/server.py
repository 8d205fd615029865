"""The relay's local server: Chrome's debugging port, made from one browser-level websocket.

>>> server = RelayServer(host="127.0.0.1", port=9222)            # doctest: +SKIP
>>> await server.bind()                      # the port first, before anything upstream
>>> await server.start(upstream, control=opener)                # doctest: +SKIP
>>> server.url                                                           # doctest: +SKIP
'http://127.0.0.1:9222'

- ``/json/version``, ``/json/list`` (``/json``), ``PUT /json/new``, ``/json/activate/<id>``,
  ``/json/close/<id>``: answered from the Target domain over a control connection.
- ``/json/protocol``: the protocol description shipped with the package
  (:func:`~.targets.protocol_description`), as a cloud address offers none.
- ``/devtools/browser/<id>``: each client gets its own upstream connection; after the
  handshake (forwarded, with the key added for a trusted host) the bytes are piped.
- ``/devtools/page/<id>``: each client gets its own upstream connection and flattened
  session (:mod:`.page`).

As Chrome does, it refuses a ``Host`` that is neither an IP literal nor ``localhost`` (HTTP
500), a web page's HTTP request (an ``Origin`` not its own, ``Sec-Fetch-Site: cross-site``;
HTTP 403) and a websocket with any ``Origin`` (HTTP 403): a web page must not drive the
session. The rule is :func:`skyvern_cdp.policy.web.web_refusal`, the local backend's too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from skyvern_cdp._wait_within import wait_within
from skyvern_cdp.cdp_client import CDPConnection, CDPError
from skyvern_cdp.gateway.handshake import (
    HeadError,
    RequestHead,
    http_response,
    parse_request_head,
)
from skyvern_cdp.gateway.pipe import Upstream, close_writer, forward_websocket, read_head
from skyvern_cdp.policy.web import web_refusal
from skyvern_cdp.relay.page import serve_page
from skyvern_cdp.relay.targets import (
    listed,
    page_id_of,
    protocol_description,
    route,
    target_entry,
    version_entry,
)

__all__ = ["RelayServer", "UpstreamTarget"]

logger = logging.getLogger("skyvern_cdp.relay.server")

#: Seconds an idle keep-alive HTTP connection stays open.
IDLE_TIMEOUT = 30.0


@dataclass(frozen=True)
class UpstreamTarget:
    """The session's browser-level websocket and the headers to send it (the key, if any)."""

    ws_url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return "UpstreamTarget(<redacted>)"

    @property
    def upstream(self) -> Upstream:
        parts = urlsplit(self.ws_url)
        tls = parts.scheme == "wss"
        return Upstream(parts.hostname or "", parts.port or (443 if tls else 80), tls)

    @property
    def target(self) -> str:
        parts = urlsplit(self.ws_url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


ControlOpener = Callable[[], Awaitable[CDPConnection]]


class RelayServer:
    """One listening socket; see the module docstring."""

    def __init__(self, *, host: str, port: int) -> None:
        self._upstream: UpstreamTarget | None = None
        self._open_control: ControlOpener | None = None
        self._control: CDPConnection | None = None
        self._control_lock = asyncio.Lock()
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._browser_id = str(uuid.uuid4())
        self._version: dict[str, Any] | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def connections(self) -> int:
        """Client connections open now (HTTP and websockets)."""
        return len(self._tasks)

    async def bind(self) -> None:
        """Take ``host:port`` (``OSError`` if it cannot be had), serving nothing yet: bind
        before anything is created or opened upstream."""
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, reuse_address=True, start_serving=False
        )

    async def start(self, upstream: UpstreamTarget, *, control: ControlOpener) -> None:
        """Open the control connection (it must work), then serve on the bound socket; on
        any failure nothing stays open."""
        if self._server is None:
            await self.bind()
        assert self._server is not None
        self._upstream, self._open_control = upstream, control
        try:
            await self.control()
            await self._server.start_serving()
        except BaseException:
            await asyncio.shield(self.aclose())
            raise

    async def control(self) -> CDPConnection:
        """The control connection, reopened if it closed."""
        async with self._control_lock:
            if self._control is None or self._control.closed:
                assert self._open_control is not None, "start() first"
                self._control = await self._open_control()
            return self._control

    @property
    def control_connection(self) -> CDPConnection | None:
        return self._control

    async def aclose(self) -> None:
        """Stop listening, close every client connection and the control connection."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._control is not None:
            await self._control.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await wait_within(self._server.wait_closed(), 5.0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("the relay failed on a connection")
        finally:
            self._tasks.discard(task)
            await close_writer(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                raw = await read_head(reader, IDLE_TIMEOUT)
                head = parse_request_head(raw)
            except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                return
            except HeadError:
                writer.write(http_response(400, "Bad Request"))
                return
            refusal = web_refusal(
                method=head.method,
                host=head.header("host"),
                origin=head.header("origin"),
                sec_fetch_site=head.header("sec-fetch-site"),
                sec_fetch_mode=head.header("sec-fetch-mode"),
                sec_fetch_dest=head.header("sec-fetch-dest"),
            )
            if refusal is not None:  # a bad Host gets Chrome's 500; a web page's Origin 403
                status = 500 if refusal.kind == "host" else refusal.status
                writer.write(http_response(status, refusal.detail))
                return
            if head.is_websocket:
                await self._websocket(raw, head, reader, writer)
                return
            keep = (head.header("connection") or "").lower() != "close"
            status, body = await self._http(head)
            kind = "application/json; charset=UTF-8" if isinstance(body, bytes) else None
            writer.write(http_response(status, body, keep_alive=keep, content_type=kind))
            await writer.drain()
            if not keep:
                return

    async def _websocket(
        self,
        raw: bytes,
        head: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        origin = head.header("origin")
        if origin is not None:
            writer.write(http_response(403, (
                f"Rejected an incoming WebSocket connection from the {origin} origin. The relay"
                " serves CDP clients, not web pages."
            )))
            return
        target = self._upstream
        assert target is not None  # serving starts only after start() set it
        if head.path.startswith("/devtools/browser/"):
            await forward_websocket(
                head, reader, writer, target.upstream, target=target.target, add=target.headers
            )
            return
        page = page_id_of(head.path)
        if page is None:
            writer.write(http_response(404, "Not found"))
            return
        await serve_page(
            raw, reader, writer, target_id=page, upstream_url=target.ws_url,
            headers=target.headers,
        )

    async def _http(self, head: RequestHead) -> tuple[int, Any]:
        action, argument = route(head.method, head.path, head.query)
        if action == "missing":
            return 404, "Not found"
        if action == "refuse":
            return 405, argument
        if action == "protocol":  # shipped: a cloud address offers no /json/protocol
            return 200, protocol_description()
        netloc = head.header("host") or self.url.split("://", 1)[1]
        try:
            control = await self.control()
            if action == "version":
                return 200, version_entry(
                    await self._browser_version(control),
                    f"ws://{netloc}/devtools/browser/{self._browser_id}",
                )
            revision = str((await self._browser_version(control)).get("revision", ""))
            if action == "list":
                infos = (await control.send("Target.getTargets")).get("targetInfos", [])
                return 200, [target_entry(i, netloc, revision) for i in listed(infos)]
            if action == "new":
                created = await control.send("Target.createTarget", {"url": argument})
                info = await control.send("Target.getTargetInfo",
                                          {"targetId": created["targetId"]})
                entry = target_entry(info["targetInfo"], netloc, revision)
                entry["url"] = argument or entry["url"]  # as Chrome answers: the url asked for
                return 200, entry
            command = "Target.activateTarget" if action == "activate" else "Target.closeTarget"
            try:
                await control.send(command, {"targetId": argument})
            except CDPError:
                return 404, f"No such target id: {argument}"
            return 200, "Target activated" if action == "activate" else "Target is closing"
        except CDPError as exc:
            logger.info("relay: the session's browser did not answer: %s", exc)
            return 500, "the session's browser did not answer"

    async def _browser_version(self, control: CDPConnection) -> dict[str, Any]:
        if self._version is None:
            self._version = await control.send("Browser.getVersion")
        return self._version
