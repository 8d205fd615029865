"""The examples in the core modules' docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "skyvern_cdp.errors",
    "skyvern_cdp.config",
    "skyvern_cdp.policy",
    "skyvern_cdp.policy.session",
    "skyvern_cdp.policy.retry",
    "skyvern_cdp.policy.cdp",
    "skyvern_cdp.policy.waiter",
    "skyvern_cdp.policy.screencast",
    "skyvern_cdp.policy.web",
    "skyvern_cdp.policy.framing",
    "skyvern_cdp.local.tokens",
    "skyvern_cdp._pytest.report",
    "skyvern_cdp.cli.files",
    "skyvern_cdp._client_base",
    "skyvern_cdp.models",
    "skyvern_cdp.protocol",
    "skyvern_cdp.gateway.handshake",
    "skyvern_cdp.gateway.router",
    "skyvern_cdp.relay.targets",
    "skyvern_cdp.relay.page",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SKYVERN_API_KEY", raising=False)
    monkeypatch.delenv("SKYVERN_BASE_URL", raising=False)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} shows no runnable example"
    assert result.failed == 0
