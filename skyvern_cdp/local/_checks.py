"""Argument checks of :class:`~skyvern_cdp.local.backend.LocalBackend`: typed errors before
anything starts."""

from __future__ import annotations

import math
from pathlib import Path

from skyvern_cdp.config import has_control_character
from skyvern_cdp.errors import InvalidArgumentError, InvalidArgumentTypeError

__all__ = ["check_path", "check_ready_delay", "check_text", "number"]


def number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentTypeError(f"{name} must be a number, not {type(value).__name__}")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise InvalidArgumentError(f"{name} must be finite, got {value!r}")
    return number


def check_ready_delay(value: object) -> float | tuple[float, float]:
    if isinstance(value, tuple):
        if len(value) != 2:
            raise InvalidArgumentError("ready_delay as a tuple is (low, high) in seconds")
        low = number(value[0], "ready_delay[0]")
        high = number(value[1], "ready_delay[1]")
        if low < 0 or high < low:
            raise InvalidArgumentError(
                f"ready_delay (low, high) needs 0 <= low <= high, got {value!r}"
            )
        return (low, high)
    delay = number(value, "ready_delay")
    if delay < 0:
        raise InvalidArgumentError(f"ready_delay must be >= 0 seconds, got {value!r}")
    return delay


def check_text(value: object, name: str, *, allow_none: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise InvalidArgumentError(f"{name} must not be empty")
    if has_control_character(value):
        raise InvalidArgumentError(f"{name} must not contain control characters")
    return value


def check_path(value: object, name: str) -> Path | None:
    """``None``, or a ``str`` / ``os.PathLike`` path that is not a file."""
    if value is None:
        return None
    if isinstance(value, bytes) or not isinstance(value, (str, Path)):
        try:
            import os

            value = os.fspath(value)  # type: ignore[call-overload]
        except TypeError:
            raise InvalidArgumentTypeError(
                f"{name} must be a path (str or os.PathLike), not {type(value).__name__}"
            ) from None
    text = str(value)
    if not text.strip() or "\x00" in text:
        raise InvalidArgumentError(f"{name} must be a non-empty path")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise InvalidArgumentError(f"{name} {text!r} exists and is not a directory")
    ancestor = next((p for p in path.absolute().parents if p.exists()), None)
    if ancestor is not None and not ancestor.is_dir():
        raise InvalidArgumentError(f"{name} {text!r} is under {str(ancestor)!r}, a file")
    return path
