"""The `briefing` CLI for indexing, a real Chroma server, and an ingest killed midway."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chromadb.api.client import SharedSystemClient
from conftest import ROOT, SEEDS, free_port, make_settings, stored_chunks

from assistant.config import Settings
from assistant.embeddings import get_embedder
from assistant.indexing import ingest
from assistant.lexical import LexicalIndex, lexical_path
from assistant.retrieval import Retriever
from assistant.store import STAMP_ID, Index

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


@contextmanager
def chroma_server(tmp_path: Path) -> Iterator[int]:
    """A real `chroma run` on 127.0.0.1 and a free port, stopped when the block ends."""
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    server = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).close()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_ingest_and_search_through_a_real_chroma_server(tmp_path: Path) -> None:
    with chroma_server(tmp_path) as port:
        cfg = make_settings(tmp_path, chroma_host="127.0.0.1", chroma_port=port)
        report = ingest([SEEDS], cfg)
        assert report.embedded > 0
        assert not (tmp_path / "index" / "chroma.sqlite3").exists()  # no local Chroma: only the lexical copy
        hits = Retriever(cfg).search("Who led the North Korean side of the talks?", 5)
        assert any("Yun Jong Ho" in h.chunk.text for h in hits)


# Replica B: its own index_dir (as on another host), the shared Chroma server; waits for a word to appear in both
# halves of retrieval (or to disappear) and prints how long that took, without ever restarting.
REPLICA = """
import sys, time
from pathlib import Path
from assistant.config import Settings
from assistant.retrieval import Retriever
from assistant.store import StoreError
cfg = Settings(index_dir=Path(sys.argv[1]), chroma_host="127.0.0.1", chroma_port=int(sys.argv[2]), sync_seconds=0.5,
               ollama_host="http://127.0.0.1:9")
retriever = Retriever(cfg)
print("ready", flush=True)
for line in sys.stdin:
    want, word = line.split()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        hits = retriever.search(word, 3)
        found = any(word in h.chunk.text for h in hits) and bool(retriever.lexical.search(word, 3))
        if found == (want == "present"):
            print(f"{want} {time.monotonic() - t0:.2f}", flush=True)
            break
        time.sleep(0.1)
    else:
        print("timeout", flush=True)
"""


def test_a_document_ingested_by_one_replica_is_found_by_another_without_restart(tmp_path: Path) -> None:
    with chroma_server(tmp_path) as port:
        team = {"BRIEFING_CHROMA_HOST": "127.0.0.1", "BRIEFING_CHROMA_PORT": str(port)}
        assert run(["ingest", str(SEEDS)], tmp_path / "replica_a", **team).returncode == 0
        replica = subprocess.Popen([sys.executable, "-c", REPLICA, str(tmp_path / "replica_b"), str(port)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            assert replica.stdout is not None and replica.stdin is not None
            assert replica.stdout.readline().strip() == "ready"
            extra = tmp_path / "extra"
            extra.mkdir()
            (extra / "memo.txt").write_text("Memo\n\nThe quarterly Zorblatt survey covered fourteen harbours.\n")
            added = run(["ingest", str(extra)], tmp_path / "replica_a", **team)
            assert added.returncode == 0, added.stderr
            replica.stdin.write("present Zorblatt\n")
            replica.stdin.flush()
            assert replica.stdout.readline().split()[0] == "present"  # seen by B's dense and lexical halves
            (extra / "memo.txt").unlink()
            assert run(["ingest", str(extra)], tmp_path / "replica_a", **team).returncode == 0
            replica.stdin.write("absent Zorblatt\n")
            replica.stdin.flush()
            assert replica.stdout.readline().split()[0] == "absent"  # and its removal
        finally:
            replica.kill()
            replica.wait()


def test_a_search_process_finds_what_another_process_ingested_into_the_same_local_index(tmp_path: Path) -> None:
    """The chat keeps a Retriever open; a document added meanwhile by `briefing ingest` in a terminal is found by
    both halves without a restart (the manifest changed, so the process renews its Chroma reader)."""
    cfg = make_settings(tmp_path, sync_seconds=0.0)
    ingest([SEEDS], cfg)
    retriever = Retriever(cfg)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "memo.txt").write_text("Memo\n\nThe quarterly Zorblatt survey covered fourteen harbours.\n")
    done = run(["ingest", str(extra)], cfg.index_dir)
    assert done.returncode == 0, done.stderr
    hits = retriever.search("Zorblatt survey", 3)
    assert hits[0].chunk.doc == "memo.txt"
    assert "memo.txt" in retriever.documents and retriever.lexical.search("Zorblatt", 3)


def test_words_that_only_name_a_document_are_told_apart_from_words_it_writes(tmp_path: Path) -> None:
    """A file name's "scanned" or "p4" is in none of that document's passages: a question using it points at the
    document (`Retriever.named_only`); "harbours" is in the name and in the text, so it says what the text says."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "scanned_harbours_p4.txt").write_text("Harbours\n\nFourteen harbours were surveyed in the spring.\n")
    (docs / "memo.txt").write_text("Memo\n\nThe quarterly survey covered the northern coast.\n")
    cfg = make_settings(tmp_path)
    ingest([docs], cfg)
    retriever = Retriever(cfg)
    retriever.search("harbours", 3)  # loads the manifest of indexed documents
    assert retriever.named_only(["scan", "p4", "harbour", "survey"]) == {
        "scan": {"scanned_harbours_p4.txt"}, "p4": {"scanned_harbours_p4.txt"}, "harbour": set()}


