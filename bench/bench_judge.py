"""Support-judge candidates side by side: balanced accuracy on labelled claim/evidence pairs, and ms a pair.

Run on a quiet machine: `.venv/bin/python bench/bench_judge.py [--pairs FILE ...] [--candidates lexical,llm]
[--sample N] [--json]`. Default pairs: the project's `eval/judge_set.jsonl` plus, when `../shared` is beside the
repository, the third-party development sets (Symmetric FEVER `claims-dev/claims.jsonl`, WiCE dev).

Candidates:
- `lexical`: the product's judge (`assistant.verify.SupportJudge`), microseconds a pair;
- `llm`: the product's model judge (`assistant.verify.ModelJudge`: the local model asked whether the evidence
  alone states all of the claim, under a JSON schema), on the product's own backend. Seconds a pair on 2 cores,
  so `--sample N` (N pairs spread evenly, the same every run) keeps it bounded; evidence longer than
  `JUDGE_EVIDENCE_CHARS` is cut to the sentences closest to the claim, as the judge does (counted). Its score is
  the log-odds of "supported" over "not"; `by_margin` gives balanced accuracy when a pair counts as supported
  above each threshold. A threshold read off one file is only trusted once it holds on another. `--dump FILE`
  writes the per-pair scores for offline study.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from assistant.config import REPO_ROOT, Settings
from assistant.evaluation import Pair, agreement, evenly, judge_pairs, read_pairs
from assistant.llm import get_backend
from assistant.verify import JUDGE_EVIDENCE_CHARS, ModelJudge, SupportJudge

SHARED = REPO_ROOT.parent / "shared" / "corpora" / "claims-dev"
DEFAULT_PAIRS = [REPO_ROOT / "eval" / "judge_set.jsonl", SHARED / "claims.jsonl",
                 SHARED / "wice" / "wice_claim_dev.jsonl"]


def lexical(pairs: list[Pair]) -> dict[str, Any]:
    report = judge_pairs(SupportJudge(), pairs)
    return {k: v for k, v in report.items() if k not in ("judge", "verdicts")}


def llm(pairs: list[Pair], dump: list[dict[str, Any]]) -> dict[str, Any]:
    judge = ModelJudge(get_backend(Settings()))
    report = judge_pairs(judge, pairs)
    verdicts = [v["supported"] for v in report["verdicts"]]
    margins = [v["score"] for v in report["verdicts"]]
    dump.extend({"claim": claim, "evidence": evidence, "label": label, "verdict": v["supported"],
                 "margin": v["score"], "reason": v["reason"]}
                for (claim, evidence, _, label), v in zip(pairs, report["verdicts"], strict=True))
    by_margin = {t: agreement([m > t for m in margins], pairs).get("balanced_accuracy")
                 for t in (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)}
    return {"pairs": len(pairs), "judge": judge.name, "ms_per_pair": report["ms_per_pair"],
            "evidence_focused": sum(len(p[1]) > JUDGE_EVIDENCE_CHARS for p in pairs),
            **agreement(verdicts, pairs), "by_margin": by_margin}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=Path, nargs="*", default=None)
    ap.add_argument("--candidates", default="lexical")
    ap.add_argument("--sample", type=int, default=None, help="pairs per file for the llm candidate")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--dump", type=Path, default=None, help="write the llm candidate's per-pair verdicts and margins "
                                                               "(JSONL) for offline threshold and ensemble study")
    args = ap.parse_args()
    files = args.pairs or [p for p in DEFAULT_PAIRS if p.exists()]
    report: dict[str, dict[str, Any]] = {}
    for path in files:
        pairs = read_pairs(path)
        for name in args.candidates.split(","):
            if name == "lexical":
                result = lexical(pairs)
            elif name == "llm":
                dumped: list[dict[str, Any]] = []
                result = llm(evenly(pairs, args.sample), dumped)
                if args.dump:
                    with args.dump.open("a", encoding="utf-8") as fh:
                        fh.writelines(json.dumps({"file": path.name, **row}) + "\n" for row in dumped)
            else:
                raise SystemExit(f"unknown candidate {name!r}: lexical or llm")
            report[f"{path.name}:{name}"] = result
            if not args.json:
                print(f"{path.name:28} {name:8} " + " ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
