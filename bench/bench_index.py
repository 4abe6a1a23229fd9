"""Indexing and retrieval benchmark at a chosen corpus size, run on demand (not part of the test suite).

    .venv/bin/python bench/bench_index.py [--passages N] [--text templates|shipped] [--json] [--keep DIR]

Every measurement uses a FRESH temporary index dir and BRIEFING_CONFIG pointing at a missing file, never the repo's
index/ or a briefing.toml. Synthetic documents (~4 passages each) are generated until the corpus holds about N
passages; the actual number is reported as `passages`. `--text templates` (the default, comparable with earlier
runs) fills 18 news-like sentence templates: a worst case for BM25, since every query word is then in about a
fifth of all passages. `--text shipped` draws sentences from the real text the repo ships and queries with its
real evaluation questions, whose words are far rarer.

1. cold ingest: `briefing ingest CORPUS --json` in a subprocess (wall, peak RSS, chunks embedded per second)
2. embed only: the same chunker and ONNX embedder, same batch size and length-sorted order, no stores: the
   physical limit of ingest here (on a sample of up to 5,000 of the corpus's chunks)
3. unchanged re-ingest (wall, `embedded`, which must be 0)
   and `briefing ingest --repair` (`repair_s`): the lexical index rebuilt from Chroma, as after an upgrade or a
   damaged file, plus the sweep for chunks of interrupted ingests
4. cold search: a fresh `briefing search` process until its results print (wall, peak RSS), with no resident
   searcher: the median of 3 processes (`cold_search_s`) and the first one, right after ingest
   (`cold_search_first_s`); then the same while the searcher a first search left running answers
   (`cold_search_with_searcher_s`, `searcher_rss_mb`)
5. warm search: one process holding a Retriever, 100 varied queries, p50/p95; `app_rss_mb` is that process's peak
6. sizes on disk: the lexical index (SQLite FTS5) and the dense one (Chroma)
7. `briefing --help`: median wall time of 5 runs

Peak RSS comes from GNU /usr/bin/time (%M) when present, else from the
resource.getrusage(RUSAGE_CHILDREN).ru_maxrss high-water mark; the output says which.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BRIEFING = str(REPO / ".venv" / "bin" / "briefing")
GNU_TIME = Path("/usr/bin/time")
RSS_METHOD = "/usr/bin/time %M" if GNU_TIME.exists() else "getrusage(RUSAGE_CHILDREN).ru_maxrss high-water mark"
SEED = 20240601

PEOPLE = ["Maria Okafor", "Daniel Reyes", "Aiko Tanaka", "Lars Nilsson", "Priya Raman", "Omar Haddad",
          "Elena Petrova", "James Whitfield", "Chen Wei", "Fatima Zahra", "Tomasz Nowak", "Grace Mensah"]
ORGS = ["the Ministry of Finance", "Northwind Energy", "the Central Bank", "the Port Authority", "Helios Motors",
        "the World Health Organization", "the city council", "Atlas Shipping", "the Interior Ministry",
        "Meridian Telecom", "the national rail operator", "the Federal Audit Office"]
PLACES = ["Lagos", "Rotterdam", "Valparaíso", "Osaka", "Gdańsk", "Nairobi", "Tbilisi", "Monterrey", "Da Nang",
          "Tromsø", "Casablanca", "Adelaide"]
TOPICS = ["water tariffs", "grain exports", "a rail strike", "semiconductor subsidies", "flood defences",
          "a bond issue", "port congestion", "vaccine supply", "electricity prices", "a data breach",
          "housing permits", "fishing quotas", "a border agreement", "wind farm licences"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
SENTENCES = [
    "{person} of {org} said on {date} that {topic} would be reviewed before the end of the quarter.",
    "Officials in {place} confirmed that {n} people had been affected by {topic}.",
    "According to {org}, spending on {topic} rose by {pct} percent compared with last year.",
    "{person} told reporters in {place} that the plan would cost about {money} million dollars.",
    "The agreement, signed on {date}, commits {org} to {n} new inspections a year.",
    "Critics argue that {topic} has been mishandled since {year}, when the first warnings were issued.",
    "A spokesperson for {org} declined to comment on reports about {topic}.",
    "In {place}, {n} businesses applied for emergency support within {small} days.",
    "{person} warned that delays could push the total bill above {money} million dollars.",
    "Figures released on {date} show a {pct} percent drop in activity at the {place} terminal.",
    "The committee chaired by {person} will publish its findings on {topic} in {month}.",
    "Residents of {place} have staged {small} protests over {topic} since {month}.",
    "{org} said it expects a decision on {topic} by {date}.",
    "Analysts estimate that {topic} could reduce growth by {small}.{small} percentage points in {year}.",
    "{person}, who joined {org} in {year}, has long pushed for tighter rules on {topic}.",
    "The audit found {n} irregular contracts worth a combined {money} million dollars.",
    "Trade between {place} and {place2} grew {pct} percent in the first half of {year}.",
    "{org} and {org2} announced a joint review of {topic} on {date}.",
]
TITLES = ["{org_t} faces questions over {topic}", "{place}: new figures on {topic}", "{person} defends {topic} plan",
          "Inside the dispute over {topic} in {place}", "What {topic} means for {place}"]
QUERIES = ["What did {person} say about {topic}?", "{topic} in {place}", "How much will {topic} cost?",
           "Who signed the agreement with {org}?", "protests in {place}", "{org} decision on {topic}",
           "audit irregular contracts {org}", "trade growth between {place} and {place2}",
           "When will the committee publish findings on {topic}?", "{person} {org}"]


def _fill(rng: random.Random, template: str) -> str:
    org, org2 = rng.sample(ORGS, 2)
    place, place2 = rng.sample(PLACES, 2)
    year = rng.randint(2015, 2025)
    text = template.format(
        person=rng.choice(PEOPLE), org=org, org2=org2, place=place,
        place2=place2, topic=rng.choice(TOPICS), n=f"{rng.randint(12, 48000):,}", pct=rng.randint(2, 60),
        money=rng.randint(3, 900), small=rng.randint(2, 9), year=year, month=rng.choice(MONTHS),
        date=f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {year}", org_t=org.removeprefix("the "),
    )
    return text[0].upper() + text[1:]


SHIPPED_TEXT = [REPO / "seeds", REPO / "eval" / "corpora" / "squad" / "docs",
                REPO / "eval" / "corpora" / "public_domain" / "docs"]
SHIPPED_QUESTIONS = [REPO / "eval" / "facts.yaml", REPO / "eval" / "corpora" / "squad" / "facts.yaml",
                     REPO / "eval" / "corpora" / "public_domain" / "facts.yaml"]


def shipped_sentences() -> list[str]:
    """Sentences (6-60 words) of the real text the repo ships: the seeds, the SQuAD articles, the public-domain
    corpus. Their words follow a natural frequency curve, where the templates repeat a small vocabulary in every
    passage (a template corpus puts each query word in ~23% of passages; real questions' words are in ~2%)."""
    found: list[str] = []
    for folder in SHIPPED_TEXT:
        for path in sorted(folder.glob("*.txt")):
            text = " ".join(path.read_text(encoding="utf-8").split())
            found += [x for x in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text) if 6 <= len(x.split()) <= 60]
    return found


