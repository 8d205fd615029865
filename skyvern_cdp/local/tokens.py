"""Per-session URL tokens: what lets a link to one session's page or file pass the key rule.

>>> from skyvern_cdp.local.tokens import session_token, token_matches
>>> token = session_token("sk-local", "pbs_1")
>>> len(token), token == session_token("sk-local", "pbs_2")
(32, False)
>>> token_matches("sk-local", "pbs_1", token), token_matches("sk-local", "pbs_1", "x" * 32)
(True, False)

When the backend has an API key, a person's browser cannot send ``x-api-key``; the URLs the
API hands out for a session's files (and its view) carry ``?token=…`` instead, the way
cloud URLs carry a signature. The token is an HMAC of the session id under the key: it opens
that one session's URLs and no other, and tells nothing about the key. Treat it as a
secret: the CLI and the pytest plugin redact ``token=`` in what they print.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["TOKEN_PARAM", "request_allowed", "session_token", "token_matches"]

#: The query parameter that carries the token.
TOKEN_PARAM = "token"


def session_token(api_key: str, session_id: str) -> str:
    """The token for ``session_id``'s URLs under ``api_key`` (32 hex digits)."""
    message = f"skyvern-cdp session {session_id}".encode()
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()[:32]


def token_query(api_key: str | None, session_id: str) -> str:
    """The query that opens ``session_id``'s URLs: ``?token=…`` under a key, else nothing.

    >>> token_query(None, "pbs_1")
    ''
    >>> token_query("k", "pbs_1").startswith("?token=")
    True
    """
    return f"?{TOKEN_PARAM}={session_token(api_key, session_id)}" if api_key else ""


def token_matches(api_key: str, session_id: str, given: str | None) -> bool:
    """Whether ``given`` is ``session_id``'s token (constant time)."""
    if not given:
        return False
    expected = session_token(api_key, session_id)
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def request_allowed(
    api_key: str | None, session_id: str, *, header_key: str | None, token: str | None
) -> bool:
    """A request for a session's URL passes: no key set, the key in ``x-api-key``, or the token.

    >>> request_allowed(None, "pbs_1", header_key=None, token=None)
    True
    >>> request_allowed("k", "pbs_1", header_key="k", token=None)
    True
    >>> request_allowed("k", "pbs_1", header_key="wrong", token=None)
    False
    """
    if api_key is None:
        return True
    if header_key is not None and hmac.compare_digest(
        header_key.encode("utf-8", "surrogateescape"), api_key.encode()
    ):
        return True
    return token_matches(api_key, session_id, token)
