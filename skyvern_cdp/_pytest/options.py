"""The plugin's options: command line, else environment, else ini key; resolved and checked
once, at configure time, into an :class:`Options` (or ``None``: the plugin stays inactive).

>>> resolve_options(config)  # doctest: +SKIP
Options(mode='launch', session_id=None, ...)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from skyvern_cdp.config import ALLOW_INSECURE_HTTP_ENV, TRUSTED_HOSTS_ENV, parse_host_list
from skyvern_cdp.errors import InvalidArgumentError, SkyvernCDPError

if TYPE_CHECKING:
    from skyvern_cdp.config import Settings
    from skyvern_cdp.lifetime import KeepAlive


SESSION_ENV = "SKYVERN_CDP_SESSION"
LAUNCH_ENV = "SKYVERN_CDP_LAUNCH"
TIMEOUT_ENV = "SKYVERN_CDP_TIMEOUT"
KEEP_ON_FAILURE_ENV = "SKYVERN_CDP_KEEP_ON_FAILURE"
DEFAULT_CONTEXT_ENV = "SKYVERN_CDP_DEFAULT_CONTEXT"
KEEP_ALIVE_MARGIN_ENV = "SKYVERN_CDP_KEEP_ALIVE_MARGIN"
PROFILE_ENV = "SKYVERN_CDP_PROFILE"
LOGIN_MAX_AGE_ENV = "SKYVERN_CDP_LOGIN_MAX_AGE"
#: Seconds a profile captured by the login hook is reused on the next runs.
DEFAULT_LOGIN_MAX_AGE = 3600.0

#: The name the active plugin is registered under (``config.pluginmanager.get_plugin``).
PLUGIN_NAME = "skyvern_cdp_session"
#: Where xdist workers find the controller's ledger of launched sessions.
_LEDGER_KEY = "skyvern_cdp_ledger"
#: Fixtures whose use ties a test to the Skyvern session (for the report section).
_SESSION_FIXTURES = frozenset(
    {
        "skyvern_session",
        "skyvern_browser",
        "skyvern_context",
        "skyvern_page",
        "skyvern_async_browser",
        "skyvern_async_context",
        "skyvern_async_page",
    }
)
_PLAYWRIGHT_FIXTURES = frozenset({"browser", "context", "page", "new_context"})
_INACTIVE = (
    "skyvern_cdp: no Skyvern session for this run; pass --skyvern-session pbs_… or"
    f" --skyvern-launch (or set {SESSION_ENV} / {LAUNCH_ENV})"
)
_REPORTED = pytest.StashKey[bool]()


class PluginUsageError(pytest.UsageError, InvalidArgumentError):  # type: ignore[misc]
    """A bad ``--skyvern-*`` option: pytest stops before collecting, with this message."""


# -- options --------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("skyvern", "Skyvern browser sessions (skyvern_cdp)")
    group.addoption(
        "--skyvern-session",
        metavar="ID",
        default=None,
        help=f"attach to this existing session (pbs_…); env {SESSION_ENV}",
    )
    group.addoption(
        "--skyvern-launch",
        action="store_true",
        default=None,
        help=f"create one session per worker and close it at the end; env {LAUNCH_ENV}",
    )
    group.addoption(
        "--skyvern-base-url",
        metavar="URL",
        default=None,
        help="API base URL or cloud/staging/local; env SKYVERN_BASE_URL (default: cloud)",
    )
    group.addoption(
        "--skyvern-api-key",
        metavar="KEY",
        default=None,
        help="API key (prefer the SKYVERN_API_KEY environment variable); never echoed",
    )
    group.addoption(
        "--skyvern-timeout",
        metavar="S",
        default=None,
        help=f"seconds to wait for a session and attach to it (default 120); env {TIMEOUT_ENV}",
    )
    group.addoption(
        "--skyvern-keep-on-failure",
        action="store_true",
        default=None,
        help="leave a launched session open when a test failed, and print its id and app_url;"
        f" env {KEEP_ON_FAILURE_ENV}",
    )
    group.addoption(
        "--skyvern-default-context",
        action="store_true",
        default=None,
        help="use the session's default context instead of a new context per test;"
        f" env {DEFAULT_CONTEXT_ENV}",
    )
    group.addoption(
        "--skyvern-keep-alive-margin",
        metavar="S",
        default=None,
        help="extend a launched session while the run lasts, once fewer than S seconds are"
        f" left (default 300; 0: off); env {KEEP_ALIVE_MARGIN_ENV}",
    )
    group.addoption(
        "--skyvern-profile",
        metavar="NAME|bp_ID",
        default=None,
        help="every launched session starts from this browser profile (implies"
        f" --skyvern-launch); with a pytest_skyvern_login hook, the name it captures; env"
        f" {PROFILE_ENV}",
    )
    group.addoption(
        "--skyvern-login-max-age",
        metavar="S",
        default=None,
        help="reuse the profile a pytest_skyvern_login hook captured less than S seconds ago"
        f" (default {DEFAULT_LOGIN_MAX_AGE:g}; 0: log in on every run); env {LOGIN_MAX_AGE_ENV}",
    )
    group.addoption(
        "--skyvern-trusted-host",
        action="append",
        metavar="HOST",
        default=None,
        help="also send the key to HOST's CDP endpoints (repeatable); env"
        f" {TRUSTED_HOSTS_ENV} (comma-separated)",
    )
    group.addoption(
        "--skyvern-allow-insecure-http",
        action="store_true",
        default=None,
        help="send the key over plain http:// beyond loopback (self-hosted Skyvern on a LAN);"
        f" env {ALLOW_INSECURE_HTTP_ENV}",
    )
    parser.addini("skyvern_trusted_hosts", "hosts that also get the key", type="args",
                  default=None)
    parser.addini("skyvern_allow_insecure_http", "send the key over http:// beyond loopback",
                  type="bool", default=None)
    parser.addini("skyvern_profile", "browser profile (name or bp_ id) to start from", default=None)
    parser.addini("skyvern_login_max_age", "seconds a captured login is reused", default=None)
    parser.addini("skyvern_session", "session id to attach to (pbs_…)", default=None)
    parser.addini(
        "skyvern_keep_alive_margin",
        "seconds left at which a launched session is extended (0: never)",
        default=None,
    )
    parser.addini("skyvern_launch", "create a session per worker", type="bool", default=None)
    parser.addini("skyvern_base_url", "Skyvern API base URL or preset name", default=None)
    parser.addini("skyvern_timeout", "seconds to wait for and attach to a session", default=None)
    parser.addini(
        "skyvern_keep_on_failure",
        "keep a launched session open after a failure",
        type="bool",
        default=None,
    )
    parser.addini(
        "skyvern_default_context",
        "use the session's default context",
        type="bool",
        default=None,
    )


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _env_flag(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise PluginUsageError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw[:20]!r}")


def _flag(config: pytest.Config, option: str, env: str, ini: str) -> bool:
    """Command line, else environment, else ini."""
    value = config.getoption(option)
    if value:
        return True
    from_env = _env_flag(env)
    if from_env is not None:
        return from_env
    return bool(config.getini(ini))


def _text(config: pytest.Config, option: str, env: str | None, ini: str | None) -> str | None:
    value = config.getoption(option)
    if value is None and env is not None:
        value = os.environ.get(env) or None
    if value is None and ini is not None:
        value = config.getini(ini) or None
    return str(value) if value is not None else None


@dataclass(frozen=True)
class Options:
    """The resolved ``--skyvern-*`` options. The API key lives in ``settings`` (never shown)."""

    session_id: str | None
    launch: bool
    settings: Settings
    timeout: float
    keep_on_failure: bool
    default_context: bool
    #: How a launched session is kept alive for the run (``None``: it is not).
    keep_alive: KeepAlive | None = None
    #: ``--skyvern-profile``: the profile (a name or an id) launched sessions start from.
    profile: str | None = None
    #: ``--skyvern-login-max-age``: seconds a login hook's profile is reused.
    login_max_age: float = DEFAULT_LOGIN_MAX_AGE

    @property
    def mode(self) -> str:
        return "launch" if self.launch else "attach"


def resolve_options(config: pytest.Config) -> Options | None:
    """The options of this run, or ``None`` when the plugin is not asked for.

    Raises :class:`PluginUsageError` for a bad or contradictory value.
    """
    session_id, launch, profile = _mode(config)
    if session_id is None and not launch:
        stray = [
            name
            for name, dest in (
                ("--skyvern-base-url", "skyvern_base_url"),
                ("--skyvern-api-key", "skyvern_api_key"),
                ("--skyvern-timeout", "skyvern_timeout"),
                ("--skyvern-keep-on-failure", "skyvern_keep_on_failure"),
                ("--skyvern-default-context", "skyvern_default_context"),
                ("--skyvern-keep-alive-margin", "skyvern_keep_alive_margin"),
                ("--skyvern-login-max-age", "skyvern_login_max_age"),
                ("--skyvern-trusted-host", "skyvern_trusted_host"),
                ("--skyvern-allow-insecure-http", "skyvern_allow_insecure_http"),
            )
            if config.getoption(dest) is not None
        ]
        if stray:
            raise PluginUsageError(
                f"{', '.join(stray)} has no effect without --skyvern-session or --skyvern-launch"
            )
        return None
    from skyvern_cdp.config import BASE_URL_ENV, resolve_settings, validate_timeout
    from skyvern_cdp.policy import validate_session_id

    try:
        if session_id is not None:
            session_id = validate_session_id(session_id.strip())
        raw_timeout = _text(config, "skyvern_timeout", TIMEOUT_ENV, "skyvern_timeout")
        timeout = 120.0
        if raw_timeout is not None:
            try:
                number = float(raw_timeout)
            except ValueError:
                raise PluginUsageError(
                    f"--skyvern-timeout must be a number of seconds, got {raw_timeout[:20]!r}"
                ) from None
            timeout = validate_timeout(number, "--skyvern-timeout")
        trusted_hosts, insecure = _network(config)
        settings = resolve_settings(
            api_key=_text(config, "skyvern_api_key", None, None),
            base_url=_text(config, "skyvern_base_url", BASE_URL_ENV, "skyvern_base_url"),
            trusted_hosts=trusted_hosts,
            allow_insecure_http=insecure,
        )
        keep_alive = _keep_alive(config)
        if profile is not None:
            from skyvern_cdp.policy.profiles import profile_ref

            profile_ref(profile.strip())
            profile = profile.strip()
        login_max_age = _login_max_age(config)
    except PluginUsageError:
        raise
    except SkyvernCDPError as exc:
        # The library's messages never carry the key; say which option it was about.
        raise PluginUsageError(f"skyvern_cdp: {exc}") from None
    return Options(
        session_id=session_id,
        launch=launch,
        settings=settings,
        timeout=timeout,
        keep_on_failure=_flag(
            config, "skyvern_keep_on_failure", KEEP_ON_FAILURE_ENV, "skyvern_keep_on_failure"
        ),
        default_context=_flag(
            config, "skyvern_default_context", DEFAULT_CONTEXT_ENV, "skyvern_default_context"
        ),
        keep_alive=keep_alive,
        profile=profile,
        login_max_age=login_max_age,
    )


def _mode(config: pytest.Config) -> tuple[str | None, bool, str | None]:
    """``(session_id, launch, profile)``: the command line decides, else the environment, else
    the ini file; a layer that names a session and a launch is a usage error, a lower one is
    not looked at (``--skyvern-launch`` wins over ``SKYVERN_CDP_SESSION``)."""
    env_launch = _env_flag(LAUNCH_ENV)
    layers = (
        ("--skyvern-session", "--skyvern-launch", "--skyvern-profile",
         config.getoption("skyvern_session"), bool(config.getoption("skyvern_launch")),
         config.getoption("skyvern_profile")),
        (SESSION_ENV, LAUNCH_ENV, PROFILE_ENV, os.environ.get(SESSION_ENV) or None,
         env_launch, os.environ.get(PROFILE_ENV) or None),
        ("skyvern_session", "skyvern_launch", "skyvern_profile",
         config.getini("skyvern_session") or None, bool(config.getini("skyvern_launch")),
         config.getini("skyvern_profile") or None),
    )
    for session_name, launch_name, profile_name, session, launch, profile in layers:
        if session is not None and profile is not None:
            raise PluginUsageError(
                f"{profile_name} and {session_name} exclude each other: a profile applies to"
                " the sessions the plugin launches, not to one that runs already"
            )
        if session is not None and launch:
            raise PluginUsageError(
                f"{session_name} and {launch_name} exclude each other: attach to an existing"
                " session, or launch one per worker"
            )
        if session is not None or launch or profile is not None:
            return session, bool(launch or profile is not None), profile
        if launch is False and launch_name == LAUNCH_ENV:  # SKYVERN_CDP_LAUNCH=0 says "no"
            return None, False, None
    return None, False, None


def _network(config: pytest.Config) -> tuple[list[str] | None, bool]:
    """``trusted_hosts``/``allow_insecure_http``: command line, else environment, else ini."""
    hosts: list[str] = list(config.getoption("skyvern_trusted_host") or [])
    if not hosts:
        hosts = parse_host_list(os.environ.get(TRUSTED_HOSTS_ENV, ""))
    if not hosts:
        hosts = [h for entry in config.getini("skyvern_trusted_hosts") or []
                 for h in parse_host_list(entry)]
    insecure = bool(config.getoption("skyvern_allow_insecure_http"))
    if not insecure:
        from_env = _env_flag(ALLOW_INSECURE_HTTP_ENV)
        insecure = from_env if from_env is not None else bool(
            config.getini("skyvern_allow_insecure_http"))
    return hosts or None, insecure


def _login_max_age(config: pytest.Config) -> float:
    import math

    raw = _text(config, "skyvern_login_max_age", LOGIN_MAX_AGE_ENV, "skyvern_login_max_age")
    if raw is None:
        return DEFAULT_LOGIN_MAX_AGE
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise PluginUsageError(
            f"--skyvern-login-max-age must be a number of seconds >= 0, got {raw[:20]!r}"
        )
    return value


def _keep_alive(config: pytest.Config) -> KeepAlive | None:
    """``--skyvern-keep-alive-margin``: the keep-alive policy of a launched session."""
    import math

    from skyvern_cdp.lifetime import KeepAlive

    raw = _text(
        config, "skyvern_keep_alive_margin", KEEP_ALIVE_MARGIN_ENV, "skyvern_keep_alive_margin"
    )
    if raw is None:
        return KeepAlive()
    try:
        margin = float(raw)
    except ValueError:
        margin = math.nan
    if math.isnan(margin) or math.isinf(margin) or margin < 0:
        raise PluginUsageError(
            "--skyvern-keep-alive-margin must be a number of seconds >= 0 (0: off),"
            f" got {raw[:20]!r}"
        )
    return KeepAlive(margin=margin) if margin > 0 else None
