"""Where the API is, which key to use, and how secrets are kept out of text.

>>> from skyvern_cdp.config import resolve_settings, redact_address
>>> s = resolve_settings(api_key="sk-test", base_url="local")
>>> s.base_url, s
('http://localhost:8000', Settings(base_url='http://localhost:8000', api_key=<set>, ...))
>>> redact_address("wss://sessions.skyvern.com/pbs_1/devtools/browser/abc?token=s3cr3t")
'wss://sessions.skyvern.com/<redacted>'

The API key comes from ``api_key=`` or ``SKYVERN_API_KEY``; the base URL from ``base_url=``,
``SKYVERN_BASE_URL``, or a preset name (``cloud``, ``staging``, ``local``); cloud by default.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from skyvern_cdp.errors import (
    InsecureTransportError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
)

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "PRESETS",
    "Secret",
    "SecretAddress",
    "SecretURL",
    "Settings",
    "conceal",
    "conceal_address",
    "conceal_url",
    "has_control_character",
    "host_of",
    "is_loopback_host",
    "redact_address",
    "redact_query",
    "redact_text",
    "resolve_base_url",
    "resolve_settings",
    "validate_timeout",
]

API_KEY_ENV = "SKYVERN_API_KEY"
BASE_URL_ENV = "SKYVERN_BASE_URL"

#: Named servers, from the API's OpenAPI ``servers`` list.
PRESETS: dict[str, str] = {
    "cloud": "https://api.skyvern.com",
    "staging": "https://api-staging.skyvern.com",
    "local": "http://localhost:8000",
}

_REDACTED = "<redacted>"
_MAX_URL_LENGTH = 2048


#: Unicode categories no name, id or URL may hold: controls (C0, DEL, C1 such as U+0085),
#: format characters (bidi overrides, zero-width), line/paragraph separators, surrogates.
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
#: What a URL's host may hold besides letters and digits (IDNA names included).
_HOST_PUNCTUATION = frozenset("-._~")


def has_control_character(value: str) -> bool:
    """Whether ``value`` holds a control, format or separator character (by Unicode category,
    so C1 controls such as U+0085 and bidi overrides count, not only ASCII's).

    >>> has_control_character("crm login"), has_control_character("a\x85b")
    (False, True)
    """
    return any(unicodedata.category(ch) in _CONTROL_CATEGORIES for ch in value)


def _check_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(f"{name} must be a str, not {type(value).__name__}")
    if has_control_character(value):
        raise InvalidArgumentError(f"{name} must not contain control characters")
    return value


def resolve_base_url(base_url: str | None = None) -> str:
    """The API's base URL: ``base_url``, else ``SKYVERN_BASE_URL``, else cloud.

    A preset name (``cloud``, ``staging``, ``local``) is accepted anywhere a URL is. The URL
    must be ``http://`` or ``https://`` with a host, and no query or fragment.
    """
    raw: object = base_url if base_url is not None else os.environ.get(BASE_URL_ENV) or "cloud"
    value = _check_text(raw, "base_url").strip()
    if not value:
        raise InvalidArgumentError("base_url must not be empty (a URL or cloud/staging/local)")
    if value.lower() in PRESETS:
        return PRESETS[value.lower()]
    if len(value) > _MAX_URL_LENGTH:
        raise InvalidArgumentError(f"base_url is longer than {_MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(value)  # raises on an unclosed '[' ('http://[::1')
    except ValueError as exc:
        raise InvalidArgumentError(f"base_url is not a valid URL: {value[:80]!r}") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidArgumentError(
            f"base_url must start with http:// or https:// (or be one of {', '.join(PRESETS)}),"
            f" got {value[:80]!r}"
        )
    try:
        port = parts.port  # raises on a malformed port
    except ValueError as exc:
        raise InvalidArgumentError(f"base_url has an invalid port: {value[:80]!r}") from exc
    del port
    if not parts.hostname:
        raise InvalidArgumentError(f"base_url has no host: {value[:80]!r}")
    if not _valid_host(parts.netloc.rpartition("@")[2], parts.hostname):
        raise InvalidArgumentError(f"base_url has an invalid host: {value[:80]!r}")
    if parts.username or parts.password:
        raise InvalidArgumentError("base_url must not carry credentials; use api_key=")
    if parts.query or parts.fragment:
        raise InvalidArgumentError("base_url must not have a query or a fragment")
    return value.rstrip("/")


def _valid_host(hostport: str, hostname: str) -> bool:
    """A URL's host is an IP literal (IPv6 in brackets) or a name of letters, digits and
    ``-._~`` (``http://a b`` is not a host, so it is bad input, not an insecure transport)."""
    if hostport.startswith("["):
        after = hostport.partition("]")[2]
        if after and not after.startswith(":"):  # 'http://[::1]x:8000'
            return False
        try:
            return isinstance(ipaddress.ip_address(hostname), ipaddress.IPv6Address)
        except ValueError:
            return False
    return all(ch.isalnum() or ch in _HOST_PUNCTUATION for ch in hostname)


def host_of(url: str) -> str:
    """The lower-case host of ``url`` (no port, no brackets); ``''`` when there is none."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def is_loopback_host(host: str) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ``::1``."""
    host = host.lower().strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Secret(str):
    """A string that never shows itself in a ``repr``: traceback locals (``pytest
    --showlocals``, Sentry, rich) and containers holding it print ``'<redacted>'``.

    >>> key = Secret("sk-live-123")
    >>> key == "sk-live-123", repr(key), repr({"x-api-key": key})
    (True, "'<redacted>'", "{'x-api-key': '<redacted>'}")
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'"


class SecretAddress(str):
    """A URL that may carry tokens (a ``browser_address``, a CDP endpoint): a ``str`` whose
    ``repr`` keeps only scheme, host and port, as :class:`Secret` does for the key.

    >>> address = SecretAddress("wss://sessions.skyvern.com/pbs_1/devtools/browser/b?token=t")
    >>> address.startswith("wss://"), repr(address)
    (True, "'wss://sessions.skyvern.com/<redacted>'")
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(redact_address(self))


class SecretURL(str):
    """A file URL that may carry a signature in its query (a recording's ``?token=…``, a
    presigned download): a ``str`` whose ``repr`` replaces the query by a marker.

    >>> url = SecretURL("https://files.example/r.mp4?token=t")
    >>> url.endswith("token=t"), repr(url)
    (True, "'https://files.example/r.mp4?<redacted>'")
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(str(redact_query(self)))


def conceal_url(value: str | None) -> str | None:
    """``value`` as a :class:`SecretURL` (``None`` and non-strings as they are)."""
    if isinstance(value, str) and not isinstance(value, SecretURL):
        return SecretURL(value)
    return value


def conceal_address(value: str | None) -> str | None:
    """``value`` as a :class:`SecretAddress` (``None`` and non-strings as they are)."""
    if isinstance(value, str) and not isinstance(value, SecretAddress):
        return SecretAddress(value)
    return value


def conceal(value: str | None) -> str | None:
    """``value`` as a :class:`Secret` (strings of other types are left to the validators)."""
    if isinstance(value, str) and not isinstance(value, Secret):
        return Secret(value)
    return value


@dataclass(frozen=True)
class Settings:
    """Resolved connection settings. The API key never shows in ``repr``."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    trusted_hosts: frozenset[str] = frozenset()
    allow_insecure_http: bool = False

    def __repr__(self) -> str:
        key = "<set>" if self.api_key else None
        return f"Settings(base_url={self.base_url!r}, api_key={key}, ...)"

    @property
    def api_host(self) -> str:
        return host_of(self.base_url)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never appear in text this library writes."""
        return (self.api_key,) if self.api_key else ()


def _check_trusted_hosts(trusted_hosts: Iterable[str] | None) -> frozenset[str]:
    if trusted_hosts is None:
        return frozenset()
    if isinstance(trusted_hosts, str):
        raise InvalidArgumentTypeError(
            "trusted_hosts must be a list of host names, not a single str"
        )
    hosts = set()
    for host in trusted_hosts:
        name = _check_text(host, "trusted_hosts entry").strip().lower()
        if not name or not re.fullmatch(r"[a-z0-9.\-\[\]:]+", name) or "/" in name:
            raise InvalidArgumentError(f"trusted_hosts entries are bare host names, got {host!r}")
        if ":" in name and not name.startswith("["):
            try:
                ipaddress.IPv6Address(name)
            except ValueError:
                raise InvalidArgumentError(
                    f"trusted_hosts entries are host names without a port, got {host!r}"
                ) from None
        hosts.add(name.strip("[]"))
    return frozenset(hosts)


def resolve_settings(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    trusted_hosts: Iterable[str] | None = None,
    allow_insecure_http: bool = False,
) -> Settings:
    """Resolve arguments and the environment into :class:`Settings`, checking each.

    Raises :class:`InsecureTransportError` when a key would go over plain ``http://`` to a
    host that is not loopback, unless ``allow_insecure_http=True``.
    """
    url = resolve_base_url(base_url)
    # Every local holding the key is a Secret, so a traceback's locals never show it.
    key: object = conceal(api_key) if api_key is not None else conceal(os.environ.get(API_KEY_ENV))
    if key is not None:
        key = conceal(_check_text(key, "api_key").strip())
        if not key:
            raise InvalidArgumentError(f"api_key must not be empty (or set {API_KEY_ENV})")
        if len(key) > 4096:
            raise InvalidArgumentError("api_key is longer than 4096 characters")
        require_ascii_key(key)
    if not isinstance(allow_insecure_http, bool):
        raise InvalidArgumentTypeError("allow_insecure_http must be a bool")
    settings = Settings(
        base_url=url,
        api_key=Secret(key) if isinstance(key, str) and key else None,
        trusted_hosts=_check_trusted_hosts(trusted_hosts),
        allow_insecure_http=allow_insecure_http,
    )
    check_transport(settings.base_url, settings)
    return settings


def check_transport(url: str, settings: Settings) -> None:
    """Refuse to send ``settings.api_key`` over plain http to a host that is not loopback."""
    if not settings.api_key or settings.allow_insecure_http:
        return
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "ws") and not is_loopback_host(host_of(url)):
        raise InsecureTransportError(
            f"refusing to send the API key over plain {scheme}:// to {host_of(url)!r}; use"
            " https:// (wss://), or pass allow_insecure_http=True if this network is trusted"
        )


def validate_timeout(value: object, name: str = "timeout") -> float:
    """A positive, finite number of seconds, no more than this platform can wait
    (``threading.TIMEOUT_MAX``: about 292 years on Linux; past it a wait raises OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentTypeError(
            f"{name} must be a number of seconds, not {type(value).__name__}"
        )
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise InvalidArgumentError(f"{name} must be a finite number of seconds, got {value!r}")
    if seconds <= 0:
        raise InvalidArgumentError(f"{name} must be greater than 0 seconds, got {value!r}")
    if seconds > threading.TIMEOUT_MAX:
        raise InvalidArgumentError(
            f"{name} must be at most {threading.TIMEOUT_MAX:.0f} seconds, got {value!r}"
        )
    return seconds


def redact_address(address: str) -> str:
    """Keep only scheme, host and port of a ``browser_address``: the rest may be a secret."""
    try:
        parts = urlsplit(address)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return _REDACTED
    if not parts.scheme or not host:
        return _REDACTED
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    after_netloc = address.split("://", 1)[-1][len(parts.netloc) :]
    if after_netloc.strip("/") or parts.username or parts.password:
        return f"{parts.scheme}://{netloc}/{_REDACTED}"
    return f"{parts.scheme}://{netloc}"


def require_ascii_key(key: str) -> None:
    """An API key goes in an HTTP header, which is ASCII: else ``InvalidArgumentError``
    (before httpx's ``UnicodeEncodeError``, which would show the key).

    >>> require_ascii_key("sk-plain")  # passes; "k\u00e9y" raises InvalidArgumentError
    """
    if not key.isascii():
        raise InvalidArgumentError(
            "api_key must be ASCII (an HTTP header cannot carry other characters);"
            " it may have been pasted with a typographic quote or a non-breaking space"
        )


def redact_query(url: str) -> str:
    """A file URL with its query (a presigned URL's signature) replaced by a marker.

    >>> redact_query("https://files.example/a.pdf?X-Amz-Signature=abc&X-Amz-Expires=60")
    'https://files.example/a.pdf?<redacted>'
    """
    base, sep, _ = url.partition("?")
    return f"{base}?{_REDACTED}" if sep else url


_QUERY_SECRET = re.compile(
    r"([?&#;][\w.-]*(?:token|key|secret|auth|sig|signature|credential|password)=)[^&#\s'\"]+",
    re.IGNORECASE,
)


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Replace each secret in ``text``, and any ``token=…``-like query value, by a marker."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    return _QUERY_SECRET.sub(lambda m: m.group(1) + _REDACTED, text)


#: The environment variables of the edges (the CLI, ``relay``, the pytest plugin) for
#: ``trusted_hosts`` (comma- or space-separated host names) and ``allow_insecure_http``.
TRUSTED_HOSTS_ENV = "SKYVERN_CDP_TRUSTED_HOSTS"
ALLOW_INSECURE_HTTP_ENV = "SKYVERN_CDP_ALLOW_INSECURE_HTTP"
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


def parse_flag(raw: str, name: str) -> bool:
    """``1/0``, ``true/false``, ``yes/no``, ``on/off`` (any case); else InvalidArgumentError.

    >>> parse_flag("Yes", "X"), parse_flag("0", "X")
    (True, False)
    """
    value = raw.strip().lower()
    if value in _TRUE_WORDS:
        return True
    if value in _FALSE_WORDS:
        return False
    raise InvalidArgumentError(
        f"{name} must be 1/0, true/false, yes/no or on/off, got {raw[:20]!r}"
    )


def parse_host_list(raw: str) -> list[str]:
    """Host names separated by commas or whitespace (``SKYVERN_CDP_TRUSTED_HOSTS``).

    >>> parse_host_list("a.example, b.example  c.example")
    ['a.example', 'b.example', 'c.example']
    """
    return [part for part in re.split(r"[,\s]+", raw.strip()) if part]


def edge_network_options(
    trusted_hosts: Iterable[str] | None, allow_insecure_http: bool | None
) -> dict[str, Any]:
    """``trusted_hosts=`` and ``allow_insecure_http=`` for an edge: the given values (a flag,
    an option), else the environment (:data:`TRUSTED_HOSTS_ENV`,
    :data:`ALLOW_INSECURE_HTTP_ENV`), else the library's defaults. Given hosts add to the
    environment's."""
    hosts = parse_host_list(os.environ.get(TRUSTED_HOSTS_ENV, ""))
    hosts += list(trusted_hosts or [])
    insecure = allow_insecure_http
    if insecure is None:
        insecure = parse_flag(os.environ.get(ALLOW_INSECURE_HTTP_ENV, ""), ALLOW_INSECURE_HTTP_ENV)
    return {"trusted_hosts": hosts or None, "allow_insecure_http": bool(insecure)}
