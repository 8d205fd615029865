"""May a web page use this local server? The one rule of every local listener, no I/O.

>>> from skyvern_cdp.policy.web import web_refusal, host_allowed, create_url_refusal
>>> web_refusal(method="POST", host="127.0.0.1:8000", origin=None) is None  # SDK, skyvern-lite
True
>>> web_refusal(method="POST", host="127.0.0.1:8000", origin="https://evil.example").kind
'origin'
>>> web_refusal(method="GET", host="rebind.evil.example:8000", origin=None).kind
'host'
>>> host_allowed("localhost:9222"), host_allowed("evil.example"), host_allowed("localhost.")
(True, False, False)
>>> create_url_refusal("file:///etc/passwd") is not None, create_url_refusal("https://a.b")
(True, None)

``skyvern-cdp serve`` without a key, the local backend's CDP router and ``skyvern-cdp relay``
listen on loopback and trust whoever reaches them. A web page in the user's own browser reaches
them too, in two ways, and :func:`web_refusal` closes both:

- **DNS rebinding**: the page's own name resolves to 127.0.0.1, so its requests are
  same-origin and carry ``Host: evil.example:PORT``. Refused: a ``Host`` must be an IP literal,
  ``localhost``, or a name the server was told to listen on (Chrome's debugging-port rule).
- **Cross-site requests** (``fetch``, a form, a bodiless ``POST``): the browser sends
  ``Origin`` with every one that is not a plain ``GET``, and ``Sec-Fetch-Site`` with every
  request. Refused: an ``Origin`` other than the server's own (``null`` included), and a
  ``Sec-Fetch-Site`` of ``cross-site``/``same-site`` on anything but a top-level navigation
  (``Sec-Fetch-Dest: document``; a person following a link to the live view stays welcome;
  a page's ``<img>``, ``no-cors`` fetch, ``<iframe>``, ``<object>`` or ``<embed>`` does not).
- **One framing exception**: a cross-site or same-site ``<iframe>`` (``GET``, ``navigate``,
  ``Sec-Fetch-Dest: iframe``/``frame``) passes where the server says the route is
  ``frameable``: only a session's live view page, so that a notebook can show it. Which
  pages may frame it is the page's own ``Content-Security-Policy: frame-ancestors``
  (:mod:`skyvern_cdp.policy.framing`), which the browser enforces: the server cannot tell
  (a frame's navigation carries no ``Origin``), and the view needs its token besides.

Programs (the SDK, skyvern-lite, httpx, Playwright) send neither ``Origin`` nor
``Sec-Fetch-*``, so they pass. :func:`create_url_refusal` is the matching rule for the first
page of a created session: ``http``, ``https``, ``about:blank`` and ``data:`` only, never
``file:``, ``chrome:``, ``view-source:`` or ``javascript:``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "ALLOWED_URL_SCHEMES",
    "BAD_HOST",
    "WebRefusal",
    "create_url_refusal",
    "host_allowed",
    "listen_names",
    "same_origin",
    "web_refusal",
]

#: Chrome's answer to a request whose ``Host`` fails the DNS-rebinding check.
BAD_HOST = "Host header is specified and is not an IP address or localhost."
#: The schemes a created session may open first (``about:`` only as ``about:blank``).
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "data", "about"})
_NOT_IN_HOST = frozenset("@/\\?#%,;\"'<>`{}|^")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: ``Sec-Fetch-Dest`` of a navigation into a frame (``<object>``/``<embed>`` are never allowed).
_FRAMES = frozenset({"iframe", "frame"})


@dataclass(frozen=True)
class WebRefusal:
    """Why a request is refused: ``kind`` ``host`` or ``origin``; ``status`` 403 (the relay
    answers a bad ``Host`` with 500, as Chrome's port does)."""

    kind: Literal["host", "origin"]
    detail: str
    status: int = 403


def _names(host: str) -> tuple[str, int | None] | None:
    """``(hostname, port)`` of a ``Host`` value; ``None`` unless it is only a host and port
    (``evil.example@127.0.0.1`` would otherwise parse as 127.0.0.1)."""
    if not host or any(ch in _NOT_IN_HOST or ord(ch) <= 0x20 for ch in host):
        return None
    try:
        parts = urlsplit("//" + host)
        return (parts.hostname or "", parts.port)
    except ValueError:
        return None


def host_allowed(host: str | None, *, names: Iterable[str] = ()) -> bool:
    """Chrome's DNS-rebinding rule: a ``Host`` must be an IP literal or ``localhost``, or one
    of ``names`` (the host name a server was told to listen on).

    No ``Host`` at all is allowed (HTTP/1.0 clients), as Chrome allows it.
    """
    if host is None:
        return True
    split = _names(host)
    if split is None or not split[0]:
        return False
    # No trailing-dot forgiveness: ``localhost.`` is a DNS name a resolver may send anywhere,
    # and Chrome's rule names ``localhost`` itself (any case) and IP literals only.
    name = split[0].lower()
    if name == "localhost" or name in {n.strip("[]").lower() for n in names}:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def listen_names(host: str) -> tuple[str, ...]:
    """The names besides IP literals and ``localhost`` that reach a server bound on ``host``.

    >>> listen_names("127.0.0.1"), listen_names("devbox.lan")
    ((), ('devbox.lan',))
    """
    name = host.strip("[]").rstrip(".").lower()
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return () if name == "localhost" else (name,)
    return ()


def same_origin(origin: str, host: str | None, *, scheme: str = "http") -> bool:
    """Whether ``Origin`` names the server that the request's ``Host`` names."""
    if host is None:
        return False
    try:
        parts = urlsplit(origin.strip())
        origin_port = parts.port
    except ValueError:
        return False
    if parts.scheme.lower() != scheme or not parts.hostname or parts.path not in ("", "/"):
        return False
    split = _names(host)
    if split is None:
        return False
    default = _DEFAULT_PORTS.get(scheme)
    return (parts.hostname.lower(), origin_port or default) == (
        split[0].lower(), split[1] or default
    )


def web_refusal(
    *,
    method: str,
    host: str | None,
    origin: str | None,
    sec_fetch_site: str | None = None,
    sec_fetch_mode: str | None = None,
    sec_fetch_dest: str | None = None,
    names: Iterable[str] = (),
    scheme: str = "http",
    frameable: bool = False,
) -> WebRefusal | None:
    """``None`` when the request may go on, else why not (see the module docstring).

    ``host``, ``origin`` and ``sec_fetch_*`` are the request's headers as sent (``None`` when
    absent; no ``Sec-Fetch-Dest`` counts as a top-level document, as before browsers sent
    it); ``scheme`` is how the server is reached (``http``, or ``ws`` for a websocket
    server, whose browser ``Origin`` is still ``http://``); ``frameable`` says that the
    requested route may be shown in another site's ``<iframe>`` (the live view page only).

    >>> frame = dict(method="GET", host="127.0.0.1:8000", origin=None,
    ...              sec_fetch_site="cross-site", sec_fetch_mode="navigate",
    ...              sec_fetch_dest="iframe")
    >>> print(web_refusal(**frame).detail)
    Rejected a cross-site frame: of this server only a session's live view may be framed
    >>> web_refusal(**frame, frameable=True) is None
    True
    """
    if not host_allowed(host, names=names):
        return WebRefusal("host", BAD_HOST)
    page_scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    if origin is not None and not same_origin(origin, host, scheme=page_scheme):
        shown = origin if len(origin) <= 100 else origin[:100] + "…"
        return WebRefusal(
            "origin",
            f"Rejected a request from the {shown} origin: this server serves programs and its"
            " own pages, not other web pages",
        )
    site = (sec_fetch_site or "").strip().lower()
    if site not in ("cross-site", "same-site"):
        return None
    navigate = (sec_fetch_mode or "").strip().lower() == "navigate"
    dest = (sec_fetch_dest or "").strip().lower() or "document"
    if navigate and method.upper() in ("GET", "HEAD"):
        if dest == "document":
            return None
        if dest in _FRAMES:
            if frameable:
                return None
            return WebRefusal("origin", f"Rejected a {site} frame: of this server only a"
                              " session's live view may be framed")
    return WebRefusal(
        "origin", f"Rejected a {site} request: open this server's pages directly instead"
    )


def create_url_refusal(url: str | None) -> str | None:
    """Why a create's first ``url`` is refused, or ``None`` when it is allowed.

    Allowed: ``http:``, ``https:``, ``data:`` and ``about:blank``; everything else
    (``file:``, ``chrome:``, ``view-source:``, ``javascript:``, ``blob:`` ...) would let whoever
    may create a session read the machine's files or the browser's internals.
    """
    if url is None:
        return None
    scheme, sep, rest = url.partition(":")
    scheme = scheme.strip().lower()
    if not sep or scheme not in ALLOWED_URL_SCHEMES:
        return (
            f"url scheme {scheme + ':' if sep else url[:20]!r} is not allowed; a session opens"
            " http:, https:, data: or about:blank"
        )
    if scheme == "about" and rest.strip().lower() != "blank":
        return "of about: URLs only about:blank is allowed"
    return None
