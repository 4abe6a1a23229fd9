"""PDF: the text layer via pypdfium2 (OCR with tesseract where a page has none), page by page.

Why pypdfium2: on the development PDFs (CRS two-column reports, an 82-page GAO report) its text
is in reading order and every labelled quote is found on its labelled page; it reads a page in
~5 ms and exposes page labels and character boxes. The stored text is built here: lines of a
paragraph joined, words hyphenated at a line end re-joined, running headers/footers and page
numbers kept as lines of their own but outside the content spans (never retrievable), each
page's offsets recorded in a page map so every quote maps to its physical page and label.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from itertools import takewhile
from pathlib import Path
from typing import Any

from assistant.ingest import Document, IngestError, Page, PageProgress
from assistant.model_files import sha256_file

OCR_DPI = 300
OCR_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "briefing" / "ocr"
MIN_TEXT_CHARS = 20  # fewer non-space characters than this: an image-only (scanned) page
FEW_CHARS_RUN, FEW_DISTINCT = 40, 8  # 40+ visible characters from fewer than 8 distinct ones: no writing
GARBAGE_SHARE = 0.3  # this share of unmapped/private-use glyphs: the text layer is unusable
EDGE_LINES = 3  # running headers/footers live in the first or last lines of a page
FURNITURE_MAX_CHARS = 100  # and are short: a longer line that repeats (a templated sentence) is content
TERMINAL = tuple('.?!:;"”’)')
SOFT_HYPHENS = ("\ufffe", "\x02", "\u00ad")
BULLET = re.compile(r"^\s*(?:[•▪●◦■\-–]|\(?\d{1,2}[.)]|\([a-z]\))\s+")
PRINTED_NUMBER = re.compile(r"^\s*(?:page\s+)?(\d{1,4}|[ivxlcdm]{1,7})(?:\s|$)", re.IGNORECASE)
PAGE_NUMBER = re.compile(r"^\s*(?:page\s+)?(?:\d{1,4}|[ivxlcdm]{1,6})(?:\s+of\s+\d{1,4})?\s*$", re.IGNORECASE)

def _pdfium() -> Any:
    import pypdfium2 as pdfium

    return pdfium


def _open(path: Path) -> Any:
    """Open with one-line errors for the PDFs people actually have: encrypted, corrupt, empty."""
    pdfium = _pdfium()
    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower() and _encrypted(path):
            raise IngestError(f"{path.name}: the PDF is encrypted; it needs its password (save a decrypted copy)") \
                from None
        reason = str(exc).rsplit("PDFium: ", 1)[-1].rstrip(").")
        raise IngestError(f"{path.name}: not a readable PDF (corrupt, truncated or without pages: {reason})") \
            from None
    if len(pdf) == 0:
        pdf.close()
        raise IngestError(f"{path.name}: the PDF has no pages")
    return pdf


def _encrypted(path: Path) -> bool:
    """An encrypted PDF names an /Encrypt dictionary in its trailer (PDF 32000-1, 7.6.1); pdfium reports
    some damaged files as 'incorrect password' too, so the claim is checked before it is made."""
    import mmap

    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(b"/Encrypt") != -1


def _garbage(text: str) -> bool:
    """A text layer of unmapped glyphs is no text layer: mostly U+FFFD, private-use or control codes, or a long
    run drawn from a handful of characters (a font without a usable map extracts every glyph as the same one or
    two code points, "ÿÿÿ ÿÿ"), where any page of writing, in any script, uses dozens."""
    visible = [c for c in text if not c.isspace()]
    if not visible:
        return False
    bad = sum(1 for c in visible if c == "\ufffd" or "\ue000" <= c <= "\uf8ff" or (ord(c) < 32))
    few = len(visible) >= FEW_CHARS_RUN and len(set(visible)) < FEW_DISTINCT
    return bad / len(visible) > GARBAGE_SHARE or few


def needs_ocr(raw: str) -> bool:
    """No usable text layer: (almost) no characters, as on a scanned page, or mostly unmapped glyphs."""
    return len(raw.strip()) < MIN_TEXT_CHARS or _garbage(raw)


def ocr_boxes_file(path: Path, number: int) -> Path:
    """Where tesseract's word boxes for a page are kept, keyed by the file's identity and the page."""
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{number}".encode()).hexdigest()[:24]
    return OCR_CACHE / f"{key}.tsv"


def ocr_page(page: Any, path: Path, number: int) -> str:
    """The page's text as tesseract reads it (300 dpi, English). The same recognition pass also writes each word's
    box (tesseract's TSV), kept for highlighting a quote on the page later without reading it again."""
    binary = shutil.which("tesseract")
    if binary is None:
        raise IngestError(f"{path.name}: page {number} is a scanned image; OCR needs Debian's tesseract-ocr "
                          "(apt-get install tesseract-ocr tesseract-ocr-eng)")
    image = page.render(scale=OCR_DPI / 72, grayscale=True).to_pil()
    with tempfile.TemporaryDirectory() as tmp:
        png, out = Path(tmp) / "page.png", Path(tmp) / "page"
        image.save(png)
        done = subprocess.run([binary, str(png), str(out), "-l", "eng", "--dpi", str(OCR_DPI), "txt", "tsv"],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not out.with_suffix(".txt").exists():
            tail = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise IngestError(f"{path.name}: OCR of page {number} failed ({tail})")
        boxes = ocr_boxes_file(path, number)
        boxes.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out.with_suffix(".tsv"), boxes)
        return out.with_suffix(".txt").read_text(encoding="utf-8")


OcrWord = tuple[str, float, float, float, float, tuple[int, int, int]]  # text, left, top, right, bottom (points), line


def ocr_words(page: Any, path: Path, number: int) -> list[OcrWord]:
    """Each word tesseract read on the page, with its box in PDF points from the top left and its line: where an
    OCR'd quote sits on the page image, since a scanned page has no text layer to ask. Read at ingest; read again
    only if that record is gone."""
    boxes = ocr_boxes_file(path, number)
    if not boxes.exists():
        ocr_page(page, path, number)
    to_points = 72 / OCR_DPI
    found: list[OcrWord] = []
    for row in boxes.read_text(encoding="utf-8").splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or cells[0] != "5" or not cells[11].strip():
            continue
        left, top, width, height = (int(c) for c in cells[6:10])
        found.append((cells[11], left * to_points, top * to_points, (left + width) * to_points,
                      (top + height) * to_points, (int(cells[2]), int(cells[3]), int(cells[4]))))
    return found


def _lines(raw: str) -> list[str]:
    return [line.rstrip() for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")]


def _furniture_key(line: str) -> str:
    """Running headers/footers differ only in their page number: compare lines with digits masked."""
    return re.sub(r"\d+", "#", " ".join(line.lower().split()))


def furniture_keys(pages: list[list[str]]) -> set[str]:
    """Lines that sit at the top or bottom of at least half the pages (at least two) are page furniture."""
    if len(pages) < 2:
        return set()
    seen: Counter[str] = Counter()
    for lines in pages:
        body = [line for line in lines if line.strip()]
        seen.update({_furniture_key(line) for line in body[:EDGE_LINES] + body[-EDGE_LINES:]
                     if len(line.strip()) <= FURNITURE_MAX_CHARS})
    need = max(2, (len(pages) + 1) // 2)
    return {key for key, n in seen.items() if n >= need and key.strip("# ")}


def _is_furniture(line: str, index: int, count: int, keys: set[str]) -> bool:
    at_edge = index < EDGE_LINES or index >= count - EDGE_LINES
    return _furniture_key(line) in keys or (at_edge and bool(PAGE_NUMBER.match(line)))


def _breaks_paragraph(prev: str, line: str, typical: float) -> bool:
    """A new paragraph starts after a short line that ends a sentence or is a heading, and at bullets."""
    if BULLET.match(line):
        return True
    short = len(prev) < 0.7 * typical
    if not short:
        return False
    return prev.endswith(TERMINAL) or (line[:1].isupper() and len(prev.split()) <= 12)


def page_paragraphs(lines: list[str], keys: set[str]) -> list[tuple[str, bool]]:
    """(text, is_content) blocks of one page: joined paragraphs, and furniture lines on their own."""
    body = [line.strip() for line in lines]
    lengths = sorted(len(line) for line in body if line)
    typical = lengths[int(0.75 * (len(lengths) - 1))] if lengths else 0
    blocks: list[tuple[str, bool]] = []
    current, last = "", ""  # the paragraph so far, and its last visual line

    def flush() -> None:
        nonlocal current
        if current:
            blocks.append((_clean(current), True))
            current = ""

    for i, line in enumerate(body):
        if not line:
            flush()
        elif _is_furniture(line, i, len(body), keys):
            flush()
            blocks.append((_clean(line), False))
        else:
            if current.endswith(SOFT_HYPHENS):
                current = current[:-1] + line  # a word hyphenated at the line end
            elif current and _breaks_paragraph(last, line, typical):
                flush()
                current = line
            else:
                current = f"{current} {line}" if current else line
            last = line
    flush()
    return [(text, content) for text, content in blocks if text]


def _clean(text: str) -> str:
    """Drop hyphenation marks pdfium reports as characters (U+FFFE, STX, soft hyphen)."""
    for mark in SOFT_HYPHENS:
        text = text.replace(mark, "")
    return text.strip()


def load_pdf(path: Path, on_page: PageProgress | None = None) -> Document:
    """Extract every page (OCR where needed), build the stored text and its page map; one page in memory."""
    pdf = _open(path)
    try:
        n = len(pdf)
        raw_pages: list[list[str]] = []
        ocr: set[int] = set()
        labels: list[str | None] = []
        meta = pdf.get_metadata_dict()
        heading: str | None = None
        for i in range(n):
            page = pdf[i]
            textpage = page.get_textpage()
            raw = textpage.get_text_range()
            if i == 0 and not (meta.get("Title") or "").strip():  # a metadata title wins: no need to measure type
                heading = largest_type(textpage)
            textpage.close()
            if needs_ocr(raw):
                if on_page:
                    on_page(i + 1, n, "OCR")
                raw = ocr_page(page, path, i + 1)
                ocr.add(i)
            elif on_page:
                on_page(i + 1, n, "text")
            page.close()
            raw_pages.append(_lines(raw))
            labels.append(_label(pdf, i))
    finally:
        pdf.close()
    return _assemble(path, raw_pages, labels, ocr, meta, heading)


def _label(pdf: Any, index: int) -> str | None:
    """The printed page number when the PDF defines page labels, else None."""
    try:
        label = pdf.get_page_label(index)
    except Exception:  # pypdfium2 raises on PDFs without a label tree in some versions
        return None
    return label or None


def _assemble(path: Path, raw_pages: list[list[str]], labels: list[str | None], ocr: set[int],
              meta: dict[str, str], heading: str | None = None) -> Document:
    keys = furniture_keys(raw_pages)
    printed = printed_numbers(raw_pages, keys)
    parts: list[str] = []
    pos = 0
    spans: list[tuple[int, int]] = []
    pages: list[Page] = []
    for i, lines in enumerate(raw_pages):
        page_start = pos
        for text, content in page_paragraphs(lines, keys):
            if content:
                spans.append((pos, pos + len(text)))
            parts.append(text + "\n")
            pos += len(text) + 1
        pages.append(Page(start=page_start, end=pos, label=printed_label(i, labels[i], printed[i]), ocr=i in ocr))
        parts.append("\n")
        pos += 1
    text = "".join(parts)
    if not spans:
        raise IngestError(f"{path.name}: no text found on any page")
    title = (meta.get("Title") or "").strip() or heading or _first_heading(text, spans) or path.stem
    date = _pdf_date(meta.get("ModDate") or meta.get("CreationDate") or "")
    return Document(name=path.name, path=path, text=text, sha256=sha256_file(path), title=title,
                    author=(meta.get("Author") or "").strip() or None, date=date, content_spans=spans,
                    kind="pdf", pages=pages)


def printed_numbers(raw_pages: list[list[str]], keys: set[str]) -> list[str | None]:
    """The page number printed on each page, if any. In a running header/footer ("Page 6 GAO-07-283 …")
    it is the one number that changes from page to page; otherwise a lone number ("7", "iv", "Page 7 of 9")
    as the page's first or last line."""
    rows: dict[str, list[tuple[int, list[str]]]] = {}
    for i, lines in enumerate(raw_pages):
        body = [line.strip() for line in lines if line.strip()]
        for line in body[:EDGE_LINES] + body[-EDGE_LINES:]:
            key = _furniture_key(line)
            if key in keys and "#" in key:
                rows.setdefault(key, []).append((i, re.findall(r"\d+", line)))
    found: list[str | None] = [None] * len(raw_pages)
    for entries in rows.values():
        width = min(len(numbers) for _, numbers in entries)
        varying = [j for j in range(width) if len({numbers[j] for _, numbers in entries}) > 1]
        if len(varying) == 1:
            for i, numbers in entries:
                found[i] = found[i] or numbers[varying[0]]
    for i, lines in enumerate(raw_pages):
        body = [line.strip() for line in lines if line.strip()]
        for line in body[:1] + body[-1:]:
            m = PRINTED_NUMBER.match(line)
            if found[i] is None and m and PAGE_NUMBER.match(line):
                found[i] = m.group(1)
    return found


def printed_label(index: int, tree_label: str | None, printed: str | None) -> str | None:
    """A label tree that differs from the physical number was set on purpose and wins; otherwise the number
    printed on the page, since many PDFs number the body from 1 after unnumbered front matter without
    saying so in the tree."""
    if tree_label and tree_label != str(index + 1):
        return tree_label
    return printed or tree_label


TITLE_SCALE = 1.2  # the title's type is at least this much larger than the first page's typical line


def largest_type(textpage: Any) -> str | None:
    """The first page's title by its type size: the first run of lines set in the page's largest type, when that is
    clearly larger than the page's typical line (`TITLE_SCALE`). Reports without a metadata title repeat their title
    as a running header on every page, so the page text alone cannot tell it from furniture ("Foreign Holdings of
    Federal Debt" on each page, then "Updated April 22, 2026 ... RS22331" was taken as the title); the largest type
    is how a reader finds it. None when the sizes do not say (one size throughout, or no text layer)."""
    from pypdfium2 import raw as pdfium_c

    lines: list[tuple[float, str]] = []  # (largest type size on the line, the line)
    chars: list[str] = []
    sizes: list[float] = [0.0]
    count = textpage.count_chars()
    for i in range(count + 1):  # one past the end: a last "\n" closes the last line
        ch = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i)) if i < count else "\n"
        if ch == "\n":
            if "".join(chars).strip():
                lines.append((max(sizes), _clean("".join(chars))))
            chars, sizes = [], [0.0]
        elif ch != "\r":
            chars.append(ch)
            sizes += [pdfium_c.FPDFText_GetFontSize(textpage.raw, i)] if ch.strip() else []
    if len(lines) < 2:
        return None
    largest = max(s for s, _ in lines)
    typical = sorted(s for s, _ in lines)[len(lines) // 2]
    if largest < TITLE_SCALE * typical:
        return None
    start = next(i for i, (s, _) in enumerate(lines) if s == largest)
    run = [t for _, t in takewhile(lambda line: line[0] == largest, lines[start:])]
    title = " ".join(run)
    return title if 3 <= len(title) <= 200 and any(c.isalpha() for c in title) else None


def _first_heading(text: str, spans: list[tuple[int, int]]) -> str | None:
    for a, b in spans[:8]:
        line = text[a:b]
        if 3 <= len(line) <= 120 and not line.endswith(".") and not line.lower().startswith("http"):
            return line
    return None


def _pdf_date(value: str) -> str | None:
    """PDF dates look like D:20260422101500-04'00'; keep the calendar date."""
    m = re.match(r"D:(\d{4})(\d{2})(\d{2})", value)
    return f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else None
