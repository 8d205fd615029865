"""Tests that need pytest-playwright-asyncio, which cannot be installed beside pytest-playwright.

scripts/test runs this folder in ``.venv-asyncio-plugin`` (made by scripts/setup_asyncio_plugin);
in the main ``.venv`` (pytest-playwright) it is not collected.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("pytest_playwright_asyncio") is None:
    collect_ignore_glob = ["test_*.py"]
