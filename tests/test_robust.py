"""Hardening: bad input at the CLI, hostile files, a read-only index — one line, non-zero exit, index intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS

pytestmark = pytest.mark.robust
BRIEFING = [sys.executable, "-m", "assistant.cli"]


def run(args: list[str], idx: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "BRIEFING_INDEX_DIR": str(idx), "BRIEFING_CONFIG": str(idx.parent / "absent.toml")}
    full.update(env)
    return subprocess.run(BRIEFING + args, capture_output=True, text=True, env=full, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def idx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = tmp_path_factory.mktemp("robust") / "index"
    assert run(["ingest"], index).returncode == 0
    return index


def _one_line_error(res: subprocess.CompletedProcess[str], needle: str) -> None:
    assert res.returncode != 0, res.stdout
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines and needle in " ".join(lines), res.stderr
    assert lines[-1].startswith("error:") or any(line.startswith("error:") for line in lines)


def _chunks(idx: Path) -> int:
    res = run(["doctor", "--json"], idx)
    return int(json.loads(res.stdout)["index"]["chunks"])


@pytest.mark.parametrize(
    ("question", "needle"),
    [("", "empty"), ("   \n\t ", "empty"), ("\x01\x02\x1b\x7f", "empty"), ("why " * 25_000, "limit")],
    ids=["empty", "whitespace", "control-chars", "100KB"],
)
def test_bad_questions_fail_fast_with_one_line(idx: Path, question: str, needle: str) -> None:
    _one_line_error(run(["ask", question], idx), needle)


def test_malformed_history_and_unknown_backend(idx: Path, tmp_path: Path) -> None:
    bad = tmp_path / "history.json"
    bad.write_text('[{"role": "user"')
    _one_line_error(run(["ask", "Who met?", "--history", str(bad)], idx), "cannot read history")
    bad.write_text('[{"role": "wizard", "content": 3}]')
    _one_line_error(run(["ask", "Who met?", "--history", str(bad)], idx), "must be a JSON list")
    _one_line_error(run(["ask", "Who met?", "--backend", "gpt"], idx), "unknown backend 'gpt'")


def test_malformed_toml_and_bad_setting_values(idx: Path, tmp_path: Path) -> None:
    toml = tmp_path / "briefing.toml"
    toml.write_text("k = \n")
    _one_line_error(run(["search", "x"], idx, BRIEFING_CONFIG=str(toml)), "cannot read")
    toml.write_text('k = "many"\n')
    _one_line_error(run(["search", "x"], idx, BRIEFING_CONFIG=str(toml)), "bad setting k")
    toml.write_text("no_such_setting = 1\n")
    _one_line_error(run(["search", "x"], idx, BRIEFING_CONFIG=str(toml)), "no_such_setting")


def test_hostile_files_are_refused_and_the_index_is_unchanged(idx: Path, tmp_path: Path) -> None:
    before = _chunks(idx)
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "zero.txt").write_bytes(b"")
    (folder / "binary.md").write_bytes(os.urandom(4096).replace(b"\x00", b"\x01") + b"\x00")
    (folder / "latin1.txt").write_bytes("Pyongyang caf\xe9".encode("latin-1"))
    with (folder / "big.txt").open("wb") as fh:  # 50 MB, sparse-free but cheap to write
        fh.write(b"word " * 10_000_000)
    outside = tmp_path / "secret.txt"
    outside.write_text("Outside the folder: must not be indexed.\n")
    (folder / "link.txt").symlink_to(outside)
    res = run(["ingest", str(folder), "--json"], idx)
    assert res.returncode == 1
    report = json.loads(res.stdout)
    errors = " | ".join(report["errors"])
    for needle in ("zero.txt: empty", "binary.md: looks binary", "latin1.txt: not UTF-8", "big.txt: 50.0 MB",
                   "link.txt: links outside"):
        assert needle in errors
    assert report["embedded"] == 0 and _chunks(idx) == before
    _one_line_error(run(["ingest", str(tmp_path / "nope")], idx), "no such file or folder")


def test_unusable_index_path_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "index-file"
    blocked.write_text("not a directory")
    _one_line_error(run(["ingest"], blocked), "cannot open index")
    assert blocked.read_text() == "not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions, so read-only cannot be staged")
def test_read_only_index_is_a_clear_error_and_stays_intact(idx: Path, tmp_path: Path) -> None:
    before = _chunks(idx)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "note.txt").write_text("A fresh note about the Tumen River bridge.\n")
    os.chmod(idx, 0o555)
    try:
        res = run(["ingest", str(extra)], idx)
    finally:
        os.chmod(idx, 0o755)
    _one_line_error(res, "index")
    assert _chunks(idx) == before


def test_thousands_of_files_show_progress_and_bounded_memory(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(2000):
        (folder / f"n{i:04d}.txt").write_text(f"Note {i}\n\nThe depot {i} recorded {i * 3} crates on day {i % 30}.\n")
    # Run the CLI in a child that reports its own peak RSS. Not getrusage: a child's ru_maxrss
    # starts from the parent's (pytest's) high-water mark at exec; VmHWM is the child's own.
    script = "\n".join([
        "import re, sys",
        "from assistant.cli import app",
        "sys.argv = ['briefing', 'ingest', sys.argv[1], '--json']",
        "try:",
        "    app()",
        "except SystemExit:",
        "    pass",
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)",
        "sys.stderr.write(f'MAXRSS_KB {hwm}')",
    ])
    res = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True, cwd=ROOT,
                         timeout=900, env={**os.environ, "BRIEFING_INDEX_DIR": str(tmp_path / "index")})
    report = json.loads(res.stdout)
    assert report["documents"] == 2000 and report["errors"] == [] and report["embedded"] >= 2000
    peak_kb = int(res.stderr.rsplit("MAXRSS_KB ", 1)[1].split()[0])
    assert peak_kb < 1_000_000  # one document in memory at a time; measured ~0.4 GB, mostly libraries


def test_seeds_are_unchanged_by_everything_above() -> None:
    assert sorted(p.name for p in SEEDS.iterdir()) == ["000_4f251fb10e67f7e9.txt", "002_66b593ec0b11b73e.txt"]
