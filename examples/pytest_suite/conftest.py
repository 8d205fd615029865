"""A small web app served from loopback, for the example suite.

Run it remote, on a Skyvern session per worker::

    pytest examples/pytest_suite --skyvern-launch --skyvern-base-url http://127.0.0.1:8000
    pytest examples/pytest_suite --skyvern-launch -n 2

The browser reaches the app on 127.0.0.1, so the backend must run on this machine (the
local backend, ``skyvern-cdp serve``). Against the cloud, point ``app_url`` at a public URL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

PAGES = {
    "/": """<!doctype html><title>Todo</title>
<h1>Todo</h1>
<form id="add"><input name="item" aria-label="New item"><button>Add</button></form>
<ul id="items"></ul>
<script>
document.getElementById("add").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.target.item;
  const li = document.createElement("li");
  li.textContent = input.value;
  document.getElementById("items").append(li);
  input.value = "";
});
</script>""",
    "/about": "<!doctype html><title>About</title><p>A todo list.</p><a href='/'>Home</a>",
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path.split("?")[0])
        payload = (body or "<title>Not found</title>").encode()
        self.send_response(200 if body else 404)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    """Base URL of the app (one server per worker)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)
