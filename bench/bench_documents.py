"""Document benchmark: PDF text-layer and OCR pages per second, the 82-page GAO report from cold (extraction
plus embeddings, a fresh process), a long generated PDF's peak memory, and page-image render latency.

Run on a quiet machine: `.venv/bin/python bench/bench_documents.py [--pages 1000] [--json]`.
Targets (issue 12): GAO-07-283 from cold in under 30 s including embeddings; memory bounded on 1,000 pages.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.config import REPO_ROOT
from assistant.ingest import load

DOCS = REPO_ROOT / "eval" / "corpora" / "documents" / "docs"
GAO = DOCS / "pdf" / "gao_07_283_crude_oil_peak.pdf"
SCAN = DOCS / "pdf" / "scanned_huckleberry_finn_p22.pdf"
BIG = 10**10
PLACES = ("harbour", "canal", "river port", "dry dock", "ferry pier", "grain terminal", "oil jetty", "marina")
VERBS = ("counted", "inspected", "cleared", "turned away", "refuelled", "towed", "registered")


def text_pages_per_s() -> float:
    pages, seconds = 0, 0.0
    for pdf in sorted((DOCS / "pdf").glob("*.pdf")):
        if pdf == SCAN:
            continue
        t0 = time.perf_counter()
        pages += len(load(pdf, BIG).pages)
        seconds += time.perf_counter() - t0
    return round(pages / seconds, 1)


def ocr_s_per_page() -> float:
    t0 = time.perf_counter()
    load(SCAN, BIG)
    return round(time.perf_counter() - t0, 2)


def cold_ingest(pdf: Path) -> dict[str, Any]:
    """A fresh `briefing ingest` process on one PDF into an empty index: wall time and its own peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        shutil.copy(pdf, folder / pdf.name)
        env = {**os.environ, "BRIEFING_INDEX_DIR": str(Path(tmp) / "index")}
        code = ("import resource, runpy, sys; sys.argv = ['briefing', 'ingest', '--json', sys.argv[1]]\n"
                "try:\n    runpy.run_module('assistant.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
                "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env,
                              check=True)
        wall = time.perf_counter() - t0
    report = json.loads(done.stdout)
    peak = int(done.stderr.rsplit("PEAK_KB", 1)[1].split()[0])
    return {"wall_s": round(wall, 2), "chunks": report["chunks"], "pages": report["files"][0].get("pages"),
            "peak_rss_mb": round(peak / 1024)}


def long_pdf(path: Path, pages: int) -> Path:
    """A generated report of `pages` pages (a running header, three paragraphs a page, wording varied)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for n in range(1, pages + 1):
        pdf.add_page()
        pdf.cell(0, 6, "Generated benchmark report", new_x="LMARGIN", new_y="NEXT")
        for p in range(3):
            place, verb = PLACES[(n + p) % len(PLACES)], VERBS[(n * 3 + p) % len(VERBS)]
            pdf.multi_cell(0, 6, f"At the {place} the inspectors {verb} {n * 7 + p} vessels during week {n}; the "
                                 f"committee for the {PLACES[(n + 2 * p) % len(PLACES)]} {VERBS[p]} the budget.",
                           new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def render_latency() -> dict[str, float]:
    from assistant.pages import render_page

    doc = load(GAO, BIG)
    quotes = []
    for number, page in enumerate(doc.pages[5:25], start=6):
        text = doc.text[page.start:page.end].strip()
        quotes.append((number, text[:80]))
    with tempfile.TemporaryDirectory() as tmp:
        cold, warm = [], []
        for number, quote in quotes:
            t0 = time.perf_counter()
            render_page(GAO, number, quote, Path(tmp))
            cold.append(time.perf_counter() - t0)
        for number, quote in quotes:
            t0 = time.perf_counter()
            render_page(GAO, number, quote, Path(tmp))
            warm.append(time.perf_counter() - t0)
    return {"render_uncached_p50_ms": round(statistics.median(cold) * 1000, 1),
            "render_cached_p50_ms": round(statistics.median(warm) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=1000, help="pages of the generated long PDF")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"text_layer_pages_per_s": text_pages_per_s(), "ocr_s_per_page": ocr_s_per_page()}
    result["gao_cold"] = cold_ingest(GAO)
    with tempfile.TemporaryDirectory() as tmp:
        result[f"generated_{args.pages}_pages"] = cold_ingest(long_pdf(Path(tmp) / "long.pdf", args.pages))
    result.update(render_latency())
    result["targets"] = "GAO cold ingest < 30 s incl. embeddings; 1,000-page PDF with bounded memory"
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:28} {value}")


if __name__ == "__main__":
    main()
