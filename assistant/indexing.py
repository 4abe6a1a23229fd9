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
from assistant.ingest import Document, IngestError, discover, load
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
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def version_of(doc: Document, settings: Settings) -> str:
    """A stored version = the document's bytes AND how they were chunked: changing the chunk
    settings re-chunks on the next ingest instead of silently keeping old chunks."""
    key = f"{doc.sha256}:{settings.chunk_tokens}:{settings.chunk_overlap_sentences}"
    return hashlib.sha256(key.encode()).hexdigest()


def _complete(versions: dict[str, Any], doc: Document, version: str) -> bool:
    """True when exactly this version of the document is fully stored."""
    entry = versions.get(doc.name)
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
    files, report.errors = discover(paths)
    embedder = get_embedder(settings)
    index = Index(settings, embedder.model_name, rebuild=rebuild)
    versions = index.doc_versions()
    seen: set[str] = set()
    for i, path in enumerate(files):
        if progress:
            progress(path.name, i, len(files))
        try:
            doc = load(path, int(settings.max_file_mb * 1_000_000))
        except IngestError as exc:
            report.errors.append(str(exc))
            continue
        seen.add(doc.name)
        report.documents += 1
        version = version_of(doc, settings)
        if _complete(versions, doc, version):
            report.skipped += 1
            report.chunks += versions[doc.name]["versions"][version]["expected"]
            continue
        chunks = chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap_sentences, embedder.count_tokens)
        embeddings = embedder.get_text_embedding_batch([c.text for c in chunks])
        index.add(doc, version, chunks, embeddings)  # new version first, so a crash never leaves nothing
        index.remove_doc(doc.name, keep_sha=version)
        report.chunks += len(chunks)
        report.embedded += len(chunks)
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
