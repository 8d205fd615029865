"""A small scripted HTTP server on 127.0.0.1 that plays Skyvern's API, for fault injection.

>>> with ScriptedAPI() as api:
...     api.script("GET", "/v1/browser_sessions/pbs_1", Reply(503), Reply(200, session("pbs_1")))
...     ...  # the client sees a 503, then the session

Each (method, path) plays its replies in order and then repeats the last one. ``api.requests``
records what arrived (method, path, headers).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def session(session_id: str = "pbs_test1", **fields: Any) -> dict[str, Any]:
    """A valid BrowserSessionResponse body; ``ready=True`` fills running + address + started_at."""
    now = datetime.now(timezone.utc).isoformat()
    body: dict[str, Any] = {
        "browser_session_id": session_id,
        "organization_id": "o_test",
        "status": "created",
        "created_at": now,
        "modified_at": now,
    }
    if fields.pop("ready", False):
        body.update(status="running", started_at=now)
    body.update(fields)
    return body


@dataclass
class Reply:
    """One scripted answer. ``reset`` drops the connection; ``delay`` waits before answering.

    ``drip`` sends the whole answer (status line, headers, body) one byte every ``drip``
    seconds: each read gets a byte long before any per-read timeout, so only a bound on the
    whole request ends it. ``endless`` (with ``drip``) announces a huge body and keeps
    dripping blanks after the payload: an answer that never finishes.
    """

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    drip: float = 0.0
    endless: bool = False


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    client: tuple[str, int]


class ScriptedAPI:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[Seen] = []
        self.dripped = 0  # bytes sent by dripping replies
        self.abandoned = 0  # dripping replies the client hung up on
        self._scripts: dict[tuple[str, str], deque[Reply]] = {}
        self._handlers: dict[tuple[str, str], Callable[[Seen], Reply]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                if api._stopping.is_set():  # stopped: a kept-alive connection dies too
                    self.close_connection = True
                    self.connection.close()
                    return
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                    self.client_address[:2],
                )
                reply = api._next(seen)
                if reply.delay:
                    api._stopping.wait(reply.delay)
                if reply.reset:
                    sock = self.connection
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.close()
                    self.close_connection = True
                    return
                payload = reply.body
                if payload is None:
                    payload = b"" if reply.json is None else json.dumps(reply.json).encode()
                if reply.drip:
                    self._drip(reply, payload)
                    return
                try:
                    self.send_response(reply.status)
                    if reply.json is not None:
                        self.send_header("content-type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True

            def _drip(self, reply: Reply, payload: bytes) -> None:
                self.close_connection = True
                length = 10**9 if reply.endless else len(payload)
                head = [f"HTTP/1.1 {reply.status} Scripted", f"content-length: {length}"]
                if reply.json is not None:
                    head.append("content-type: application/json")
                head += [f"{name}: {value}" for name, value in reply.headers.items()]
                data = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
                sent = 0
                try:
                    while not api._stopping.is_set():
                        chunk = data[sent : sent + 1] if sent < len(data) else b" "
                        if sent >= len(data) and not reply.endless:
                            return
                        self.connection.sendall(chunk)
                        sent += 1
                        api.dripped += 1
                        api._stopping.wait(reply.drip)
                except OSError:
                    api.abandoned += 1  # the client gave up and closed the connection

            do_GET = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, method: str, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[(method, path)] = deque(replies)

    def handle(self, method: str, path: str, handler: Callable[[Seen], Reply]) -> None:
        with self._lock:
            self._handlers[(method, path)] = handler

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path == path)

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            key = (seen.method, seen.path)
            handler = self._handlers.get(key)
            if handler is None:
                queue = self._scripts.get(key)
                if not queue:
                    return Reply(404, {"detail": "Not Found"})
                return queue.popleft() if len(queue) > 1 else queue[0]
        return handler(seen)

    def __enter__(self) -> ScriptedAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
