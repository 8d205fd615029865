"""Log in once per run: the ``pytest_skyvern_login`` hook, and the profile every launched
session of the run (every xdist worker's too) starts from.

.. code-block:: python

    # conftest.py
    def pytest_skyvern_login(browser):          # a sync Playwright Browser
        page = browser.contexts[0].pages[0]
        page.goto("https://app.example.com/login")
        page.fill("#user", "me"); page.fill("#password", os.environ["APP_PASSWORD"])
        page.click("text=Sign in")
        page.wait_for_url("**/home")

The process that runs the session (the xdist controller, or pytest itself without xdist)
captures the profile in ``pytest_sessionstart``, before any worker starts; the workers get
its id. A failing login ends the run there with one error. A rerun reuses a profile captured
less than ``--skyvern-login-max-age`` seconds ago (one hour by default; 0: log in every run).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from skyvern_cdp._pytest.active import SkyvernPlugin

__all__ = ["PROFILE_KEY", "has_login_hook", "prepare_profile", "pytest_skyvern_login"]

#: Where xdist workers find the profile id of the run.
PROFILE_KEY = "skyvern_cdp_profile_id"
#: Seconds a whole capture (launch, the login, the save) may take, at least.
CAPTURE_TIMEOUT = 600.0


@pytest.hookspec
def pytest_skyvern_login(browser: Browser) -> None:
    """Log in on ``browser`` (a sync Playwright Browser of a fresh Skyvern session; use its
    default context, ``browser.contexts[0]``). Called once per run, when ``--skyvern-launch``
    (or ``--skyvern-profile``) is given; every session of the run then starts logged in."""


def has_login_hook(config: pytest.Config) -> bool:
    return bool(config.pluginmanager.hook.pytest_skyvern_login.get_hookimpls())


def default_profile_name(config: pytest.Config) -> str:
    """``pytest-<rootdir name>``: the profile a login hook captures without --skyvern-profile."""
    name = re.sub(r"[^A-Za-z0-9._ -]", "-", config.rootpath.name)[:60].strip() or "suite"
    return f"pytest-{name}"


def _stop(plugin: SkyvernPlugin, what: str, exc: BaseException) -> NoReturn:
    from skyvern_cdp.config import redact_text

    text = redact_text(f"{type(exc).__name__}: {exc}", plugin.options.settings.secrets)
    pytest.exit(
        f"skyvern_cdp: {what}, so no test ran: {text}", returncode=pytest.ExitCode.TESTS_FAILED
    )


def prepare_profile(plugin: SkyvernPlugin) -> str | None:
    """The profile id of this run (in the controller, or the only process): the one named by
    ``--skyvern-profile``, or the one the login hook captured (or reused). Ends the run with
    one clear error when that fails."""
    from skyvern_cdp.policy.profiles import login_decision, profile_ref

    options, config = plugin.options, plugin.config
    login = has_login_hook(config)
    if options.profile is None and not login:
        return None
    if not login:
        assert options.profile is not None
        try:
            return plugin.client.resolve_browser_profile(options.profile, timeout=options.timeout)
        except Exception as exc:
            _stop(plugin, f"the profile {options.profile!r} could not be found", exc)
    ref = profile_ref(options.profile or default_profile_name(config))
    if ref.name is None:
        raise pytest.UsageError(
            "skyvern_cdp: a pytest_skyvern_login hook captures a profile by name; give"
            " --skyvern-profile NAME (not a bp_ id), or drop the hook to use that profile"
        )
    name = ref.name
    try:
        found = plugin.client.find_browser_profile(name, timeout=options.timeout)
        decision = login_decision(
            found, now=datetime.now(timezone.utc), max_age=options.login_max_age
        )
        if decision == "reuse":
            assert found is not None
            plugin.login_note = f"reused profile {name!r} ({found.browser_profile_id})"
            return found.browser_profile_id
        profile = _capture(plugin, name, replace=found is not None)
    except (KeyboardInterrupt, SystemExit, pytest.exit.Exception):
        raise
    except BaseException as exc:
        _stop(plugin, "logging in once (pytest_skyvern_login) failed", exc)
    plugin.login_note = f"logged in once: captured profile {name!r} ({profile})"
    return profile


def _capture(plugin: SkyvernPlugin, name: str, *, replace: bool) -> str:
    from skyvern_cdp.sync_api import capture_profile

    hook: Any = plugin.config.hook

    def log_in(browser: Browser) -> None:
        hook.pytest_skyvern_login(browser=browser)

    made = capture_profile(
        name,
        client=plugin.client,
        replace=replace,
        timeout=max(CAPTURE_TIMEOUT, plugin.options.timeout),
        login=log_in,
        description="captured by the skyvern_cdp pytest plugin (pytest_skyvern_login)",
    ).run()
    return made.browser_profile_id
