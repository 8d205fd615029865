"""Launch a session, scrape a small site this script serves itself, and close the session.

    SKYVERN_API_KEY=sk-... python examples/launch_and_scrape.py   # the Skyvern cloud
    python examples/launch_and_scrape.py                          # a local backend, no account

``launch`` creates the session and closing the Browser ends it (also on an error).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _backend import skyvern_backend

from skyvern_cdp.sync_api import default_page, launch, session_of

PAGES = {
    "/plants": b"""<title>Plants 1/2</title><table id="plants">
<tr><td class="name">Fern</td><td class="price">12.50</td></tr>
<tr><td class="name">Monstera</td><td class="price">34.00</td></tr></table>
<a rel="next" href="/plants?page=2">next</a>""",
    "/plants?page=2": b"""<title>Plants 2/2</title><table id="plants">
<tr><td class="name">Cactus</td><td class="price">8.25</td></tr></table>""",
}


class Shop(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path, b"<title>Not found</title>")
        self.send_response(200 if self.path in PAGES else 404)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def scrape(site: str) -> list[dict[str, object]]:
    plants: list[dict[str, object]] = []
    with launch(session_timeout_minutes=10) as browser:
        print("launched", session_of(browser).browser_session_id)
        page = default_page(browser)
        # The site runs on this machine, which a cloud browser cannot reach: let Playwright
        # fetch its pages from here and hand them to the browser.
        page.route(f"{site}/**", lambda route: route.fulfill(response=route.fetch()))
        page.goto(f"{site}/plants")
        while True:
            for row in page.locator("#plants tr").all():
                name = row.locator(".name").inner_text()
                price = float(row.locator(".price").inner_text())
                plants.append({"name": name, "price": price})
            next_link = page.locator("a[rel=next]")
            if not next_link.count():
                break
            next_link.click()
            page.wait_for_url("**/plants?page=*")
    print("closed", session_of(browser).browser_session_id)
    return plants


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for plant in scrape(f"http://127.0.0.1:{server.server_address[1]}"):
            print(json.dumps(plant))
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    with skyvern_backend():
        main()
