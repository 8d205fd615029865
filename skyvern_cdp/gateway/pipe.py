"""Move a websocket's bytes: read a head, open the upstream, forward the handshake, then pipe.

>>> from skyvern_cdp.gateway.pipe import Upstream, forward_websocket
>>> async def handle(reader, writer):  # doctest: +SKIP
...     head = await read_head(reader)
...     up = Upstream("127.0.0.1", 9222, tls=False)
...     await forward_websocket(head, reader, writer, up, target=head.target,
...                             add={"x-api-key": key})

After the handshake nothing is parsed: each direction is ``read`` → ``write`` →
``await drain()``, so a client that stops reading stops the upstream being read too (its
kernel buffers fill and the upstream's writes wait). Memory per connection stays bounded by
:data:`CHUNK` and the transports' write-buffer limits, whatever the traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from skyvern_cdp._client_base import shared_ssl_context
from skyvern_cdp._wait_within import wait_within
from skyvern_cdp.gateway.handshake import (
    MAX_HEAD_BYTES,
    HeadError,
    RequestHead,
    http_response,
    parse_response_head,
    rewrite_request,
)
from skyvern_cdp.gateway.hold import copy_holding

__all__ = [
    "CHUNK",
    "HANDSHAKE_TIMEOUT",
    "Upstream",
    "UpstreamError",
    "close_writer",
    "forward_websocket",
    "pipe",
    "read_head",
]

logger = logging.getLogger("skyvern_cdp.gateway.pipe")

#: Bytes read at once from either side.
CHUNK = 256 * 1024
#: Seconds to connect upstream and get its handshake answer (and to read a client's head).
HANDSHAKE_TIMEOUT = 10.0
#: A transport's write buffer above this makes ``drain()`` wait.
WRITE_HIGH_WATER = 256 * 1024


class UpstreamError(Exception):
    """The upstream could not be reached or answered the handshake with garbage."""


@dataclass(frozen=True)
class Upstream:
    """Where a connection goes: host and port, over TLS or not (``wss://`` / ``ws://``)."""

    host: str
    port: int
    tls: bool = False

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        return host if self.port == default else f"{host}:{self.port}"


async def read_head(reader: asyncio.StreamReader, timeout: float = HANDSHAKE_TIMEOUT) -> bytes:
    """The bytes of one HTTP head, up to and including the blank line.

    Raises :class:`HeadError` when it is too long, :class:`asyncio.IncompleteReadError` when
    the peer closes first, :class:`TimeoutError` when it takes longer than ``timeout``.
    """
    try:
        return await wait_within(reader.readuntil(b"\r\n\r\n"), timeout)
    except asyncio.LimitOverrunError as exc:
        raise HeadError("head too large") from exc


async def open_upstream(
    upstream: Upstream, timeout: float = HANDSHAKE_TIMEOUT
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    # the clients' one verifying context: built once (loading the CA bundle costs tens of ms
    # per connection otherwise), and SSL_CERT_FILE / SSL_CERT_DIR apply as for the API
    context = shared_ssl_context() if upstream.tls else None
    try:
        reader, writer = await wait_within(
            asyncio.open_connection(
                upstream.host,
                upstream.port,
                ssl=context,
                server_hostname=upstream.host if context else None,
                limit=MAX_HEAD_BYTES * 4,
            ),
            timeout,
        )
    except (OSError, asyncio.TimeoutError) as exc:
        raise UpstreamError(f"could not reach the upstream: {type(exc).__name__}") from exc
    _tune(writer)
    return reader, writer


def _tune(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    with contextlib.suppress(Exception):
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        import socket

        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def forward_websocket(
    head: RequestHead,
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream: Upstream,
    *,
    target: str,
    add: Mapping[str, str] | None = None,
    drop: tuple[str, ...] = (),
    hold: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Send the rewritten handshake upstream, relay its answer, and pipe bytes if it is 101.

    With ``hold``, the client's frames go through :func:`~skyvern_cdp.gateway.hold.copy_holding`
    (its ``Input.*`` commands wait for ``hold()``), and no extension is offered upstream, so
    that no frame is compressed past the check. Returns the upstream's status (101 when
    piped to the end). An unreachable upstream gets the client a 502; a non-101 answer is
    relayed to the client as it came.
    """
    _tune(client_writer)
    try:
        up_reader, up_writer = await open_upstream(upstream)
    except UpstreamError as exc:
        logger.debug("upstream %s: %s", upstream.host, exc)
        client_writer.write(http_response(502, "the browser could not be reached"))
        await close_writer(client_writer)
        return 502
    try:
        if hold is not None:  # frames must stay readable: no compression (permessage-deflate)
            drop = (*drop, "sec-websocket-extensions")
        up_writer.write(rewrite_request(head, target=target, host=upstream.netloc, add=add,
                                        drop=drop))
        answer = await read_head(up_reader)
        status, _ = parse_response_head(answer)
    except (OSError, HeadError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
        logger.debug("upstream handshake failed: %s", type(exc).__name__)
        client_writer.write(http_response(502, "the browser did not complete the handshake"))
        await close_writer(client_writer)
        await close_writer(up_writer)
        return 502
    client_writer.write(answer)
    if status != 101:
        # Relay a short body (a 401's or 404's text) if one comes, then end both.
        with contextlib.suppress(Exception):
            body = await wait_within(up_reader.read(4096), 2.0)
            client_writer.write(body)
        await close_writer(client_writer)
        await close_writer(up_writer)
        return status
    await pipe(client_reader, client_writer, up_reader, up_writer, hold=hold)
    return status


async def pipe(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
    *,
    hold: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Copy bytes both ways until either side ends; then close both. Cancel-safe."""
    if hold is not None:
        one = asyncio.ensure_future(copy_holding(a_reader, b_writer, hold))
    else:
        one = asyncio.ensure_future(_copy(a_reader, b_writer))
    two = asyncio.ensure_future(_copy(b_reader, a_writer))
    try:
        await asyncio.wait([one, two], return_when=asyncio.FIRST_COMPLETED)
    finally:
        one.cancel()
        two.cancel()
        await asyncio.gather(one, two, return_exceptions=True)
        await asyncio.gather(close_writer(a_writer), close_writer(b_writer))


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return
            writer.write(data)
            await writer.drain()


async def close_writer(writer: asyncio.StreamWriter, timeout: float = 2.0) -> None:
    """Close a stream and wait (a bounded time) until it is closed; never raises."""
    with contextlib.suppress(Exception):
        writer.close()
    with contextlib.suppress(Exception):
        await wait_within(writer.wait_closed(), timeout)
