"""Log in once, keep it as a browser profile, and start the next sessions logged in.

    SKYVERN_API_KEY=sk-... python examples/log_in_once.py   # the Skyvern cloud
    python examples/log_in_once.py                          # a local backend, no account

``capture_profile`` launches a session that saves its browser state, hands over its Browser to
log in with, and on the way out closes it and makes the profile; ``launch(browser_profile=…)``
starts a session from it. The shop is served by this script (its sign-in keeps a cookie and a
localStorage entry, as real sites do).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _backend import skyvern_backend
from playwright.sync_api import Page

from skyvern_cdp.sync_api import capture_profile, default_page, launch, session_of

PROFILE = "example-shop-login"

PAGES = {
    "/login": b"""<title>Sign in</title><input id="user"><button id="go">Sign in</button>
<script>document.getElementById("go").onclick = () => {
  const user = document.getElementById("user").value;
  document.cookie = "shop_session=" + user + "; max-age=86400; path=/";
  localStorage.setItem("shop_user", user);
  location.href = "/account";
};</script>""",
    "/account": b"""<title>Account</title><p id="who"></p>
<script>const m = document.cookie.match(/shop_session=([^;]+)/);
document.getElementById("who").textContent = m ? "signed in as " + m[1] : "signed out";
</script>""",
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


def through_this_machine(page: Page, site: str) -> None:
    # The shop runs on this machine, which a cloud browser cannot reach: fetch its pages here.
    page.route(f"{site}/**", lambda route: route.fulfill(response=route.fetch()))


def main(site: str) -> None:
    capture = capture_profile(PROFILE, replace=True, session_timeout_minutes=10)
    with capture as browser:  # log in, by script here (or by hand through its app_url)
        page = default_page(browser)
        through_this_machine(page, site)
        page.goto(f"{site}/login")
        page.fill("#user", "ada")
        page.click("#go")
        page.wait_for_url("**/account")
    assert capture.profile is not None
    print("captured", capture.profile.browser_profile_id, "as", repr(capture.profile.name))

    with launch(browser_profile=PROFILE, session_timeout_minutes=10) as browser:
        print("launched", session_of(browser).browser_session_id, "from", PROFILE)
        page = default_page(browser)
        through_this_machine(page, site)
        page.goto(f"{site}/account")
        print(page.inner_text("#who"))  # signed in as ada: no login this time
        print("localStorage:", page.evaluate("localStorage.getItem('shop_user')"))


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with skyvern_backend():
            main(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
