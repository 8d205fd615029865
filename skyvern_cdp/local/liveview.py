"""The page behind a session's ``app_url``: its facts, and a live view refreshed each second.

>>> from skyvern_cdp.local.liveview import render_page
>>> html = render_page({"browser_session_id": "pbs_1", "status": "running"})
>>> "pbs_1" in html and "/sessions/pbs_1/screenshot" in html
True

The page is static HTML with a few lines of script: it reloads the screenshot
(``/sessions/{id}/screenshot``, a JPEG taken over CDP) and the facts
(``/sessions/{id}/info``) about once a second, and stops when the session has ended.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["render_page"]

_FIELDS = (
    ("Status", "status"),
    ("Created", "created_at"),
    ("Started", "started_at"),
    ("Completed", "completed_at"),
    ("Timeout (minutes)", "timeout"),
    ("Browser address", "browser_address"),
    ("Download path", "download_path"),
)

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{sid} · skyvern-cdp local backend</title>
<style>
 body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
 table {{ border-collapse: collapse; margin-bottom: 1em; }}
 th, td {{ text-align: left; padding: 2px 12px 2px 0; vertical-align: top; }}
 th {{ color: #666; font-weight: normal; }}
 #live {{ max-width: 100%; border: 1px solid #ccc; background: #f4f4f4; min-height: 40px; }}
 #note {{ color: #666; }}
 #files:empty::before {{ content: "none yet"; color: #666; }}
</style>
</head>
<body>
<h1>Browser session <code>{sid}</code></h1>
<table id="facts">{rows}</table>
<h2>Downloads</h2>
<ul id="files">{files}</ul>
<h2>Live view</h2>
<p id="note">{note}</p>
<img id="live" alt="live view of the session's page" src="{shot}?t=0">
<script>
const sid = {sid_json};
const shot = document.getElementById("live");
const note = document.getElementById("note");
let ended = {ended};
function refreshShot() {{
  if (ended) return;
  const next = new Image();
  next.onload = () => {{ shot.src = next.src; note.textContent = "refreshed " +
    new Date().toLocaleTimeString(); setTimeout(refreshShot, 1000); }};
  next.onerror = () => {{ note.textContent = "no live view right now";
    setTimeout(refreshShot, 1000); }};
  next.src = "/sessions/" + encodeURIComponent(sid) + "/screenshot?t=" + Date.now();
}}
async function refreshFacts() {{
  try {{
    const answer = await fetch("/sessions/" + encodeURIComponent(sid) + "/info");
    if (answer.ok) {{
      const info = await answer.json();
      for (const cell of document.querySelectorAll("[data-field]")) {{
        const value = info[cell.dataset.field];
        cell.textContent = value === null || value === undefined ? "–" : String(value);
      }}
      const list = document.getElementById("files");
      list.replaceChildren(...(info.downloaded_files || []).map((f) => {{
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.href = f.url; link.textContent = f.filename + " (" + f.file_size + " bytes)";
        item.append(link); return item; }}));
      if (["completed", "failed", "timeout"].includes(info.status)) {{
        ended = true; note.textContent = "the session is " + info.status;
      }}
    }}
  }} catch (e) {{}}
  if (!ended) setTimeout(refreshFacts, 1000);
}}
refreshShot();
setTimeout(refreshFacts, 1000);
</script>
</body>
</html>
"""


def _text(value: object) -> str:
    return "–" if value is None else html.escape(str(value))


def render_page(info: Mapping[str, Any]) -> str:
    """The HTML page for one session; ``info`` is the session with its address redacted."""
    sid = str(info.get("browser_session_id", ""))
    rows = "".join(
        f'<tr><th>{html.escape(label)}</th><td data-field="{key}">{_text(info.get(key))}</td></tr>'
        for label, key in _FIELDS
    )
    files = "".join(
        f'<li><a href="{html.escape(str(f.get("url", "")))}">{_text(f.get("filename"))}'
        f" ({_text(f.get('file_size'))} bytes)</a></li>"
        for f in info.get("downloaded_files") or []
    )
    status = info.get("status")
    ended = status in ("completed", "failed", "timeout")
    return _TEMPLATE.format(
        sid=html.escape(sid),
        sid_json=json.dumps(sid).replace("<", "\\u003c"),
        rows=rows,
        files=files,
        note=f"the session is {html.escape(str(status))}" if ended else "loading…",
        shot=f"/sessions/{html.escape(sid)}/screenshot",
        ended="true" if ended else "false",
    )