def test_doctor_flags_a_lexical_index_behind_chroma_and_repair_mends_it(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    assert run(["ingest"], idx).returncode == 0
    section = json.loads(run(["doctor", "--json"], idx).stdout)["index"]
    assert section["lexical engine"].startswith("SQLite FTS5") and section["lexical status"] == "in line with Chroma"
    assert section["lexical passages"] == section["chunks"] > 0 and section["lexical size_mb"] > 0
    with sqlite3.connect(next(idx.glob("lexical-*.sqlite3"))) as db:  # passages lost by hand
        db.execute("DELETE FROM rows WHERE id IN (SELECT id FROM rows LIMIT 3)")
    behind = json.loads(run(["doctor", "--json"], idx).stdout)["index"]
    assert behind["lexical status"].startswith("DISAGREES") and "--repair" in behind["lexical status"]
    repaired = run(["ingest", "--repair", "--json"], idx)
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout) == {"documents": 2, "passages": section["chunks"], "orphan_chunks_removed": 0}
    assert json.loads(run(["doctor", "--json"], idx).stdout)["index"]["lexical status"] == "in line with Chroma"


def _corpus(folder: Path, n: int) -> None:
    folder.mkdir()
    for i in range(n):
        body = " ".join(f"Report {i} sentence {j} notes trade item {i * 7 + j} at port {j}." for j in range(40))
        (folder / f"doc{i:04d}.txt").write_text(f"Title {i}\n\n{body}\n")


def _rows(idx: Path) -> int:
    """Records written so far besides the manifest's stamp (written at open), read from Chroma's SQLite file by a
    read-only reader.

    A Chroma client must not be opened in this process while another process writes.
    """
    try:
        with sqlite3.connect(f"file:{idx / 'chroma.sqlite3'}?mode=ro", uri=True) as db:
            return int(db.execute("select count(*) from embeddings where embedding_id != ?", (STAMP_ID,)).fetchone()[0])
    except sqlite3.Error:
        return 0


def _agreement(cfg: Settings) -> tuple[int, int, int]:
    """(committed passages per the manifest, Chroma chunks of committed versions, lexical passages)."""
    index = Index(cfg, get_embedder(cfg).model_name, create=False)
    manifest = index.manifest()
    chroma = [c for c in stored_chunks(cfg) if manifest.get(c.doc, {}).get("doc_sha") == c.meta["doc_sha"]]
    assert len(chroma) == len({c.id for c in chroma})  # no duplicates
    lexical = LexicalIndex(lexical_path(cfg))
    return sum(int(m["n_chunks"]) for m in manifest.values()), len(chroma), lexical.count()


