"""Which Chromium the local backend starts: ``$SKYVERN_CDP_CHROMIUM``, then Playwright's own
build, then a system ``chromium`` / ``google-chrome``; none is a typed error saying what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skyvern_cdp.local.chromium import BrowserNotFoundError, find_chromium


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine with nothing on it: an empty PATH, no Playwright browsers, no variable."""
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "ms-playwright"))
    monkeypatch.delenv("SKYVERN_CDP_CHROMIUM", raising=False)
    return tmp_path


def test_the_variable_then_playwrights_build_then_the_system(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = _executable(machine / "bin" / "chromium")
    assert find_chromium() == str(system)
    older = _executable(machine / "ms-playwright" / "chromium-999" / "chrome-linux" / "chrome")
    newer = _executable(machine / "ms-playwright" / "chromium-1200" / "chrome-linux64" / "chrome")
    assert find_chromium() == str(newer), "Playwright's newest build (by number) first"
    newer.unlink()
    assert find_chromium() == str(older)
    chosen = _executable(machine / "elsewhere" / "my-chrome")
    monkeypatch.setenv("SKYVERN_CDP_CHROMIUM", str(chosen))
    assert find_chromium() == str(chosen), "the variable before everything"
    monkeypatch.setenv("SKYVERN_CDP_CHROMIUM", "my-chrome")  # a name is looked up on PATH
    monkeypatch.setenv("PATH", str(chosen.parent))
    assert find_chromium() == str(chosen)


def test_google_chrome_when_there_is_no_chromium(machine: Path) -> None:
    chrome = _executable(machine / "bin" / "google-chrome")
    assert find_chromium() == str(chrome)


@pytest.mark.parametrize("value", ["/nonexistent/chrome", "no-such-browser-on-path", "{dir}",
                                   "{plain_file}"])
def test_a_variable_naming_no_executable_is_a_typed_error(
    machine: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    plain = machine / "plain"
    plain.write_text("not a program")
    plain.chmod(0o644)
    _executable(machine / "bin" / "chromium")  # never chosen instead of what was asked for
    monkeypatch.setenv("SKYVERN_CDP_CHROMIUM", value.format(dir=machine, plain_file=plain))
    with pytest.raises(BrowserNotFoundError, match="SKYVERN_CDP_CHROMIUM=.* is not an executable"):
        find_chromium()


def test_none_at_all_says_what_to_do(machine: Path) -> None:
    with pytest.raises(BrowserNotFoundError) as info:
        find_chromium()
    message = str(info.value)
    assert "SKYVERN_CDP_CHROMIUM=" in message and "playwright install chromium" in message
    assert os.linesep not in message.strip(), "one line"
