"""Saved web pages: the main content via trafilatura; navigation, scripts, ads and footers dropped.

Why trafilatura: maintained, offline, and it returns the page's own metadata (title, author,
date, canonical URL) beside the main text; on the development pages every labelled quote is
in its output. The extracted text (one paragraph or table row per line) is what is stored and
cited; the canonical URL becomes the footnote's link.
"""

from __future__ import annotations

from pathlib import Path

from assistant.ingest import Document, IngestError
from assistant.loaders.text import analyse
from assistant.model_files import sha256_file

MAX_AUTHOR_WORDS = 6  # longer "authors" are page text that the byline heuristics picked up


def _decode(path: Path) -> str:
    data = path.read_bytes()
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def load_html(path: Path) -> Document:
    """Main content and metadata of a saved page; a page with no readable text is a one-line error."""
    import trafilatura

    extracted = trafilatura.bare_extraction(_decode(path), with_metadata=True, include_tables=True,
                                            include_comments=False, include_formatting=False, favor_recall=True)
    text = (getattr(extracted, "text", None) or "").strip() if extracted is not None else ""
    if not text:
        raise IngestError(f"{path.name}: no readable text in this page (only scripts, styles or navigation)")
    doc = analyse(path.name, path, text + "\n")
    if not doc.content_spans:
        raise IngestError(f"{path.name}: no readable text in this page (only scripts, styles or navigation)")
    author = getattr(extracted, "author", None)
    doc.kind = "html"
    doc.sha256 = sha256_file(path)
    doc.title = getattr(extracted, "title", None) or doc.title
    doc.author = author if author and len(author.split()) <= MAX_AUTHOR_WORDS else doc.author
    doc.date = getattr(extracted, "date", None) or doc.date
    doc.url = getattr(extracted, "url", None)
    return doc
