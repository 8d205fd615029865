"""What both shells' ``capture_profile`` share, with no I/O: the checks of its arguments, made
before any request (a typo in a launch option fails here, not after someone logged in).

>>> check_capture("crm", None, False, 60, {"url": "https://example.com"}, {"timeout", "url"})
('crm', None, 60.0)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Generic, TypeVar

from skyvern_cdp import _attachment as shared
from skyvern_cdp.client import client_for
from skyvern_cdp.config import conceal, validate_timeout
from skyvern_cdp.errors import InvalidArgumentError, InvalidArgumentTypeError
from skyvern_cdp.models import BrowserProfile
from skyvern_cdp.policy import CONNECT_ATTEMPT_TIMEOUT, MIN_REQUEST_TIMEOUT, Deadline
from skyvern_cdp.policy.profiles import validate_description, validate_profile_name

__all__ = ["CLOSE_TIMEOUT", "DEFAULT_CAPTURE_TIMEOUT", "CaptureState", "check_capture"]

#: One deadline over a whole capture (launch, the login, the save), in seconds: long enough
#: for a person to log in by hand through the live view.
DEFAULT_CAPTURE_TIMEOUT = 600.0
#: How long closing the captured session may take.
CLOSE_TIMEOUT = shared.DEFAULT_CLOSE_TIMEOUT

#: Launch arguments a capture sets itself.
_OWN = frozenset(
    {"generate_browser_profile", "browser_profile", "browser_profile_id", "timeout", "client"}
)


def check_capture(
    name: object,
    description: object,
    replace: object,
    timeout: object,
    launch: dict[str, Any],
    launch_params: Collection[str],
) -> tuple[str, str | None, float]:
    """Check a capture's arguments; ``launch_params`` are the names ``launch`` takes (the rest
    of ``launch`` are create fields, checked as a launch checks them)."""
    if not isinstance(replace, bool):
        raise InvalidArgumentTypeError("replace must be a bool")
    own = _OWN & launch.keys()
    if own:
        raise InvalidArgumentError(
            f"{', '.join(sorted(own))} cannot be given to a capture: it launches a fresh"
            " session that saves its state, within its own timeout="
        )
    fields = {k: v for k, v in launch.items() if k not in launch_params}
    shared.check_launch(
        timeout=1.0,
        connect_attempt_timeout=launch.get("connect_attempt_timeout", CONNECT_ATTEMPT_TIMEOUT),
        close_timeout=launch.get("close_timeout", CLOSE_TIMEOUT),
        playwright_options=launch.get("playwright_options"),
        session_timeout_minutes=launch.get("session_timeout_minutes"),
        create_fields=fields,
    )
    return (
        validate_profile_name(name),
        validate_description(description),
        validate_timeout(timeout),
    )


_Client = TypeVar("_Client")
_Browser = TypeVar("_Browser")


class CaptureState(Generic[_Client, _Browser]):
    """A capture's checked arguments and what it learns, for both shells (no I/O): the
    shells' ``Capture`` and ``AsyncCapture`` add the steps, awaited or not."""

    def __init__(
        self,
        name: str,
        *,
        description: str | None,
        replace: bool,
        timeout: float,
        login: Callable[..., object] | None,
        login_kind: str,
        launch_params: Collection[str],
        client_class: type[_Client],
        client: _Client | None,
        api_key: str | None,
        base_url: str | None,
        trusted_hosts: Iterable[str] | None,
        allow_insecure_http: bool,
        launch_kwargs: Mapping[str, Any],
    ) -> None:
        self.name, self.description, self.timeout = check_capture(
            name, description, replace, timeout, dict(launch_kwargs), launch_params
        )
        if login is not None and not callable(login):
            raise InvalidArgumentTypeError(f"login must be {login_kind} taking a Browser")
        self.replace = replace
        self._launch_kwargs = dict(launch_kwargs)
        self._client, self._owns = client_for(  # type: ignore[type-var]
            client_class, client, conceal(api_key), base_url, trusted_hosts, allow_insecure_http
        )
        #: The profile made (after a clean exit), and the session it came from.
        self.profile: BrowserProfile | None = None
        self.session_id: str | None = None
        #: The session's live view: a person can log in there by hand.
        self.app_url: str | None = None
        self._browser: _Browser | None = None
        self._old: str | None = None
        self._deadline: Deadline | None = None

    def _left(self) -> float:
        assert self._deadline is not None
        return max(self._deadline.remaining(), MIN_REQUEST_TIMEOUT)
