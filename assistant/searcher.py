"""The resident searcher: one process keeps a local index's Retriever loaded so that each `briefing search` after
the first answers in a fraction of a second instead of loading Chroma, the vectors and ONNX again.

Most of a cold search is start-up, not search (at 100,000 passages ~2.4 s of start-up against ~40 ms of search):
importing chromadb alone is 0.5-1 s and Chroma reads the whole vector graph into memory at its first query. So,
like the daemons of gradle or dmypy, the first `briefing search` of a local index, after printing its results,
starts a searcher in the background; it answers on a Unix socket in a per-user directory only its owner can open
and exits after `search_keep_warm_seconds` without a query (0 turns it off). The CLI asks it first and, when none
answers or it cannot serve this exact index, searches in-process as before: the searcher only ever saves time.

It runs the same `Retriever` as the chat, so it sees other processes' ingests within `sync_seconds`; an index it
can no longer read (rebuilt, deleted) makes it answer "unavailable" and exit, and the CLI reports the real error.
A team index (`chroma_host`) has no searcher: the Chroma server already holds the vectors.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistant.config import Settings

STARTUP_WAIT_S = 15.0  # a searcher still loading (started by the previous search) is worth waiting for this long
POLL_S = 0.05
MAX_MESSAGE = 1 << 24  # a reply holds k passages of at most a few KB each
SOCKET_PATH_MAX = 107  # bytes a Unix socket's path may hold on Linux (sun_path is 108 with its NUL)


class SearcherError(Exception):
    """The searcher answered that the query itself is unusable (the same message an in-process search gives)."""


@lru_cache(maxsize=1)
def code_version() -> str:
    """A digest of this package's source, so a caller never talks to a searcher left running by an older install
    (after an upgrade its index format or results may differ). Read once per process (~300 KB, ~1.5 ms): a search
    needs it for the socket's name and the request, and a searcher should name the code it started with."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def identity(settings: Settings) -> dict[str, str]:
    """What a searcher must share with a caller to answer for it: the same index, embedder and code."""
    from assistant.embeddings import embedder_name

    return {"index": str(Path(settings.index_dir).resolve()), "collection": settings.collection,
            "embed_model": embedder_name(settings), "code": code_version()}