def test_ingest_killed_at_random_points_leaves_stores_that_agree_and_rerun_completes(tmp_path: Path) -> None:
    """SIGKILL mid-ingest at random moments: whatever was committed is whole in Chroma, and once the index is opened
    again (by a reader or the next ingest) the lexical index holds exactly the same passages; nothing is embedded
    twice by the re-run for committed documents, nothing duplicated."""
    corpus = tmp_path / "corpus"
    _corpus(corpus, 120)
    idx = tmp_path / "idx"
    env = {**os.environ, "BRIEFING_INDEX_DIR": str(idx), "BRIEFING_CONFIG": str(tmp_path / "none.toml"),
           "BRIEFING_INGEST_BATCH_CHUNKS": "64"}
    cfg: Settings = make_settings(tmp_path, index_dir=idx)
    rng = random.Random(7)
    for _ in range(3):
        before = _rows(idx)
        proc = subprocess.Popen(BRIEFING + ["ingest", str(corpus)], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and _rows(idx) <= before:  # wait until this run writes, then a random moment
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert Retriever(cfg).search("trade item port", 3)  # opens (re-syncing the lexical half) and answers
        committed, in_chroma, lexical = _agreement(cfg)
        assert committed == in_chroma == lexical
        SharedSystemClient.clear_system_cache()  # a local Chroma client must not stay open while another process writes
    report = ingest([corpus], cfg)
    assert report.errors == [] and report.documents == 120 and report.skipped < 120
    committed, in_chroma, lexical = _agreement(cfg)
    assert committed == in_chroma == lexical == report.chunks == len(stored_chunks(cfg))  # no orphans left


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
    done = run(["verify", str(pairs), "--judge", "lexical", "--json"], tmp_path / "index")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["pairs"] == 4 and report["balanced_accuracy"] == 1.0
    assert [v["supported"] for v in report["verdicts"]] == [True, False, True, False]
    model = run(["verify", str(pairs), "--judge", "model", "--json"], tmp_path / "index", BRIEFING_BACKEND="embedded",
                BRIEFING_EMBEDDED_MODEL="smollm2-135m", BRIEFING_EMBEDDED_RUNTIME="xllamacpp")
    assert model.returncode == 0, model.stderr
    judged = json.loads(model.stdout)  # the small test model's verdicts are not the point: the judge's reading is
    assert judged["pairs"] == 4 and judged["judge"].startswith("model (embedded smollm2-135m")
    for v in judged["verdicts"]:
        assert v["reason"].startswith("model log-odds") and v["supported"] is (v["score"] > 0)
    unknown = run(["verify", str(pairs), "--judge", "oracle"], tmp_path / "index")
    assert unknown.returncode == 2 and "unknown judge 'oracle'" in unknown.stderr and "Traceback" not in unknown.stderr
    pairs.write_text(json.dumps(rows[0]) + "\n{\"claim\": 3}\n", encoding="utf-8")
    bad = run(["verify", str(pairs)], tmp_path / "index")
    assert bad.returncode != 0 and "pairs.jsonl:2:" in bad.stderr and "Traceback" not in bad.stderr


def test_eval_keeps_its_answers_when_a_gate_has_nothing_to_measure(tmp_path: Path) -> None:
    """A run of selected cases (`--only`) may hold no case a gate measures (no unanswerable question among them): the
    answers already paid for are reported and that gate is "not judged"; on the whole suite the same gate fails with
    the reason, after the report, never as a traceback that loses the run. The small test model answers: what it
    says is not the point, the report's shape and the exit code are."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bridge.txt").write_text("The harbour bridge opened to traffic in 1932. It is made of steel.\n",
                                     encoding="utf-8")
    facts = tmp_path / "facts.yaml"
    facts.write_text(json.dumps([{"id": "b1", "question": "When did the harbour bridge open?", "category":
                                  "single_doc", "expected": [["1932"]], "support": [{"doc": "bridge.txt", "quote":
                                  "The harbour bridge opened to traffic in 1932."}]}]), encoding="utf-8")
    gates = tmp_path / "gates.yaml"
    gates.write_text("gates:\n  unanswerable_refused: 0.9\n  out_of_range_citations: 0\n", encoding="utf-8")
    small = {"BRIEFING_BACKEND": "embedded", "BRIEFING_EMBEDDED_MODEL": "smollm2-135m",
             "BRIEFING_EMBEDDED_RUNTIME": "xllamacpp"}
    args = ["eval", "--docs", str(docs), "--facts", str(facts), "--gates", str(gates), "--json"]
    picked = run([*args, "--only", "b1"], tmp_path / "index", **small)
    assert picked.returncode == 0, picked.stderr
    report = json.loads(picked.stdout)
    assert [c["id"] for c in report["cases"]] == ["b1"] and report["metrics"]["unanswerable_refused"] is None
    assert report["gates"]["unanswerable_refused"] == {"value": None, "gate": 0.9, "kind": "min", "pass": None,
                                                       "note": "no selected case measures it"}
    assert report["gates"]["out_of_range_citations"]["pass"] is True
    whole = run(args, tmp_path / "index", **small)
    assert whole.returncode == 1 and "Traceback" not in whole.stderr
    assert json.loads(whole.stdout)["gates"]["unanswerable_refused"]["note"] == "no case of this suite measures it"
