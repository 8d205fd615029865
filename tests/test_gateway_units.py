"""The gateway's and the relay's decisions, without sockets: handshakes, routes, translation."""

from __future__ import annotations

import json

import pytest

from skyvern_cdp.gateway.handshake import (
    HeadError,
    accept_and_close,
    close_frame,
    host_allowed,
    http_response,
    key_matches,
    parse_request_head,
    parse_response_head,
    rewrite_request,
    websocket_accept,
)
from skyvern_cdp.gateway.pipe import Upstream
from skyvern_cdp.gateway.router import (
    Forward,
    Gone,
    Refuse,
    Route,
    State,
    Version,
    decide,
    reachable_address,
    session_address,
    split_session_path,
)
from skyvern_cdp.relay.page import DETACHED, from_upstream, to_upstream
from skyvern_cdp.relay.targets import listed, page_id_of, route, target_entry, version_entry

KEY = "sk-unit-key-771"


def head(target: str = "/pbs_1/devtools/browser/b", *extra: str, websocket: bool = True) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1:9000"]
    if websocket:
        lines += ["Upgrade: websocket", "Connection: Upgrade",
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# ---- handshake ------------------------------------------------------------------------------


def test_a_request_head_parses() -> None:
    parsed = parse_request_head(head("/a/b?x=1", f"X-Api-Key: {KEY}"))
    assert (parsed.method, parsed.path, parsed.query) == ("GET", "/a/b", "x=1")
    assert parsed.is_websocket
    assert parsed.header("x-api-key") == KEY
    assert KEY not in repr(parsed) and "x=1" not in repr(parsed)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"GET / HTTP/1.1\r\n",  # no blank line
        b"GET / HTTP/2\r\n\r\n",
        b"GET http://evil/ HTTP/1.1\r\n\r\n",  # absolute form
        b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
    ],
)
def test_malformed_heads_are_refused(raw: bytes) -> None:
    with pytest.raises(HeadError):
        parse_request_head(raw)


def test_not_a_websocket_without_upgrade() -> None:
    assert not parse_request_head(head(websocket=False)).is_websocket
    assert not parse_request_head(head("/", "X: y", websocket=False)).is_websocket


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        (None, True),
        ("localhost", True),
        ("localhost:9222", True),
        ("127.0.0.1:9222", True),
        ("10.1.2.3", True),
        ("[::1]:9222", True),
        ("evil.example", False),
        ("evil.example:9222", False),
        ("localhost.evil.example", False),
        ("localhost.", False),
        ("localhost.:9222", False),
        ("LocalHost:9222", True),
        ("127.0.0.1.nip.io", False),
        ("", False),
        ("[not-an-ip]", False),
    ],
)
def test_dns_rebinding_rule(host: str | None, allowed: bool) -> None:
    assert host_allowed(host) is allowed


def test_key_matching() -> None:
    assert key_matches(None, None) and key_matches("anything", None)
    assert key_matches(KEY, KEY)
    assert not key_matches(None, KEY)
    assert not key_matches("", KEY)
    assert not key_matches(KEY + "x", KEY)
    assert not key_matches("\udcff", KEY)  # undecodable bytes do not crash the check


def test_rewrite_drops_the_key_and_keeps_the_handshake() -> None:
    parsed = parse_request_head(head("/pbs_1/devtools/browser/b", f"x-api-key: {KEY}",
                                     "Sec-WebSocket-Extensions: permessage-deflate"))
    out = rewrite_request(parsed, target="/devtools/browser/b", host="127.0.0.1:5555")
    assert KEY.encode() not in out
    text = out.decode()
    assert text.startswith("GET /devtools/browser/b HTTP/1.1\r\nHost: 127.0.0.1:5555\r\n")
    assert "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" in text
    assert "Sec-WebSocket-Extensions: permessage-deflate" in text
    assert text.count("Host:") == 1 and text.endswith("\r\n\r\n")
    added = rewrite_request(parsed, target="/x", host="h", add={"x-api-key": "upstream"})
    assert added.decode().count("x-api-key") == 1 and b"x-api-key: upstream" in added


