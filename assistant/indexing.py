"""The ingest pipeline: discover -> load -> chunk -> embed -> store, idempotent and resumable."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.chunking import chunk_document
from assistant.config import Settings
from assistant.embeddings import get_embedder
from assistant.ingest import LOADERS, IngestError, discover, load, size_limit
from assistant.model_files import sha256_file
from assistant.store import Index

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class IngestReport:
    """What one ingest run did; the CLI prints it as a table or JSON."""

    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    skipped: int = 0
    removed: int = 0
    removed_docs: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # files of a type no loader reads, with the reason
    ocr_pages: int = 0
    errors: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)  # per file: name, status, kind, chunks, pages
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Bumped when a loader's output changes, so documents it read are extracted again on the next ingest.
EXTRACTOR_VERSIONS = {"text": 0, "pdf": 1, "html": 1, "docx": 1}


def version_of(path: Path, file_sha: str, settings: Settings) -> str:
    """A stored version = the file's bytes, how they were extracted AND how they were chunked: changing
    any of them re-reads the document on the next ingest instead of silently keeping old chunks. Known
    before loading, so an unchanged PDF is skipped without extracting (or OCR'ing) it again."""
    key = f"{file_sha}:{settings.chunk_tokens}:{settings.chunk_overlap_sentences}"
    extractor = EXTRACTOR_VERSIONS[LOADERS[path.suffix.lower()][0]]
    if extractor:
        key += f":{LOADERS[path.suffix.lower()][0]}{extractor}"
    return hashlib.sha256(key.encode()).hexdigest()


def _complete(versions: dict[str, Any], name: str, version: str) -> bool:
    """True when exactly this version of the document is fully stored."""
    entry = versions.get(name)
    if not entry or list(entry["versions"]) != [version]:
        return False
    v = entry["versions"][version]
    return bool(v["present"] == v["expected"])


def ingest(
    paths: list[Path], settings: Settings, progress: Progress | None = None, rebuild: bool = False
) -> IngestReport:
    """Bring the index in line with `paths`: embed new or changed documents, drop vanished ones."""
    t0 = time.perf_counter()
    report = IngestReport()
    files, report.errors, report.unsupported = discover(paths)
    embedder = get_embedder(settings)
    index = Index(settings, embedder.model_name, rebuild=rebuild)
    versions = index.doc_versions()
    seen: set[str] = set()
    for i, path in enumerate(files):
        if progress:
            progress(path.name, i, len(files))

        def on_page(page: int, pages: int, what: str, name: str = path.name, i: int = i) -> None:
            if progress:
                progress(f"{name} page {page}/{pages}" + (" (OCR)" if what == "OCR" else ""), i, len(files))

        limit = size_limit(path, settings)
        try:
            version = version_of(path, sha256_file(path), settings) if path.stat().st_size <= limit else ""
        except OSError as exc:
            report.errors.append(f"{path.name}: cannot read ({exc.strerror})")
            continue
        if version and _complete(versions, path.name, version):
            seen.add(path.name)
            report.documents += 1
            report.skipped += 1
            stored = versions[path.name]["versions"][version]["expected"]
            report.chunks += stored
            report.files.append({"file": str(path), "status": "unchanged", "chunks": stored})
            continue
        try:
            doc = load(path, limit, on_page)
        except IngestError as exc:
            report.errors.append(str(exc))
            report.files.append({"file": str(path), "status": "error", "reason": str(exc)})
            continue
        version = version_of(path, doc.sha256, settings)  # the bytes actually read
        seen.add(doc.name)
        report.documents += 1
        ocr = sum(p.ocr for p in doc.pages)
        report.ocr_pages += ocr
        chunks = chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap_sentences, embedder.count_tokens)
        embeddings = embedder.get_text_embedding_batch([c.text for c in chunks])
        index.add(doc, version, chunks, embeddings)  # new version first, so a crash never leaves nothing
        index.remove_doc(doc.name, keep_sha=version)
        report.chunks += len(chunks)
        report.embedded += len(chunks)
        report.files.append({"file": str(path), "status": "indexed", "kind": doc.kind, "chunks": len(chunks),
                             "pages": len(doc.pages) or None, "ocr_pages": ocr or None})
    for folder in (p.resolve() for p in paths if p.is_dir()):
        for name, entry in versions.items():
            source = Path(entry["source"] or "")
            if name not in seen and source.is_relative_to(folder) and not source.exists():
                report.removed += index.remove_doc(name)
                report.removed_docs.append(name)
    if progress:
        progress("done", len(files), len(files))
    report.seconds = round(time.perf_counter() - t0, 3)
    return report
