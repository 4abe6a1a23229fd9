"""Growth of `bench_index.py` results with corpus size, and a projection to a larger corpus (run on demand).

    .venv/bin/python bench/index_growth.py RUN_10K.json RUN_30K.json RUN_100K.json [--to 1000000] [--json]

Each input is the `--json` output of one `bench_index.py` run. Every measure is fitted with a straight line in
the number of passages (least squares; two runs give the line through them) and read off at `--to`. A line is
the conservative choice here: ingest time, disk and the HNSW graph grow linearly, while search latency grows
more slowly than linearly (HNSW is logarithmic, BM25 posting lists grow with the corpus but are cut by
`max_terms`), so a latency projected by a line is an upper estimate. Targets are the issue's, at 100k passages:
a run at 80k-120k passages is judged on its measurement, otherwise on the fitted line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

MEASURES = {  # key: (unit, target at 100k passages or None)
    "ingest_s": ("s", None),
    "reingest_unchanged_s": ("s", 60.0),
    "cold_search_s": ("s", 2.0),
    "search_p50_ms": ("ms", 50.0),
    "search_p95_ms": ("ms", 150.0),
    "app_rss_mb": ("MB", 1024.0),
    "cold_search_rss_mb": ("MB", None),
    "ingest_peak_rss_mb": ("MB", None),
    "lexical_index_mb": ("MB", None),
    "dense_index_mb": ("MB", None),
}


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line through (passages, value) points."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0
    return my - slope * mx, slope


def project(runs: list[dict[str, Any]], to: int) -> list[dict[str, Any]]:
    rows = []
    for key, (unit, target) in MEASURES.items():
        points = [(float(r["passages"]), float(r[key])) for r in runs if r.get(key) is not None]
        if len(points) < 2:
            continue
        a, b = fit(points)
        near = [y for x, y in points if 80_000 <= x <= 120_000]  # a run at about 100k: its measurement decides
        at_100k = near[0] if near else a + b * 100_000
        rows.append({"measure": key, "unit": unit, "measured": {int(x): y for x, y in points},
                     "per_100k_passages": round(b * 100_000, 3), f"projected_at_{to}": round(a + b * to, 1),
                     "target_at_100k": target, "meets_target_at_100k": None if target is None else at_100k <= target})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description="Fit bench_index runs against corpus size and project.")
    ap.add_argument("runs", nargs="+", type=Path, help="bench_index.py --json outputs (two or more sizes)")
    ap.add_argument("--to", type=int, default=1_000_000, help="project to this many passages (1,000,000)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    opts = ap.parse_args()
    try:
        runs = [json.loads(p.read_text(encoding="utf-8")) for p in opts.runs]
    except (OSError, ValueError) as exc:
        sys.exit(f"cannot read a run: {exc}")
    if len({r.get("passages") for r in runs}) < 2:
        sys.exit("need runs at two or more corpus sizes")
    rows = project(sorted(runs, key=lambda r: r["passages"]), opts.to)
    if opts.json:
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bench_index growth, projected to {opts.to:,} passages (straight-line fit)")
    for col in ("measure", "measured (passages: value)", "per 100k", f"at {opts.to:,}", "target at 100k"):
        table.add_column(col)
    for r in rows:
        measured = ", ".join(f"{n:,}: {v:g}" for n, v in r["measured"].items())
        verdict = "met" if r["meets_target_at_100k"] else "MISSED"
        target = "" if r["target_at_100k"] is None else f"{r['target_at_100k']:g} ({verdict})"
        table.add_row(r["measure"], measured, f"{r['per_100k_passages']:g} {r['unit']}",
                      f"{r[f'projected_at_{opts.to}']:g} {r['unit']}", target)
    Console(width=max(140, Console().width)).print(table)


if __name__ == "__main__":
    main()
