"""Loaders for the analyst's real documents: PDF (text layer and scanned), saved web pages, Word files.

Constructed documents (fpdf2, python-docx, hand-written HTML) test each rule; the real PDFs and pages in
eval/corpora/documents (public-domain U.S. government reports, CC BY-SA Wikipedia pages) test that the
labelled quotes land on their labelled pages.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

from assistant.answer import Footnote
from assistant.ingest import IngestError, discover, load
from assistant.loaders.pdf import _garbage
from assistant.store import page_at

DOCS = ROOT / "eval" / "corpora" / "documents"
BIG = 10**9


def norm(text: str) -> str:
    """Whitespace, case, curly quotes and line-end hyphenation normalised (how the issue checks quotes)."""
    for a, b in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u00ad", "")):
        text = text.replace(a, b)
    return " ".join(text.split()).lower().replace("-", "")


def report_pdf(path: Path, pages: int = 3) -> Path:
    """A report with a running header, a cover page, body pages numbered from 1 in the footer, and a
    word hyphenated across a line end."""
    from fpdf import FPDF

    class Report(FPDF):
        def header(self) -> None:
            self.set_font("Helvetica", size=9)
            self.cell(0, 6, "Harbour Traffic Review", new_x="LMARGIN", new_y="NEXT")

        def footer(self) -> None:
            if self.page_no() > 1:
                self.set_y(-15)
                self.set_font("Helvetica", size=9)
                self.cell(0, 6, f"Page {self.page_no() - 1} Harbour Traffic Review 2026", align="C")

    pdf = Report()
    pdf.set_font("Helvetica", size=11)
    for n in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        if n == 1:
            pdf.cell(0, 10, "Cover", new_x="LMARGIN", new_y="NEXT")
            continue
        word = ["", "", "harbour", "canal", "river"][n % 5]
        for line in (f"Section {n} on the {word}", f"The {word} authority counted {n * 100} container ships in the",
                     f"quarter, and the {word} committee reviewed the trans-",
                     f"portation budget for the {word} in detail before it approved the plan.",
                     f"A short closing line about the {word}."):
            pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def titled_pdf(path: Path, title_size: int) -> Path:
    """Two pages and no metadata title: the title, set in `title_size` type on page 1, is also the running header
    of every page (as reports print it), above a dated line and the body."""
    from fpdf import FPDF

    class Titled(FPDF):
        def header(self) -> None:
            self.set_font("Helvetica", size=9)
            self.cell(0, 6, "Harbour Traffic Review", new_x="LMARGIN", new_y="NEXT")

    pdf = Titled()
    for n in (1, 2):
        pdf.add_page()
        if n == 1:
            pdf.set_font("Helvetica", size=title_size)
            pdf.cell(0, 10, "Harbour Traffic Review", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", size=11)
            pdf.cell(0, 6, "Updated March 4, 2026 Port Authority", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        for line in (f"The authority counted {n}00 container ships in the quarter.", "The committee met twice.",
                     "It approved the budget."):
            pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def test_a_pdf_without_a_metadata_title_is_titled_by_its_largest_type(tmp_path: Path) -> None:
    """The running header that repeats the title is page furniture, so the text alone offered the dated line as the
    title; the largest type on page 1 is the title. Set in one size throughout, the sizes say nothing and the first
    heading-like content line is taken, as before."""
    assert load(titled_pdf(tmp_path / "big.pdf", 20), BIG).title == "Harbour Traffic Review"
    assert load(titled_pdf(tmp_path / "flat.pdf", 11), BIG).title == "Updated March 4, 2026 Port Authority"


def test_pdf_text_layer_pages_furniture_and_hyphenation(tmp_path: Path) -> None:
    doc = load(report_pdf(tmp_path / "report.pdf"), BIG)
    assert doc.kind == "pdf" and len(doc.pages) == 3 and doc.extracted
    page2 = doc.text[doc.pages[1].start:doc.pages[1].end]
    assert "counted 200 container ships in the quarter, and the harbour committee" in page2  # lines joined
    assert "transportation budget" in page2 and "trans-" not in page2  # hyphenation joined
    content = " ".join(doc.text[a:b] for a, b in doc.content_spans)
    assert "Harbour Traffic Review" not in content and "Page 1" not in content  # furniture, not content
    assert "Harbour Traffic Review" in doc.text  # ... but kept in the stored text
    assert [p.label for p in doc.pages] == [None, "1", "2"]  # the printed body numbering
    assert doc.pages[0].end <= doc.pages[1].start and doc.pages[-1].end <= len(doc.text)


def test_real_pdfs_and_pages_put_every_labelled_quote_on_its_page() -> None:
    rows = [json.loads(line) for line in (DOCS / "pdf_html_questions.jsonl").read_text().splitlines() if line]
    loaded: dict[str, object] = {}
    checked = 0
    for row in rows:
        for support in row.get("support") or []:
            if row["kind"] == "ocr":
                continue
            doc = loaded.setdefault(support["doc"], load(DOCS / "docs" / support["doc"], BIG))
            if support["page"]:
                page = doc.pages[support["page"] - 1]  # type: ignore[attr-defined]
                text = doc.text[page.start:page.end]  # type: ignore[attr-defined]
            else:
                text = doc.text  # type: ignore[attr-defined]
            assert norm(support["quote"]) in norm(text), (row["id"], support)
            checked += 1
    assert checked >= 20


def test_scanned_page_is_read_by_ocr_and_marked(tmp_path: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    scan = DOCS / "docs" / "pdf" / "scanned_huckleberry_finn_p22.pdf"
    doc = load(scan, BIG, lambda p, n, what: seen.append((p, n, what)))
    assert seen == [(1, 1, "OCR")] and doc.pages[0].ocr
    assert "went tiptoeing along a path" in norm(doc.text)


def test_scanned_page_without_ocr_engine_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(IngestError, match=r"page 1 is a scanned image; OCR needs Debian's tesseract-ocr"):
        load(DOCS / "docs" / "pdf" / "scanned_huckleberry_finn_p22.pdf", BIG)


def test_bad_pdfs_are_one_line_errors(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    src = report_pdf(tmp_path / "report.pdf")
    writer = PdfWriter(clone_from=str(src))
    writer.encrypt("secret", algorithm="RC4-128")
    writer.write(str(tmp_path / "locked.pdf"))
    with pytest.raises(IngestError, match="encrypted; it needs its password"):
        load(tmp_path / "locked.pdf", BIG)
    (tmp_path / "cut.pdf").write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    with pytest.raises(IngestError, match="not a readable PDF"):
        load(tmp_path / "cut.pdf", BIG)
    (tmp_path / "none.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj "
                                        b"<< /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>")
    with pytest.raises(IngestError, match="(no pages|not a readable PDF)"):
        load(tmp_path / "none.pdf", BIG)
    with pytest.raises(IngestError, match=r"over the 0.001 MB limit for .pdf files \(raise BRIEFING_MAX_DOCUMENT_MB\)"):
        load(src, 1000)


def test_garbage_text_layer_is_detected() -> None:
    """Unmapped glyphs (U+FFFD, private use, control codes) instead of letters, or a long run drawn from a handful
    of characters: treat the page as scanned. A table of figures is still text."""
    assert _garbage("\ufffd\ufffd \ue001\ue002\ue003 ab")
    assert _garbage("ÿÿÿ ÿÿ " * 10)
    assert not _garbage("A normal sentence with one odd glyph \ufffd in it.")
    assert not _garbage("1,234 5,678 9,012 3,456 7,890 1,234 5,678 9,012 3,456 7,890")
    assert not _garbage("   ")


def _with_text_layer(source: Path, text: str, out: Path) -> Path:
    """`source` with an invisible-to-the-eye but extractable text object added to its first page, as a PDF whose
    font has no usable character map leaves behind."""
    import ctypes

    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    pdf = pdfium.PdfDocument(source)
    page = pdf[0]
    obj = raw.FPDFPageObj_NewTextObj(pdf.raw, b"Helvetica", 10.0)
    buf = ctypes.create_string_buffer((text + "\x00").encode("utf-16-le"))
    raw.FPDFText_SetText(obj, ctypes.cast(buf, ctypes.POINTER(raw.FPDF_WCHAR)))
    raw.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 20, 20)
    raw.FPDFPage_InsertObject(page.raw, obj)
    raw.FPDFPage_GenerateContent(page.raw)
    pdf.save(out)
    return out


def test_a_scanned_page_under_a_garbage_text_layer_is_read_by_ocr(tmp_path: Path) -> None:
    """A page whose text layer extracts as unmapped glyphs is OCR'd like a scan, so its real words are indexed
    and the footnote says OCR; the garbage never reaches the index."""
    scan = DOCS / "docs" / "pdf" / "scanned_huckleberry_finn_p22.pdf"
    layered = _with_text_layer(scan, "\ue001\ue002\ue003 \ue010\ue011 " * 20, tmp_path / "layered.pdf")
    seen: list[tuple[int, int, str]] = []
    doc = load(layered, BIG, lambda p, n, what: seen.append((p, n, what)))
    assert seen == [(1, 1, "OCR")] and doc.pages[0].ocr
    assert "went tiptoeing along a path" in norm(doc.text) and "ÿ" not in doc.text


def test_many_page_pdf_reports_progress_per_page(tmp_path: Path) -> None:
    pages = report_pdf(tmp_path / "long.pdf", pages=300)
    seen: list[int] = []
    doc = load(pages, BIG, lambda p, n, what: seen.append(p))
    assert seen == list(range(1, 301)) and len(doc.pages) == 300
    assert doc.pages[299].label == "299"


HTML = """<!doctype html><html><head><title>Harbour report</title>
<meta name="author" content="Ana Ruiz"><meta property="article:published_time" content="2026-03-04">
<link rel="canonical" href="https://example.org/harbour"><script>var tracking = "SECRET-TRACKER";</script></head>
<body><nav><a href="/">Home</a> | <a href="/news">News menu item</a></nav>
<article><h1>Harbour report</h1>
<p>The port authority counted four hundred container ships in the first quarter of the year.</p>
<p>The committee approved the transportation budget after a long debate about dredging the channel.</p>
<table><tr><th>Quarter</th><th>Ships</th></tr><tr><td>Q1</td><td>400</td></tr></table>
</article><footer>Copyright footer text, all rights reserved</footer></body></html>"""


def test_html_main_content_and_metadata(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(HTML)
    doc = load(tmp_path / "page.html", BIG)
    assert doc.kind == "html" and doc.pages == [] and doc.url == "https://example.org/harbour"
    assert (doc.title, doc.author, doc.date) == ("Harbour report", "Ana Ruiz", "2026-03-04")
    assert "four hundred container ships" in doc.text and "Q1" in doc.text
    assert "SECRET-TRACKER" not in doc.text and "News menu item" not in doc.text


def test_html_of_only_scripts_is_refused(tmp_path: Path) -> None:
    (tmp_path / "app.htm").write_text("<html><head><script>document.write('x')</script></head><body>"
                                      "<script>render()</script><style>p{}</style></body></html>")
    with pytest.raises(IngestError, match="no readable text"):
        load(tmp_path / "app.htm", BIG)


def test_docx_paragraphs_headings_and_tables_in_order(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title, d.core_properties.author = "Harbour memo", "Ana Ruiz"
    d.add_heading("Findings", level=1)
    d.add_paragraph("The port authority counted four hundred container ships.")
    table = d.add_table(rows=2, cols=2)
    for r, (a, b) in enumerate((("Quarter", "Ships"), ("Q1", "400"))):
        table.cell(r, 0).text, table.cell(r, 1).text = a, b
    d.add_paragraph("The committee approved the budget afterwards.")
    d.save(str(tmp_path / "memo.docx"))
    doc = load(tmp_path / "memo.docx", BIG)
    assert (doc.kind, doc.title, doc.author) == ("docx", "Harbour memo", "Ana Ruiz")
    order = [doc.text.index(s) for s in ("Findings", "four hundred", "Q1 | 400", "approved the budget")]
    assert order == sorted(order)


def test_broken_docx_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "fake.docx").write_text("just text pretending")
    with pytest.raises(IngestError, match="not a Word document"):
        load(tmp_path / "fake.docx", BIG)
    with zipfile.ZipFile(tmp_path / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * 60_000_000)
    with pytest.raises(IngestError, match="zip bomb"):
        load(tmp_path / "bomb.docx", BIG)


def test_folder_listing_names_skipped_types(tmp_path: Path) -> None:
    for name in ("a.pdf", "b.HTML", "c.docx", "d.txt", "e.xlsx", "f.png", ".hidden.txt"):
        (tmp_path / name).write_text("x")
    files, problems, skipped = discover([tmp_path])
    assert [f.name for f in files] == ["a.pdf", "b.HTML", "c.docx", "d.txt"] and problems == []
    assert len(skipped) == 2 and all(re.search(r"unsupported type \.(xlsx|png)", s) for s in skipped)


def test_footnote_page_comes_from_the_page_the_quote_starts_on() -> None:
    meta = {"title": "T", "pages": json.dumps([[3, 100, "1", False], [4, 200, None, True]])}
    assert page_at(meta, 150) == (3, "1", False) and page_at(meta, 250) == (4, None, True)
    assert page_at({"pages": "[]"}, 10) == (None, None, False)
    note = Footnote.from_meta(1, "r.pdf", 210, 230, "q", meta)
    assert (note.page, note.page_label, note.ocr, note.locator()) == (4, None, True, "p. 4, OCR")
    assert Footnote.from_meta(1, "r.pdf", 120, 130, "q", meta).locator() == "p. 3 (printed 1)"
    assert Footnote.from_meta(1, "a.txt", 5, 9, "q", {}).locator() == "characters 5–9"


def test_mixed_folder_is_indexed_with_stored_text_and_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from conftest import make_settings

    from assistant.indexing import ingest
    from assistant.retrieval import Retriever

    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(DOCS / "docs" / "pdf" / "crs_IF12672_russia_nuclear_weapons.pdf", folder / "russia.pdf")
    shutil.copy(DOCS / "docs" / "html" / "wikipedia_national_flag_of_canada_day.html", folder / "flag.html")
    (folder / "sheet.xlsx").write_bytes(b"PK")
    cfg = make_settings(tmp_path)
    report = ingest([folder], cfg)
    status = {Path(f["file"]).name: f for f in report.files}
    assert status["russia.pdf"]["status"] == "indexed" and status["russia.pdf"]["pages"] == 3
    assert status["flag.html"]["kind"] == "html" and report.errors == []
    assert len(report.unsupported) == 1 and "sheet.xlsx: unsupported type .xlsx" in report.unsupported[0]

    retriever = Retriever(cfg)
    hit = retriever.search("How many deployed nuclear warheads does Russia have according to FAS?", 3)[0].chunk
    assert hit.doc == "russia.pdf" and hit.meta["kind"] == "pdf"
    text = retriever.index.document_text(hit.meta)
    assert text is not None and text[hit.start:hit.end] == hit.text  # offsets index the stored text exactly
    start = text.index("Russia has around 1,718 deployed nuclear")
    assert Footnote.from_meta(1, hit.doc, start, start + 10, text[start:start + 10], hit.meta).page == 1

    def no_extraction(*_: object) -> None:
        raise AssertionError("an unchanged PDF must not be extracted again")

    monkeypatch.setattr("assistant.loaders.pdf.load_pdf", no_extraction)
    again = ingest([folder], cfg)
    assert again.embedded == 0 and again.skipped == 2

    (folder / "russia.pdf").unlink()
    gone = ingest([folder], cfg)
    assert gone.removed_docs == ["russia.pdf"] and retriever.index.document_text(hit.meta) is None


def test_cited_pdf_page_is_rendered_with_the_quote_highlighted(tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    from assistant.pages import render_page

    pdf = DOCS / "docs" / "pdf" / "crs_IF12672_russia_nuclear_weapons.pdf"
    doc = load(pdf, BIG)
    start = doc.text.index("Russia has around 1,718 deployed nuclear")
    quote = doc.text[start:doc.text.index(".", start) + 1]  # spans a line break in the PDF
    image = render_page(pdf, 1, quote, tmp_path)
    assert len(image.rects) >= 2  # one run per line
    pixels = Image.open(image.path).convert("RGB")
    assert pixels.size == (image.width, image.height)
    for left, top, right, bottom in image.rects:
        assert 0 <= left < right <= image.width and 0 <= top < bottom <= image.height
        if right - left >= 4 and bottom - top >= 4:
            r, g, b = ImageStat.Stat(pixels.crop((round(left), round(top), round(right), round(bottom)))).mean
            assert r - b > 60  # yellow over the quote (white paper and black text have r == b)
    r, g, b = ImageStat.Stat(pixels.crop((0, 0, image.width, 40))).mean
    assert abs(r - b) < 5  # the rest of the page is not tinted
    assert render_page(pdf, 2, quote, tmp_path).rects == ()  # not on page 2: nothing highlighted
    again = render_page(pdf, 1, quote, tmp_path)
    assert again.path == image.path and again.rects == image.rects  # cached image reused


def test_a_long_templated_line_repeated_on_every_page_stays_content(tmp_path: Path) -> None:
    """Running headers/footers are short; a long sentence that repeats with other numbers (a templated
    report) sits at the page edge too, but it is content and must stay retrievable."""
    from fpdf import FPDF

    pdf = FPDF()
    for n in range(1, 5):
        pdf.add_page()
        pdf.set_font("Helvetica", size=7)
        pdf.cell(0, 5, f"Station {n} recorded {n * 11} ships in the quarter, {n * 3} of them tankers, and the harbour "
                       f"master reported {n} groundings and no collisions at the outer anchorage.",
                 new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(tmp_path / "templated.pdf"))
    doc = load(tmp_path / "templated.pdf", BIG)
    content = [doc.text[a:b] for a, b in doc.content_spans]
    assert len(content) == 4 and all("groundings and no collisions" in line for line in content)


def test_a_quote_on_a_scanned_page_is_highlighted_from_the_ocr_word_boxes(tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    from assistant.pages import render_page

    scan = DOCS / "docs" / "pdf" / "scanned_huckleberry_finn_p22.pdf"
    doc = load(scan, BIG)
    start = norm(doc.text).index("went tiptoeing along a path")
    quote = " ".join(doc.text.split())[start : start + 60]  # as stored, which may run over a line end
    image = render_page(scan, 1, quote, tmp_path)
    assert image.rects, "the OCR'd quote was not found among the word boxes"
    plain = render_page(scan, 1, "words that are on no page at all", tmp_path)
    assert plain.rects == ()

    def yellow(path: Path, box: tuple[float, float, float, float]) -> float:
        r, _, b = ImageStat.Stat(Image.open(path).convert("RGB").crop(tuple(round(x) for x in box))).mean
        return float(r - b)

    for left, top, right, bottom in image.rects:
        assert 0 <= left < right <= image.width and 0 <= top < bottom <= image.height
        assert yellow(image.path, (left, top, right, bottom)) - yellow(plain.path, (left, top, right, bottom)) > 30
    foot = (0, image.height - 30, image.width, image.height)
    assert abs(yellow(image.path, foot) - yellow(plain.path, foot)) < 3  # the rest of the page is as scanned
    again = render_page(scan, 1, quote, tmp_path)
    assert again.rects == image.rects  # the OCR boxes are cached with the image
