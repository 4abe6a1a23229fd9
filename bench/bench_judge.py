"""Support-judge candidates side by side: balanced accuracy on labelled claim/evidence pairs, and ms a pair.

Run on a quiet machine: `.venv/bin/python bench/bench_judge.py [--pairs FILE ...] [--candidates lexical,llm]
[--sample N] [--json]`. Default pairs: the project's `eval/judge_set.jsonl` plus, when `../shared` is beside the
repository, the third-party development sets (Symmetric FEVER `claims-dev/claims.jsonl`, WiCE dev).

Candidates:
- `lexical`: the product's judge (`assistant.verify.SupportJudge`), microseconds a pair;
- `llm`: the local model asked a constrained question ("does the evidence alone state all of the claim?",
  answer `supported` / `not supported` under a JSON schema), on the product's own backend. Seconds a pair on
  2 cores, so `--sample N` (N pairs spread evenly, the same every run) keeps it bounded; pairs whose evidence is
  longer than `--max-evidence-chars` are left out for it and counted. Besides its verdicts it records the
  log-odds of "supported" over "not" where the model wrote its verdict (`Backend.scored`) and reports
  `by_margin`: balanced accuracy when a pair counts as supported above each threshold. A threshold read off one
  file is only trusted once it holds on another.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from assistant.config import REPO_ROOT, Settings
from assistant.evaluation import Pair, agreement, evenly, judge_pairs, read_pairs
from assistant.llm import Message, get_backend
from assistant.verify import SupportJudge

SHARED = REPO_ROOT.parent / "shared" / "corpora" / "claims-dev"
DEFAULT_PAIRS = [REPO_ROOT / "eval" / "judge_set.jsonl", SHARED / "claims.jsonl",
                 SHARED / "wice" / "wice_claim_dev.jsonl"]
SYSTEM = ("You check one claim against one evidence text. Answer `supported` only if the evidence alone states "
          "everything the claim says; answer `not supported` if any part of the claim is missing from the evidence or "
          "contradicts it. Judge only from the evidence, never from what you know.")
SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string", "enum": ["supported", "not supported"]}},
          "required": ["verdict"], "additionalProperties": False}


def lexical(pairs: list[Pair]) -> dict[str, Any]:
    report = judge_pairs(SupportJudge(), pairs)
    return {k: v for k, v in report.items() if k not in ("judge", "verdicts")}


def llm(pairs: list[Pair], max_chars: int) -> dict[str, Any]:
    cfg = Settings()
    backend = get_backend(cfg)
    usable = [p for p in pairs if len(p[1]) <= max_chars]
    verdicts, margins = [], []
    t0 = time.perf_counter()
    for claim, evidence, _, _ in usable:
        messages: list[Message] = [{"role": "system", "content": SYSTEM},
                                   {"role": "user", "content": f"Evidence: {evidence}\n\nClaim: {claim}"}]
        raw, scores = backend.scored(messages, SCHEMA, ("supported", "not"))
        try:
            verdicts.append(json.loads(raw)["verdict"] == "supported")
        except (ValueError, KeyError, TypeError):
            verdicts.append(False)
        margins.append(scores["supported"] - scores["not"] if scores else (1.0 if verdicts[-1] else -1.0))
    took = time.perf_counter() - t0
    by_margin = {t: agreement([m > t for m in margins], usable).get("balanced_accuracy")
                 for t in (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)}
    return {"pairs": len(usable), "left_out_long_evidence": len(pairs) - len(usable), "backend": backend.name,
            "model": backend.model, "ms_per_pair": round(1000 * took / max(1, len(usable)), 1),
            **agreement(verdicts, usable), "by_margin": by_margin}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=Path, nargs="*", default=None)
    ap.add_argument("--candidates", default="lexical")
    ap.add_argument("--sample", type=int, default=None, help="pairs per file for the llm candidate")
    ap.add_argument("--max-evidence-chars", type=int, default=1500)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    files = args.pairs or [p for p in DEFAULT_PAIRS if p.exists()]
    report: dict[str, dict[str, Any]] = {}
    for path in files:
        pairs = read_pairs(path)
        for name in args.candidates.split(","):
            if name == "lexical":
                result = lexical(pairs)
            elif name == "llm":
                result = llm(evenly(pairs, args.sample), args.max_evidence_chars)
            else:
                raise SystemExit(f"unknown candidate {name!r}: lexical or llm")
            report[f"{path.name}:{name}"] = result
            if not args.json:
                print(f"{path.name:28} {name:8} " + " ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