def runtime_dir() -> Path | None:
    """A directory only this user can enter (XDG_RUNTIME_DIR, else one made under the temp dir), or None when the
    one found belongs to someone else or is open to others: a socket there could be answered by another user."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = Path(base) / f"briefing-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.stat()
    except OSError:
        return None
    return path if st.st_uid == os.getuid() and st.st_mode & 0o077 == 0 else None


def socket_path(settings: Settings) -> Path | None:
    """Where the searcher of this index listens, or None when no searcher may run: a team index, keep-warm off, no
    private directory, or one so deeply nested that a socket path there would not fit `SOCKET_PATH_MAX`."""
    if settings.chroma_host or settings.search_keep_warm_seconds <= 0:
        return None
    folder = runtime_dir()
    if folder is None:
        return None
    key = hashlib.sha256(json.dumps(identity(settings), sort_keys=True).encode()).hexdigest()[:20]
    path = folder / f"search-{key}.sock"
    return path if len(os.fsencode(path)) <= SOCKET_PATH_MAX else None


def _lock_path(sock: Path) -> Path:
    return sock.with_suffix(".lock")


def _running(sock: Path) -> bool:
    """Does a searcher (loading or serving) hold this socket's lock?"""
    try:
        fd = os.open(_lock_path(sock), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _read_message(conn: socket.socket) -> Any:
    """One newline-terminated JSON message (each side sends one per connection), at most `MAX_MESSAGE` bytes."""
    data = b""
    while not data.endswith(b"\n") and len(data) < MAX_MESSAGE:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return json.loads(data)


def _exchange(sock: Path, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(sock))
        conn.sendall(json.dumps(request).encode() + b"\n")
        reply = _read_message(conn)
    if not isinstance(reply, dict):
        raise ValueError("not a reply")
    return reply


def ask(settings: Settings, query: str, k: int | None) -> list[dict[str, Any]] | None:
    """The searcher's results for a query, or None when there is no searcher for this index (or it cannot answer):
    the caller then searches in-process. A searcher still loading is waited for, up to `STARTUP_WAIT_S`."""
    sock = socket_path(settings)
    if sock is None:
        return None
    request = {**identity(settings), "query": query, "k": k}
    deadline = time.monotonic() + STARTUP_WAIT_S
    while True:
        try:
            reply = _exchange(sock, request, timeout=60.0)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if not _running(sock) or time.monotonic() > deadline:
                return None
            time.sleep(POLL_S)
        except (OSError, ValueError):  # a searcher that died mid-reply, or garbage on the socket
            return None
    if "error" in reply:
        raise SearcherError(str(reply["error"]))
    passages = reply.get("passages")
    return passages if isinstance(passages, list) else None


def start(settings: Settings) -> None:
    """Start this index's searcher in the background, detached from the caller's terminal and session, unless one
    is already running or keep-warm is off. Its settings are exactly the caller's (passed whole)."""
    sock = socket_path(settings)
    if sock is None or _running(sock):
        return
    exact = settings.model_copy(update={"index_dir": Path(settings.index_dir).resolve()})  # it runs from "/"
    env = {**os.environ, "BRIEFING_SEARCHER_SETTINGS": exact.model_dump_json()}
    subprocess.Popen([sys.executable, "-m", "assistant.searcher"], env=env, cwd="/", stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)


def status(settings: Settings) -> str:
    """One line for `briefing doctor`: whether this index has a searcher, and why not."""
    sock = socket_path(settings)
    if sock is None:
        why = ("a team index: the Chroma server holds the vectors" if settings.chroma_host
               else "search_keep_warm_seconds is 0" if settings.search_keep_warm_seconds <= 0
               else "no private runtime directory, or none short enough for a socket's path")
        return f"off ({why})"
    if not _running(sock):
        return f"not running (the next `briefing search` starts one for {settings.search_keep_warm_seconds:g} s)"
    pid = _lock_path(sock).read_text().strip()
    return f"running (pid {pid}) at {sock}; it exits after {settings.search_keep_warm_seconds:g} s without a search"


def serve(settings: Settings) -> None:
    """Load the index once and answer searches until `search_keep_warm_seconds` pass without one. Only one searcher
    per index: the lock is taken before anything loads, so a second one started at the same moment just exits."""
    sock = socket_path(settings)
    if sock is None:
        return
    lock = os.open(_lock_path(sock), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        return
    os.ftruncate(lock, 0)
    os.write(lock, str(os.getpid()).encode())
    try:
        _listen(settings, sock)
    finally:
        sock.unlink(missing_ok=True)  # before the lock goes, so a caller never waits on a socket nobody serves
        os.close(lock)


def _listen(settings: Settings, sock: Path) -> None:
    from assistant.retrieval import Retriever

    retriever = Retriever(settings, progress=lambda *_: None)
    me = identity(settings)
    sock.unlink(missing_ok=True)  # a stale one left by a killed searcher: the lock says nobody serves it
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        old = os.umask(0o177)
        try:
            server.bind(str(sock))
        finally:
            os.umask(old)
        server.listen(8)
        server.settimeout(settings.search_keep_warm_seconds)
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                return
            with conn:
                reply, stop = _answer(retriever, me, conn)
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(reply).encode() + b"\n")
            if stop:
                return


def _answer(retriever: Any, me: dict[str, str], conn: socket.socket) -> tuple[dict[str, Any], bool]:
    """One request's reply, and whether to stop serving after it (the index can no longer be read here)."""
    from assistant.retrieval import QueryError

    conn.settimeout(10.0)
    try:
        request = _read_message(conn)
    except (OSError, ValueError):
        return {"unavailable": "unreadable request"}, False
    if not isinstance(request, dict) or any(request.get(key) != value for key, value in me.items()):
        return {"unavailable": "another index, embedder or version of the code"}, False
    try:
        k = request.get("k")
        found = retriever.search(str(request.get("query", "")), k if isinstance(k, int) and k > 0 else None)
    except QueryError as exc:
        return {"error": str(exc)}, False
    except Exception as exc:  # noqa: BLE001 - the index changed under us; the caller's own search reports it
        return {"unavailable": f"{type(exc).__name__}: {exc}"}, True
    return {"passages": [p.as_dict() for p in found]}, False


def main() -> None:
    """Entry point of the background process `start` spawns. SIGTERM ends it as idleness does: socket removed."""
    from assistant.config import Settings

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(Settings(**json.loads(os.environ["BRIEFING_SEARCHER_SETTINGS"])))


if __name__ == "__main__":
    main()
