"""Copy a client's websocket frames upstream, holding its input while a person has control.

>>> from skyvern_cdp.gateway.hold import copy_holding
>>> await copy_holding(client_reader, upstream_writer, hold=views_wait_until_free)  # doctest: +SKIP

The CDP router pipes bytes; for a session that a live view may take over, the client's
direction goes through here instead: each frame is read whole (header, mask, payload) and
written on unchanged, but before a text frame whose message is an ``Input.*`` command
(:func:`skyvern_cdp.policy.liveview.holds_while_taken`) it awaits ``hold()``, which returns
at once unless a person holds control. Frames behind a held one wait too (order is kept).
A text message sent in fragments waits as a whole while a person has control (its first
fragment cannot say what it is), and the router offers no extension upstream, so no
compressed frame (``permessage-deflate``) hides an ``Input.*`` command.
(Fragments are rare: CDP clients send one frame per message.) Memory stays bounded by the
largest frame the client sends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from skyvern_cdp.policy.liveview import holds_while_taken

__all__ = ["copy_holding", "unmask"]

_TEXT, _FIN = 0x1, 0x80


def unmask(payload: bytes, key: bytes) -> bytes:
    """A client frame's payload unmasked (RFC 6455 5.3).

    >>> unmask(unmask(b"Input.x", b"abcd"), b"abcd")
    b'Input.x'
    """
    if not key:
        return payload
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )


async def copy_holding(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    hold: Callable[[], Awaitable[None]],
) -> None:
    """Copy frames from ``reader`` to ``writer`` until either ends; see the module."""
    with contextlib.suppress(OSError, ConnectionError, asyncio.IncompleteReadError):
        while True:
            head = await reader.readexactly(2)
            length = head[1] & 0x7F
            extra = b""
            if length == 126:
                extra = await reader.readexactly(2)
                length = int.from_bytes(extra, "big")
            elif length == 127:
                extra = await reader.readexactly(8)
                length = int.from_bytes(extra, "big")
            key = await reader.readexactly(4) if head[1] & 0x80 else b""
            payload = await reader.readexactly(length)
            if head[0] & 0x0F == _TEXT and (
                not head[0] & _FIN  # a fragmented message: its first part cannot tell, so wait
                or holds_while_taken(unmask(payload, key))
            ):
                await hold()
            writer.write(head + extra + key + payload)
            await writer.drain()
