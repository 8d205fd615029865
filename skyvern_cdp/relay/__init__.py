"""``skyvern-cdp relay``: a plain local CDP endpoint for clients that cannot send headers.

>>> from skyvern_cdp.relay import relay
>>> async with relay("pbs_123", port=9222) as endpoint:   # doctest: +SKIP
...     print(endpoint.url)             # http://127.0.0.1:9222: Selenium's debuggerAddress,
...     await endpoint.wait_ended()     # Puppeteer's browserURL, chrome://inspect, MCP servers

``relay(create={...})`` (no id) creates a session first and closes it when the block ends;
``create={"browser_profile": "crm"}`` starts it from a browser profile (an id or a name).

It waits until the session is ready, opens the session's browser-level websocket (sending
``x-api-key`` under the same trusted-host rule as ``connect``), then serves what Chrome's own
debugging port serves (:mod:`.server`) on ``host:port`` (loopback by default). Each client
connection gets its own upstream connection. The key never appears in an answer or a log.

When the session ends (closed, timed out, its browser gone) every client connection is
closed and :meth:`RelayEndpoint.wait_ended` returns the final status. A session the relay
did not create is never closed by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import httpx

from skyvern_cdp._attachment import check_profile, with_profile
from skyvern_cdp._sessions import close_session, shielded
from skyvern_cdp._sessions import create as create_session
from skyvern_cdp._wait_within import wait_within
from skyvern_cdp.async_api import resolve_profile
from skyvern_cdp.cdp_client import CDPConnection, CDPError
from skyvern_cdp.client import AsyncSkyvernClient, CreateSessionFields, client_for
from skyvern_cdp.config import Settings, redact_address, validate_timeout
from skyvern_cdp.errors import (
    AuthenticationError,
    CDPConnectError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    SessionClosedError,
)
from skyvern_cdp.models import FINAL_STATUSES, BrowserSessionResponse
from skyvern_cdp.policy import Deadline, cdp_target, validate_session_id
from skyvern_cdp.relay.server import RelayServer, UpstreamTarget
from skyvern_cdp.relay.targets import json_url, with_query_of

__all__ = ["DEFAULT_PORT", "RelayEndpoint", "check_host", "relay"]

logger = logging.getLogger("skyvern_cdp.relay")

DEFAULT_PORT = 9222
#: How long closing a session the relay created may take.
CLOSE_TIMEOUT = 30.0
#: Seconds between checks of the session's status while the relay runs (the control
#: connection closing triggers a check at once).
STATUS_INTERVAL = 10.0


@dataclass
class RelayEndpoint:
    """A running relay: ``url`` (``http://HOST:PORT``) is what CDP clients are given."""

    host: str
    port: int
    session_id: str
    launched: bool
    _ended: asyncio.Future[str] = field(repr=False)
    _server: RelayServer = field(repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def address(self) -> str:
        """``HOST:PORT``, as Selenium's ``debuggerAddress`` wants it."""
        return self.url.split("://", 1)[1]

    @property
    def connections(self) -> int:
        """Client connections open now."""
        return self._server.connections

    @property
    def ended(self) -> bool:
        return self._ended.done()

    async def wait_ended(self) -> str:
        """Wait until the session ends; its final status (``completed``, ``timeout``, ...)."""
        return await asyncio.shield(self._ended)


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        raise InvalidArgumentTypeError(f"port must be an int, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise InvalidArgumentError(f"port must be 0..65535 (0 picks a free one), got {port}")
    return port


def check_host(host: object) -> str:
    """A host to listen on, checked: a name or an IP literal (brackets dropped)."""
    if not isinstance(host, str):
        raise InvalidArgumentTypeError(f"host must be a str, not {type(host).__name__}")
    value = host.strip().strip("[]")
    if not value or any(ch.isspace() or ord(ch) < 0x20 or ch in "/?#@" for ch in value):
        raise InvalidArgumentError(f"host must be a host name or an IP address, got {host!r}")
    return value


@asynccontextmanager
async def relay(
    session_id: str | None = None,
    *,
    create: Mapping[str, Any] | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    timeout: float = 120.0,
    api_key: str | None = None,
    base_url: str | None = None,
    trusted_hosts: Iterable[str] | None = None,
    allow_insecure_http: bool = False,
    client: AsyncSkyvernClient | None = None,
    on_status: Callable[[BrowserSessionResponse], object] | None = None,
) -> AsyncIterator[RelayEndpoint]:
    """Serve session ``session_id`` (or a new one, made with ``create``) as a plain local CDP
    endpoint while the block runs. ``timeout`` bounds the wait until the session is ready.

    Raises what :meth:`AsyncSkyvernClient.wait_for_browser_session` raises, plus
    :class:`~skyvern_cdp.errors.AuthenticationError` when the browser's websocket refuses the
    key, :class:`~skyvern_cdp.errors.SessionClosedError` when it answers 4410, and
    ``OSError`` when ``host:port`` cannot be bound.
    """
    if session_id is not None:
        session_id = validate_session_id(session_id)
    if create is not None and not isinstance(create, Mapping):
        raise InvalidArgumentTypeError("create must be a mapping of create options")
    if session_id is not None and create is not None:
        raise InvalidArgumentError("give a session id or create options, not both")
    fields = dict(create or {})
    profile = check_profile(fields.pop("browser_profile", None), fields)
    host = check_host(host)
    port = _check_port(port)
    timeout = validate_timeout(timeout)
    api, owns_client = client_for(
        AsyncSkyvernClient, client, api_key, base_url, trusted_hosts, allow_insecure_http
    )
    server = RelayServer(host=host, port=port)
    launched = False
    deadline = Deadline(timeout)  # one deadline: the create and the wait
    try:
        # Bind first: a busy port fails before anything is created, billed or opened.
        await server.bind()
        if session_id is None:
            minutes = fields.pop("session_timeout_minutes", None)
            if profile is not None:  # a name is looked up once, within the deadline
                fields = with_profile(fields, await resolve_profile(api, profile, deadline))
            # cancelled mid-request (Ctrl-C), it still learns the new id and closes it
            made = await create_session(
                api, deadline, minutes, cast(CreateSessionFields, fields), CLOSE_TIMEOUT
            )
            session_id, launched = made.browser_session_id, True
        try:
            ready = await api.wait_for_browser_session(
                session_id, timeout=max(deadline.remaining(), 0.001), on_status=on_status
            )
            target = await _upstream_of(ready, api.settings)
            await server.start(target, control=_opener(target, ready))
            ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            endpoint = RelayEndpoint(host, server.port, session_id, launched, ended, server)
            watcher = asyncio.ensure_future(_watch(api, session_id, server, ended))
            logger.info("relay for %s listening on %s", session_id, endpoint.url)
            try:
                yield endpoint
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                if not ended.done():
                    ended.cancel()
        finally:
            if launched:
                await shielded(
                    asyncio.ensure_future(
                        close_session(api, session_id, CLOSE_TIMEOUT, " the relay created")
                    )
                )
    finally:
        # On any end, success or failure: the socket, every client and the upstream control.
        await asyncio.shield(server.aclose())
        if owns_client:
            await api.aclose()


class _RedactURL(logging.Filter):
    """Shows ``url`` redacted in httpx's ``HTTP Request: GET <url>`` log (``-v``): its query
    may hold the session's token."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(str(a) == self.url for a in record.args):
            record.args = tuple(
                redact_address(self.url) if str(a) == self.url else a for a in record.args
            )
        return True


async def _upstream_of(session: BrowserSessionResponse, settings: Settings) -> UpstreamTarget:
    """The browser-level websocket to dial and its headers (an ``http://`` address is asked
    for its ``/json/version``)."""
    assert session.browser_address is not None
    target = cdp_target(session.browser_address, settings)
    url = target.endpoint
    if url.startswith(("http://", "https://")):
        version_url = json_url(url, "/json/version")  # the path goes before the query
        quiet = _RedactURL(version_url)
        httpx_log = logging.getLogger("httpx")
        httpx_log.addFilter(quiet)
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
                answer = await http.get(version_url, headers=target.headers)
        finally:
            httpx_log.removeFilter(quiet)
        if answer.status_code in (401, 403):
            raise AuthenticationError("the session's CDP endpoint refused the API key",
                                      status_code=answer.status_code)
        if answer.status_code != 200:
            raise CDPConnectError(
                f"the session's CDP endpoint answered HTTP {answer.status_code} for"
                f" /json/version ({redact_address(url)})", session=session
            )
        url = with_query_of(str(answer.json()["webSocketDebuggerUrl"]), url)
    return UpstreamTarget(url, dict(target.headers))


def _opener(target: UpstreamTarget, session: BrowserSessionResponse) -> Callable[
    [], Any
]:
    async def open_control() -> CDPConnection:
        try:
            return await CDPConnection.open(target.ws_url, headers=target.headers)
        except CDPError as exc:
            if exc.status in (401, 403):
                raise AuthenticationError(
                    "the session's CDP endpoint refused the API key (HTTP"
                    f" {exc.status}); check SKYVERN_API_KEY",
                    status_code=exc.status,
                ) from None
            raise CDPConnectError(
                f"could not open the session's CDP websocket: {exc}", session=session
            ) from None

    return open_control


async def _watch(
    api: AsyncSkyvernClient, session_id: str, server: RelayServer, ended: asyncio.Future[str]
) -> None:
    """Resolve ``ended`` with the final status once the session ends, then close the server."""
    while True:
        control = server.control_connection
        if control is not None and not control.closed:
            with contextlib.suppress(asyncio.TimeoutError):
                await wait_within(control.wait_closed(), STATUS_INTERVAL)
        status: str | None = None
        if control is not None and control.closed and control.close_code == 4410:
            status = "completed"
        try:
            status = (await api.get_browser_session(session_id, timeout=30)).status
        except Exception as exc:
            logger.info("relay: could not check %s: %s", session_id, type(exc).__name__)
        if status in FINAL_STATUSES:
            logger.info("relay: session %s is %s; closing every connection", session_id, status)
            await server.aclose()
            if not ended.done():
                ended.set_result(str(status))
            return
        if control is not None and control.closed:
            try:
                await server.control()
            except (AuthenticationError, SessionClosedError, CDPConnectError) as exc:
                logger.info("relay: control connection: %s", type(exc).__name__)
                await asyncio.sleep(1.0)
