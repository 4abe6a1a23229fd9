"""The `briefing` CLI for indexing, a real Chroma server, and an ingest killed midway."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, SEEDS, free_port, make_settings

from assistant.config import Settings
from assistant.embeddings import get_embedder
from assistant.indexing import ingest
from assistant.retrieval import Retriever
from assistant.store import Index

BRIEFING = [sys.executable, "-m", "assistant.cli"]


def run(args: list[str], index_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "BRIEFING_INDEX_DIR": str(index_dir), "BRIEFING_CONFIG": str(index_dir / "no.toml")}
    full_env.update(env)
    return subprocess.run(BRIEFING + args, capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=300)


def test_cli_ingest_json_then_search_json_offsets_exact(tmp_path: Path) -> None:
    first = run(["ingest", "--json"], tmp_path / "idx")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["documents"] == 2 and summary["embedded"] == summary["chunks"] > 0
    again = json.loads(run(["ingest", "--json"], tmp_path / "idx").stdout)
    assert again["embedded"] == 0 and again["skipped"] == 2

    res = run(["search", "250 individuals and organizations sanctions", "--k", "3", "--json"], tmp_path / "idx")
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    for h in hits:
        assert {"rank", "doc", "title", "start", "end", "text", "score"} <= set(h)
        original = (SEEDS / h["doc"]).read_text(encoding="utf-8")
        assert original[h["start"] : h["end"]] == h["text"]
    assert any("250" in h["text"] for h in hits)


def test_cli_bad_input_is_one_line_and_nonzero(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    assert run(["ingest"], idx).returncode == 0
    for args, needle in [
        (["ingest", str(tmp_path / "missing")], "no such file or folder"),
        (["search", "   "], "empty"),
        (["search", "y" * 100_000], "limit"),
    ]:
        res = run(args, idx)
        assert res.returncode != 0
        assert needle in res.stderr and "Traceback" not in res.stderr
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("k = [unclosed\n")
    res = run(["search", "x"], idx, BRIEFING_CONFIG=str(bad_toml))
    assert res.returncode == 2 and "cannot read" in res.stderr and "Traceback" not in res.stderr
    assert json.loads(run(["ingest", "--json"], idx).stdout)["embedded"] == 0  # index intact


def test_ingest_and_search_through_a_real_chroma_server(tmp_path: Path) -> None:
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    server = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        cfg = make_settings(tmp_path, chroma_host="127.0.0.1", chroma_port=port)
        deadline = time.time() + 60
        while True:
            try:
                report = ingest([SEEDS], cfg)
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        assert report.embedded > 0
        assert not (tmp_path / "index").exists()  # nothing went to a local index
        hits = Retriever(cfg).search("Who led the North Korean side of the talks?", 5)
        assert any("Yun Jong Ho" in h.chunk.text for h in hits)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _corpus(folder: Path, n: int) -> None:
    folder.mkdir()
    for i in range(n):
        body = " ".join(f"Report {i} sentence {j} notes trade item {i * 7 + j} at port {j}." for j in range(40))
        (folder / f"doc{i:04d}.txt").write_text(f"Title {i}\n\n{body}\n")


def _rows(idx: Path) -> int:
    """Chunks written so far, read from Chroma's SQLite file by a read-only reader.

    A Chroma client must not be opened in this process while another process writes.
    """
    try:
        with sqlite3.connect(f"file:{idx / 'chroma.sqlite3'}?mode=ro", uri=True) as db:
            return int(db.execute("select count(*) from embeddings").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_ingest_killed_midway_leaves_a_working_index_and_rerun_completes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _corpus(corpus, 120)
    idx = tmp_path / "idx"
    env = {**os.environ, "BRIEFING_INDEX_DIR": str(idx), "BRIEFING_CONFIG": str(tmp_path / "none.toml")}
    proc = subprocess.Popen(BRIEFING + ["ingest", str(corpus)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg: Settings = make_settings(tmp_path, index_dir=idx)
    deadline = time.time() + 120
    while time.time() < deadline and _rows(idx) <= 20:  # kill once some (not all) documents are in
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = Index(cfg, get_embedder(cfg).model_name, create=False).count()
    assert partial > 0
    assert Retriever(cfg).search("trade item port", 3)  # opens and answers
    report = ingest([corpus], cfg)
    assert report.errors == [] and report.documents == 120 and report.skipped < 120
    index = Index(cfg, get_embedder(cfg).model_name)
    chunks = index.all_chunks()
    assert len(chunks) == len({c.id for c in chunks}) == report.chunks  # no duplicates, no orphans
    assert all(v["present"] == v["expected"] for e in index.doc_versions().values() for v in e["versions"].values())


def test_verify_reports_the_judges_accuracy_on_labelled_pairs_and_rejects_a_bad_line(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {"claim": "The bridge opened in 1932.", "evidence": "The bridge was opened to traffic in 1932.", "label": True},
        {"claim": "The bridge opened in 1933.", "evidence": "The bridge was opened to traffic in 1932.",
         "label": False},
        {"claim": "The bridge is made of steel.", "evidence": ["It spans the harbour.", "It is made of steel."],
         "label": "supported"},
        {"claim": "The bridge is painted red.", "evidence": ["It spans the harbour."], "label": "not_supported"},
    ]
    pairs.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    done = run(["verify", str(pairs), "--json"], tmp_path / "index")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["pairs"] == 4 and report["balanced_accuracy"] == 1.0
    assert [v["supported"] for v in report["verdicts"]] == [True, False, True, False]
    pairs.write_text(json.dumps(rows[0]) + "\n{\"claim\": 3}\n", encoding="utf-8")
    bad = run(["verify", str(pairs)], tmp_path / "index")
    assert bad.returncode != 0 and "pairs.jsonl:2:" in bad.stderr and "Traceback" not in bad.stderr
