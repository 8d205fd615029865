"""Capture a browser profile with sync Playwright: the same as :mod:`._async_capture`.

>>> from skyvern_cdp.sync_api import capture_profile, default_page
>>> capture = capture_profile("crm", timeout=600)  # doctest: +SKIP
>>> with capture as browser:  # doctest: +SKIP
...     default_page(browser).goto("https://crm.example.com/login")  # log in
>>> capture.profile.browser_profile_id  # doctest: +SKIP
'bp_…'

Or ``profile = capture_profile("crm", login=log_in).run()``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from playwright.sync_api import Browser

from skyvern_cdp._capture import CLOSE_TIMEOUT, DEFAULT_CAPTURE_TIMEOUT, CaptureState
from skyvern_cdp._sync_attach import session_of
from skyvern_cdp.client import SkyvernClient
from skyvern_cdp.errors import (
    InvalidArgumentTypeError,
    ProfileExistsError,
    ProfileNotFoundError,
    ProfileUploadPendingError,
)
from skyvern_cdp.models import BrowserProfile
from skyvern_cdp.policy import Deadline
from skyvern_cdp.policy.profiles import capture_conflict, capture_failed, capture_not_saved

__all__ = ["Capture", "capture_profile"]

logger = logging.getLogger("skyvern_cdp.capture")

class Capture(CaptureState[SkyvernClient, Browser]):
    """What :func:`skyvern_cdp.sync_api.capture_profile` returns."""

    def __init__(
        self,
        name: str,
        *,
        description: str | None,
        replace: bool,
        timeout: float,
        login: Callable[[Browser], object] | None,
        api_key: str | None,
        base_url: str | None,
        trusted_hosts: Iterable[str] | None,
        allow_insecure_http: bool,
        client: SkyvernClient | None,
        launch_kwargs: dict[str, Any],
    ) -> None:
        import inspect

        from skyvern_cdp.sync_api import launch

        super().__init__(
            name, description=description, replace=replace, timeout=timeout, login=login,
            login_kind="a function", launch_params=inspect.signature(launch).parameters,
            client_class=SkyvernClient, client=client, api_key=api_key, base_url=base_url,
            trusted_hosts=trusted_hosts, allow_insecure_http=allow_insecure_http,
            launch_kwargs=launch_kwargs,
        )
        self._login = login

    def __enter__(self) -> Browser:
        from skyvern_cdp.sync_api import launch

        self._deadline = Deadline(self.timeout)
        try:
            found = self._client.find_browser_profile(self.name, timeout=self._left())
            conflict = capture_conflict(self.name, found, self.replace)
            if conflict is not None:
                raise conflict
            self._old = found.browser_profile_id if found is not None else None
            self._browser = launch(
                client=self._client,
                timeout=self._left(),
                generate_browser_profile=True,
                **self._launch_kwargs,
            )
        except BaseException:
            self._release()
            raise
        session = session_of(self._browser)
        self.session_id, self.app_url = session.browser_session_id, session.app_url
        logger.info(
            "capturing profile %r from session %s (log in by hand at %s)",
            self.name,
            self.session_id,
            self.app_url or "its live view",
        )
        return self._browser

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._end_session()
            if exc is None:
                self.profile = self._save()
        finally:
            self._release()

    def _end_session(self) -> None:
        """Disconnect and close the session (its state is saved when it ends)."""
        browser, self._browser = self._browser, None
        if browser is None or self.session_id is None:
            return
        try:
            browser.close()
        finally:
            # Idempotent: also when the Browser's own close was cut short.
            try:
                self._client.close_browser_session(self.session_id, timeout=CLOSE_TIMEOUT)
            except Exception as error:
                logger.warning("could not close session %s: %s", self.session_id, error)

    def _save(self) -> BrowserProfile:
        assert self.session_id is not None
        ended = self._client.get_browser_session(self.session_id, timeout=self._left())
        failed = capture_failed(self.name, ended)
        if failed is not None:
            raise failed
        try:
            try:
                made = self._create()
            except ProfileExistsError:
                if self._old is None:
                    raise
                # The server checks the saved state before the name: this 409 says the new
                # login is saved, so only now is the old profile deleted to free the name.
                with contextlib.suppress(ProfileNotFoundError):
                    self._client.delete_browser_profile(self._old, timeout=self._left())
                made = self._create()
        except ProfileUploadPendingError as error:
            raise capture_not_saved(self.name, self.session_id, error) from error
        logger.info("profile %s (%r) captured", made.browser_profile_id, self.name)
        return made

    def _create(self) -> BrowserProfile:
        assert self.session_id is not None
        return self._client.create_browser_profile(
            self.name,
            description=self.description,
            browser_session_id=self.session_id,
            timeout=self._left(),
        )

    def _release(self) -> None:
        if self._owns:
            self._client.close()

    @property
    def browser(self) -> Browser:
        """The Browser to log in with (inside the ``with`` block)."""
        if self._browser is None:
            raise InvalidArgumentTypeError("the capture's Browser exists inside `with` only")
        return self._browser

    def run(self) -> BrowserProfile:
        """Capture with ``login(browser)`` and return the profile."""
        if self._login is None:
            raise InvalidArgumentTypeError(
                "run() needs login=a function that logs in on the Browser; or use"
                " `with capture_profile(...) as browser:` and log in on that Browser"
            )
        with self as browser:
            self._login(browser)
        assert self.profile is not None
        return self.profile


def capture_profile(
    name: str,
    *,
    description: str | None = None,
    replace: bool = False,
    timeout: float = DEFAULT_CAPTURE_TIMEOUT,
    login: Callable[[Browser], object] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    trusted_hosts: Iterable[str] | None = None,
    allow_insecure_http: bool = False,
    client: SkyvernClient | None = None,
    **launch_kwargs: Any,
) -> Capture:
    """Log in once and keep it: capture a browser profile named ``name``.

    >>> capture = capture_profile("crm")  # doctest: +SKIP
    >>> with capture as browser:  # doctest: +SKIP
    ...     default_page(browser).goto("https://crm.example.com/login")  # log in
    >>> capture.profile.browser_profile_id  # doctest: +SKIP
    'bp_…'
    >>> profile = capture_profile("crm", login=log_in, replace=True).run()  # doctest: +SKIP

    See :func:`skyvern_cdp.async_api.capture_profile`: one ``timeout`` over the launch, the
    login and the save; the session is closed on an error or any interrupt (KeyboardInterrupt,
    SystemExit), and then no profile is made; an existing ``name`` is refused up front unless
    ``replace=True``.
    """
    return Capture(
        name,
        description=description,
        replace=replace,
        timeout=timeout,
        login=login,
        api_key=api_key,
        base_url=base_url,
        trusted_hosts=trusted_hosts,
        allow_insecure_http=allow_insecure_http,
        client=client,
        launch_kwargs=launch_kwargs,
    )
