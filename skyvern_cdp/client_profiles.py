"""The browser-profile methods of both clients (mixed into :class:`~skyvern_cdp.SkyvernClient`
and :class:`~skyvern_cdp.AsyncSkyvernClient`).

>>> from skyvern_cdp import SkyvernClient
>>> with SkyvernClient(base_url="local") as client:  # doctest: +SKIP
...     profile = client.create_browser_profile("crm", browser_session_id="pbs_1", timeout=60)
...     [p.name for p in client.list_browser_profiles(search_key="crm")]
...     client.resolve_browser_profile("crm")          # a name (or a bp_ id) to its id
...     client.delete_browser_profile(profile.browser_profile_id)
['crm']
'bp_…'

A create from a session is retried within ``timeout`` while the server answers that the
session's state is not saved yet (it is saved when the session ends, seconds after its close);
after the deadline that is :class:`~skyvern_cdp.errors.ProfileUploadPendingError`. Its other
400s (:class:`~skyvern_cdp.errors.ProfileSourceError`), a 409 for a taken name
(:class:`~skyvern_cdp.errors.ProfileExistsError`) and a 404
(:class:`~skyvern_cdp.errors.ProfileNotFoundError`, or
:class:`~skyvern_cdp.errors.SessionNotFoundError` for the source session) are raised at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from skyvern_cdp import protocol
from skyvern_cdp.errors import APITimeoutError, InvalidArgumentTypeError, ProfileNotFoundError
from skyvern_cdp.models import BrowserProfile, CreateBrowserProfileRequest
from skyvern_cdp.policy import Deadline, validate_session_id
from skyvern_cdp.policy.profiles import (
    RESOLVE_PAGE_SIZE,
    is_retryable_profile_create,
    match_profile,
    more_pages,
    profile_ref,
    validate_description,
    validate_page,
    validate_profile_id,
    validate_profile_name,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncProfileMethods", "ProfileMethods"]

_OnFailure = Callable[[BaseException], object] | None


def create_request(
    name: str, description: str | None, browser_session_id: str | None
) -> protocol.Request:
    body = CreateBrowserProfileRequest(
        name=validate_profile_name(name),
        description=validate_description(description),
        browser_session_id=(
            validate_session_id(browser_session_id) if browser_session_id is not None else None
        ),
    )
    return protocol.Request(
        "POST",
        protocol.PROFILES_PATH,
        json=body.model_dump(exclude_none=True),
        idempotent=False,
        session_id=body.browser_session_id,
        retry=is_retryable_profile_create,
    )


def list_request(
    page: int, page_size: int, search_key: str | None, include_deleted: bool
) -> protocol.Request:
    page, page_size = validate_page(page, page_size)
    if search_key is not None and not isinstance(search_key, str):
        raise InvalidArgumentTypeError("search_key must be a str")
    if not isinstance(include_deleted, bool):
        raise InvalidArgumentTypeError("include_deleted must be a bool")
    params: dict[str, Any] = {"page": page, "page_size": page_size}
    if search_key:
        params["search_key"] = search_key
    if include_deleted:
        params["include_deleted"] = "true"
    return protocol.Request("GET", protocol.PROFILES_PATH, params=params)


def one_request(method: str, profile_id: str) -> protocol.Request:
    pid = validate_profile_id(profile_id)
    return protocol.Request(method, f"{protocol.PROFILES_PATH}/{pid}", profile_id=pid)


def _not_found(name: str) -> ProfileNotFoundError:
    return ProfileNotFoundError(
        f"no browser profile is named {name!r}; see `skyvern-cdp profile list`, or capture one"
        " (skyvern_cdp.sync_api.capture_profile)",
        status_code=404,
    )


def _too_long(name: str, deadline: Deadline) -> APITimeoutError:
    return APITimeoutError(
        f"looking up the browser profile named {name!r} took longer than the"
        f" {deadline.seconds:g}s timeout (paging through the list); pass its bp_ id instead"
    )


class ProfileMethods:
    """``create/list/get/delete_browser_profile`` and ``resolve_browser_profile``, blocking."""

    if TYPE_CHECKING:

        def _send(
            self, request: protocol.Request, deadline: Deadline, on_failure: _OnFailure = None
        ) -> httpx.Response: ...

        @staticmethod
        def _deadline(timeout: float | None, default: float = ...) -> Deadline: ...

    def create_browser_profile(
        self,
        name: str,
        *,
        description: str | None = None,
        browser_session_id: str | None = None,
        timeout: float | None = None,
    ) -> BrowserProfile:
        """``POST /v1/browser_profiles``: a profile from a session's saved state (a blank one
        without ``browser_session_id``). The session must have ended; while its state is being
        saved the create is retried until ``timeout``."""
        request = create_request(name, description, browser_session_id)
        response = self._send(request, self._deadline(timeout))
        return protocol.parse_profile(response.status_code, response.content, request)

    def list_browser_profiles(
        self,
        *,
        page: int = 1,
        page_size: int = 10,
        search_key: str | None = None,
        include_deleted: bool = False,
        timeout: float | None = None,
    ) -> list[BrowserProfile]:
        """``GET /v1/browser_profiles``: one page (``search_key``: a substring of the name or
        the description)."""
        request = list_request(page, page_size, search_key, include_deleted)
        response = self._send(request, self._deadline(timeout))
        return protocol.parse_profile_list(response.status_code, response.content, request)

    def get_browser_profile(
        self, profile_id: str, *, timeout: float | None = None
    ) -> BrowserProfile:
        """``GET /v1/browser_profiles/{id}``."""
        request = one_request("GET", profile_id)
        response = self._send(request, self._deadline(timeout))
        return protocol.parse_profile(response.status_code, response.content, request)

    def delete_browser_profile(self, profile_id: str, *, timeout: float | None = None) -> None:
        """``DELETE /v1/browser_profiles/{id}`` (204); a later get is a 404."""
        self._send(one_request("DELETE", profile_id), self._deadline(timeout))

    def find_browser_profile(
        self, name: str, *, timeout: float | None = None
    ) -> BrowserProfile | None:
        """The live profile named exactly ``name``, or ``None`` (pages through the list)."""
        name = validate_profile_name(name)
        deadline = self._deadline(timeout)
        page, seen = 1, set[str]()
        while True:
            request = list_request(page, RESOLVE_PAGE_SIZE, name, False)
            response = self._send(request, deadline)
            items = protocol.parse_profile_list(response.status_code, response.content, request)
            found = match_profile(name, items)
            if found is not None or not more_pages(items, RESOLVE_PAGE_SIZE, seen):
                return found
            if deadline.expired:
                raise _too_long(name, deadline)
            page += 1

    def resolve_browser_profile(self, profile: str, *, timeout: float | None = None) -> str:
        """A ``bp_`` id (returned as it is, no request) or a name (looked up once through the
        list) as a profile id; :class:`ProfileNotFoundError` for an unknown name."""
        ref = profile_ref(profile)
        if ref.profile_id is not None:
            return ref.profile_id
        assert ref.name is not None
        found = self.find_browser_profile(ref.name, timeout=timeout)
        if found is None:
            raise _not_found(ref.name)
        return found.browser_profile_id


class AsyncProfileMethods:
    """The same as :class:`ProfileMethods`, awaited."""

    if TYPE_CHECKING:

        async def _send(
            self, request: protocol.Request, deadline: Deadline, on_failure: _OnFailure = None
        ) -> httpx.Response: ...

        @staticmethod
        def _deadline(timeout: float | None, default: float = ...) -> Deadline: ...

    async def create_browser_profile(
        self,
        name: str,
        *,
        description: str | None = None,
        browser_session_id: str | None = None,
        timeout: float | None = None,
    ) -> BrowserProfile:
        """See :meth:`ProfileMethods.create_browser_profile`."""
        request = create_request(name, description, browser_session_id)
        response = await self._send(request, self._deadline(timeout))
        return protocol.parse_profile(response.status_code, response.content, request)

    async def list_browser_profiles(
        self,
        *,
        page: int = 1,
        page_size: int = 10,
        search_key: str | None = None,
        include_deleted: bool = False,
        timeout: float | None = None,
    ) -> list[BrowserProfile]:
        """See :meth:`ProfileMethods.list_browser_profiles`."""
        request = list_request(page, page_size, search_key, include_deleted)
        response = await self._send(request, self._deadline(timeout))
        return protocol.parse_profile_list(response.status_code, response.content, request)

    async def get_browser_profile(
        self, profile_id: str, *, timeout: float | None = None
    ) -> BrowserProfile:
        """``GET /v1/browser_profiles/{id}``."""
        request = one_request("GET", profile_id)
        response = await self._send(request, self._deadline(timeout))
        return protocol.parse_profile(response.status_code, response.content, request)

    async def delete_browser_profile(
        self, profile_id: str, *, timeout: float | None = None
    ) -> None:
        """``DELETE /v1/browser_profiles/{id}`` (204)."""
        await self._send(one_request("DELETE", profile_id), self._deadline(timeout))

    async def find_browser_profile(
        self, name: str, *, timeout: float | None = None
    ) -> BrowserProfile | None:
        """See :meth:`ProfileMethods.find_browser_profile`."""
        name = validate_profile_name(name)
        deadline = self._deadline(timeout)
        page, seen = 1, set[str]()
        while True:
            request = list_request(page, RESOLVE_PAGE_SIZE, name, False)
            response = await self._send(request, deadline)
            items = protocol.parse_profile_list(response.status_code, response.content, request)
            found = match_profile(name, items)
            if found is not None or not more_pages(items, RESOLVE_PAGE_SIZE, seen):
                return found
            if deadline.expired:
                raise _too_long(name, deadline)
            page += 1

    async def resolve_browser_profile(self, profile: str, *, timeout: float | None = None) -> str:
        """See :meth:`ProfileMethods.resolve_browser_profile`."""
        ref = profile_ref(profile)
        if ref.profile_id is not None:
            return ref.profile_id
        assert ref.name is not None
        found = await self.find_browser_profile(ref.name, timeout=timeout)
        if found is None:
            raise _not_found(ref.name)
        return found.browser_profile_id
