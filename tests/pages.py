"""Web pages on loopback for the end-to-end tests: one HTML body, or a handler of the test's.

>>> with serve_html(b"<title>site</title>") as url:  # doctest: +SKIP
...     page.goto(url)                                  # http://localhost:PORT/

Chromium in the tests runs with a closed network (``--host-resolver-rules``) that still
resolves ``localhost``, so these serve on 127.0.0.1 and hand out a URL with the name the
test asks for. The server thread is stopped and joined when the block is left.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A handler that writes no request log on stderr (the tests read the answers)."""

    def log_message(self, format: str, *args: Any) -> None:
        """No request log on stderr."""

    def send_html(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def serve_handler(
    handler: type[http.server.BaseHTTPRequestHandler], host: str = "localhost"
) -> Iterator[str]:
    """``http://HOST:PORT/`` of a threaded server on 127.0.0.1 that answers with ``handler``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextlib.contextmanager
def serve_html(body: bytes, host: str = "localhost") -> Iterator[str]:
    """:func:`serve_handler` of a server that answers every GET with ``body``."""

    class Page(QuietHandler):
        def do_GET(self) -> None:
            self.send_html(body)

    with serve_handler(Page, host) as url:
        yield url