def shipped_questions() -> list[str]:
    import yaml

    questions: list[str] = []
    for path in SHIPPED_QUESTIONS:
        questions += [str(c["question"]) for c in yaml.safe_load(path.read_text(encoding="utf-8")) or []
                      if isinstance(c, dict) and c.get("question")]
    return questions


def make_corpus(folder: Path, passages: int, text: str = "templates") -> tuple[int, int]:
    """Write documents (title line, blank line, paragraphs of ~300-450 words, about 4 passages each) until about
    `passages` passages; return (documents, words). Sentences come from the templates or, with `text="shipped"`,
    from the repo's real text (`shipped_sentences`)."""
    rng = random.Random(SEED)
    pool = shipped_sentences() if text == "shipped" else []
    words = docs = 0
    while docs * 4 < passages:
        target = rng.randint(300, 450)
        sentences: list[str] = []
        while sum(len(s.split()) for s in sentences) < target:
            sentences.append(rng.choice(pool) if pool else _fill(rng, rng.choice(SENTENCES)))
        words += sum(len(s.split()) for s in sentences)
        paras: list[str] = []
        while sentences:
            cut = rng.randint(2, 5)
            paras.append(" ".join(sentences[:cut]))
            sentences = sentences[cut:]
        title = " ".join(rng.choice(pool).split()[:8]) if pool else _fill(rng, rng.choice(TITLES))
        (folder / f"doc_{docs:06d}.txt").write_text(title + "\n\n" + "\n\n".join(paras) + "\n", encoding="utf-8")
        docs += 1
    return docs, words


