"""``skyvern-cdp files ID --save DIR`` against hostile file servers (an outside review's breaks).

Real servers on loopback: the API (tests/scripted_api.py) lists the files, and serves them or
redirects; another host (127.0.0.2, or another port) plays the place a redirect points to.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from skyvern_cdp.cli import main

from scripted_api import Reply, ScriptedAPI, session

KEY = "sk-files-save-4471"
SID = "pbs_files1"
DATA = b"hello\n"
SHA = hashlib.sha256(DATA).hexdigest()


def listed(api: ScriptedAPI, *files: dict[str, object]) -> None:
    api.script("GET", f"/v1/browser_sessions/{SID}",
               Reply(200, session(SID, status="completed", downloaded_files=list(files))))


def save(api: ScriptedAPI, target: Path, *extra: str) -> int:
    return main(["--base-url", api.base_url, "--api-key", KEY, "files", SID, "--save",
                 str(target), *extra])


@pytest.mark.parametrize("other_host", ["127.0.0.2", "127.0.0.1"])  # another host; another port
def test_the_key_does_not_follow_a_redirect_to_another_host(
    other_host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: httpx followed the redirect with the x-api-key header to the other host."""
    with ScriptedAPI() as api, ScriptedAPI(host=other_host) as elsewhere:
        elsewhere.script("GET", "/stolen", Reply(200, body=DATA))
        api.script("GET", "/files/r.txt",
                   Reply(302, headers={"location": f"{elsewhere.base_url}/stolen"}))
        listed(api, {"url": f"{api.base_url}/files/r.txt", "filename": "r.txt", "checksum": SHA})
        assert save(api, tmp_path) == 0
    assert [seen.headers.get("x-api-key") for seen in api.requests] == [KEY, KEY]  # home: kept
    assert [seen.path for seen in elsewhere.requests] == ["/stolen"]  # followed ...
    assert "x-api-key" not in elsewhere.requests[0].headers  # ... without the key
    assert (tmp_path / "r.txt").read_bytes() == DATA
    assert capsys.readouterr().out == f"{tmp_path / 'r.txt'}\n"


def test_a_redirect_home_keeps_the_key(tmp_path: Path) -> None:
    with ScriptedAPI() as api:
        api.script("GET", "/files/old", Reply(307, headers={"location": "/files/new"}))
        api.script("GET", "/files/new", Reply(200, body=DATA))
        listed(api, {"url": f"{api.base_url}/files/old", "filename": "a.txt", "checksum": SHA})
        assert save(api, tmp_path) == 0
    assert [(seen.path, seen.headers.get("x-api-key")) for seen in api.requests[1:]] == [
        ("/files/old", KEY), ("/files/new", KEY)
    ]


def test_a_download_that_drips_forever_ends_by_the_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: 100 MB announced, a byte every 0.2 s: each read in time, the command endless."""
    with ScriptedAPI() as api:
        api.script("GET", "/files/drip", Reply(200, body=b"x", drip=0.2, endless=True))
        listed(api, {"url": f"{api.base_url}/files/drip", "filename": "drip.bin"})
        started = time.monotonic()
        code = save(api, tmp_path, "--timeout", "2")
        took = time.monotonic() - started
        assert api.dripped > 0  # it did drip: the bound, not the server, ended it
    assert code != 0
    assert took < 2 + 1.5, took  # the one deadline, plus request_budget's floor and slack
    assert "drip.bin: not downloaded within the 2s of --timeout" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no .part left


def test_control_characters_in_a_file_name_are_not_saved_or_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a name with a newline was saved so and broke the one-path-a-line output."""
    with ScriptedAPI() as api:
        api.script("GET", "/files/1", Reply(200, body=DATA))
        listed(api, {"url": f"{api.base_url}/files/1", "filename": "evil\nname\x1b[2J.txt",
                     "checksum": SHA})
        assert save(api, tmp_path) == 0
        assert main(["--base-url", api.base_url, "--api-key", KEY, "files", SID]) == 0
    saved, listing = capsys.readouterr().out.splitlines()
    assert saved == str(tmp_path / "evil_name_[2J.txt")
    assert [p.name for p in tmp_path.iterdir()] == ["evil_name_[2J.txt"]
    assert listing.startswith("download   evil_name_[2J.txt  size unknown  ")


def test_printable_keeps_ordinary_names() -> None:
    from skyvern_cdp.cli.files import printable

    assert printable("Rapport final (2) é.pdf") == "Rapport final (2) é.pdf"
    assert printable("a\u2028b\u202ec\x00d\x7f") == "a_b_c_d_"


def test_verbose_logs_show_no_file_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: ``-v`` printed httpx's ``HTTP Request: GET …?token=<the token>`` line."""
    caplog.set_level(logging.DEBUG)
    token = "TOKEN-of-the-session-93a1"
    with ScriptedAPI() as api:
        api.script("GET", f"/files/v.txt?token={token}", Reply(200, body=DATA))
        listed(api, {"url": f"{api.base_url}/files/v.txt?token={token}", "filename": "v.txt",
                     "checksum": SHA})
        assert save(api, tmp_path, "-v") == 0
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("/files/v.txt?token=" in line for line in requests), requests  # it was logged
    assert token not in caplog.text and KEY not in caplog.text
    assert (tmp_path / "v.txt").read_bytes() == DATA


