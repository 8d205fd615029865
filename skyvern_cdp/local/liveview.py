"""The page behind a session's ``app_url``: its facts, and the interactive live view.

>>> from skyvern_cdp.local.liveview import render_page
>>> html = render_page({"browser_session_id": "pbs_1", "status": "running"})
>>> "pbs_1" in html and "/live" in html and "Take control" in html
True

Plain HTML and a script, no build step (current Chromium and Firefox). The script opens the
websocket ``/sessions/{id}/live`` (passing on the page's ``?token=``) and shows each
screencast frame in ``#live`` at the page's CSS size; a tab strip lists the session's pages.
"Take control" makes this view the one whose mouse, wheel and keyboard reach the page
(a hidden ``textarea`` takes the keys, and a paste becomes ``Input.insertText``); while a
person has control every view says so, and the automation's input is held. Until the first
frame it shows a screenshot (``/sessions/{id}/screenshot``). The facts
(``/sessions/{id}/info``) are refreshed each second until the session has ended. In a
frame (a notebook cell, :func:`skyvern_cdp.notebook.show` with ``interactive=True``) the
page shows only the view: control, tabs and the picture.
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
<meta name="referrer" content="no-referrer">
<title>__SID__ · skyvern-cdp local backend</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
 table { border-collapse: collapse; margin-bottom: 1em; }
 th, td { text-align: left; padding: 2px 12px 2px 0; vertical-align: top; }
 th { color: #666; font-weight: normal; }
 #bar { display: flex; gap: .6em; align-items: center; margin: .4em 0; flex-wrap: wrap; }
 #tabs button { max-width: 16em; overflow: hidden; text-overflow: ellipsis;
   white-space: nowrap; border: 1px solid #bbb; background: #f4f4f4; padding: 3px 8px; }
 #tabs button.current { background: #fff; border-color: #333; font-weight: bold; }
 #control { padding: 4px 12px; font-weight: bold; }
 #banner { padding: 4px 10px; border-radius: 4px; background: #eef; }
 #banner.taken { background: #c62828; color: #fff; }
 #banner.mine { background: #2e7d32; color: #fff; }
 #view { position: relative; display: inline-block; max-width: 100%; }
 #live { display: block; max-width: 100%; border: 3px solid #ccc; background: #f4f4f4;
   min-height: 40px; min-width: 80px; user-select: none; -webkit-user-drag: none; }
 #view.taken #live { border-color: #c62828; }
 #view.mine #live { border-color: #2e7d32; cursor: default; }
 #keys { position: absolute; left: 0; top: 0; width: 1px; height: 1px; opacity: 0;
   border: 0; padding: 0; resize: none; }
 #note { color: #666; }
 #files:empty::before { content: "none yet"; color: #666; }
 body.framed { margin: 4px; }
 body.framed > h1, body.framed > h2, body.framed #facts, body.framed #files { display: none; }
</style>
</head>
<body>
<h1>Browser session <code>__SID__</code></h1>
<table id="facts">__ROWS__</table>
<h2>Downloads</h2>
<ul id="files">__FILES__</ul>
<h2>Live view</h2>
<div id="bar"><button id="control" type="button">Take control</button>
<span id="banner">Watching. Take control to use the mouse and keyboard.</span>
<span id="note">__NOTE__</span></div>
<div id="tabs" role="tablist"></div>
<div id="view"><img id="live" alt="live view of the session's page" data-frames="0"
 src="__SHOT__" draggable="false"><textarea id="keys" aria-label="keyboard"
 autocomplete="off" spellcheck="false"></textarea></div>
<script>
"use strict";
if (window.self !== window.top) document.body.classList.add("framed");  // a notebook cell
const sid = __SID_JSON__;
const token = new URLSearchParams(location.search).get("token");
const query = token ? "?token=" + encodeURIComponent(token) : "";
const base = "/sessions/" + encodeURIComponent(sid);
const live = document.getElementById("live"), keys = document.getElementById("keys");
const view = document.getElementById("view"), note = document.getElementById("note");
const banner = document.getElementById("banner"), control = document.getElementById("control");
const tabs = document.getElementById("tabs");
let ended = __ENDED__, ws = null, mine = false, taken = false, frames = 0, lastMove = 0;
let size = {w: 0, h: 0};
function send(message) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(message)); }
function modifiers(e) {
  return (e.altKey ? 1 : 0) | (e.ctrlKey ? 2 : 0) | (e.metaKey ? 4 : 0) | (e.shiftKey ? 8 : 0);
}
function point(e) {
  const r = live.getBoundingClientRect(), w = size.w || r.width, h = size.h || r.height;
  return {x: (e.clientX - r.left) * w / r.width, y: (e.clientY - r.top) * h / r.height};
}
const BUTTONS = ["left", "middle", "right", "back", "forward"];
function mouse(event, e) {
  if (!mine) return;
  send({type: "mouse", event, ...point(e), button: event === "mouseMoved" ? "none" :
    (BUTTONS[e.button] || "none"), buttons: e.buttons, clickCount: event === "mouseMoved" ?
    0 : Math.min(3, e.detail || 1), modifiers: modifiers(e)});
}
live.addEventListener("mousedown", (e) => {
  e.preventDefault(); keys.focus({preventScroll: true}); mouse("mousePressed", e); });
live.addEventListener("mouseup", (e) => { e.preventDefault(); mouse("mouseReleased", e); });
live.addEventListener("mousemove", (e) => {
  const now = performance.now();
  if (e.buttons || now - lastMove > 16) { lastMove = now; mouse("mouseMoved", e); } });
live.addEventListener("contextmenu", (e) => { if (mine) e.preventDefault(); });
live.addEventListener("wheel", (e) => {
  if (!mine) return; e.preventDefault();
  const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
  send({type: "wheel", ...point(e), deltaX: e.deltaX * unit, deltaY: e.deltaY * unit,
    modifiers: modifiers(e)}); }, {passive: false});
function key(event, e) {
  if (!mine) return;
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "v") return;  // the paste event
  e.preventDefault();
  send({type: "key", event, key: e.key, code: e.code, keyCode: e.keyCode || 0,
    modifiers: modifiers(e)});
}
keys.addEventListener("keydown", (e) => key("keyDown", e));
keys.addEventListener("keyup", (e) => key("keyUp", e));
keys.addEventListener("paste", (e) => {
  e.preventDefault();
  const text = (e.clipboardData || window.clipboardData).getData("text");
  if (mine && text) send({type: "text", text}); });
keys.addEventListener("input", () => { keys.value = ""; });
control.addEventListener("click", () => send({type: "control", take: !mine}));
function showControl() {
  control.textContent = mine ? "Give back" : "Take control";
  view.className = mine ? "mine" : taken ? "taken" : "";
  banner.className = mine ? "mine" : taken ? "taken" : "";
  banner.textContent = mine ?
    "You have control. The automation's input is held until you give it back." :
    taken ? "A person has control of this browser (another view). The automation's input" +
      " is held." : "Watching. Take control to use the mouse and keyboard.";
  document.body.dataset.control = mine ? "mine" : taken ? "taken" : "free";
}
function showTabs(list, current) {
  tabs.replaceChildren(...list.map((t) => {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = t.title || t.url || "page"; b.title = t.url;
    b.dataset.target = t.id; b.setAttribute("role", "tab");
    if (t.id === current) { b.className = "current"; b.setAttribute("aria-selected", "true"); }
    b.addEventListener("click", () => send({type: "tab", id: t.id}));
    return b; }));
}
function connect() {
  if (ended) return;
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    base + "/live" + query);
  ws.onopen = () => { note.textContent = "live"; };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "frame") {
      live.src = "data:image/jpeg;base64," + m.data;
      if (m.width && m.height) {
        size = {w: m.width, h: m.height}; live.style.width = m.width + "px";
        live.dataset.width = String(m.width); live.dataset.height = String(m.height);
      }
      live.dataset.frames = String(++frames);
    } else if (m.type === "tabs") { showTabs(m.tabs, m.current);
    } else if (m.type === "control") { taken = m.taken; mine = m.mine; showControl(); }
  };
  ws.onclose = () => { mine = false; taken = false; showControl();
    if (!ended) { note.textContent = "reconnecting…"; setTimeout(connect, 1000); } };
}
async function refreshFacts() {
  try {
    const answer = await fetch(base + "/info" + query);
    if (answer.ok) {
      const info = await answer.json();
      for (const cell of document.querySelectorAll("[data-field]")) {
        const value = info[cell.dataset.field];
        cell.textContent = value === null || value === undefined ? "–" : String(value);
      }
      const list = document.getElementById("files");
      list.replaceChildren(...(info.downloaded_files || []).map((f) => {
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.href = f.url; link.textContent = f.filename + " (" + f.file_size + " bytes)";
        item.append(link); return item; }));
      if (["completed", "failed", "timeout"].includes(info.status)) {
        ended = true; note.textContent = "the session is " + info.status;
        if (ws) ws.close();
      }
    }
  } catch (e) {}
  if (!ended) setTimeout(refreshFacts, 1000);
}
showControl();
connect();
setTimeout(refreshFacts, 1000);
</script>
</body>
</html>
"""


def _text(value: object) -> str:
    return "–" if value is None else html.escape(str(value))


def render_page(info: Mapping[str, Any], token: str | None = None) -> str:
    """The HTML page for one session; ``info`` is the session with its address redacted.

    ``token`` (the session's, when the backend has a key) goes on the first screenshot's URL;
    the script reads it from the page's own address for everything else.
    """
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
    shot = f"/sessions/{sid}/screenshot" + (f"?token={token}" if token else "")
    parts = {
        "__SID_JSON__": json.dumps(sid).replace("<", "\\u003c"),
        "__SID__": html.escape(sid),
        "__ROWS__": rows,
        "__FILES__": files,
        "__NOTE__": f"the session is {html.escape(str(status))}" if ended else "connecting…",
        "__SHOT__": html.escape(shot),
        "__ENDED__": "true" if ended else "false",
    }
    page = _TEMPLATE
    for name, value in parts.items():
        page = page.replace(name, value)
    return page
