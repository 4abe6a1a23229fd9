"""The resident searcher (`assistant/searcher.py`): real background processes over a real index, each bounded by a
short keep-warm time and stopped at the end of its test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, SEED_000, SEEDS, make_settings

from assistant import searcher
from assistant.config import Settings
from assistant.indexing import ingest

QUERY = "250 individuals and organizations sanctions"
STARTED = """
import json, sys
from assistant.cli import app
code = app(sys.argv[1:], standalone_mode=False)  # returns a typer.Exit's code instead of exiting
print(json.dumps({"loaded_index": "chromadb" in sys.modules}), file=sys.stderr)
sys.exit(code if isinstance(code, int) else 0)
"""


@pytest.fixture
def warm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A private index of the seeds and a private runtime dir (short: a socket path holds 107 bytes); every
    searcher started in it is stopped after."""
    run_dir = Path(tempfile.mkdtemp(prefix="bs-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run_dir))
    cfg = make_settings(tmp_path, search_keep_warm_seconds=60)
    assert ingest([SEEDS], cfg).errors == []
    yield cfg
    for lock in (run_dir / f"briefing-{os.getuid()}").glob("*.lock"):
        pid = lock.read_text().strip()
        if pid and searcher._running(lock.with_suffix(".sock")):
            os.kill(int(pid), signal.SIGTERM)
    shutil.rmtree(run_dir, ignore_errors=True)


def cli(cfg: Settings, *args: str, keep_warm: float = 60) -> tuple[subprocess.CompletedProcess[str], bool]:
    """Run `briefing ARGS` in a fresh process; also say whether that process loaded the index itself."""
    env = {**os.environ, "BRIEFING_INDEX_DIR": str(cfg.index_dir), "BRIEFING_CONFIG": str(cfg.index_dir / "no.toml"),
           "BRIEFING_SEARCH_KEEP_WARM_SECONDS": str(keep_warm)}
    res = subprocess.run([sys.executable, "-c", STARTED, *args], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=300)
    return res, json.loads(res.stderr.strip().splitlines()[-1])["loaded_index"]


def wait_for(condition: object, limit: float = 120.0) -> bool:
    """Poll until `condition()` holds (a liveness bound for the test, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def gone(pid: str) -> bool:
    """The process has ended (exited, or a zombie nobody reaped yet: a detached searcher's parent is PID 1)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return True


def serving(cfg: Settings) -> bool:
    sock = searcher.socket_path(cfg)
    return sock is not None and sock.exists() and searcher._running(sock)


def test_the_first_search_leaves_a_searcher_that_answers_the_next_without_loading_the_index(warm: Settings) -> None:
    first, loaded = cli(warm, "search", QUERY, "--k", "3", "--json")
    assert first.returncode == 0, first.stderr
    assert loaded
    assert wait_for(lambda: serving(warm))
    assert searcher.status(warm).startswith("running (pid ")  # what `briefing doctor` shows
    second, loaded = cli(warm, "search", QUERY, "--k", "3", "--json")
    assert second.returncode == 0, second.stderr
    assert not loaded  # answered by the searcher: this process never imported chromadb
    assert json.loads(second.stdout) == json.loads(first.stdout)
    assert searcher.ask(warm, QUERY, 3) == json.loads(first.stdout)
    hits = json.loads(second.stdout)
    assert all((SEEDS / h["doc"]).read_text(encoding="utf-8")[h["start"]:h["end"]] == h["text"] for h in hits)
    text, loaded = cli(warm, "search", QUERY, "--k", "1")
    assert text.returncode == 0 and not loaded
    assert hits[0]["doc"] in text.stdout and f":{hits[0]['start']}-{hits[0]['end']}" in text.stdout

    bad, loaded = cli(warm, "search", "   ")
    assert bad.returncode == 2 and not loaded
    assert bad.stderr.splitlines()[0] == "error: the question is empty"


def test_a_rebuilt_index_is_searched_afresh_and_the_old_searcher_steps_aside(warm: Settings, tmp_path: Path) -> None:
    cli(warm, "search", QUERY)
    assert wait_for(lambda: serving(warm))
    old_pid = (searcher.socket_path(warm).with_suffix(".lock")).read_text()  # type: ignore[union-attr]
    one = tmp_path / "one"
    one.mkdir()
    (one / SEED_000.name).write_text(SEED_000.read_text(encoding="utf-8"), encoding="utf-8")
    env = {**os.environ, "BRIEFING_INDEX_DIR": str(warm.index_dir), "BRIEFING_CONFIG": str(tmp_path / "no.toml")}
    rebuilt = subprocess.run([sys.executable, "-m", "assistant.cli", "ingest", "--rebuild", str(one)], env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr
    res, _ = cli(warm, "search", QUERY, "--k", "5", "--json")
    assert res.returncode == 0, res.stderr
    assert {h["doc"] for h in json.loads(res.stdout)} == {SEED_000.name}
    assert wait_for(lambda: gone(old_pid))


def test_an_idle_searcher_exits_and_removes_its_socket(warm: Settings) -> None:
    res, _ = cli(warm, "search", QUERY, keep_warm=1)
    assert res.returncode == 0, res.stderr
    idle = warm.model_copy(update={"search_keep_warm_seconds": 1})
    sock = searcher.socket_path(idle)
    assert sock is not None
    assert wait_for(lambda: sock.with_suffix(".lock").exists())  # it started...
    assert wait_for(lambda: not searcher._running(sock))  # ...and ended on its own
    assert not sock.exists()
    assert searcher.ask(idle, QUERY, 3) is None


def test_a_dead_searchers_socket_is_not_waited_on(warm: Settings) -> None:
    sock = searcher.socket_path(warm)
    assert sock is not None
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock))  # bound, never listening, nobody holds the lock: as after a searcher was killed
    dead.close()
    started = time.monotonic()
    assert searcher.ask(warm, QUERY, 3) is None
    assert time.monotonic() - started < searcher.STARTUP_WAIT_S  # it fell back at once instead of waiting
    res, loaded = cli(warm, "search", QUERY, "--json")
    assert res.returncode == 0 and loaded
    assert wait_for(lambda: serving(warm))  # the new searcher replaced the stale socket


def test_no_searcher_for_a_team_index_a_shared_runtime_dir_or_keep_warm_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="bs-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run_dir))
    cfg = make_settings(tmp_path, search_keep_warm_seconds=60)
    assert searcher.socket_path(cfg) is not None
    assert searcher.socket_path(make_settings(tmp_path, search_keep_warm_seconds=60, chroma_host="127.0.0.1")) is None
    assert searcher.socket_path(make_settings(tmp_path, search_keep_warm_seconds=0)) is None
    assert searcher.status(make_settings(tmp_path, search_keep_warm_seconds=0)).startswith("off")
    assert searcher.status(cfg).startswith("not running")
    (run_dir / f"briefing-{os.getuid()}").chmod(0o755)  # others could reach a socket there
    assert searcher.socket_path(cfg) is None
    deep = run_dir / ("d" * 90)
    deep.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))  # a private dir, but no room for the socket's name
    assert searcher.runtime_dir() is not None
    assert searcher.socket_path(cfg) is None
    shutil.rmtree(run_dir)


def test_a_searcher_answers_only_for_its_own_index_and_embedder(tmp_path: Path) -> None:
    cfg = make_settings(tmp_path)
    me = searcher.identity(cfg)
    others = [{**me, "index": str(tmp_path / "other")}, {**me, "embed_model": "ollama:x"}, {**me, "code": "older"}]
    for request in [*others, ["not", "a", "dict"]]:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            theirs.sendall(json.dumps(request).encode() + b"\n")
            reply, stop = searcher._answer(None, me, ours)  # never reaches the retriever
        assert "unavailable" in reply and not stop
