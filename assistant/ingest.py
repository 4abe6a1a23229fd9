"""Documents: the one shape every loader returns, and how files are found and dispatched to loaders.

A Document's `text` is what every offset indexes. For .txt/.md it is the file exactly as read
with UTF-8; for PDF, HTML and DOCX it is the text the loader extracted, which is stored with
the index so quotes can always be shown and re-verified. Cleaning never rewrites that text: it
is a list of content spans over it. Loaders live in `assistant.loaders`, one module per format.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.config import Settings


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


@dataclass(frozen=True)
class Page:
    """One physical page of the stored text: [start, end) offsets, printed label, whether it was OCR'd."""

    start: int
    end: int
    label: str | None = None
    ocr: bool = False


@dataclass
class Document:
    """One source file: its text (original or extracted), metadata, content spans and page map."""

    name: str
    path: Path
    text: str
    sha256: str  # of the file's bytes: an unchanged file is skipped without extracting it again
    title: str
    author: str | None = None
    date: str | None = None
    references: list[Reference] = field(default_factory=list)
    content_spans: list[tuple[int, int]] = field(default_factory=list)
    kind: str = "text"  # text, pdf, html, docx
    pages: list[Page] = field(default_factory=list)  # empty where the format has no pages
    url: str | None = None  # where a saved web page came from

    @property
    def extracted(self) -> bool:
        """The text is not the file's bytes, so it must be stored with the index."""
        return self.kind != "text"

    def pages_between(self, start: int, end: int) -> list[tuple[int, int, str | None, bool]]:
        """(page number, page start, label, ocr) of the pages that [start, end) touches."""
        return [(i + 1, p.start, p.label, p.ocr) for i, p in enumerate(self.pages) if p.start < end and p.end > start]

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


PageProgress = Callable[[int, int, str], None]  # (page, pages, "text" or "OCR")
# suffix -> (loader module in assistant.loaders, function); imported only when a file of that type is met.
LOADERS: dict[str, tuple[str, str]] = {
    ".txt": ("text", "load_text"), ".md": ("text", "load_text"), ".pdf": ("pdf", "load_pdf"),
    ".html": ("html", "load_html"), ".htm": ("html", "load_html"), ".docx": ("docx", "load_docx"),
}


def unsupported(path: Path) -> str:
    return f"{path}: unsupported type {path.suffix or '(none)'}; supported: {', '.join(LOADERS)}"


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[str], list[str]]:
    """Expand folders into supported files; return (files, one-line problems, skipped files with the reason).

    Files of other types inside a folder are listed as skipped, never dropped silently; hidden
    files (names starting with a dot) are ignored."""
    files: list[Path] = []
    problems: list[str] = []
    skipped: list[str] = []
    for p in paths:
        if not p.exists():
            problems.append(f"{p}: no such file or folder")
        elif p.is_dir():
            root = p.resolve()
            for f in sorted(p.rglob("*")):
                if not f.is_file() or any(part.startswith(".") for part in f.relative_to(p).parts):
                    continue
                if f.suffix.lower() not in LOADERS:
                    skipped.append(unsupported(f))
                elif not f.resolve().is_relative_to(root):
                    problems.append(f"{f}: links outside {p}, skipped")
                else:
                    files.append(f)
        elif p.suffix.lower() in LOADERS:
            files.append(p)
        else:
            problems.append(unsupported(p))
    return files, problems, skipped


def size_limit(path: Path, cfg: Settings) -> int:
    """Bytes allowed for this file: plain text is small, reports (PDF, DOCX, saved pages) are not."""
    text = LOADERS.get(path.suffix.lower(), ("text", ""))[0] == "text"
    return int((cfg.max_file_mb if text else cfg.max_document_mb) * 1_000_000)


def load(path: Path, max_bytes: int, on_page: PageProgress | None = None) -> Document:
    """Load one file with the loader for its suffix."""
    suffix = path.suffix.lower()
    if suffix not in LOADERS:
        raise IngestError(unsupported(path))
    module, function = LOADERS[suffix]
    try:
        size = path.stat().st_size
        if size == 0:
            raise IngestError(f"{path.name}: empty file")
        if size > max_bytes:
            setting = "BRIEFING_MAX_FILE_MB" if module == "text" else "BRIEFING_MAX_DOCUMENT_MB"
            raise IngestError(f"{path.name}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:g} MB limit for "
                              f"{suffix} files (raise {setting})")
        loader = getattr(importlib.import_module(f"assistant.loaders.{module}"), function)
        return loader(path, on_page) if module == "pdf" else loader(path)  # type: ignore[no-any-return]
    except OSError as exc:
        raise IngestError(f"{path.name}: cannot read ({exc.strerror})") from None
