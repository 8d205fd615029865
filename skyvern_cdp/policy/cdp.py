"""Decisions of the CDP phase, no I/O: which address to dial with which headers, how long one
attempt may take, and what a failed attempt meant.

>>> from skyvern_cdp.policy.cdp import CDPFailure, CDPObservation, classify_cdp_failure, same_site
>>> same_site("sessions.skyvern.com", "api.skyvern.com")
True
>>> classify_cdp_failure(CDPObservation(close_code=4410)) is CDPFailure.SESSION_CLOSED
True
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from skyvern_cdp.config import (
    SecretAddress,
    Settings,
    check_transport,
    host_of,
    is_loopback_host,
)
from skyvern_cdp.errors import InvalidArgumentError

# -- CDP ------------------------------------------------------------------------------------

#: The first CDP attempt may take this long; later ones get more, up to the cap.
CONNECT_ATTEMPT_TIMEOUT = 5.0
_CONNECT_ATTEMPT_CAP = 20.0


def connect_attempt_timeout(
    attempt: int, remaining: float, first: float = CONNECT_ATTEMPT_TIMEOUT
) -> float:
    """How long CDP attempt number ``attempt`` (1-based) may take: well under the deadline,
    so that a hung first attempt leaves time for a second one."""
    per_attempt = min(_CONNECT_ATTEMPT_CAP, first * 2.0 ** max(0, attempt - 1))
    return max(0.0, min(per_attempt, remaining))


def connect_retry_delay(attempt: int) -> float:
    """Pause between CDP attempts: short, since a ready endpoint usually opens within ms."""
    return float(min(1.0, 0.05 * (2 ** max(0, attempt - 1))))


class CDPFailure(enum.Enum):
    RETRY = "retry"
    SESSION_CLOSED = "session closed"
    REJECTED = "rejected"
    #: Playwright refused the arguments before dialling: trying again cannot help.
    ARGUMENT = "argument"


#: The close code (and the HTTP status, over an ``http://`` address) of an ended session.
SESSION_CLOSED_CODE = 4410
_SESSION_CLOSED_STATUS = 410
_REJECTED_STATUS = frozenset({401, 403})


@dataclass(frozen=True)
class CDPObservation:
    """What a failed attempt saw on the wire: the handshake's HTTP status (``status``), the
    websocket's close code (``close_code``), and whether Playwright refused the arguments
    before dialling anything (``argument_error``)."""

    status: int | None = None
    close_code: int | None = None
    argument_error: bool = False


# Playwright's call log: one event per line, "  - <event> URL detail". The URL is one field
# (no spaces), so nothing inside it (a session id, a path) can be taken for a status or code.
_EVENT = re.compile(r"^\s*- <(?P<event>[a-z ]+)> (?P<url>\S+) (?P<detail>.*)$")
_STATUS = re.compile(r"(?P<status>[1-5]\d\d)(?: |$)")
_CLOSE = re.compile(r"code=(?P<code>\d{1,4}) reason=")
# A refused handshake is named on the first line, before any text of the server's: over
# http(s) "BrowserType.connect_over_cdp: Unexpected status 401 when connecting to http://…",
# over ws(s) "BrowserType.connect_over_cdp: WebSocket error: ws://… 401 Unauthorized".
_HTTP_STATUS = re.compile(
    r"^(?:[\w.]+: )?(?:Unexpected status (?P<status>[1-5]\d\d) when connecting to "
    r"|WebSocket error: \S+ (?P<ws_status>[1-5]\d\d)(?: |$))"
)
# Playwright's own argument check: "slow_mo: expected float, got string" (a first line with
# no call log: nothing was dialled).
_ARGUMENT = re.compile(r"^(?:[\w.]+: )?[\w.\[\]]+: expected [\w ]+, got [\w ]+$")


def observe_cdp_failure(message: str, *, validation_error: bool = False) -> CDPObservation:
    """Read a failed ``connect_over_cdp``'s record: the status or close code of the first
    websocket event that has one, in Playwright's call log.

    Only the fields of its event lines are read, never the text around them: a URL or a
    session id that contains ``401``, ``4410`` or ``closed`` means nothing here.

    >>> log = "Timeout\\nCall log:\\n  - <ws disconnected> ws://h/pbs_401 code=4410 reason=x"
    >>> observe_cdp_failure(log).close_code
    4410
    """
    lines = message.splitlines()
    first = lines[0] if lines else ""
    head = _HTTP_STATUS.match(first)
    if head:
        return CDPObservation(status=int(head["status"] or head["ws_status"]))
    logged = False
    log = lines.index("Call log:") + 1 if "Call log:" in lines else len(lines)
    for line in lines[log:]:  # before it: Playwright's message, with the server's body
        event = _EVENT.match(line)
        if event is None:
            continue  # a response body, "Call log:", ...
        logged = True
        name, detail = event["event"], event["detail"]
        if name == "ws unexpected response":
            status = _STATUS.match(detail)
            if status:
                return CDPObservation(status=int(status["status"]))
        if name == "ws disconnected":
            close = _CLOSE.match(detail)
            if close and int(close["code"]) != 1006:  # 1006: no close frame at all
                return CDPObservation(close_code=int(close["code"]))
    if validation_error or (not logged and _ARGUMENT.match(first.strip())):
        return CDPObservation(argument_error=True)
    return CDPObservation()


def classify_cdp_failure(seen: CDPObservation) -> CDPFailure:
    """What a failed ``connect_over_cdp`` means, from what it saw: try again, the session is
    over (close code 4410, or HTTP 410 over ``http://``), the endpoint refused our
    credentials (HTTP 401/403), or Playwright refused the arguments. Only the last three are
    final.

    >>> classify_cdp_failure(CDPObservation(close_code=4410)) is CDPFailure.SESSION_CLOSED
    True
    """
    if seen.argument_error:
        return CDPFailure.ARGUMENT
    if seen.close_code == SESSION_CLOSED_CODE or seen.status == _SESSION_CLOSED_STATUS:
        return CDPFailure.SESSION_CLOSED
    if seen.status in _REJECTED_STATUS:
        return CDPFailure.REJECTED
    return CDPFailure.RETRY


def same_site(host_a: str, host_b: str) -> bool:
    """Whether two hosts share a registrable domain by the Public Suffix List, private
    section included (``sessions.skyvern.com`` and ``api.skyvern.com``; never two tenants of
    ``herokuapp.com`` or ``github.io``). IP addresses and names without a registrable domain
    (``intranet``) match only themselves; every loopback name and address is one host."""
    a, b = _norm(host_a), _norm(host_b)
    if a == b:
        return True
    if is_loopback_host(a) and is_loopback_host(b):
        return True
    if _is_ip(a) or _is_ip(b):
        return False
    site = _registrable(a)
    return site is not None and site == _registrable(b)


def _norm(host: str) -> str:
    return host.lower().strip("[]").rstrip(".")


@functools.lru_cache(maxsize=1)
def _suffix_list() -> Any:
    # The list ships inside the package (it is never fetched); loaded on first use (~50 ms).
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@functools.lru_cache(maxsize=256)
def _registrable(host: str) -> str | None:
    """The registrable domain of ``host`` (``skyvern.com``), or ``None`` when it has none."""
    found = _suffix_list().privatesuffix(host)
    return str(found) if found else None


def key_goes_to(host: str, settings: Settings) -> bool:
    """Whether the API key may go to ``host`` on the CDP websocket: the API's own host (every
    loopback name and address counts as one), a host of its registrable domain, or one the
    caller listed in ``trusted_hosts``."""
    return _norm(host) in settings.trusted_hosts or same_site(host, settings.api_host)


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class CDPTarget:
    """Where to dial and with which headers. ``sends_key`` says whether the key goes along."""

    endpoint: str
    headers: Mapping[str, str]
    sends_key: bool

    def __repr__(self) -> str:
        from skyvern_cdp.config import redact_address

        return f"CDPTarget(endpoint={redact_address(self.endpoint)!r}, sends_key={self.sends_key})"


def _endpoint_of(address: str) -> SecretAddress:
    """``address`` without its fragment, held as a :class:`SecretAddress`."""
    try:
        parts = urlsplit(address.strip())
    except ValueError:
        raise InvalidArgumentError("browser_address is not a valid URL") from None
    usable = parts.scheme.lower() in ("ws", "wss", "http", "https") and bool(parts.hostname)
    endpoint = SecretAddress(urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, "")))
    del parts  # a traceback through here shows only the concealed forms
    if not usable:
        raise InvalidArgumentError("browser_address is not a ws(s):// or http(s):// URL")
    return endpoint


def cdp_target(
    address: str, settings: Settings, extra_headers: Mapping[str, str] | None = None
) -> CDPTarget:
    """The endpoint to give ``connect_over_cdp`` and its headers.

    The ``#…`` fragment is dropped. The API key goes along only where :func:`key_goes_to`
    says; any other host is dialled without it.
    """
    endpoint = _endpoint_of(address)  # a SecretAddress: no local here shows its tokens
    headers = dict(extra_headers or {})
    host = host_of(endpoint)
    sends_key = bool(settings.api_key) and key_goes_to(host, settings)
    if sends_key and settings.api_key:
        check_transport(endpoint, settings)
        headers["x-api-key"] = settings.api_key
    return CDPTarget(endpoint=endpoint, headers=headers, sends_key=sends_key)
