"""Plain text and Markdown: the file itself is the stored text; metadata and furniture from its lines."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

from assistant.ingest import Document, IngestError, Reference

# Lines that are page furniture, never content on their own.
FURNITURE = re.compile(
    r"^\s*(?:Date:.*|Share:.*|Similar Posts|Related Posts|Tags?:.*|Print|Previous Post|Next Post"
    r"|This post is also available in:.*)\s*$",
    re.IGNORECASE,
)
REFERENCE_LINE = re.compile(r"^\s*\[(\d+)\]\s*(.*)$")
URL = re.compile(r"https?://\S+?(?=[,)\s]|$)")
ACCESSED = re.compile(r"\(Date Acc[a-z]*:\s*([^)]+)\)", re.IGNORECASE)
DATE_LINE = re.compile(r"^[ \t]*Date:[ \t]*(\S.*)$", re.IGNORECASE | re.MULTILINE)
AUTHOR_LINE = re.compile(r"^[ \t]*(?:By|Author):?[ \t]+(.{3,80})$", re.IGNORECASE | re.MULTILINE)


def _lines(text: str) -> Iterator[tuple[int, int, str]]:
    """Yield (start, end, line) for each line, offsets into `text` without the newline."""
    pos = 0
    for raw in text.splitlines(keepends=True):
        line = raw.rstrip("\r\n")
        yield pos, pos + len(line), line
        pos += len(raw)


def _parse_reference(n: int, body: str) -> Reference:
    url_m = URL.search(body)
    acc_m = ACCESSED.search(body)
    title_m = re.match(r"\s*[“\"](.+?)[”\"]\s*,?\s*(.*)", body)
    outlet = None
    title = None
    if title_m:
        title = title_m.group(1).strip()
        rest = title_m.group(2)
        outlet = rest.split(",")[0].strip() or None
        if outlet and outlet.startswith("http"):
            outlet = None
    return Reference(n=n, title=title, outlet=outlet, url=url_m.group(0) if url_m else None,
                     accessed=acc_m.group(1).strip() if acc_m else None)


def _author_block(lines: list[tuple[int, int, str]]) -> tuple[int | None, str | None]:
    """A name line repeated back to back near the end starts the author bio (page furniture)."""
    for i in range(len(lines) - 1):
        a, b = lines[i][2].strip(), lines[i + 1][2].strip()
        if a and a.casefold() == b.casefold() and len(a.split()) <= 6 and not a.endswith("."):
            return lines[i][0], a
    return None, None


def analyse(name: str, path: Path, text: str) -> Document:
    """Build a Document from original text: metadata plus content spans that skip furniture."""
    lines = list(_lines(text))
    bio_start, author = _author_block(lines)
    refs: list[Reference] = []
    spans: list[tuple[int, int]] = []
    title: str | None = None
    for start, _end, line in lines:
        if bio_start is not None and start >= bio_start:
            break
        stripped = line.strip()
        if not stripped or FURNITURE.match(line):
            continue
        ref = REFERENCE_LINE.match(line)
        if ref and (refs or start > len(text) // 2):  # the footnote list, not a marker mid-text
            refs.append(_parse_reference(int(ref.group(1)), ref.group(2)))
            continue
        if title is None and len(stripped) <= 150 and not stripped.endswith((".", "?", "!")):
            title = stripped.lstrip("# ").strip()
            continue
        lead = len(line) - len(line.lstrip())
        spans.append((start + lead, start + lead + len(stripped)))
    if author is None:
        m = AUTHOR_LINE.search(text)
        author = m.group(1).strip() if m else None
    date_m = DATE_LINE.search(text)
    if title is None:
        first = text[spans[0][0] : spans[0][1]] if spans else name
        title = first if len(first) <= 90 else first[:87].rsplit(" ", 1)[0] + "…"
    return Document(
        name=name,
        path=path,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        title=title,
        author=author,
        date=date_m.group(1).strip() if date_m else None,
        references=refs,
        content_spans=spans,
    )


def load_text(path: Path) -> Document:
    """Plain text and Markdown: strict UTF-8, no NUL bytes, no BOM (size is checked by `ingest.load`)."""
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise IngestError(f"{path.name}: looks binary (NUL bytes), not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path.name}: not UTF-8 text (bad byte at offset {exc.start})") from None
    if text.startswith("\ufeff"):
        raise IngestError(f"{path.name}: starts with a UTF-8 BOM; save it without one")
    doc = analyse(path.name, path, text)
    if not doc.content_spans:
        raise IngestError(f"{path.name}: no text content")
    return doc