def run_cli(args: list[str], index_dir: Path, keep_warm: float = 0) -> tuple[float, int | None, str]:
    """Run `briefing ARGS` with a fresh env; return (wall seconds, peak RSS KiB or None, stdout). No resident
    searcher unless `keep_warm` says how long one may stay (`assistant/searcher.py`)."""
    env = {**os.environ, "BRIEFING_INDEX_DIR": str(index_dir), "BRIEFING_CONFIG": str(index_dir / "absent.toml"),
           "BRIEFING_SEARCH_KEEP_WARM_SECONDS": str(keep_warm)}
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        prefix = [str(GNU_TIME), "-f", "%M", "-o", rss_file.name] if GNU_TIME.exists() else []
        t0 = time.perf_counter()
        proc = subprocess.run(prefix + [BRIEFING, *args], capture_output=True, text=True, env=env, cwd=REPO)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"briefing {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        if prefix:
            rss: int | None = int(rss_file.read().split()[-1])
        else:
            rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, rss, proc.stdout


def ingest(folder: Path, index_dir: Path) -> dict[str, Any]:
    wall, rss, stdout = run_cli(["ingest", str(folder), "--json"], index_dir)
    summary = json.loads(stdout[stdout.index("{") :])
    return {"wall_s": round(wall, 2), "peak_rss_mb": rss and round(rss / 1024), "summary": summary,
            "startup_s": round(wall - summary["seconds"], 2)}


def embed_only(folder: Path, sample: int = 5000) -> dict[str, Any]:
    """Chunks/s of the embedder alone on the corpus's own chunks, batched and ordered exactly as ingest does."""
    from assistant.chunking import chunk_document
    from assistant.config import Settings
    from assistant.embeddings import get_embedder
    from assistant.indexing import embed_sorted
    from assistant.ingest import load

    cfg = Settings()
    embedder = get_embedder(cfg)
    texts: list[str] = []
    for path in sorted(folder.iterdir()):
        doc = load(path, 10_000_000)
        texts += [c.text for c in chunk_document(doc, cfg.chunk_tokens, cfg.chunk_overlap_sentences,
                                                 embedder.count_tokens)]
        if len(texts) >= sample:
            break
    texts = texts[:sample]
    batches = [texts[i : i + cfg.ingest_batch_chunks] for i in range(0, len(texts), cfg.ingest_batch_chunks)]
    t0 = time.perf_counter()
    for batch in batches:
        embed_sorted(embedder, batch)
    seconds = time.perf_counter() - t0
    return {"chunks": len(texts), "seconds": round(seconds, 2), "chunks_per_s": round(len(texts) / seconds, 1)}


WARM = """
import json, statistics, sys, time
def hwm_mb():
    # this process's own peak (VmHWM): ru_maxrss would also carry the bench's RSS at fork, kept across exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
from pathlib import Path
from assistant.config import Settings
from assistant.retrieval import Retriever
queries = json.loads(sys.stdin.read())
t0 = time.perf_counter()
retriever = Retriever(Settings(index_dir=Path(sys.argv[1])))
build = time.perf_counter() - t0
retriever.search("first query after build", k=5)
times = []
for q in queries:
    t0 = time.perf_counter()
    retriever.search(q, k=5)
    times.append((time.perf_counter() - t0) * 1000)
times.sort()
print(json.dumps({"retriever_build_s": round(build, 2), "p50_ms": round(statistics.median(times), 1),
                  "p95_ms": round(times[int(0.95 * len(times)) - 1], 1), "max_ms": round(times[-1], 1),
                  "rss_mb": hwm_mb()}))
"""


def queries_for(text: str, n: int = 100) -> list[str]:
    """n varied queries: filled templates, or (text="shipped") a sample of the repo's real evaluation questions."""
    rng = random.Random(SEED + 1)
    if text == "shipped":
        questions = shipped_questions()
        return rng.sample(questions, min(n, len(questions)))
    return [_fill(rng, QUERIES[i % len(QUERIES)]) for i in range(n)]


