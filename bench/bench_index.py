"""Indexing and retrieval benchmark, run on demand (not part of the test suite).

    .venv/bin/python bench/bench_index.py [--docs N] [--json]     # N synthetic documents, default 1000

Every measurement uses a FRESH temporary index dir (BRIEFING_INDEX_DIR / Settings(index_dir=...)),
never the repo's index/, and BRIEFING_CONFIG points at a missing file so no briefing.toml leaks in:

1. seeds cold ingest: `briefing ingest seeds --json` in a subprocess (wall time incl. imports, peak RSS)
2. synthetic cold ingest of N generated news-like documents (wall, peak RSS, chunks embedded per second)
3. re-ingest of the unchanged corpus (wall, `embedded`, which must be 0)
4. warm search: one in-process Retriever over the N-doc index, 100 varied queries, p50/p95/max
5. `briefing --help`: median wall time of 5 subprocess runs

Peak RSS comes from GNU /usr/bin/time (%M) when present, else from the
resource.getrusage(RUSAGE_CHILDREN).ru_maxrss high-water mark; the output says which.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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


def make_corpus(folder: Path, n: int) -> int:
    """Write n documents (title line, blank line, paragraphs of ~150-400 words); return total words."""
    rng = random.Random(SEED)
    words = 0
    for i in range(n):
        target = rng.randint(150, 400)
        sentences: list[str] = []
        while sum(len(s.split()) for s in sentences) < target:
            sentences.append(_fill(rng, rng.choice(SENTENCES)))
        words += sum(len(s.split()) for s in sentences)
        paras: list[str] = []
        while sentences:
            cut = rng.randint(2, 5)
            paras.append(" ".join(sentences[:cut]))
            sentences = sentences[cut:]
        title = _fill(rng, rng.choice(TITLES))
        (folder / f"doc_{i:05d}.txt").write_text(title + "\n\n" + "\n\n".join(paras) + "\n", encoding="utf-8")
    return words


def run_cli(args: list[str], index_dir: Path) -> tuple[float, int | None, str]:
    """Run `briefing ARGS` with a fresh env; return (wall seconds, peak RSS KiB or None, stdout)."""
    env = {**os.environ, "BRIEFING_INDEX_DIR": str(index_dir), "BRIEFING_CONFIG": str(index_dir / "absent.toml")}
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


def warm_search(index_dir: Path, n_queries: int = 100) -> dict[str, Any]:
    from assistant.config import Settings
    from assistant.retrieval import Retriever

    t0 = time.perf_counter()
    retriever = Retriever(Settings(index_dir=index_dir))
    build = time.perf_counter() - t0
    rng = random.Random(SEED + 1)
    queries = [_fill(rng, QUERIES[i % len(QUERIES)]) for i in range(n_queries)]
    t0 = time.perf_counter()
    retriever.search("first query after build", k=5)  # not counted: lazy one-time setup, if any
    first = time.perf_counter() - t0
    times = []
    for q in queries:
        t0 = time.perf_counter()
        retriever.search(q, k=5)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"retriever_build_s": round(build, 2), "first_query_ms": round(first * 1000, 1),
            "chunks": len(retriever.chunks), "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[int(0.95 * len(times)) - 1], 1), "max_ms": round(times[-1], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description="Indexing and retrieval benchmark (fresh temp index dirs).")
    ap.add_argument("--docs", type=int, default=1000, help="synthetic documents (default 1000)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    opts = ap.parse_args()
    res: dict[str, Any] = {"docs": opts.docs, "rss_method": RSS_METHOD, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench_index_") as tmp_s:
        tmp = Path(tmp_s)
        res["seeds_cold"] = ingest(REPO / "seeds", tmp / "idx_seeds")
        corpus = tmp / "corpus"
        corpus.mkdir()
        res["corpus_words"] = make_corpus(corpus, opts.docs)
        cold = res["synthetic_cold"] = ingest(corpus, tmp / "idx_synth")
        s = cold["summary"]
        cold["chunks_per_s"] = round(s["embedded"] / s["seconds"], 1) if s["seconds"] else None
        res["synthetic_reingest"] = ingest(corpus, tmp / "idx_synth")
        res["warm_search"] = warm_search(tmp / "idx_synth")
        helps = [run_cli(["--help"], tmp / "idx_help")[0] for _ in range(5)]
        res["help"] = {"median_s": round(statistics.median(helps), 3), "runs_s": [round(h, 3) for h in helps]}
    report(res, opts.json)


def report(res: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(res, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    sc, cold, re_, ws, hp = (res[k] for k in ("seeds_cold", "synthetic_cold", "synthetic_reingest", "warm_search",
                                               "help"))
    n = res["docs"]
    ok = {True: "[green]ok[/]", False: "[red]MISS[/]"}
    rows: list[tuple[str, str, str, str]] = [
        ("seeds cold ingest wall", f"{sc['wall_s']} s", "< 10 s", ok[sc["wall_s"] < 10]),
        ("  in-process ingest / startup+imports", f"{sc['summary']['seconds']} s / {sc['startup_s']} s", "", ""),
        ("  seeds docs / chunks embedded", f"{sc['summary']['documents']} / {sc['summary']['embedded']}", "", ""),
        ("  peak RSS", f"{sc['peak_rss_mb']} MB", "", ""),
        (f"synthetic cold ingest wall ({n} docs, {res['corpus_words']:,} words)", f"{cold['wall_s']} s", "", ""),
        ("  in-process ingest / startup+imports", f"{cold['summary']['seconds']} s / {cold['startup_s']} s", "", ""),
        ("  chunks embedded", str(cold["summary"]["embedded"]), "", ""),
        ("  chunks embedded per second", str(cold["chunks_per_s"]), "", ""),
        ("  peak RSS", f"{cold['peak_rss_mb']} MB", "", ""),
        ("unchanged re-ingest wall", f"{re_['wall_s']} s", "", ""),
        ("  embedded / skipped", f"{re_['summary']['embedded']} / {re_['summary']['skipped']}", "embeds 0",
         ok[re_["summary"]["embedded"] == 0]),
        ("  peak RSS", f"{re_['peak_rss_mb']} MB", "", ""),
        (f"warm search p50 ({ws['chunks']} chunks, 100 queries, k=5)", f"{ws['p50_ms']} ms",
         "< 50 ms at 1,000 docs", ok[ws["p50_ms"] < 50]),
        ("  p95 / max", f"{ws['p95_ms']} ms / {ws['max_ms']} ms", "", ""),
        ("  Retriever build / first query", f"{ws['retriever_build_s']} s / {ws['first_query_ms']} ms", "", ""),
        ("briefing --help median of 5", f"{hp['median_s']} s", "< 1 s", ok[hp["median_s"] < 1]),
        ("  runs", ", ".join(f"{h}" for h in hp["runs_s"]), "", ""),
    ]
    table = Table(title=f"bench_index ({res['cpus']} CPUs; peak RSS via {res['rss_method']})")
    for col in ("measure", "value", "target", ""):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console(width=max(120, Console().width)).print(table)


if __name__ == "__main__":
    main()
