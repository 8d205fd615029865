"""``skyvern-cdp files ID [--save DIR]``: a session's recordings and downloaded files.

::

    $ skyvern-cdp files pbs_123                 # one line each: kind, name, size, URL
    recording  pbs_123.mp4  48213 bytes  http://127.0.0.1:8000/…/pbs_123.mp4?<redacted>
    $ skyvern-cdp files pbs_123 --save ./out    # download them; print each saved path
    out/pbs_123.mp4

A saved file is checked against the ``checksum`` (SHA-256) the API gave; a mismatch is an
error and nothing is left. The key goes only to the API's own host (the local backend's
file URLs); presigned URLs elsewhere carry their own signature. A redirect is followed,
but the key goes with each hop only where :func:`sends_key` says so: never to another host.
``--timeout S`` is one deadline for the whole command (the session's GET and every
download, each bounded whole, however slowly a server sends). Control characters in a file
name (a newline...) are saved and printed as ``_``. URL queries (tokens, signatures) are
redacted in what is printed. A recording still being written (its session
runs on) is saved as far as it is written, with a note on stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import tempfile
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from skyvern_cdp.cli._args import EXIT_OK, PROG, _add_call_timeout, _session_id
from skyvern_cdp.cli._output import _client, _print_json, _secrets
from skyvern_cdp.config import redact_query as _without_query

if TYPE_CHECKING:
    from skyvern_cdp.models import FileInfo
    from skyvern_cdp.policy import Deadline

__all__ = ["add_files", "file_name", "printable", "sends_key"]


def add_files(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    files = commands.add_parser(
        "files",
        help="list a session's recordings and downloaded files; --save DIR downloads them",
    )
    files.add_argument("session_id", type=_session_id, metavar="ID")
    files.add_argument("--save", default=None, metavar="DIR",
                       help="download every file into DIR (created if missing)")
    _add_call_timeout(files)
    files.set_defaults(handler="skyvern_cdp.cli.files:run")


def sends_key(url: str, base_url: str) -> bool:
    """Whether a file URL gets ``x-api-key``: only on the API's own scheme, host and port.

    >>> sends_key("http://127.0.0.1:8000/sessions/pbs_1/files/a.pdf", "http://127.0.0.1:8000")
    True
    >>> sends_key("https://bucket.s3.amazonaws.com/rec.webm?sig=x", "https://api.skyvern.com")
    False
    """
    file, api = urlsplit(url), urlsplit(base_url)
    try:
        return (file.scheme, file.hostname, file.port) == (api.scheme, api.hostname, api.port)
    except ValueError:
        return False


#: Unicode categories shown as ``_``: control, format, unassigned/private/surrogate, and the
#: line and paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"})


def printable(name: str) -> str:
    """``name`` with each control or format character (newline, tab, bidi override...) as ``_``,
    so that a name is one line of output and shows what it is.

    >>> printable("a\\nb\\t.pdf"), printable("r\\u202egnp.exe")
    ('a_b_.pdf', 'r_gnp.exe')
    """
    return "".join(
        "_" if unicodedata.category(ch) in _UNPRINTABLE else ch for ch in name
    )


def file_name(info: FileInfo, taken: set[str]) -> str:
    """A safe, unused name in the target directory for ``info``.

    >>> from skyvern_cdp.models import FileInfo
    >>> file_name(FileInfo(url="http://h/x/../../etc/passwd", filename="../../etc/passwd"), set())
    'passwd'
    >>> file_name(FileInfo(url="http://h/f/a.pdf", filename=None), {"a.pdf"})
    'a (1).pdf'
    >>> len(file_name(FileInfo(url="http://h/f", filename="x" * 300 + ".mp4"), set()))
    250
    """
    wanted = info.filename or unquote(urlsplit(info.url).path.rsplit("/", 1)[-1])
    name = printable(os.path.basename(wanted.replace("\\", "/"))).strip().lstrip(".") or "file"
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext.encode()) > 16:
        stem, ext = name, ""
    counter = 0
    while True:
        suffix = (f" ({counter})" if counter else "") + (f".{ext}" if ext else "")
        candidate = _fit(stem, _NAME_MAX - len(suffix.encode())) + suffix
        if candidate not in taken:
            return candidate
        counter += 1


#: The longest name (in bytes) saved: common file systems take 255, and ".part" goes on top.
_NAME_MAX = 250

#: The signals that end ``files --save`` as Ctrl-C does (SIGTERM through SigtermAsInterrupt).
_INTERRUPTS = frozenset({signal.SIGINT, signal.SIGTERM})


def _fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, on a character boundary.

    >>> _fit("ab\u00e9c", 3)
    'ab'
    """
    encoded = text.encode()
    return text if len(encoded) <= limit else encoded[:limit].decode(errors="ignore")


