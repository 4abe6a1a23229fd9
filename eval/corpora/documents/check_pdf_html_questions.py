#!/usr/bin/env python3
"""Verify pdf_html_questions.jsonl against the files in pdf/ and html/.

For every answerable question, each support quote must occur on the stated page of the PDF
(as extracted by poppler's `pdftotext`, 1-based physical page index, not the printed page label)
or anywhere in the visible text of the HTML file, after normalising whitespace, case and curly quotes;
and one of the answers must occur on the cited page(s).  Image-only pages (kind "ocr") are skipped.
Needs `pdftotext` (Debian package poppler-utils).  Usage: python3 check_pdf_html_questions.py
"""
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

HERE = Path(__file__).resolve().parent


def norm(s):
    for a, b in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u00ad", "")):
        s = s.replace(a, b)
    return " ".join(s.split()).lower()


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.out, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")
        self.out.append(" ")

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style")
        self.out.append(" ")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def page_text(doc, page):
    if doc.endswith(".pdf"):
        return subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(HERE / "docs" / doc), "-"],
                              capture_output=True, text=True, check=True).stdout
    p = _Text()
    p.feed((HERE / "docs" / doc).read_text(encoding="utf-8"))
    return "".join(p.out)


def main():
    bad = 0
    rows = [json.loads(l) for l in (HERE / "pdf_html_questions.jsonl").read_text(encoding="utf-8").splitlines() if l]
    for r in rows:
        if not r["answerable"] or r["kind"] == "ocr":
            continue
        texts = []
        for s in r["support"]:
            t = norm(page_text(s["doc"], s["page"]))
            texts.append(t)
            if norm(s["quote"]) not in t:
                print(f"{r['id']}: quote not found on {s['doc']} page {s['page']}: {s['quote']!r}")
                bad += 1
        if not any(norm(a) in " ".join(texts) for a in r["answers"]):
            print(f"{r['id']}: no answer string on the cited page(s)")
            bad += 1
    print(f"{len(rows)} questions checked, {bad} problems")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
