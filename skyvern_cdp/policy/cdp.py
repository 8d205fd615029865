"""Decisions of the CDP phase, no I/O: which address to dial with which headers, how long one
attempt may take, and what a failed attempt meant.

>>> from skyvern_cdp.policy.cdp import CDPFailure, classify_cdp_failure, same_site
>>> same_site("sessions.skyvern.com", "api.skyvern.com")
True
>>> classify_cdp_failure("WebSocket closed: 4410 session closed") is CDPFailure.SESSION_CLOSED
True
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from skyvern_cdp.config import Settings, check_transport, host_of, is_loopback_host
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


_CLOSED_MARKERS = ("4410", "session closed")
_REJECTED = re.compile(r"\b(401|403)\b|unauthori[sz]ed|forbidden", re.IGNORECASE)


def classify_cdp_failure(message: str) -> CDPFailure:
    """What a failed ``connect_over_cdp`` means: try again, the session is over, or the
    endpoint refused our credentials (trying again will not help)."""
    lowered = message.lower()
    if any(marker in lowered for marker in _CLOSED_MARKERS):
        return CDPFailure.SESSION_CLOSED
    if _REJECTED.search(message):
        return CDPFailure.REJECTED
    return CDPFailure.RETRY


def same_site(host_a: str, host_b: str) -> bool:
    """Whether two hosts share a registrable domain (``sessions.skyvern.com`` and
    ``api.skyvern.com``). IP addresses and single-label names match only themselves."""
    a, b = host_a.lower().rstrip("."), host_b.lower().rstrip(".")
    if a == b:
        return True
    if _is_ip(a) or _is_ip(b):
        return False
    labels_a, labels_b = a.split("."), b.split(".")
    if len(labels_a) < 2 or len(labels_b) < 2:
        return False
    # Two-letter country domains with a generic second level (example.co.uk) need three.
    depth = 3 if len(labels_a[-1]) == 2 and labels_a[-2] in _GENERIC_SLDS else 2
    return len(labels_a) >= depth and labels_a[-depth:] == labels_b[-depth:]


_GENERIC_SLDS = frozenset({"co", "com", "net", "org", "gov", "ac", "edu"})


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


def cdp_target(
    address: str, settings: Settings, extra_headers: Mapping[str, str] | None = None
) -> CDPTarget:
    """The endpoint to give ``connect_over_cdp`` and its headers.

    The ``#…`` fragment is dropped. The API key goes along only to the API's own host, a host
    of the same registrable domain, or one listed in ``settings.trusted_hosts``; any other host
    is dialled without it.
    """
    parts = urlsplit(address.strip())
    if parts.scheme.lower() not in ("ws", "wss", "http", "https") or not parts.hostname:
        raise InvalidArgumentError("browser_address is not a ws(s):// or http(s):// URL")
    endpoint = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
    headers = dict(extra_headers or {})
    host = host_of(endpoint)
    trusted = (
        host in settings.trusted_hosts
        or same_site(host, settings.api_host)
        or (is_loopback_host(host) and host == settings.api_host)
    )
    sends_key = bool(settings.api_key) and trusted
    if sends_key and settings.api_key:
        check_transport(endpoint, settings)
        headers["x-api-key"] = settings.api_key
    return CDPTarget(endpoint=endpoint, headers=headers, sends_key=sends_key)
