"""Who may frame the local live view, and whether a notebook frames a session's ``app_url``.

>>> from skyvern_cdp.policy.framing import frame_ancestors, embedding
>>> frame_ancestors("127.0.0.1:8000")
"frame-ancestors 'self' http://localhost:* https://localhost:* http://127.0.0.1:* https://127.0.0.1:*"
>>> embedding("http://127.0.0.1:8000/sessions/pbs_1?token=t", "pbs_1",
...           "http://127.0.0.1:8000").frame
True
>>> embedding("https://app.skyvern.com/browser-session/pbs_1", "pbs_1",
...           "https://api.skyvern.com").frame
False

**The decision.** The live view page (``/sessions/{id}``) is the local backend's one page that
another page may frame, so that ``notebook.show(interactive=True)`` can put it in a cell
(:func:`skyvern_cdp.policy.web.web_refusal` lets that one route's ``<iframe>`` navigation
through, ``frameable``). Who may frame it is what its ``Content-Security-Policy:
frame-ancestors`` says (:func:`frame_ancestors`), enforced by the browser:

- pages of the viewer's own machine: ``localhost`` and ``127.0.0.1``, any port, ``http`` or
  ``https`` (Jupyter's ``localhost:8888`` framing ``127.0.0.1:8000`` is a cross-site frame:
  ports and these names do not matter to the rule). Not ``[::1]``, nor any IPv6 literal:
  CSP's grammar has none, and Chromium ignores such a source with a console error, so a
  notebook opened at ``http://[::1]:8888`` gets an empty frame (and the link);
- the host the view was reached on and the names the server was told (``--host``), any
  port: a notebook server on the machine that serves the view (JupyterHub next to
  ``serve --allow-remote``);
- nothing else. Any other page (``https://evil.example``, a rebinding name resolved to
  127.0.0.1) gets the browser's refusal in the frame, whatever token it holds.

**Clickjacking.** A page that may frame the view is local software, which could as well
call the backend itself. A page that may not (the rest of the web) gets nothing: the
browser shows no view, with or without the token. A page that frames it with no token, or
another session's, gets the 403 of a missing token (when the backend has a key; without
one the unguessable session id is what it lacks). A remote page that somehow has the
token can still only *link* to the view: a top-level navigation, visible in its own tab
and address bar, which is what ``app_url`` is for. The ``/v1`` API, the files and the
recordings are never frameable.

**The notebook.** :func:`embedding` frames only a live view that this library's local
backend serves (its API's own server, path ``/sessions/{id}``), whose framing rule is the
one above. Skyvern's cloud ``app_url`` is its web app, whose framing rule (and login) is
Skyvern's and not known here: it is shown as a link, with one line saying why.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["LOOPBACK_NAMES", "Embedding", "embedding", "frame_ancestors"]

#: The viewer's own machine, as a browser names it (CSP cannot name ``[::1]``).
LOOPBACK_NAMES = ("localhost", "127.0.0.1")
_DNS_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _source_host(name: str) -> str | None:
    """``name`` as a CSP host, or ``None`` if it cannot be one (an IPv6 literal, a ``;``)."""
    bare = name.strip().strip("[]").lower()
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return bare if _DNS_NAME.fullmatch(bare) else None
    return str(address) if address.version == 4 else None


def frame_ancestors(host: str | None, names: Iterable[str] = ()) -> str:
    """The ``Content-Security-Policy`` of the live view page: who may frame it (see above).

    ``host`` is the request's ``Host`` (already passed by the web guard), ``names`` the host
    names the server was told. A value that cannot be a CSP host is left out, so nothing a
    request sends can add a directive.

    >>> frame_ancestors("192.168.1.5:8000", ["devbox.lan", "a;b"]).split()[-4:]
    ['http://192.168.1.5:*', 'https://192.168.1.5:*', 'http://devbox.lan:*', 'https://devbox.lan:*']
    """
    hosts: list[str] = list(LOOPBACK_NAMES)
    reached = None
    if host:
        try:
            reached = urlsplit("//" + host).hostname
        except ValueError:
            reached = None
    for name in (reached, *names):
        source = _source_host(name) if name else None
        if source is not None and source not in hosts:
            hosts.append(source)
    sources = " ".join(f"{scheme}://{name}:*" for name in hosts for scheme in ("http", "https"))
    return f"frame-ancestors 'self' {sources}"


@dataclass(frozen=True)
class Embedding:
    """Whether a notebook frames ``app_url`` (``frame``) and the one line that goes with it."""

    frame: bool
    reason: str


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def embedding(app_url: str | None, session_id: str, api_base_url: str) -> Embedding:
    """Frame ``app_url`` in a notebook cell only when the local backend serves it.

    >>> embedding(None, "pbs_1", "http://127.0.0.1:8000").reason
    'the session has no app_url (its live view) to show'
    >>> embedding("https://app.skyvern.com/browser-session/pbs_1", "pbs_1",
    ...           "https://api.skyvern.com").reason  # doctest: +ELLIPSIS
    'app.skyvern.com serves this live view and decides itself whether ..., so it is not framed here'
    """
    if not app_url:
        return Embedding(False, "the session has no app_url (its live view) to show")
    origin = _origin(app_url)
    if origin is None:
        return Embedding(False, "the session's app_url is not an http(s) address")
    path = urlsplit(app_url).path
    if origin == _origin(api_base_url) and path == f"/sessions/{session_id}":
        return Embedding(True, (
            "if the frame stays empty, this notebook's address is not one the backend lets"
            " frame its live view (loopback, or its --host name): open it in a tab"))
    return Embedding(False, (
        f"{origin[1]} serves this live view and decides itself whether another page may"
        " frame it, so it is not framed here"))
