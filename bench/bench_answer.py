"""Answer benchmark: time to first token, total time, tokens/s, peak RSS, and our overhead
against a bare llama.cpp call with the identical prompt, schema and settings.

Run on a quiet machine: `.venv/bin/python bench/bench_answer.py [--runtime all|auto|llama-server|xllamacpp] [--json]`.
`all` (default) benchmarks, on identical work, every llama.cpp runtime that runs on this CPU (as measured by
the product's own runtime check) and reports which one the product picks, with the CPU's model and flags.
Fairness: llama.cpp keeps earlier prompts in RAM (`prompt_cache_mb`), so a bare call re-sending
a prompt our answer already sent would skip its prompt processing. The benchmark turns that cache
off; all our answers run first, then all bare calls in the same order, so each call starts from
the same slot state (system prompt cached, question not). `inner_overhead_ratio` also gives, per
answer, (total - answer's model call) / answer's model call from inside the same request; `verify_share` is the part
of the answer time spent checking after generation (the word-level checks and the model's premise check).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant import runtimes
from assistant.answer import Answerer, answer_messages, answer_schema, select_sentences
from assistant.config import REPO_ROOT, Settings
from assistant.indexing import ingest
from assistant.llm import EmbeddedBackend, Stats, notice

QUESTIONS = [
    "How many individuals and organizations did the US sanction?",
    "Who is Oleg Kozhemyako?",
    "Which North Korean minister led the talks?",
    "What did the South Korean Unification Minister say?",
    "What areas did Kozhemyako hope to expand cooperation in?",
    "What did the National Intelligence Service detect?",
    "Did Russia and North Korea deny the weapons transfer?",
    "Why were shipping companies sanctioned?",
    "What did North Korea offer to help rebuild?",
    "What is the population of Pyongyang?",
    "What level of cooperation did the talks aim for?",
    "When did KCNA report the meeting?",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def bare_call(backend: EmbeddedBackend, answerer: Answerer, question: str) -> float:
    """The same retrieval output and request, straight through llama.cpp: no streaming parse, no checks."""
    passages = answerer.retriever.search(question, answerer.cfg.k)
    sents = select_sentences(passages, question, answerer.cfg.max_prompt_sentences)
    t0 = time.perf_counter()
    "".join(backend.stream(answer_messages(question, sents), answer_schema(len(sents)),
                           answerer.cfg.max_answer_tokens, Stats()))
    return time.perf_counter() - t0


def server_peak_rss_mb(backend: EmbeddedBackend) -> int | None:
    """Peak RSS of the llama-server child (the model lives there, not in this process)."""
    process = getattr(backend, "process", None)
    if process is None:
        return None
    status = Path(f"/proc/{process.proc.pid}/status").read_text()
    return round(int(status.split("VmHWM:")[1].split()[0]) / 1024)


def bench_runtime(runtime: str, index_dir: Path) -> dict[str, Any]:
    """All questions through the product, then the same requests bare, on one runtime."""
    cfg = Settings(index_dir=index_dir, backend="embedded", embedded_runtime=runtime, prompt_cache_mb=0)
    t0 = time.perf_counter()
    backend = EmbeddedBackend(cfg)
    load_s = time.perf_counter() - t0
    answerer = Answerer(cfg, backend=backend)
    answerer.ask("Warm-up: who met in Pyongyang?")
    ours, bare = [], []
    rows: list[dict[str, Any]] = []
    for q in QUESTIONS:
        a = answerer.ask(q)
        ours.append(a.timings["total_s"])
        rows.append({"question": q, "refused": a.refused, **a.timings})
    for q in QUESTIONS:
        bare.append(bare_call(backend, answerer, q))
    model_rss_mb = server_peak_rss_mb(backend)
    first = [r["first_token_s"] for r in rows]
    total = [r["total_s"] for r in rows]
    result = {
        "model_load_s": round(load_s, 2),
        "questions": len(rows),
        "first_token_p50_s": pct(first, 0.5), "first_token_p95_s": pct(first, 0.95),
        "total_p50_s": pct(total, 0.5), "total_p95_s": pct(total, 0.95),
        "prompt_tokens_mean": round(statistics.mean(r["prompt_tokens"] for r in rows)),
        "cached_tokens_mean": round(statistics.mean(r["cached_tokens"] for r in rows)),
        "prompt_tok_per_s_mean": round(statistics.mean(r["prompt_tok_per_s"] for r in rows), 1),
        "gen_tok_per_s_mean": round(statistics.mean(r["gen_tok_per_s"] for r in rows), 1),
        "runtime": backend.runtime,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "llama_server_peak_rss_mb": model_rss_mb,
        "bare_total_p50_s": pct(bare, 0.5),
        "overhead_ratio": round(sum(ours) / sum(bare) - 1, 3),
        "inner_overhead_ratio": round(sum(r["total_s"] - r["llm_s"] for r in rows) / sum(r["llm_s"] for r in rows), 3),
        "verify_share": round(sum(r["verify_s"] for r in rows) / sum(total), 3),
        "verify_p50_s": pct([r["verify_s"] for r in rows], 0.5),
        "targets": "first token p50 < 6 s; total p50 < 20 s; overhead < 10%",
        "rows": rows,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--runtime", choices=["all", "auto", "llama-server", "xllamacpp"], default="all")
    args = parser.parse_args()
    base = Settings(index_dir=Path("unused"), backend="embedded")
    choice = runtimes.choose(base, base.embedded_model, notice)
    working = [p.runtime for p in choice.probes.values() if p.status == "works"]
    todo = {"all": working, "auto": [choice.runtime]}.get(args.runtime, [args.runtime])
    cpu = runtimes.cpu_info()
    with tempfile.TemporaryDirectory() as tmp:
        ingest([REPO_ROOT / "seeds"], Settings(index_dir=Path(tmp) / "index"))
        results = [bench_runtime(runtime, Path(tmp) / "index") for runtime in todo]
    summary = {"cpu": cpu.model, "cpu_flags": list(cpu.flags), "picked": choice.runtime, "why": choice.reason,
               "runtimes": {name: p.describe() for name, p in choice.probes.items()}, "results": results}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    for key in ("cpu", "cpu_flags", "picked", "why", "runtimes"):
        print(f"{key:24} {summary[key]}")
    for result in results:
        print()
        for key, value in result.items():
            if key != "rows":
                print(f"{key:24} {value}")
        for r in result["rows"]:
            print(f"  {r['first_token_s']:6.2f} {r['total_s']:6.2f}  refused={r['refused']!s:5}  {r['question']}")


if __name__ == "__main__":
    main()
