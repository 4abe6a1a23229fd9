"""Rendering of a `Brief`, apart from its composition: Markdown, HTML, PDF (Chromium, fitted to exactly one
page) and DOCX (python-docx). Page-aware footnotes ("p. 4 (printed 2), OCR") come from `Footnote.locator`, so every
format states where a quote is the same way.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from assistant.brief import Brief, BriefConflict, BriefError, SourceRow, renumber

FORMATS = (".md", ".pdf", ".docx")


# --- rendering ---------------------------------------------------------------------------------------------------


def marks(cites: Iterable[int]) -> str:
    return "".join(f"[{n}]" for n in cites)


def conflict_text(brief: Brief, c: BriefConflict, fmt: Callable[[str], str], mark: Callable[[int], str]) -> str:
    a, b = sorted(c.sides[:2], key=lambda side: brief.label(side.doc))
    return (f"{fmt(brief.label(a.doc))} reports {fmt('“…' + a.excerpt + '”')}{mark(a.citation)}; "
            f"{fmt(brief.label(b.doc))} reports {fmt('“…' + b.excerpt + '”')}{mark(b.citation)}.")


def cited_sources_text(row: SourceRow) -> str:
    if not row.cites:
        return "none stated"
    return "; ".join(" ".join(x for x in (c.outlet, c.url) if x) for c in row.cites)


NO_JUDGMENT = "No judgment passed the citation checks."
NO_CONFLICT = "No disagreement between the documents was found in the retrieved passages."
SECTION_TITLES = {
    "bluf": "Bottom line up front",
    "judgments": "Key judgments (analytic assessments, not reported facts)",
    "evidence": "Supporting evidence (reported facts)",
    "conflicts": "Conflicting reporting",
    "gaps": "Key assumptions and information gaps",
    "sources": "Sources",
    "notes": "Notes (exact quotes)",
}


def _md(text: str) -> str:
    return re.sub(r"([\\`*_|<>\[\]])", r"\\\1", text)


def to_markdown(brief: Brief) -> str:
    t = SECTION_TITLES
    lines = [f"# {_md(brief.title)}", "", f"*{_md(brief.date_line)}*", "", f"## {t['bluf']}", "",
             " ".join(_md(s.text) + marks(s.citations) for s in brief.bluf), "", f"## {t['judgments']}", ""]
    lines += [f"{i}. {_md(j.text)}{marks(j.citations)} {j.confidence_sentence}"
              for i, j in enumerate(brief.judgments, 1)] or [f"- {NO_JUDGMENT}"]
    lines += ["", f"## {t['evidence']}", ""] + [f"- {_md(s.text)}{marks(s.citations)}" for s in brief.evidence]
    lines += ["", f"## {t['conflicts']}", ""]
    lines += [f"- {conflict_text(brief, c, _md, lambda n: f'[{n}]')}" for c in brief.conflicts] or [
        f"- {NO_CONFLICT}"]
    lines += ["", f"## {t['gaps']}", ""]
    lines += [f"- **Assumption:** {_md(s.text)}{marks(s.citations)}" for s in brief.assumptions]
    lines += [f"- **Gap:** {_md(s.text)}{marks(s.citations)}" for s in brief.gaps]
    lines += ["", f"## {t['sources']}", "", "| Doc | Document | Outlet | Author | Date | Cites its own sources "
              "| Reliability note |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in brief.sources:
        cells = [r.label, f"{r.title} ({r.where()})", r.outlet or "not stated", r.author or "not stated",
                 r.date or "not stated", cited_sources_text(r), r.reliability]
        lines.append("| " + " | ".join(_md(c).replace("\n", " ") for c in cells) + " |")
    lines += ["", f"## {t['notes']}", ""]
    for f in brief.footnotes:
        lines.append(f"{f.n}. “{_md(f.quote)}” — {brief.label(f.doc)}, {f.doc}, {f.locator()}")
    return "\n".join(lines) + "\n"


CSS = """
@page { size: A4; margin: 11mm 13mm 10mm 13mm; }
* { box-sizing: border-box; }
html { font-family: "Liberation Sans", "DejaVu Sans", Arial, Helvetica, sans-serif; font-size: %(size).2fpt;
       line-height: 1.27; color: #15181d; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; }
.page { min-height: 274mm; display: flex; flex-direction: column; }
h1 { font-size: 1.6em; margin: 0 0 .6mm; color: #10243f; letter-spacing: -.01em; }
.dateline { color: #555; font-size: .82em; padding-bottom: 1.4mm; border-bottom: 1.4pt solid #1d3f6e;
            margin-bottom: 1.2mm; }
h2 { font-size: .8em; text-transform: uppercase; letter-spacing: .05em; color: #1d3f6e; margin: 2.1mm 0 .7mm;
     padding-bottom: .3mm; border-bottom: .4pt solid #c5cedb; }
p { margin: 0; }
.bluf { background: #eef2f8; border-left: 2.4pt solid #1d3f6e; padding: 1.2mm 2.2mm; }
ol, ul { margin: 0; padding-left: 4.6mm; }
li { margin: .35mm 0; }
sup { font-size: .68em; line-height: 0; color: #1d3f6e; font-weight: normal; }
.kj { font-weight: 600; }
.conf { color: #333; font-style: italic; }
.tag { font-size: .68em; font-weight: bold; letter-spacing: .04em; text-transform: uppercase; color: #1d3f6e; }
table { width: 100%%; border-collapse: collapse; font-size: .76em; table-layout: fixed; }
th { text-align: left; color: #1d3f6e; border-bottom: .7pt solid #1d3f6e; padding: .4mm 1mm; }
td { border-bottom: .4pt solid #d5dbe3; padding: .5mm 1mm; vertical-align: top; }
.url { word-break: break-all; color: #3b4a5e; }
.notes { margin-top: auto; padding-top: 1.6mm; }
.notes .rule { border-top: .6pt solid #8892a0; width: 35%%; margin-bottom: .8mm; }
.notes ol { font-size: %(notes).2fpt; line-height: 1.2; color: #2a2f36; columns: 2; column-gap: 5mm;
            padding-left: 0; list-style: none; }
.notes li { break-inside: avoid; margin: 0 0 .6mm; }
.where { color: #667; }
"""


def body_html(brief: Brief, quote_words: int | None = None, ref_class: str = "") -> str:
    """The brief's sections and footnotes as HTML, every piece of text escaped; shared by the printed page and the
    chat's preview, so both show the same sections and page-aware footnotes."""
    e = html.escape
    t = SECTION_TITLES
    cls = f" class='{ref_class}'" if ref_class else ""

    def sup(cites: Iterable[int]) -> str:
        return "".join(f"<sup{cls}>[{n}]</sup>" for n in cites)

    parts = [f"<h1>{e(brief.title)}</h1>", f"<div class='dateline'>{e(brief.date_line)}</div>",
             f"<h2>{e(t['bluf'])}</h2>",
             "<p class='bluf'>" + " ".join(e(s.text) + sup(s.citations) for s in brief.bluf) + "</p>",
             f"<h2>{e(t['judgments'])}</h2><ol>"]
    for j in brief.judgments:
        parts.append(f"<li><span class='kj'>{e(j.text)}</span>{sup(j.citations)} "
                     f"<span class='conf'>{e(j.confidence_sentence)}</span></li>")
    if not brief.judgments:
        parts.append(f"<li>{e(NO_JUDGMENT)}</li>")
    parts.append(f"</ol><h2>{e(t['evidence'])}</h2><ul>")
    parts += [f"<li>{e(s.text)}{sup(s.citations)}</li>" for s in brief.evidence]
    parts.append(f"</ul><h2>{e(t['conflicts'])}</h2><ul>")
    parts += [f"<li>{conflict_text(brief, c, e, lambda n: sup([n]))}</li>" for c in brief.conflicts] or [
        f"<li>{e(NO_CONFLICT)}</li>"]
    parts.append(f"</ul><h2>{e(t['gaps'])}</h2><ul>")
    parts += [f"<li><span class='tag'>Assumption</span> {e(s.text)}{sup(s.citations)}</li>"
              for s in brief.assumptions]
    parts += [f"<li><span class='tag'>Gap</span> {e(s.text)}{sup(s.citations)}</li>" for s in brief.gaps]
    parts.append(f"</ul><h2>{e(t['sources'])}</h2><table><colgroup><col style='width:5%'><col style='width:25%'>"
                 "<col style='width:7%'><col style='width:10%'><col style='width:7%'><col style='width:30%'>"
                 "<col style='width:16%'></colgroup><tr><th>Doc</th><th>Document</th><th>Outlet</th>"
                 "<th>Author</th><th>Date</th><th>Cites its own sources</th><th>Reliability note</th></tr>")
    for r in brief.sources:
        cites = "<br>".join(f"{e(c.outlet or '')} <span class='url'>{e(c.url or '')}</span>" for c in r.cites)
        parts.append(f"<tr><td>{e(r.label)}</td><td>{e(r.title)}<br><span class='where'>{e(r.where())}</span></td>"
                     f"<td>{e(r.outlet or 'not stated')}</td><td>{e(r.author or 'not stated')}</td>"
                     f"<td>{e(r.date or 'not stated')}</td><td>{cites or 'none stated'}</td>"
                     f"<td>{e(r.reliability)}</td></tr>")
    parts.append("</table>")
    notes = []
    for f in brief.footnotes:
        words = f.quote.split()
        shown = f.quote if quote_words is None or len(words) <= quote_words else " ".join(words[:quote_words]) + " …"
        notes.append(f"<li>[{f.n}] “{e(shown)}” <span class='where'>— {e(brief.label(f.doc))}, "
                     f"{e(f.locator())}</span></li>")
    return (f"<main>{chr(10).join(parts)}</main><div class='notes'><div class='rule'></div>"
            f"<ol>{''.join(notes)}</ol></div>")


def to_html(brief: Brief, size: float = 9.5, note_size: float = 7.0, quote_words: int | None = None) -> str:
    """A print page: sections top to bottom, footnotes pushed to the bottom of the page."""
    e = html.escape
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(brief.title)}</title>"
            f"<style>{CSS % {'size': size, 'notes': note_size}}</style></head><body><div class='page'>"
            f"{body_html(brief, quote_words)}</div></body></html>")


# --- PDF ---------------------------------------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise BriefError("PDF needs Chromium: apt-get install -y chromium (or write --out brief.md / brief.docx)")


def print_pdf(page: str, out: Path) -> None:
    """Typeset an HTML page with headless Chromium; no network, no header/footer."""
    with tempfile.TemporaryDirectory(prefix="brief-") as tmp:
        src = Path(tmp) / "brief.html"
        src.write_text(page, encoding="utf-8")
        target = Path(tmp) / "brief.pdf"
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--no-pdf-header-footer", "--no-first-run", "--disable-extensions", "--disable-sync",
               f"--user-data-dir={tmp}/profile", f"--print-to-pdf={target}", src.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise BriefError("Chromium did not finish printing the PDF within 120 s") from None
        if not target.exists() or target.stat().st_size == 0:
            tail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            raise BriefError(f"Chromium could not print the PDF: {tail[0]}")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(target), out)


def pdf_pages(path: Path) -> int:
    """Page count: `pdfinfo` (poppler-utils) when present, else the page objects of the file."""
    tool = shutil.which("pdfinfo")
    if tool:
        done = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
        m = re.search(r"^Pages:\s+(\d+)", done.stdout, re.MULTILINE)
        if m:
            return int(m.group(1))
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))


def _shrink_steps(brief: Brief) -> Iterator[tuple[str, Brief, float, float, int | None]]:
    """Ever shorter versions: tighter type first, then fewer evidence lines, then tighter wording."""
    yield "as written", brief, 9.5, 7.0, None
    yield "type 9 pt", brief, 9.0, 6.8, None
    yield "type 8.5 pt", brief, 8.5, 6.6, None
    current = brief
    while len(current.evidence) > 2:
        current = renumber(current.model_copy(update={"evidence": current.evidence[:-1]}))
        yield f"evidence cut to {len(current.evidence)} lines", current, 8.5, 6.6, None
    if len(current.judgments) > 3:
        current = renumber(current.model_copy(update={"judgments": current.judgments[:3]}))
        yield "judgments cut to 3", current, 8.5, 6.6, None
    if len(current.bluf) > 2:
        current = renumber(current.model_copy(update={"bluf": current.bluf[:2]}))
        yield "BLUF cut to 2 sentences", current, 8.5, 6.6, None
    for words in (40, 28, 20):
        yield f"footnote quotes shown to {words} words", current, 8.5, 6.4, words
    if len(current.conflicts) > 1:
        current = renumber(current.model_copy(update={"conflicts": current.conflicts[:1]}))
        yield "one conflict kept", current, 8.5, 6.4, 20
    if len(current.gaps) > 1:
        current = renumber(current.model_copy(update={"gaps": current.gaps[:1]}))
        yield "one gap kept", current, 8.5, 6.4, 20
    while len(current.evidence) > 1:
        current = renumber(current.model_copy(update={"evidence": current.evidence[:-1]}))
        yield f"evidence cut to {len(current.evidence)} line", current, 8.0, 6.2, 16


def write_pdf(brief: Brief, out: Path) -> Brief:
    """Render to PDF and shorten until it has exactly one page; return the brief as printed."""
    tried: list[str] = []
    for step, candidate, size, note_size, quote_words in _shrink_steps(brief):
        print_pdf(to_html(candidate, size, note_size, quote_words), out)
        pages = pdf_pages(out)
        if step != "as written":
            tried.append(step)
        if pages == 1:
            return candidate.model_copy(update={"pages": 1, "trimmed": tried})
    raise BriefError(f"the brief does not fit on one page even after: {', '.join(tried)}")


# --- DOCX and dispatch -------------------------------------------------------------------------------------------


def write_docx(brief: Brief, out: Path) -> None:
    try:
        import docx
        from docx.shared import Mm, Pt, RGBColor
    except ImportError:
        raise BriefError("DOCX needs python-docx: pip install python-docx (or write --out brief.md / .pdf)") from None
    d = docx.Document()
    sec = d.sections[0]
    sec.page_height, sec.page_width = Mm(297), Mm(210)
    sec.left_margin = sec.right_margin = Mm(15)
    sec.top_margin = sec.bottom_margin = Mm(12)
    d.styles["Normal"].font.name = "Liberation Sans"
    d.styles["Normal"].font.size = Pt(9.5)
    d.add_heading(brief.title, level=1)
    line = d.add_paragraph(brief.date_line)
    line.runs[0].font.color.rgb = RGBColor(0x55, 0x55, 0x55)
    t = SECTION_TITLES

    def para(text: str, cites: Iterable[int], style: str | None = None, tag: str | None = None) -> Any:
        p = d.add_paragraph(style=style)
        if tag:
            p.add_run(tag + " ").bold = True
        p.add_run(text)
        r = p.add_run(marks(cites))
        r.font.superscript = True
        return p

    d.add_heading(t["bluf"], level=2)
    p = d.add_paragraph()
    for s in brief.bluf:
        p.add_run(s.text).bold = True
        p.add_run(marks(s.citations)).font.superscript = True
        p.add_run(" ")
    d.add_heading(t["judgments"], level=2)
    for j in brief.judgments:
        p = para(j.text, j.citations, "List Number")
        p.add_run(" " + j.confidence_sentence).italic = True
    d.add_heading(t["evidence"], level=2)
    for s in brief.evidence:
        para(s.text, s.citations, "List Bullet")
    d.add_heading(t["conflicts"], level=2)
    for c in brief.conflicts:
        d.add_paragraph(conflict_text(brief, c, str, lambda n: f"[{n}]"), style="List Bullet")
    d.add_heading(t["gaps"], level=2)
    for s in brief.assumptions:
        para(s.text, s.citations, "List Bullet", "Assumption:")
    for s in brief.gaps:
        para(s.text, s.citations, "List Bullet", "Gap:")
    d.add_heading(t["sources"], level=2)
    head = ["Doc", "Document", "Outlet", "Author", "Date", "Cites its own sources", "Reliability note"]
    table = d.add_table(rows=1, cols=len(head))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, head, strict=True):
        cell.text = text
    for r in brief.sources:
        cells = table.add_row().cells
        values = [r.label, f"{r.title} ({r.where()})", r.outlet or "not stated", r.author or "not stated",
                  r.date or "not stated", cited_sources_text(r), r.reliability]
        for cell, text in zip(cells, values, strict=True):
            cell.text = text
    d.add_heading(t["notes"], level=2)
    for f in brief.footnotes:
        p = d.add_paragraph(f"[{f.n}] “{f.quote}” — {brief.label(f.doc)}, {f.doc}, {f.locator()}")
        for run in p.runs:
            run.font.size = Pt(7.5)
    out.parent.mkdir(parents=True, exist_ok=True)
    d.save(str(out))


def check_format(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise BriefError(f"unknown brief format {out.suffix or '(none)'!r} for {out}: use .md, .pdf or .docx")
    return suffix


def write(brief: Brief, out: Path) -> Brief:
    """Write the brief in the format named by the extension; returns the brief as written (PDF may trim it)."""
    suffix = check_format(out)
    if suffix == ".pdf":
        return write_pdf(brief, out)
    if suffix == ".docx":
        write_docx(brief, out)
        return brief
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_markdown(brief), encoding="utf-8")
    return brief
