"""Load documents: read the ORIGINAL text, extract metadata, mark page furniture, keep offsets.

Nothing here rewrites the text. Cleaning is expressed as a list of content spans over the
original string, so every later offset indexes the file exactly as read with UTF-8.
Loaders are chosen by suffix; HTML and PDF loaders slot into LOADERS with the same shape.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


class IngestError(Exception):
    """A file cannot be ingested; the message is one line a user can act on."""


@dataclass(frozen=True)
class Reference:
    """An entry of the document's own footnote list, e.g. `[1] "Title", Outlet, URL, (Date Accession: …)`."""

    n: int
    title: str | None
    outlet: str | None
    url: str | None
    accessed: str | None


@dataclass
class Document:
    """One source file: original text, metadata and the spans that are real content."""

    name: str
    path: Path
    text: str
    sha256: str
    title: str
    author: str | None = None
    date: str | None = None
    references: list[Reference] = field(default_factory=list)
    content_spans: list[tuple[int, int]] = field(default_factory=list)

    def reference_for(self, start: int, end: int) -> Reference | None:
        """The document's own source for a passage: the first `[n]` marker at or after the passage."""
        if not self.references:
            return None
        marker = re.compile(r"\[(\d+)\]")
        for m in marker.finditer(self.text, start):
            # Only markers inside the same paragraph count.
            if "\n\n" in self.text[end : m.start()] or m.start() > end + 600:
                break
            return _resolve_ibid(self.references, int(m.group(1)))
        return None


def _resolve_ibid(refs: list[Reference], n: int) -> Reference | None:
    """`[5] Ibid.` points at the previous reference with an outlet."""
    by_n = {r.n: r for r in refs}
    while n > 0:
        ref = by_n.get(n)
        if ref is None:
            return None
        if ref.outlet or ref.url:
            return ref
        n -= 1
    return None


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


def load_text(path: Path, max_bytes: int) -> Document:
    """Plain text and Markdown: strict UTF-8, no NUL bytes, not empty, not oversized."""
    size = path.stat().st_size
    if size == 0:
        raise IngestError(f"{path.name}: empty file")
    if size > max_bytes:
        raise IngestError(
            f"{path.name}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.1f} MB limit (raise BRIEFING_MAX_FILE_MB)"
        )
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


LOADERS: dict[str, Callable[[Path, int], Document]] = {".txt": load_text, ".md": load_text}


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """Expand folders into supported files; return (files, one-line problems)."""
    files: list[Path] = []
    problems: list[str] = []
    for p in paths:
        if not p.exists():
            problems.append(f"{p}: no such file or folder")
        elif p.is_dir():
            root = p.resolve()
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in LOADERS:
                    if not f.resolve().is_relative_to(root):
                        problems.append(f"{f}: links outside {p}, skipped")
                    else:
                        files.append(f)
        elif p.suffix.lower() in LOADERS:
            files.append(p)
        else:
            problems.append(f"{p}: unsupported type {p.suffix or '(none)'}; supported: {', '.join(LOADERS)}")
    return files, problems


def load(path: Path, max_bytes: int) -> Document:
    """Load one file with the loader for its suffix."""
    try:
        return LOADERS[path.suffix.lower()](path, max_bytes)
    except OSError as exc:
        raise IngestError(f"{path.name}: cannot read ({exc.strerror})") from None
