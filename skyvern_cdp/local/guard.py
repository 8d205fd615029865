"""The web guard of the local backend's HTTP server: every route, one rule.

>>> from skyvern_cdp.local.guard import guard
>>> guard(app, api_key=None, host_names=())  # doctest: +SKIP

:func:`guard` puts an ASGI middleware around the whole app, so every route (the ``/v1`` API,
the live view, the downloads, and whatever route is added later) goes through
:func:`skyvern_cdp.policy.web.web_refusal` before anything else runs, the key check included;
then ``/v1`` needs ``x-api-key`` when the server has a key. ``frameable(path)`` names the
routes another page may put in an ``<iframe>`` (only the live view page: see
:mod:`skyvern_cdp.policy.framing`); every other route refuses a cross-site frame.
A refused HTTP request gets 403 with ``{"detail": ...}``; a refused websocket is closed before
it is accepted (403 on the wire). The decision is the policy's; this only reads headers and
writes the answer.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from skyvern_cdp.policy.web import WebRefusal, web_refusal

__all__ = ["WebGuardMiddleware", "guard", "refusal_of_scope"]

logger = logging.getLogger("skyvern_cdp.local.guard")


def refusal_of_scope(
    scope: Scope, names: Iterable[str] = (), frameable: Callable[[str], bool] | None = None
) -> WebRefusal | None:
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
        sec_fetch_dest=text(b"sec-fetch-dest"),
        names=names,
        scheme=str(scope.get("scheme", "http")),
        frameable=frameable is not None and frameable(str(scope.get("path", ""))),
    )


class _APIKeyMiddleware:
    """403 for ``/v1`` requests without the server's key, before anything else runs."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope.get("path", "")
            if path == "/v1" or path.startswith("/v1/"):
                given = next((v for k, v in scope.get("headers", []) if k == b"x-api-key"), None)
                if given is None:
                    detail = "Invalid credentials"
                elif not hmac.compare_digest(given, self.key):
                    detail = "Could not validate credentials"
                else:
                    detail = None
                if detail is not None:
                    response = JSONResponse({"detail": detail}, status_code=403)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class WebGuardMiddleware:
    """Refuse what :func:`~skyvern_cdp.policy.web.web_refusal` refuses; see the module."""

    def __init__(
        self,
        app: ASGIApp,
        names: Iterable[str] = (),
        frameable: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self.names = tuple(names)
        self.frameable = frameable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            refusal = refusal_of_scope(scope, self.names, self.frameable)
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


def guard(
    app: Starlette,
    *,
    api_key: str | None,
    host_names: Iterable[str] = (),
    frameable: Callable[[str], bool] | None = None,
) -> None:
    """Put ``app`` behind the web guard and, when ``api_key`` is set, the key check of ``/v1``.

    The web guard runs first (Starlette runs the middleware added last first): no route, and
    no key check, sees a web page's request.
    """
    if api_key:
        app.add_middleware(_APIKeyMiddleware, api_key=api_key)
    app.add_middleware(WebGuardMiddleware, names=tuple(host_names), frameable=frameable)
