"""The web guard of the local backend's HTTP server: every route, one rule.

>>> from skyvern_cdp.local.guard import WebGuardMiddleware
>>> app.add_middleware(WebGuardMiddleware, names=())  # doctest: +SKIP

An ASGI middleware around the whole app, so every route (the ``/v1`` API, the live view, the
downloads, and whatever route is added later) goes through
:func:`skyvern_cdp.policy.web.web_refusal` before anything else runs, the key check included.
A refused HTTP request gets 403 with ``{"detail": ...}``; a refused websocket is closed before
it is accepted (403 on the wire). The decision is the policy's; this only reads headers and
writes the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from skyvern_cdp.policy.web import WebRefusal, web_refusal

__all__ = ["WebGuardMiddleware", "refusal_of_scope"]

logger = logging.getLogger("skyvern_cdp.local.guard")


def refusal_of_scope(scope: Scope, names: Iterable[str] = ()) -> WebRefusal | None:
    """:func:`web_refusal` for an ASGI ``http``/``websocket`` scope."""
    headers: dict[bytes, bytes] = {}
    for key, value in scope.get("headers", []):
        headers.setdefault(key.lower(), value)

    def text(name: bytes) -> str | None:
        value = headers.get(name)
        return value.decode("latin-1") if value is not None else None

    return web_refusal(
        method=str(scope.get("method", "GET")),
        host=text(b"host"),
        origin=text(b"origin"),
        sec_fetch_site=text(b"sec-fetch-site"),
        sec_fetch_mode=text(b"sec-fetch-mode"),
        names=names,
        scheme=str(scope.get("scheme", "http")),
    )


class WebGuardMiddleware:
    """Refuse what :func:`~skyvern_cdp.policy.web.web_refusal` refuses; see the module."""

    def __init__(self, app: ASGIApp, names: Iterable[str] = ()) -> None:
        self.app = app
        self.names = tuple(names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            refusal = refusal_of_scope(scope, self.names)
            if refusal is not None:
                logger.warning(
                    "refused %s %s: %s", scope.get("method", "WS"), scope.get("path"),
                    refusal.detail,
                )
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                else:
                    response = JSONResponse({"detail": refusal.detail}, status_code=refusal.status)
                    await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
