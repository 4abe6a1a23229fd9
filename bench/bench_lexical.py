"""The lexical half alone at a chosen corpus size: BM25 latency and gold-passage recall, exact FTS5 against the
bounded-cost search (`LexicalIndex.search`'s postings budget). Run on demand, not part of the test suite.

    .venv/bin/python bench/bench_lexical.py [--passages N] [--json]

No embedding and no Chroma: the corpus is chunked exactly as ingest chunks it (same chunker, same wordpiece counter)
and written straight into a fresh SQLite FTS5 index, so 100,000 passages take about two minutes on 2 cores where a
full `bench_index.py` run takes an hour. The haystack is real text the repo ships (`bench_index --text shipped`)
with the SQuAD articles of `eval/corpora/squad` among it; each SQuAD question with a gold support quote is asked,
and a hit is a top-15 passage holding at least 80% of the quote's terms (a copy of the sentence elsewhere in the
haystack counts too: the question is whether BM25 still surfaces it, not which copy).

Reported for each strategy: recall@15, p50/p95/max milliseconds over those questions and over 100 of the repo's
real evaluation questions (`bench_index.queries_for`), plus build time and the index size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench_index  # noqa: E402

from assistant.chunking import chunk_document  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.embeddings import get_embedder  # noqa: E402
from assistant.ingest import load  # noqa: E402
from assistant.lexical import POSTINGS_BUDGET, DocPassages, LexicalIndex, marks, terms  # noqa: E402

SQUAD = REPO / "eval" / "corpora" / "squad"
TOP = 15
STRATEGIES = {"exact": 10**12, "bounded": POSTINGS_BUDGET}


def build(folder: Path, passages: int, path: Path) -> tuple[LexicalIndex, int, float]:
    """Chunk the SQuAD articles, then generated documents until about `passages`, into a new index at `path`."""
    cfg = Settings()
    embedder = get_embedder(cfg)
    index = LexicalIndex(path)
    started, total, batch = time.perf_counter(), 0, []
    files = sorted(SQUAD.glob("docs/*.txt")) + sorted(folder.glob("*.txt"))
    for f in files:
        doc = load(f, 10**9)
        chunks = chunk_document(doc, cfg.chunk_tokens, cfg.chunk_overlap_sentences, embedder.count_tokens)
        batch.append(DocPassages(doc.name, doc.sha256, [(c.id, c.text) for c in chunks], doc.title))
        total += len(chunks)
        if len(batch) == 256 or total >= passages:
            index.replace(batch)
            batch = []
        if total >= passages:
            break
    index.replace(batch)
    return index, total, time.perf_counter() - started


def timed(index: LexicalIndex, query: str, budget: int) -> tuple[list[str], float]:
    started = time.perf_counter()
    found = index.search(query, TOP, budget=budget)
    return found, (time.perf_counter() - started) * 1000


def gold_hit(index: LexicalIndex, ids: list[str], quote: str) -> bool:
    gold = set(terms(quote))
    rows = index.db.execute(f"SELECT passages.text FROM rows JOIN passages ON passages.rowid = rows.id "
                            f"WHERE rows.cid IN ({marks(ids)})", ids)
    return any(len(gold & set(text.split())) >= 0.8 * len(gold) for (text,) in rows)


def percentiles(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[max(0, int(0.95 * len(ms)) - 1)], 1),
            "max_ms": round(ms[-1], 1)}


def measure(index: LexicalIndex) -> dict[str, Any]:
    cases = [c for c in yaml.safe_load((SQUAD / "facts.yaml").read_text(encoding="utf-8")) if c.get("support")]
    questions = bench_index.queries_for("shipped")
    out: dict[str, Any] = {"gold_questions": len(cases), "timing_questions": len(questions)}
    for name, budget in STRATEGIES.items():
        hits, ms = 0, []
        for c in cases:
            found, took = timed(index, c["question"], budget)
            hits += gold_hit(index, found, c["support"][0]["quote"])
            ms.append(took)
        ms += [timed(index, q, budget)[1] for q in questions]
        out[name] = {"budget": budget, f"gold_recall_at_{TOP}": round(hits / len(cases), 3), **percentiles(ms)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passages", type=int, default=100_000, help="about this many passages (100000)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        bench_index.make_corpus(corpus, args.passages, "shipped")
        index, passages, build_s = build(corpus, args.passages, Path(tmp) / "lexical.sqlite3")
        report = {"passages": passages, "build_s": round(build_s, 1),
                  "lexical_index_mb": round(index.size_bytes() / 1e6, 1), **measure(index)}
        index.close()
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{report['passages']:,} passages, built in {report['build_s']} s, {report['lexical_index_mb']} MB")
    for name in STRATEGIES:
        r = report[name]
        print(f"{name:8} budget {r['budget']:>16,}  recall@{TOP} {r[f'gold_recall_at_{TOP}']:.3f}  "
              f"p50 {r['p50_ms']} ms  p95 {r['p95_ms']} ms  max {r['max_ms']} ms")


if __name__ == "__main__":
    main()
