"""A minimal Chrome DevTools Protocol client over one websocket (the ``websockets`` package).

>>> from skyvern_cdp.cdp_client import CDPConnection
>>> async def version(ws_url: str) -> str:  # doctest: +SKIP
...     async with await CDPConnection.open(ws_url) as cdp:
...         return (await cdp.send("Browser.getVersion"))["product"]

Commands are matched to answers by id; events go to ``on_event(method, params, session_id)``.
When the socket closes, every pending command fails with :class:`CDPError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from skyvern_cdp._wait_within import wait_within

__all__ = ["WS_LOGGER", "CDPConnection", "CDPError", "EventHandler"]

logger = logging.getLogger("skyvern_cdp.cdp_client")
#: The logger handed to ``websockets``: at DEBUG it would write the handshake's headers (the
#: API key among them) and every frame, so it never goes below WARNING, even with ``-v``.
WS_LOGGER = logging.getLogger("skyvern_cdp.websockets")
WS_LOGGER.setLevel(logging.WARNING)

EventHandler = Callable[[str, dict[str, Any], "str | None"], None]


class CDPError(Exception):
    """A command failed, timed out, or the connection closed before it was answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        #: The HTTP status of a refused handshake, else ``None``.
        self.status = status


class CDPConnection:
    """One open CDP websocket with a reader task."""

    def __init__(self, ws: ClientConnection, on_event: EventHandler | None) -> None:
        self._ws = ws
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")

    @classmethod
    async def open(
        cls,
        ws_url: str,
        *,
        on_event: EventHandler | None = None,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> CDPConnection:
        """Connect to ``ws_url`` (no proxy, no compression), sending ``headers`` if given.

        A refused handshake raises :class:`CDPError` with ``status`` set (401, 404, ...).
        """
        try:
            ws = await connect(
                ws_url,
                additional_headers=dict(headers) if headers else None,
                logger=WS_LOGGER,
                open_timeout=timeout,
                proxy=None,
                compression=None,
                max_size=None,
                ping_interval=None,
                close_timeout=2,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise CDPError(f"the CDP websocket was refused: HTTP {status}", status=status) from exc
        except (OSError, asyncio.TimeoutError, Exception) as exc:
            raise CDPError(f"could not open the CDP websocket: {type(exc).__name__}") from exc
        return cls(ws, on_event)

    @property
    def closed(self) -> bool:
        return self._reader.done()

    @property
    def close_code(self) -> int | None:
        """The close code the other side sent (4410: the session ended), once closed."""
        return self._ws.close_code

    async def wait_closed(self) -> None:
        """Return once the connection has closed (the reader has stopped)."""
        await asyncio.wait([self._reader])

    async def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session_id: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Send a command and return its ``result``; :class:`CDPError` on failure."""
        if self.closed:
            raise CDPError(f"{method}: the CDP connection is closed")
        msg_id = next(self._ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        try:
            await self._ws.send(json.dumps(message))
            return await wait_within(future, timeout)
        except ConnectionClosed as exc:
            raise CDPError(f"{method}: the CDP connection closed") from exc
        except asyncio.TimeoutError as exc:
            raise CDPError(f"{method}: no answer within {timeout} s") from exc
        finally:
            self._pending.pop(msg_id, None)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                if "id" in message:
                    future = self._pending.get(message["id"])
                    if future is None or future.done():
                        continue
                    if "error" in message:
                        error = message["error"]
                        text = error.get("message") if isinstance(error, dict) else error
                        future.set_exception(CDPError(str(text)))
                    else:
                        future.set_result(message.get("result") or {})
                elif "method" in message and self._on_event is not None:
                    try:
                        self._on_event(
                            message["method"], message.get("params") or {}, message.get("sessionId")
                        )
                    except Exception:
                        logger.exception("CDP event handler failed for %s", message["method"])
        except ConnectionClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CDPError("the CDP connection closed"))

    async def close(self) -> None:
        """Close the socket and stop the reader. Safe to call twice."""
        with contextlib.suppress(Exception):
            await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    async def __aenter__(self) -> CDPConnection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
