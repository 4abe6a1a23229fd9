"""Page images for citations: the cited PDF page rendered locally, the quote's rectangles highlighted.

Why rectangles from the text layer and not fuzzy matching on the image: pdfium gives each character
of a page its box, and our stored text was built from exactly those characters (lines joined,
hyphenation marks dropped), so the quote is found again on its page by comparing the two with
whitespace, case and hyphenation marks ignored, and the boxes of those very characters are drawn.
A scanned page has no text layer: there the page is read again with tesseract and the quote found
among its word boxes (`ocr_rects`). Images are cached by file, page and quote, so re-opening a
footnote costs a file read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RENDER_DPI = 110
HIGHLIGHT = (255, 200, 0, 110)  # translucent yellow over the text
IGNORED = {"\ufffe", "\x02", "\u00ad", "-"}  # hyphens too: a word broken at a line end is joined in the stored text

Rect = tuple[float, float, float, float]  # left, top, right, bottom in image pixels


@dataclass(frozen=True)
class PageImage:
    """A rendered page: where the PNG is, its size, and the highlighted rectangles (empty if not found)."""

    path: Path
    page: int
    width: int
    height: int
    rects: tuple[Rect, ...]


def _folded(text: str) -> tuple[str, list[int]]:
    """Text without whitespace and hyphenation marks, lower-cased, with each kept char's original index."""
    kept: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace() or ch in IGNORED:
            continue
        kept.append(ch.lower())
        where.append(i)
    return "".join(kept), where


def find_quote(page_text: str, quote: str) -> tuple[int, int] | None:
    """[start, end) char indices of `quote` in the page's text layer, or None if it is not on the page."""
    hay, where = _folded(page_text)
    needle, _ = _folded(quote)
    if not needle:
        return None
    at = hay.find(needle)
    if at < 0:
        return None
    return where[at], where[at + len(needle) - 1] + 1


def quote_on_page(pdf: Path, page: int, quote: str) -> bool:
    """Whether `quote` is on physical page `page` of `pdf`, read again from the PDF's own text layer (or, on a
    scanned page, from tesseract's words for it)."""
    import pypdfium2 as pdfium

    from assistant.loaders.pdf import needs_ocr, ocr_words

    document = pdfium.PdfDocument(str(pdf))
    try:
        if not 1 <= page <= len(document):
            return False
        text = document[page - 1].get_textpage().get_text_range()
        if needs_ocr(text):
            text = " ".join(w[0] for w in ocr_words(document[page - 1], pdf, page))
        return find_quote(text, quote) is not None
    finally:
        document.close()


def quote_rects(textpage: Any, quote: str, scale: float, page_height: float) -> list[Rect]:
    """Pixel rectangles of the quote's characters (one per run on a line), from pdfium's text boxes."""
    span = find_quote(textpage.get_text_range(), quote)
    if span is None:
        return []
    start, end = span
    rects = []
    for i in range(textpage.count_rects(start, end - start)):
        left, bottom, right, top = textpage.get_rect(i)
        rects.append((left * scale, (page_height - top) * scale, right * scale, (page_height - bottom) * scale))
    return rects


def ocr_rects(pdf_page: Any, quote: str, scale: float, pdf: Path, number: int) -> list[Rect]:
    """Pixel rectangles of an OCR'd quote (one per line it spans), from tesseract's word boxes: a scanned page has no
    text layer, so the page is read again and the quote found among its words the same way, whitespace, case and
    hyphenation ignored."""
    from assistant.loaders.pdf import ocr_words

    words = ocr_words(pdf_page, pdf, number)
    span = find_quote(" ".join(w[0] for w in words), quote)
    if span is None:
        return []
    lines: dict[tuple[int, int, int], Rect] = {}
    at = 0
    for text, left, top, right, bottom, line in words:
        if at < span[1] and at + len(text) > span[0]:
            box = lines.get(line, (left, top, right, bottom))
            lines[line] = (min(box[0], left), min(box[1], top), max(box[2], right), max(box[3], bottom))
        at += len(text) + 1
    return [(a * scale, b * scale, c * scale, d * scale) for a, b, c, d in lines.values()]


def render_page(pdf: Path, page: int, quote: str, cache_dir: Path) -> PageImage:
    """Render physical page `page` (1-based) of `pdf` with `quote` highlighted; cached on disk."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    from assistant.loaders.pdf import needs_ocr

    st = pdf.stat()
    key = hashlib.sha1(f"{pdf.resolve()}:{st.st_size}:{st.st_mtime_ns}:{page}:{quote}".encode()).hexdigest()[:20]
    target = cache_dir / f"{key}.png"
    document = pdfium.PdfDocument(str(pdf))
    try:
        pdf_page = document[page - 1]
        scale = RENDER_DPI / 72
        height_pts = pdf_page.get_height()
        textpage = pdf_page.get_textpage()
        rects = quote_rects(textpage, quote, scale, height_pts)
        scanned = needs_ocr(textpage.get_text_range())
        textpage.close()
        boxes = target.with_suffix(".json")  # an OCR'd page's rectangles, kept beside its image (OCR takes seconds)
        if scanned and not rects:
            if target.exists() and boxes.exists():
                rects = [tuple(r) for r in json.loads(boxes.read_text(encoding="utf-8"))]
            else:
                rects = ocr_rects(pdf_page, quote, scale, pdf, page)
                cache_dir.mkdir(parents=True, exist_ok=True)
                boxes.write_text(json.dumps(rects), encoding="utf-8")
        if not target.exists():
            image = pdf_page.render(scale=scale).to_pil().convert("RGBA")
            overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
            draw = ImageDraw.Draw(overlay)
            for left, top, right, bottom in rects:
                draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=HIGHLIGHT)
            cache_dir.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial.png")
            Image.alpha_composite(image, overlay).convert("RGB").save(partial, optimize=True)
            partial.replace(target)
        width, height = round(pdf_page.get_width() * scale), round(height_pts * scale)
        pdf_page.close()
    finally:
        document.close()
    return PageImage(target, page, width, height, tuple(rects))