def test_a_name_too_long_for_the_file_system_is_shortened_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a 300-byte name stopped the command (OSError: File name too long), and the
    files after it were never saved."""
    long_name = "é" * 150 + ".mp4"  # 304 bytes
    with ScriptedAPI() as api:
        api.script("GET", "/files/1", Reply(200, body=DATA))
        api.script("GET", "/files/2", Reply(200, body=DATA))
        listed(api, {"url": f"{api.base_url}/files/1", "filename": long_name, "checksum": SHA},
               {"url": f"{api.base_url}/files/2", "filename": "next.txt", "checksum": SHA})
        assert save(api, tmp_path) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and "next.txt" in names
    [short] = [n for n in names if n != "next.txt"]
    assert short.endswith(".mp4") and len(short.encode()) <= 250 and short.startswith("é")
    assert capsys.readouterr().out.splitlines()[0] == str(tmp_path / short)


def test_sigterm_mid_download_leaves_no_part_and_exits_130(tmp_path: Path) -> None:
    """Before: SIGTERM killed the process at once (-15) and left ``drip.bin.part``."""
    script = Path(sys.executable).with_name("skyvern-cdp")
    with ScriptedAPI() as api:
        api.script("GET", "/files/drip", Reply(200, body=b"x", drip=0.05, endless=True))
        listed(api, {"url": f"{api.base_url}/files/drip", "filename": "drip.bin"})
        child = subprocess.Popen(
            [str(script), "--base-url", api.base_url, "--api-key", KEY, "files", SID,
             "--save", str(tmp_path), "--timeout", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while not list(tmp_path.glob("*.part")):  # the download is under way
                assert child.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            child.send_signal(signal.SIGTERM)
            out, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode == 130, err
    assert err.splitlines()[-1] == "skyvern-cdp: interrupted"
    assert list(tmp_path.iterdir()) == [] and out == ""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_the_moment_the_temporary_file_is_made_leaves_none(
    signum: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: a signal that came after ``mkstemp`` made the file but before the download's
    ``try`` began left ``.skyvern-cdp-*.part`` behind (seen once under load, SIGTERM)."""
    import tempfile

    made = tempfile.mkstemp

    def make_then_interrupted(*args: Any, **kwargs: Any) -> tuple[int, str]:
        handle_and_name = made(*args, **kwargs)
        signal.raise_signal(signum)  # its handler raises at the next bytecode: still in here
        return handle_and_name

    monkeypatch.setattr(tempfile, "mkstemp", make_then_interrupted)
    with ScriptedAPI() as api:
        api.script("GET", "/files/a.txt", Reply(200, body=DATA))
        listed(api, {"url": f"{api.base_url}/files/a.txt", "filename": "a.txt", "checksum": SHA})
        assert save(api, tmp_path) == 130
    assert list(tmp_path.iterdir()) == []
    assert capsys.readouterr().err.splitlines()[-1] == "skyvern-cdp: interrupted"


def test_the_temporary_file_is_its_own_never_a_file_or_link_already_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: ``NAME.part`` was opened blindly: a listed ``x.part`` was renamed away as ``x``'s
    temporary, a user's own ``size.txt.part`` was overwritten, and a symlink of that name was
    written through, outside DIR."""
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt.part").write_text("USER DATA")
    victim = tmp_path / "victim.txt"
    victim.write_text("VICTIM")
    (target / "linked.txt.part").symlink_to(victim)
    other = hashlib.sha256(b"BBBB").hexdigest()
    with ScriptedAPI() as api:
        for name, body in [("x.part", DATA), ("x", b"BBBB"), ("mine.txt", DATA),
                           ("linked.txt", DATA)]:
            api.script("GET", f"/files/{name}", Reply(200, body=body))
        listed(api, *({"url": f"{api.base_url}/files/{name}", "filename": name,
                       "checksum": other if name == "x" else SHA}
                      for name in ("x.part", "x", "mine.txt", "linked.txt")))
        assert save(api, target) == 0
    printed = capsys.readouterr().out.splitlines()
    assert all(Path(line).exists() for line in printed), printed  # every path it printed
    assert (target / "x.part").read_bytes() == DATA and (target / "x").read_bytes() == b"BBBB"
    assert (target / "mine.txt.part").read_text() == "USER DATA"  # left alone
    assert victim.read_text() == "VICTIM"  # nothing written outside DIR
    assert (target / "linked.txt.part").is_symlink()
    assert (target / "linked.txt").read_bytes() == DATA and not (target / "linked.txt").is_symlink()
    assert sorted(p.name for p in target.iterdir()) == [
        "linked.txt", "linked.txt.part", "mine.txt", "mine.txt.part", "x", "x.part"]


def test_a_server_sending_more_than_the_listed_size_is_refused_and_nothing_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before (outside review): the body was taken whatever ``file_size`` said: a server that
    sent gigabytes fast for a listed 12 kB was written to disk until --timeout (and past it,
    while the kernel flushed), and one without a checksum was saved at the wrong size."""
    with ScriptedAPI() as api:
        api.script("GET", "/files/big", Reply(200, body=b"x" * 100_000))
        listed(api, {"url": f"{api.base_url}/files/big", "filename": "big.bin", "file_size": 10})
        assert save(api, tmp_path) == 1
    assert list(tmp_path.iterdir()) == []
    err = capsys.readouterr().err
    assert "big.bin: the server sent more than the 10 bytes the API listed" in err
