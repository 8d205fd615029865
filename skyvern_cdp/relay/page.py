"""A page websocket (``/devtools/page/<id>``) made from a flattened session on the browser's.

>>> from skyvern_cdp.relay.page import DETACHED, from_upstream, to_upstream
>>> to_upstream(b'{"id":1,"method":"Page.enable"}', "S1")
b'{"id":1,"method":"Page.enable","sessionId":"S1"}'
>>> from_upstream(b'{"id":1,"result":{},"sessionId":"S1"}', "S1")
b'{"id":1,"result":{}}'
>>> gone = b'{"method":"Target.detachedFromTarget","params":{"sessionId":"S1"}}'
>>> from_upstream(gone, "S1") is DETACHED
True

The relay's upstream offers only the browser-level websocket (all a cloud address offers), so
a page endpoint is one upstream connection of its own, ``Target.attachToTarget`` with
``flatten: true``, and the ``sessionId`` added to each command and taken off each answer and
event. Messages of child sessions the client attaches itself (workers, iframes) pass as they
are; browser-level messages are the relay's, not the client's. Only what must change is
touched: answers that end in ``,"sessionId":"<ours>"}`` (Chrome's compact JSON) lose that
suffix without being parsed; anything else is parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from skyvern_cdp._wait_within import wait_within
from skyvern_cdp.cdp_client import WS_LOGGER
from skyvern_cdp.gateway.pipe import CHUNK, HANDSHAKE_TIMEOUT, close_writer

__all__ = ["DETACHED", "MAX_MESSAGE", "from_upstream", "serve_page", "to_upstream"]

logger = logging.getLogger("skyvern_cdp.relay.page")

#: The largest message either side may send (a full-page screenshot is well under it).
MAX_MESSAGE = 256 * 1024 * 1024
#: The upstream's browser-level message that says our session is gone.
DETACHED: Final = object()
_TAIL = re.compile(rb',"sessionId":"([^"\\]{1,128})"\}\s*$')
_BAD_JSON = b'{"error":{"code":-32700,"message":"Message must be a valid JSON"}}'
_ids = itertools.count(1)


def to_upstream(message: bytes, session: str) -> bytes | None:
    """A client's command with ``sessionId`` added; ``None`` when it is not a JSON object.

    A command that names a ``sessionId`` itself (a child session the client attached) goes
    as it is.
    """
    try:
        parsed = json.loads(message)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    if "sessionId" in parsed:
        return message
    body = message.rstrip()
    joiner = b"," if parsed else b""
    return body[:-1] + joiner + b'"sessionId":' + json.dumps(session).encode() + b"}"


def from_upstream(message: bytes, session: str) -> bytes | object | None:
    """What the client gets for an upstream message: it without our ``sessionId``, it as is
    (a child session's), ``None`` (browser-level: not the client's), or :data:`DETACHED`."""
    tail = _TAIL.search(message, max(0, len(message) - 160))
    if tail is not None:
        if tail.group(1).decode() == session:
            return message[: tail.start()] + b"}"
        return message
    try:
        parsed = json.loads(message)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    owner = parsed.pop("sessionId", None)
    if owner == session:
        return json.dumps(parsed, separators=(",", ":")).encode()
    if owner is not None:
        return message
    params = parsed.get("params")
    if (
        parsed.get("method") == "Target.detachedFromTarget"
        and isinstance(params, dict)
        and params.get("sessionId") == session
    ):
        return DETACHED
    return None


async def _attach(up: ClientConnection, target_id: str) -> str | None:
    """Attach to ``target_id`` with a flattened session; its ``sessionId`` or ``None``."""
    msg_id = next(_ids)
    command = {
        "id": msg_id,
        "method": "Target.attachToTarget",
        "params": {"targetId": target_id, "flatten": True},
    }
    await up.send(json.dumps(command))

    async def answer() -> str | None:
        while True:
            reply: dict[str, Any] = json.loads(await up.recv())
            if reply.get("id") == msg_id and "sessionId" not in reply:
                found = (reply.get("result") or {}).get("sessionId")
                return str(found) if found else None

    return await wait_within(answer(), HANDSHAKE_TIMEOUT)


async def serve_page(
    head: bytes,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    target_id: str,
    upstream_url: str,
    headers: Mapping[str, str],
) -> None:
    """Serve one page websocket whose handshake bytes are ``head``; returns when it ends."""
    protocol = ServerProtocol(max_size=MAX_MESSAGE, logger=WS_LOGGER)
    protocol.receive_data(head)
    events = protocol.events_received()
    request = events[0] if events and isinstance(events[0], Request) else None
    if request is None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        return
    try:
        up = await connect(
            upstream_url,
            additional_headers=dict(headers),
            max_size=MAX_MESSAGE,
            compression=None,
            ping_interval=None,
            proxy=None,
            open_timeout=HANDSHAKE_TIMEOUT,
            close_timeout=2,
            logger=WS_LOGGER,
        )
    except Exception as exc:
        logger.info("page endpoint: the upstream refused: %s", type(exc).__name__)
        _answer(protocol, writer, protocol.reject(502, "the session's browser is unreachable\n"))
        return
    try:
        try:
            session = await _attach(up, target_id)
        except (ConnectionClosed, asyncio.TimeoutError, ValueError):
            session = None
        if session is None:
            _answer(protocol, writer, protocol.reject(404, f"No such target id: {target_id}"))
            return
        response = protocol.accept(request)
        _answer(protocol, writer, response)
        if response.status_code != 101:
            return
        await _run(protocol, reader, writer, up, session)
    finally:
        with contextlib.suppress(Exception):
            await wait_within(up.close(), 2.0)


def _answer(protocol: ServerProtocol, writer: asyncio.StreamWriter, response: Any) -> None:
    protocol.send_response(response)
    _flush(protocol, writer)


def _flush(protocol: ServerProtocol, writer: asyncio.StreamWriter) -> bool:
    """Write what the protocol has to send; ``False`` once it asked to end the stream."""
    for chunk in protocol.data_to_send():
        if chunk:
            writer.write(chunk)
        else:
            return False
    return True


async def _run(
    protocol: ServerProtocol,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up: ClientConnection,
    session: str,
) -> None:
    inbound = asyncio.ensure_future(_client_to_upstream(protocol, reader, writer, up, session))
    outbound = asyncio.ensure_future(_upstream_to_client(protocol, writer, up, session))
    try:
        await asyncio.wait([inbound, outbound], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (inbound, outbound):
            task.cancel()
        await asyncio.gather(inbound, outbound, return_exceptions=True)
        if protocol.state is State.OPEN:
            protocol.send_close(1001, "going away")
            _flush(protocol, writer)
        await close_writer(writer)


async def _client_to_upstream(
    protocol: ServerProtocol,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up: ClientConnection,
    session: str,
) -> None:
    parts: list[bytes] = []
    while True:
        data = await reader.read(CHUNK)
        if not data:
            protocol.receive_eof()
            return
        protocol.receive_data(data)
        for event in protocol.events_received():
            if not isinstance(event, Frame) or event.opcode in (
                Opcode.PING,
                Opcode.PONG,
                Opcode.CLOSE,
            ):
                continue
            parts.append(bytes(event.data))
            if not event.fin:
                continue
            message = b"".join(parts)
            parts.clear()
            command = to_upstream(message, session)
            if command is None:
                protocol.send_text(_BAD_JSON)
            else:
                await up.send(command, text=True)
        if not _flush(protocol, writer) or protocol.state is not State.OPEN:
            return
        await writer.drain()


async def _upstream_to_client(
    protocol: ServerProtocol, writer: asyncio.StreamWriter, up: ClientConnection, session: str
) -> None:
    try:
        while True:
            message = await up.recv(decode=False)
            assert isinstance(message, bytes)
            out = from_upstream(message, session)
            if out is None:
                continue
            if out is DETACHED:
                if protocol.state is State.OPEN:
                    protocol.send_close(1000, "target detached")
                _flush(protocol, writer)
                return
            assert isinstance(out, bytes)
            protocol.send_text(out)
            _flush(protocol, writer)
            await writer.drain()
    except ConnectionClosed:
        if protocol.state is State.OPEN:
            if up.close_code == 4410:
                protocol.send_close(4410, "session closed")
            else:
                protocol.send_close(1011, "the session's browser went away")
            _flush(protocol, writer)