def test_accept_and_close_sends_4410() -> None:
    parsed = parse_request_head(head())
    out = accept_and_close(parsed)
    response, _, frame = out.partition(b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 101 ")
    # RFC 6455's own example key and accept value.
    assert websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in response
    assert frame == close_frame(4410, "session closed")
    assert frame[:2] == bytes([0x88, 16]) and frame[2:4] == (4410).to_bytes(2, "big")
    plain = accept_and_close(parse_request_head(head(websocket=False)))
    assert plain.startswith(b"HTTP/1.1 410 Gone")


def test_http_response_shapes() -> None:
    status, headers = parse_response_head(http_response(200, {"a": 1}).partition(b"\r\n\r\n")[0]
                                          + b"\r\n\r\n")
    assert status == 200
    assert ("Content-Type", "application/json; charset=UTF-8") in headers
    assert http_response(404, "x").endswith(b"\r\n\r\nx")
    with pytest.raises(HeadError):
        parse_response_head(b"SSH-2.0-OpenSSH\r\n\r\n")


# ---- the router's decisions ---------------------------------------------------------------


UP = Upstream("127.0.0.1", 5555)


def lookup(sid: str) -> Route:
    return {
        "pbs_run": Route(State.RUNNING, UP),
        "pbs_new": Route(State.STARTING),
        "pbs_end": Route(State.ENDED),
    }.get(sid, Route(State.UNKNOWN))


def decision(target: str, *extra: str, key: str | None = KEY, websocket: bool = True) -> object:
    return decide(parse_request_head(head(target, *extra, websocket=websocket)), api_key=key,
                  lookup=lookup)


def test_router_decisions() -> None:
    ok = f"x-api-key: {KEY}"
    assert decision("/pbs_run/devtools/browser/b") == Refuse(401, decision(  # type: ignore[attr-defined]
        "/pbs_run/devtools/browser/b").body)
    assert decision("/pbs_run/devtools/browser/b", "x-api-key: wrong").status == 401  # type: ignore[attr-defined]
    assert decision("/pbs_nope/devtools/browser/b", ok).status == 404  # type: ignore[attr-defined]
    assert decision("/elsewhere", ok).status == 404  # type: ignore[attr-defined]
    starting = decision("/pbs_new/devtools/browser/b", ok)
    assert isinstance(starting, Refuse) and starting.status == 503 and starting.retry_after
    assert isinstance(decision("/pbs_end/devtools/browser/b", ok), Gone)
    assert decision("/pbs_run/devtools/page/P?x=1", ok) == Forward(UP, "/devtools/page/P?x=1")
    assert decision("/pbs_run/json/version", ok, websocket=False) == Version(UP)
    assert decision("/pbs_run/json/list", ok, websocket=False).status == 404  # type: ignore[attr-defined]
    # No key configured: nothing to check, as the API then checks nothing.
    assert isinstance(decision("/pbs_run/devtools/browser/b", key=None), Forward)


def test_paths_and_addresses() -> None:
    assert split_session_path("/pbs_1/devtools/browser/x") == ("pbs_1", "/devtools/browser/x")
    assert split_session_path("/pbs_1") is None
    assert split_session_path("/devtools/browser/x") is None
    assert session_address("::1", 9, "pbs_1", "/devtools/browser/b") == (
        "ws://[::1]:9/pbs_1/devtools/browser/b"
    )
    wild = "ws://0.0.0.0:9333/pbs_1/devtools/browser/b"
    assert reachable_address(wild, "192.168.1.7") == "ws://192.168.1.7:9333/pbs_1/devtools/browser/b"
    assert reachable_address("ws://[::]:9/pbs_1/x", "::1") == "ws://[::1]:9/pbs_1/x"
    assert reachable_address("ws://127.0.0.1:9/pbs_1/x", "localhost") == "ws://127.0.0.1:9/pbs_1/x"
    assert reachable_address(None, "h") is None


# ---- the relay's HTTP answers -------------------------------------------------------------


def test_relay_routes() -> None:
    assert route("GET", "/json", "") == ("list", "")
    assert route("GET", "/json/list/", "") == ("list", "")
    assert route("GET", "/json/version", "") == ("version", "")
    assert route("PUT", "/json/new", "https%3A%2F%2Fexample.com") == ("new", "https://example.com")
    assert route("PUT", "/json/new", "") == ("new", "about:blank")
    assert route("GET", "/json/new", "x")[0] == "refuse"
    assert route("GET", "/json/activate/T1", "") == ("activate", "T1")
    assert route("GET", "/json/close/T1", "") == ("close", "T1")
    assert route("GET", "/json/protocol", "") == ("protocol", "")  # shipped, as Chrome serves it
    assert route("GET", "/json/nope", "")[0] == "missing"
    assert page_id_of("/devtools/page/ABC123") == "ABC123"
    assert page_id_of("/devtools/page/../x") is None
    assert page_id_of("/devtools/browser/x") is None


def test_relay_entries() -> None:
    info = {"targetId": "T1", "type": "page", "title": "t", "url": "u", "parentId": "P"}
    entry = target_entry(info, "localhost:9222", "@rev")
    assert entry["webSocketDebuggerUrl"] == "ws://localhost:9222/devtools/page/T1"
    assert entry["devtoolsFrontendUrl"].endswith("?ws=localhost:9222/devtools/page/T1")
    assert "/serve_rev/@rev/" in entry["devtoolsFrontendUrl"]
    assert set(entry) == {"description", "devtoolsFrontendUrl", "id", "title", "type", "url",
                          "webSocketDebuggerUrl", "parentId"}
    assert [i["targetId"] for i in listed([info, {"targetId": "B", "type": "browser"}])] == ["T1"]
    version = version_entry(
        {"product": "Chrome/1", "protocolVersion": "1.3", "revision": "@r",
         "userAgent": "Mozilla AppleWebKit/537.36 x", "jsVersion": "12"}, "ws://h/devtools/browser/u"
    )
    assert version["WebKit-Version"] == "537.36 (@r)"
    assert set(version) >= {"Browser", "Protocol-Version", "User-Agent", "V8-Version",
                            "WebKit-Version", "webSocketDebuggerUrl"}


# ---- the page endpoint's translation --------------------------------------------------------


def test_commands_get_the_session() -> None:
    out = to_upstream(b'{"id":1,"method":"Page.enable"}', "S")
    assert out is not None
    assert json.loads(out) == {"id": 1, "method": "Page.enable", "sessionId": "S"}
    assert json.loads(to_upstream(b"{}", "S") or b"") == {"sessionId": "S"}
    assert json.loads(to_upstream(b'{"id":2} \n', "S") or b"") == {"id": 2, "sessionId": "S"}
    child = b'{"id":3,"method":"Runtime.enable","sessionId":"CHILD"}'
    assert to_upstream(child, "S") == child
    nested = b'{"id":4,"method":"Target.detachFromTarget","params":{"sessionId":"X"}}'
    assert json.loads(to_upstream(nested, "S") or b"")["sessionId"] == "S"
    for bad in (b"", b"not json", b"[1,2]", b'"s"', b"\xff"):
        assert to_upstream(bad, "S") is None


def test_answers_lose_the_session() -> None:
    assert from_upstream(b'{"id":1,"result":{},"sessionId":"S"}', "S") == b'{"id":1,"result":{}}'
    event = b'{"method":"Page.loadEventFired","params":{"timestamp":1},"sessionId":"S"}'
    assert json.loads(from_upstream(event, "S")) == {  # type: ignore[arg-type]
        "method": "Page.loadEventFired", "params": {"timestamp": 1}}
    # A child session's messages pass unchanged; browser-level ones are not the client's.
    child = b'{"method":"Runtime.consoleAPICalled","params":{},"sessionId":"CHILD"}'
    assert from_upstream(child, "S") == child
    assert from_upstream(b'{"id":9,"result":{}}', "S") is None
    assert from_upstream(b'{"method":"Target.targetCreated","params":{"sessionId":"S"}}',
                         "S") is None
    detached = b'{"method":"Target.detachedFromTarget","params":{"sessionId":"S"}}'
    assert from_upstream(detached, "S") is DETACHED
    # Another key order (not Chrome's) is still understood, by parsing.
    odd = b'{"sessionId": "S", "id": 5, "result": {"v": "\\"sessionId\\":\\"S\\"}"}}'
    assert json.loads(from_upstream(odd, "S")) == {  # type: ignore[arg-type]
        "id": 5, "result": {"v": '"sessionId":"S"}'}}
    assert from_upstream(b"garbage", "S") is None