def warm_search(index_dir: Path, queries: list[str]) -> dict[str, Any]:
    """Varied queries in one fresh process that holds a Retriever (so its RSS is the app's, not the bench's)."""
    env = {**os.environ, "BRIEFING_CONFIG": str(index_dir / "absent.toml")}
    proc = subprocess.run([sys.executable, "-c", WARM, str(index_dir)], input=json.dumps(queries),
                          capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"warm search failed:\n{proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def with_searcher(index_dir: Path, queries: list[str]) -> dict[str, Any]:
    """Fresh `briefing search` processes answered by the resident searcher the first one leaves running: their
    median wall time, and the searcher's own resident memory. The searcher is stopped after."""
    from assistant import searcher
    from assistant.config import Settings

    keep = 120.0
    sock = searcher.socket_path(Settings(index_dir=index_dir, search_keep_warm_seconds=keep))
    if sock is None:
        return {"cold_search_with_searcher_s": None}
    run_cli(["search", queries[0], "--json"], index_dir, keep_warm=keep)
    deadline = time.monotonic() + 300
    while not (sock.exists() and searcher._running(sock)) and time.monotonic() < deadline:
        time.sleep(0.1)
    runs = [run_cli(["search", q, "--json"], index_dir, keep_warm=keep) for q in queries[1:4]]
    pid = sock.with_suffix(".lock").read_text().strip()
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    os.kill(int(pid), 15)
    return {"cold_search_with_searcher_s": round(statistics.median(r[0] for r in runs), 2),
            "searcher_client_rss_mb": round(max(r[1] or 0 for r in runs) / 1024), "searcher_rss_mb": round(rss / 1024)}


def sizes(index_dir: Path) -> tuple[float, float]:
    """(lexical MB, dense MB) on disk."""
    lexical = sum(f.stat().st_size for f in index_dir.glob("lexical-*") if f.is_file())
    total = sum(f.stat().st_size for f in index_dir.rglob("*") if f.is_file())
    return round(lexical / 1e6, 1), round((total - lexical) / 1e6, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description="Indexing and retrieval benchmark (fresh temp index dirs).")
    ap.add_argument("--passages", type=int, default=10_000, help="about this many synthetic passages (10000)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--text", choices=["templates", "shipped"], default="templates",
                    help="sentences from 18 news-like templates (a worst case for BM25: every query word is in a "
                         "fifth of all passages), or from the real text the repo ships, queried with its real "
                         "evaluation questions")
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="work in DIR (must be empty or absent) and keep its corpus/ and idx/ for inspection")
    opts = ap.parse_args()
    res: dict[str, Any] = {"rss_method": RSS_METHOD, "cpus": os.cpu_count()}
    if opts.keep:
        opts.keep.mkdir(parents=True, exist_ok=True)
        if any(opts.keep.iterdir()):
            sys.exit(f"--keep {opts.keep}: not empty")
    with contextlib.nullcontext(str(opts.keep)) if opts.keep else tempfile.TemporaryDirectory(
            prefix="bench_index_") as tmp_s:
        tmp = Path(tmp_s)
        corpus = tmp / "corpus"
        corpus.mkdir()
        res["text"] = opts.text
        res["documents"], res["corpus_words"] = make_corpus(corpus, opts.passages, opts.text)
        queries = queries_for(opts.text)
        idx = tmp / "idx"
        cold = ingest(corpus, idx)
        s = cold["summary"]
        res.update(passages=s["chunks"], ingest_s=cold["wall_s"], ingest_in_process_s=s["seconds"],
                   ingest_chunks_per_s=round(s["embedded"] / s["seconds"], 1), ingest_peak_rss_mb=cold["peak_rss_mb"])
        only = embed_only(corpus)
        res.update(embed_only_chunks_per_s=only["chunks_per_s"], embed_only_sample=only["chunks"])
        res["ingest_vs_embed_only"] = round(res["ingest_chunks_per_s"] / only["chunks_per_s"], 3)
        again = ingest(corpus, idx)
        res.update(reingest_unchanged_s=again["wall_s"], embedded_on_reingest=again["summary"]["embedded"])
        res["repair_s"] = round(run_cli(["ingest", "--repair", "--json"], idx)[0], 2)
        cold_runs = [run_cli(["search", q, "--json"], idx) for q in queries[:3]]
        res.update(cold_search_s=round(statistics.median(r[0] for r in cold_runs), 2),
                   cold_search_first_s=round(cold_runs[0][0], 2),
                   cold_search_rss_mb=cold_runs[0][1] and round(max(r[1] or 0 for r in cold_runs) / 1024))
        res.update(with_searcher(idx, queries))
        warm = warm_search(idx, queries)
        res.update(search_p50_ms=warm["p50_ms"], search_p95_ms=warm["p95_ms"], search_max_ms=warm["max_ms"],
                   retriever_build_s=warm["retriever_build_s"], app_rss_mb=warm["rss_mb"])
        res["lexical_index_mb"], res["dense_index_mb"] = sizes(idx)
        helps = [run_cli(["--help"], tmp / "idx_help")[0] for _ in range(5)]
        res["help_median_s"] = round(statistics.median(helps), 3)
    report(res, opts.json)


def report(res: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(res, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bench_index: {res['passages']:,} passages in {res['documents']:,} documents "
                        f"({res['cpus']} CPUs; peak RSS via {res['rss_method']})")
    for col in ("measure", "value"):
        table.add_column(col)
    for key, value in res.items():
        if key not in ("rss_method", "cpus"):
            table.add_row(key, str(value))
    Console(width=max(120, Console().width)).print(table)


if __name__ == "__main__":
    main()
