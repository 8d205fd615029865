"""What the live view does with a viewer's message, and which CDP commands a take-over holds.

>>> from skyvern_cdp.policy.liveview import input_command, holds_while_taken
>>> input_command({"type": "mouse", "event": "mousePressed", "x": 10, "y": 20, "button": "left",
...                "buttons": 1, "clickCount": 1})
('Input.dispatchMouseEvent', {'type': 'mousePressed', 'x': 10.0, 'y': 20.0, 'modifiers': 0, \
'button': 'left', 'buttons': 1, 'clickCount': 1})
>>> input_command({"type": "text", "text": "pasted"})
('Input.insertText', {'text': 'pasted'})
>>> input_command({"type": "mouse", "event": "drop tables"}) is None
True
>>> holds_while_taken(b'{"id": 7, "method": "Input.dispatchMouseEvent", "params": {}}')
True

The live view's page (``/sessions/{id}``) sends JSON messages over its websocket; each input
message becomes one ``Input.*`` command on the viewed page, or nothing when it is malformed
(a viewer is a web page: it is checked, never trusted). No I/O here.

**Take control.** As in Skyvern's cloud, a person who takes control holds the automation's
input: while a viewer has control of a session, the backend's CDP router holds every
client's ``Input.*`` command (:func:`holds_while_taken`) and whatever that client sends after
it, in order, until control is given back; then they go on. The automation's ``click``
waits (within its own timeout) instead of fighting the person for the mouse. Other commands
of other connections (reads, screenshots, navigation) are not held.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_TEXT",
    "holds_while_taken",
    "input_command",
    "key_params",
]

#: The longest text one ``text`` (paste) message may insert.
MAX_TEXT = 100_000

_MOUSE_EVENTS = frozenset({"mousePressed", "mouseReleased", "mouseMoved"})
_BUTTONS = frozenset({"none", "left", "middle", "right", "back", "forward"})
_KEY_EVENTS = frozenset({"keyDown", "keyUp"})
#: Editing shortcuts Chromium does not run from a synthetic key event unless told to.
_COMMANDS = {
    ("a", 2): ["selectAll"], ("a", 4): ["selectAll"],
    ("z", 2): ["undo"], ("z", 4): ["undo"],
    ("z", 10): ["redo"], ("z", 12): ["redo"], ("y", 2): ["redo"],
    ("c", 2): ["copy"], ("c", 4): ["copy"], ("x", 2): ["cut"], ("x", 4): ["cut"],
}
#: Keys whose keyDown types a character although their name is not one.
_KEY_TEXT = {"Enter": "\r", "Tab": "\t"}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if number != number or abs(number) > 1e6:  # NaN, or off any screen
        return None
    return number


def _small_int(value: object, default: int = 0, limit: int = 31) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        return None
    return value


def _text(value: object, limit: int = 16) -> str | None:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        return None
    return value


def key_params(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """``Input.dispatchKeyEvent`` params for a ``key`` message, ``None`` if malformed.

    A keyDown of a printable key (``key`` one character, no Ctrl/Meta) types it; any other
    keyDown is a ``rawKeyDown``, with the editing command Chromium needs for Ctrl+A, Ctrl+Z ...
    (modifiers: Alt 1, Ctrl 2, Meta 4, Shift 8).

    >>> key_params({"event": "keyDown", "key": "x", "code": "KeyX", "keyCode": 88})["text"]
    'x'
    >>> key_params({"event": "keyDown", "key": "a", "code": "KeyA", "keyCode": 65,
    ...             "modifiers": 2})["commands"]
    ['selectAll']
    >>> key_params({"event": "keyDown", "key": "Backspace", "keyCode": 8})["type"]
    'rawKeyDown'
    """
    event = message.get("event")
    key, code = _text(message.get("key"), 32), _text(message.get("code"), 32)
    modifiers = _small_int(message.get("modifiers"), 0, 15)
    key_code = _small_int(message.get("keyCode"), 0, 255)
    if event not in _KEY_EVENTS or not key or code is None or modifiers is None or key_code is None:
        return None
    params: dict[str, Any] = {
        "key": key, "code": code, "modifiers": modifiers,
        "windowsVirtualKeyCode": key_code, "nativeVirtualKeyCode": key_code,
    }
    if event == "keyUp":
        return {"type": "keyUp", **params}
    text = key if len(key) == 1 else _KEY_TEXT.get(key, "")
    if text and not modifiers & (2 | 4):
        return {"type": "keyDown", **params, "text": text, "unmodifiedText": text}
    commands = _COMMANDS.get((key.lower(), modifiers))
    return {"type": "rawKeyDown", **params, **({"commands": commands} if commands else {})}


def input_command(message: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The CDP command for one input message of a viewer, or ``None`` when it is not one.

    >>> input_command({"type": "wheel", "x": 5, "y": 5, "deltaX": 0, "deltaY": 120})[1]["type"]
    'mouseWheel'
    """
    kind = message.get("type")
    if kind in ("mouse", "wheel"):
        x, y = _number(message.get("x")), _number(message.get("y"))
        modifiers = _small_int(message.get("modifiers"), 0, 15)
        if x is None or y is None or modifiers is None:
            return None
        base: dict[str, Any] = {"x": x, "y": y, "modifiers": modifiers}
        if kind == "wheel":
            dx, dy = _number(message.get("deltaX", 0)), _number(message.get("deltaY", 0))
            if dx is None or dy is None:
                return None
            return "Input.dispatchMouseEvent", {
                "type": "mouseWheel", **base, "deltaX": dx, "deltaY": dy}
        event, button = message.get("event"), message.get("button", "none")
        buttons = _small_int(message.get("buttons"), 0, 31)
        clicks = _small_int(message.get("clickCount"), 0, 3)
        if event not in _MOUSE_EVENTS or button not in _BUTTONS:
            return None
        if buttons is None or clicks is None:
            return None
        return "Input.dispatchMouseEvent", {
            "type": event, **base, "button": button, "buttons": buttons, "clickCount": clicks}
    if kind == "key":
        params = key_params(message)
        return ("Input.dispatchKeyEvent", params) if params is not None else None
    if kind == "text":
        text = _text(message.get("text"), MAX_TEXT)
        return ("Input.insertText", {"text": text}) if text else None
    return None


def holds_while_taken(message: bytes | str) -> bool:
    """Whether a client's CDP message is input that a person's take-over holds.

    >>> holds_while_taken('{"id": 1, "method": "Runtime.evaluate"}')
    False
    >>> holds_while_taken(b'not json'), holds_while_taken(b'{"method": "Input.insertText"}')
    (False, True)
    """
    if isinstance(message, bytes) and b"Input." not in message:
        return False  # most messages: no parse at all
    if isinstance(message, str) and "Input." not in message:
        return False  # most messages: no parse at all
    try:
        parsed = json.loads(message)
    except ValueError:
        return False
    method = parsed.get("method") if isinstance(parsed, dict) else None
    return isinstance(method, str) and method.startswith("Input.")
