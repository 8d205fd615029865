"""Misbehaving CDP endpoints on loopback, for the connect phase's fault tests.

- :class:`FlakyProxy` forwards TCP to a real Chromium, after failing its first connections
  (``reset`` them, or ``hang``: accept and never answer).
- :class:`HeaderRecorder` answers every HTTP request 404 and records its headers (to prove
  where the API key goes).
- :class:`ClosingEndpoint` completes the websocket handshake, then closes with a code (4410).
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from typing_extensions import Self


class FlakyProxy:
    def __init__(
        self, target_port: int, *, failures: int = 0, mode: str = "reset", host: str = "127.0.0.1"
    ) -> None:
        assert mode in ("reset", "hang")
        self.target_port = target_port
        self.failures = failures
        self.mode = mode
        self.connections = 0
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self._sockets.append(client)
            if self.connections <= self.failures:
                if self.mode == "reset":
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    client.close()
                continue  # "hang": keep it open, never answer
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets.append(upstream)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        pair = {a: b, b: a}
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.05)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


class ThreadedHTTPServer:
    """One ``ThreadingHTTPServer`` on a port of its own, served in a daemon thread while
    the ``with`` lasts; subclasses give the handler class."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1") -> None:
        self._server = ThreadingHTTPServer((host, 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class HeaderRecorder(ThreadedHTTPServer):
    """An HTTP server that answers 404 to everything and keeps each request's headers."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.seen: list[dict[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()

        super().__init__(Handler, host)


@contextlib.contextmanager
def closing_endpoint(
    code: int = 4410, reason: str = "session closed", accepted: list[float] | None = None
) -> Iterator[int]:
    """A websocket endpoint that accepts and at once closes with ``code``; yields its port.
    Each connection it accepts appends its time to ``accepted``, when given."""
    from websockets.asyncio.server import serve

    started = threading.Event()
    port: list[int] = []
    stop: list[asyncio.Future[None]] = []
    loop = asyncio.new_event_loop()

    async def handler(ws: Any) -> None:
        if accepted is not None:
            accepted.append(time.monotonic())
        await ws.close(code, reason)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            port.append(server.sockets[0].getsockname()[1])
            stop.append(loop.create_future())
            started.set()
            await stop[0]

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(5)
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set_result, None)
        thread.join(5)
        loop.close()
