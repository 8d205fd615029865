"""Websocket handshakes as data, no I/O: parse a request head, check it, rewrite it, answer it.

>>> from skyvern_cdp.gateway.handshake import parse_request_head, host_allowed, rewrite_request
>>> head = parse_request_head(
...     b"GET /devtools/browser/b HTTP/1.1\\r\\nHost: localhost:9222\\r\\n"
...     b"Upgrade: websocket\\r\\nConnection: Upgrade\\r\\nx-api-key: k\\r\\n\\r\\n")
>>> head.path, head.is_websocket, head.header("X-API-KEY"), host_allowed(head.header("host"))
('/devtools/browser/b', True, 'k', True)
>>> host_allowed("evil.example:9222")
False
>>> rewrite_request(head, target="/x", host="127.0.0.1:9").split(b"\\r\\n")[:2]
[b'GET /x HTTP/1.1', b'Host: 127.0.0.1:9']

Everything that decides (is the key right, may this Host ask, what to send upstream, what to
answer) lives here so it can be tested without sockets; :mod:`.pipe` and the servers only
move bytes. ``x-api-key`` is always dropped from what goes upstream unless the caller adds
the key back on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from skyvern_cdp.policy.web import host_allowed

__all__ = [
    "MAX_HEAD_BYTES",
    "SESSION_CLOSED_CODE",
    "HeadError",
    "RequestHead",
    "accept_and_close",
    "close_frame",
    "host_allowed",
    "http_response",
    "key_matches",
    "parse_request_head",
    "parse_response_head",
    "rewrite_request",
    "websocket_accept",
]

#: A request head longer than this is refused (Chrome's own limit is in the same range).
MAX_HEAD_BYTES = 16 * 1024
#: The close code of an ended session, as the cloud's router sends it.
SESSION_CLOSED_CODE = 4410
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Headers never passed from a client to an upstream as they came.
_HOP = frozenset({"host", "x-api-key", "content-length", "transfer-encoding"})
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


class HeadError(ValueError):
    """The bytes are not an HTTP/1.x request or response head this gateway accepts."""


@dataclass(frozen=True)
class RequestHead:
    """One HTTP/1.1 request head: method, request-target and headers in their order."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    @property
    def is_websocket(self) -> bool:
        upgrade = (self.header("upgrade") or "").lower()
        connection = (self.header("connection") or "").lower()
        return upgrade == "websocket" and "upgrade" in {p.strip() for p in connection.split(",")}

    def __repr__(self) -> str:  # the key and tokens in the query never show
        return f"RequestHead({self.method} {self.path!r}, {len(self.headers)} headers)"


def parse_request_head(data: bytes) -> RequestHead:
    """Parse a request head (the bytes up to and including the blank line).

    Raises :class:`HeadError` for anything malformed: a bad request line, a header line
    without a colon, control characters, obsolete line folding, or a head over
    :data:`MAX_HEAD_BYTES`.
    """
    if len(data) > MAX_HEAD_BYTES:
        raise HeadError("request head too large")
    lines = _lines(data)
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HeadError("not an HTTP/1.x request line")
    method, target, version = parts
    if not method or not set(method) <= _TOKEN_CHARS:
        raise HeadError("bad method")
    if not target.startswith("/"):
        raise HeadError("the request-target must be a path")
    return RequestHead(method, target, version, _headers(lines[1:]))


def parse_response_head(data: bytes) -> tuple[int, tuple[tuple[str, str], ...]]:
    """The status code and headers of a response head; :class:`HeadError` when malformed."""
    if len(data) > MAX_HEAD_BYTES:
        raise HeadError("response head too large")
    lines = _lines(data)
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HeadError("not an HTTP/1.x status line")
    return int(parts[1]), _headers(lines[1:])


def _lines(data: bytes) -> list[str]:
    try:
        text = data.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
        raise HeadError(str(exc)) from exc
    if not text.endswith("\r\n\r\n"):
        raise HeadError("the head does not end with a blank line")
    lines = text[:-4].split("\r\n")
    if not lines[0]:
        raise HeadError("empty head")
    return lines


def _headers(lines: Iterable[str]) -> tuple[tuple[str, str], ...]:
    found = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or not set(name) <= _TOKEN_CHARS:
            raise HeadError("malformed header line")
        value = value.strip(" \t")
        if any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in value):
            raise HeadError("control character in a header value")
        found.append((name, value))
    return tuple(found)


def key_matches(given: str | None, expected: str | None) -> bool:
    """Whether a request may pass: no key configured, or ``given`` equals it (constant time)."""
    if expected is None:
        return True
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def rewrite_request(
    head: RequestHead,
    *,
    target: str,
    host: str,
    add: Mapping[str, str] | None = None,
    drop: Iterable[str] = (),
) -> bytes:
    """The head to send upstream: new request-target and ``Host``, ``x-api-key`` dropped
    (plus the names in ``drop``), then ``add`` appended (e.g. the key, for a trusted host).

    Every other header goes as it came: ``Sec-WebSocket-Key``/``-Extensions`` included, so
    the upstream's answer stays valid for the client.
    """
    dropped = _HOP | {name.lower() for name in drop} | {name.lower() for name in add or {}}
    lines = [f"{head.method} {target} {head.version}", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in head.headers if k.lower() not in dropped]
    lines += [f"{k}: {v}" for k, v in (add or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def http_response(
    status: int,
    body: bytes | str | Any = b"",
    *,
    headers: Mapping[str, str] | None = None,
    keep_alive: bool = False,
    content_type: str | None = None,
) -> bytes:
    """A complete HTTP/1.1 response: ``str`` bodies as text, other non-bytes bodies as JSON;
    ``bytes`` as ``content_type`` (text by default)."""
    if isinstance(body, bytes):
        payload, kind = body, content_type or "text/plain; charset=UTF-8"
    elif isinstance(body, str):
        payload, kind = body.encode(), "text/plain; charset=UTF-8"
    else:
        payload = json.dumps(body, indent=2).encode()
        kind = "application/json; charset=UTF-8"
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
        f"Content-Type: {kind}",
        f"Content-Length: {len(payload)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def websocket_accept(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455)."""
    return base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()


def close_frame(code: int, reason: str) -> bytes:
    """An unmasked (server-to-client) close frame."""
    payload = struct.pack("!H", code) + reason.encode()[:123]
    return bytes([0x88, len(payload)]) + payload


def accept_and_close(
    head: RequestHead, code: int = SESSION_CLOSED_CODE, reason: str = "session closed"
) -> bytes:
    """Accept the websocket handshake, then close it at once with ``code``/``reason``.

    This is how an ended session answers: the client sees close code 4410, not an HTTP
    error. A request that is not a valid websocket handshake gets a plain 410 instead.
    """
    key = head.header("sec-websocket-key")
    if not head.is_websocket or not key:
        return http_response(410, reason)
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {websocket_accept(key)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + close_frame(code, reason)
