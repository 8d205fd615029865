"""Take control from a notebook cell: the session's interactive live view, framed in the cell.

>>> from skyvern_cdp import notebook
>>> browser = await notebook.launch()  # SKYVERN_BASE_URL=http://127.0.0.1:8000  # doctest: +SKIP
>>> view = notebook.show(interactive=True)  # doctest: +SKIP
>>> view.framed, view.reason  # doctest: +SKIP
(True, 'if the frame stays empty, ...')

``notebook.show(interactive=True)`` (:func:`embed`) puts the session's ``app_url`` in the
cell's output as an ``<iframe>``: the same live view as in a tab, take control and give
back included, with a link to open it in a tab below it. What it does, by case (the
decision is :func:`skyvern_cdp.policy.framing.embedding`):

- **the local backend** (the live view is served by the API's own server): framed. The
  backend lets pages of the viewer's own machine (``localhost``, ``127.0.0.1``, any port:
  Jupyter's own) and of its own host frame the view, and no other page
  (:mod:`skyvern_cdp.policy.framing`). A front end elsewhere (a hosted notebook, VS Code's
  webviews, whose address is ``vscode-webview:``) gets an empty frame: the line under it
  says so and the link still works.
- **Skyvern's cloud, or any other server**: not framed. Its framing rule and its login are
  its own and not known here, so one line says so and the cell shows the link.
- **outside a notebook**: one line, with the link, as :func:`~skyvern_cdp.notebook.show`.

The frame's address carries the session's ``?token=`` when the backend has a key, as
``app_url`` does: a notebook saved with its outputs keeps it (it opens that one session's
view, until the session ends). There is nothing to stop: the view lives in the front end,
and it ends with the session or when the cell's output is cleared.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from urllib.parse import urlsplit

from playwright.async_api import Browser

from skyvern_cdp._async_attach import api_base_url_of, session_of
from skyvern_cdp.config import conceal_url
from skyvern_cdp.errors import InvalidArgumentError, InvalidArgumentTypeError
from skyvern_cdp.notebook_view import in_notebook, notice
from skyvern_cdp.policy.framing import embedding

__all__ = ["DEFAULT_HEIGHT", "InteractiveView", "check_height", "embed"]

#: The frame's height in CSS pixels by default: a 1280×720 page scaled to a cell, and its bar.
DEFAULT_HEIGHT = 720


@dataclass(frozen=True)
class InteractiveView:
    """What ``show(interactive=True)`` did: ``framed`` or not, and the line that said why.

    ``url`` is the session's ``app_url`` (its ``repr`` hides the token); ``display_id`` is
    the cell output's (``None`` outside a notebook).
    """

    session_id: str
    url: str | None
    framed: bool
    reason: str
    display_id: str | None = None


def check_height(value: object) -> int:
    """The frame's height: an ``int`` of CSS pixels, 100 to 4000."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentTypeError(
            f"height must be an int (CSS pixels), not {type(value).__name__}"
        )
    if not 100 <= value <= 4000:
        raise InvalidArgumentError(f"height must be 100 to 4000 pixels, got {value!r}")
    return value


def _link(url: str, text: str) -> str:
    """A link to ``url`` opening a tab; an address that is not http(s) (``javascript:``) is
    shown as text, never made a link."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return f"{html.escape(text)}: <code>{html.escape(url)}</code>"
    return (f'<a href="{html.escape(url)}" target="_blank" rel="noopener noreferrer">'
            f"{html.escape(text)}</a>")


def embed(browser: Browser, height: int = DEFAULT_HEIGHT) -> InteractiveView:
    """Show ``browser``'s session's live view in this cell (see the module docstring)."""
    height = check_height(height)
    session = session_of(browser)  # InvalidArgumentTypeError for a Browser not ours
    if not browser.is_connected():
        raise InvalidArgumentError(
            f"this Browser of session {session.browser_session_id} is closed: attach again"
            " (`browser = await notebook.attach(id)`) to show its live view"
        )
    sid, url = session.browser_session_id, session.app_url
    decision = embedding(url, sid, api_base_url_of(browser))
    if not in_notebook():
        where = f"take control at {url}" if url else "the session has no app_url to open"
        notice(f"skyvern_cdp: not in a notebook, so there is nothing to show here; {where}")
        return InteractiveView(sid, conceal_url(url), False, "not in a notebook")
    from IPython.display import display

    if url is None or not decision.frame:
        plain = f"skyvern_cdp: {decision.reason}" + (f"; open it at {url}" if url else "")
        shown = (f"<div>skyvern_cdp: {html.escape(decision.reason)}"
                 + (f"; {_link(url, 'open the live view')}" if url else "") + "</div>")
    else:
        plain = f"the live view of session {sid} (a frame, in front ends that show HTML): {url}"
        shown = (
            f'<iframe src="{html.escape(url)}" width="100%" height="{height}"'
            f' title="live view of session {html.escape(sid)}" referrerpolicy="no-referrer"'
            ' allow="clipboard-read; clipboard-write"'
            ' style="border: 1px solid #ccc; max-width: 100%"></iframe>'
            f'<div style="font-size: smaller">Session <code>{html.escape(sid)}</code>:'
            f" {_link(url, 'open the live view in a tab')}; {html.escape(decision.reason)}.</div>"
        )
    handle = display(  # type: ignore[no-untyped-call]
        {"text/html": shown, "text/plain": plain}, raw=True, display_id=True
    )
    return InteractiveView(sid, conceal_url(url), decision.frame, decision.reason,
                           getattr(handle, "display_id", None))