def run(args: argparse.Namespace) -> int:
    from skyvern_cdp.policy import Deadline

    deadline = Deadline(args.timeout)  # one deadline: the GET and every download
    with _client(args) as client:
        session = client.get_browser_session(args.session_id, timeout=deadline.remaining())
        base_url, key = client.settings.base_url, client.settings.api_key
    listed: list[tuple[str, FileInfo]] = [
        *(("recording", info) for info in session.recordings or ()),
        *(("download", info) for info in session.downloaded_files or ()),
    ]
    if args.save is None:
        return _list(listed, args)
    from skyvern_cdp._pytest.signals import SigtermAsInterrupt

    sigterm = SigtermAsInterrupt()  # CI's cancel, `timeout`: leave no .part, exit 130
    sigterm.install()
    try:
        return _save(listed, session.status, args, key, base_url, deadline)
    finally:
        sigterm.restore()


def _save(
    listed: list[tuple[str, FileInfo]], status: str | None, args: argparse.Namespace,
    key: str | None, base_url: str, deadline: Deadline,
) -> int:
    directory = Path(args.save).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    live = status in ("created", "running")
    saved: list[dict[str, Any]] = []
    taken = {entry.name for entry in directory.iterdir()}
    for kind, info in listed:
        name = file_name(info, taken)
        taken.add(name)
        path = _download(info, directory / name, key, base_url, deadline)
        if kind == "recording" and live and info.checksum is None:
            print(f"{PROG}: {name} is still being recorded (the session runs on): saved what is"
                  " written so far", file=sys.stderr)
        saved.append({"kind": kind, "path": str(path), "file_size": path.stat().st_size})
    if args.json:
        _print_json(saved, args)
    else:
        for entry in saved:
            print(entry["path"])
    return EXIT_OK


def _list(listed: list[tuple[str, FileInfo]], args: argparse.Namespace) -> int:
    from skyvern_cdp.config import redact_text

    if args.json:
        rows = [{"kind": kind, **info.model_dump(mode="json")} for kind, info in listed]
        for row in rows:
            row["url"] = _without_query(row["url"])
        _print_json(rows, args)
        return EXIT_OK
    if not listed:
        print("no recordings or downloaded files", file=sys.stderr)
    for kind, info in listed:
        size = f"{info.file_size} bytes" if info.file_size is not None else "size unknown"
        name = printable(info.filename or "-")
        line = f"{kind:<9}  {name}  {size}  {_without_query(info.url)}"
        print(redact_text(line, _secrets(args)))
    return EXIT_OK


def _download(
    info: FileInfo, target: Path, key: str | None, base_url: str, deadline: Deadline
) -> Path:
    """Save ``info`` to ``target``, within what is left of ``deadline`` (the whole answer)."""
    import httpx

    from skyvern_cdp._bounded import bound_transports, within
    from skyvern_cdp.errors import APITimeoutError, SkyvernCDPError
    from skyvern_cdp.policy import request_budget, request_timeout

    def key_only_home(request: httpx.Request) -> None:
        # Every hop, redirects included: the key goes only to the API's own host.
        if key and sends_key(str(request.url), base_url):
            request.headers["x-api-key"] = key
        else:
            request.headers.pop("x-api-key", None)

    # A name of its own, made here (O_EXCL: never a file or symlink already in DIR, nor the
    # name of another listed file), renamed to ``target`` once checked. Ctrl-C and SIGTERM
    # wait while it is made and kept: raised inside ``mkstemp``, after it made the file, they
    # would leave it behind with no name to remove it by.
    partial: Path | None = None
    digest = hashlib.sha256()
    budget = request_budget(deadline.remaining())
    try:
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
        try:
            handle, partial_name = tempfile.mkstemp(dir=target.parent, prefix=".skyvern-cdp-",
                                                    suffix=".part")
            partial = Path(partial_name)
            os.close(handle)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        with httpx.Client(
            timeout=request_timeout(budget), trust_env=False, follow_redirects=True,
            event_hooks={"request": [key_only_home]},
        ) as http, within(budget):
            bound_transports(http)
            with http.stream("GET", info.url) as answer:
                if answer.status_code != 200:
                    raise SkyvernCDPError(
                        f"{target.name}: the server answered HTTP {answer.status_code}"
                        f" for {_without_query(str(answer.url))}"
                    )
                received = 0
                with partial.open("wb") as out:
                    for block in answer.iter_bytes():
                        received += len(block)
                        if info.file_size is not None and received > info.file_size:
                            # a server sending past the size it listed is wrong, and may
                            # never stop: refused at once, not written to the deadline
                            raise SkyvernCDPError(
                                f"{target.name}: the server sent more than the"
                                f" {info.file_size} bytes the API listed"
                            )
                        digest.update(block)
                        out.write(block)
        if info.checksum and digest.hexdigest() != info.checksum.lower():
            raise SkyvernCDPError(f"{target.name}: its SHA-256 is not the checksum the API gave")
        os.replace(partial, target)
    except BaseException as error:
        if partial is not None:
            partial.unlink(missing_ok=True)
        if isinstance(error, httpx.TimeoutException):
            raise APITimeoutError(
                f"{target.name}: not downloaded within the {deadline.seconds:g}s of --timeout"
            ) from None
        raise
    return target
