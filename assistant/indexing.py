"""The ingest pipeline: discover -> load -> chunk -> embed -> store, idempotent and resumable."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.chunking import SPLITTER_VERSION, Chunk, chunk_document
from assistant.config import Settings
from assistant.embeddings import get_embedder
from assistant.ingest import LOADERS, Document, IngestError, discover, load, size_limit
from assistant.lexical import DocPassages, LexicalIndex, committed_versions, every_few_seconds, open_lexical
from assistant.model_files import sha256_file
from assistant.store import Index, StoreError

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
EXTRACTOR_VERSIONS = {"text": 0, "pdf": 2, "html": 1, "docx": 1}


def version_of(path: Path, file_sha: str, settings: Settings) -> str:
    """A stored version = the file's bytes, how they were extracted AND how they were chunked: changing
    any of them re-reads the document on the next ingest instead of silently keeping old chunks. Known
    before loading, so an unchanged PDF is skipped without extracting (or OCR'ing) it again."""
    key = f"{file_sha}:{settings.chunk_tokens}:{settings.chunk_overlap_sentences}:{SPLITTER_VERSION}"
    extractor = EXTRACTOR_VERSIONS[LOADERS[path.suffix.lower()][0]]
    if extractor:
        key += f":{LOADERS[path.suffix.lower()][0]}{extractor}"
    return hashlib.sha256(key.encode()).hexdigest()


class Batch:
    """Documents read but not yet stored: embedded together (one model call sequence, chunks of similar length side
    by side so padding wastes little), then written to Chroma in one call, mirrored in the lexical index in one
    transaction and committed in the manifest, in that order, so a kill at any point leaves every committed
    version whole in both stores."""

    def __init__(self, index: Index, lexical: LexicalIndex, embedder: Any, limit: int):
        self.index, self.lexical, self.embedder, self.limit = index, lexical, embedder, limit
        self.pending: list[tuple[Document, str, list[Chunk]]] = []
        self.replaced: list[str] = []  # documents whose earlier version goes once the new one is committed
        self.embedded = 0

    @property
    def size(self) -> int:
        return sum(len(chunks) for _, _, chunks in self.pending)

    def add(self, doc: Document, version: str, chunks: list[Chunk], replaces: bool) -> None:
        self.pending.append((doc, version, chunks))
        if replaces:
            self.replaced.append(doc.name)
        if self.size >= self.limit:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        texts = [c.search_text for _, _, chunks in self.pending for c in chunks]
        vectors = embed_sorted(self.embedder, texts)
        rows, at = [], 0
        for doc, version, chunks in self.pending:
            rows.append((doc, version, chunks, vectors[at : at + len(chunks)]))
            at += len(chunks)
        metas = self.index.add(rows)
        self.lexical.replace(DocPassages(doc.name, version, [(c.id, c.search_text) for c in chunks], doc.title)
                             for doc, version, chunks in self.pending)
        self.index.commit(metas)
        for doc, version, _ in self.pending:
            if doc.name in self.replaced:
                self.index.remove_doc(doc.name, keep_sha=version)
        self.embedded += len(texts)
        self.pending, self.replaced = [], []


def embed_sorted(embedder: Any, texts: list[str]) -> list[list[float]]:
    """Embed in order of length and put the vectors back in the caller's order: a batch is padded to its longest
    text, so neighbours of similar length waste the least compute."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = embedder.get_text_embedding_batch([texts[i] for i in order])
    out: list[list[float]] = [[] for _ in texts]
    for i, vector in zip(order, vectors, strict=True):
        out[i] = vector
    return out


@contextmanager
def ingest_lock(settings: Settings) -> Iterator[None]:
    """One ingest at a time per index on this host: a second one is refused in one line instead of interleaving
    writes (deterministic ids would prevent duplicates, but two writers would race on the same manifest)."""
    path = settings.index_dir / f"ingest-{settings.collection}.lock"
    try:
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as exc:
        raise StoreError(f"cannot open index at {settings.index_dir}: {exc.strerror or exc}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IngestError(f"another ingest is writing this index ({holder}); wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {time.strftime('%H:%M:%S')}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)


def open_stores(settings: Settings, rebuild: bool = False, sync: bool = True
                ) -> tuple[Index, LexicalIndex, Any, dict[str, dict[str, Any]]]:
    """The Chroma index, its lexical mirror brought in line (a previous kill or a hand-deleted file is repaired
    here, before anything new is written), the embedder and the manifest they agree on."""
    from assistant.llm import notice

    embedder = get_embedder(settings)
    index = Index(settings, embedder.model_name, rebuild=rebuild)
    lexical = open_lexical(settings, notice)
    if rebuild:
        lexical.reset()
    manifest = index.manifest()
    if index.stamp() is None:  # an index from before stamps: give it one, so searches can trust their mirror
        index.restamp()
    if sync:
        lexical.sync(committed_versions(manifest), index.passages_of, every_few_seconds(notice), notice)
    return index, lexical, embedder, manifest


def repair(settings: Settings) -> dict[str, int]:
    """Rebuild the lexical index from Chroma and delete chunks of uncommitted versions (`briefing ingest
    --repair`): after it both stores hold exactly the committed passages."""
    with ingest_lock(settings):
        from assistant.llm import notice

        index, lexical, _, manifest = open_stores(settings, sync=False)
        orphans = index.orphans(manifest)
        index.delete_chunks(orphans)
        lexical.reset()
        lexical.sync(committed_versions(manifest), index.passages_of, every_few_seconds(notice))
        return {"documents": len(manifest), "passages": lexical.count(), "orphan_chunks_removed": len(orphans)}


def ingest(
    paths: list[Path], settings: Settings, progress: Progress | None = None, rebuild: bool = False
) -> IngestReport:
    """Bring the index in line with `paths`: embed new or changed documents, drop vanished ones."""
    with ingest_lock(settings):
        return _ingest(paths, settings, progress, rebuild)


def _ingest(paths: list[Path], settings: Settings, progress: Progress | None, rebuild: bool) -> IngestReport:
    t0 = time.perf_counter()
    report = IngestReport()
    files, report.errors, report.unsupported = discover(paths)
    index, lexical, embedder, committed = open_stores(settings, rebuild)
    batch = Batch(index, lexical, embedder, settings.ingest_batch_chunks)
    seen: set[str] = set()
    for i, path in enumerate(files):
        if progress:
            progress(f"{path.name} · {batch.embedded + batch.size:,} chunks", i, len(files))

        def on_page(page: int, pages: int, what: str, name: str = path.name, i: int = i) -> None:
            if progress:
                progress(f"{name} page {page}/{pages}" + (" (OCR)" if what == "OCR" else ""), i, len(files))

        limit = size_limit(path, settings)
        try:
            version = version_of(path, sha256_file(path), settings) if path.stat().st_size <= limit else ""
        except OSError as exc:
            report.errors.append(f"{path.name}: cannot read ({exc.strerror})")
            continue
        stored = committed.get(path.name, {})
        if version and stored.get("doc_sha") == version:
            seen.add(path.name)
            report.documents += 1
            report.skipped += 1
            report.chunks += int(stored["n_chunks"])
            report.files.append({"file": str(path), "status": "unchanged", "chunks": int(stored["n_chunks"])})
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
        chunks = chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap_sentences, embedder.count_tokens,
                                version)
        batch.add(doc, version, chunks, replaces=doc.name in committed)
        report.chunks += len(chunks)
        report.files.append({"file": str(path), "status": "indexed", "kind": doc.kind, "chunks": len(chunks),
                             "pages": len(doc.pages) or None, "ocr_pages": ocr or None})
    batch.flush()
    report.embedded = batch.embedded
    for folder in (p.resolve() for p in paths if p.is_dir()):
        for name, entry in committed.items():
            source = Path(str(entry.get("source") or ""))
            if name not in seen and source.is_relative_to(folder) and not source.exists():
                index.uncommit([name])
                lexical.remove([name])
                report.removed += index.remove_doc(name)
                report.removed_docs.append(name)
    if progress:
        progress(f"done · {batch.embedded:,} chunks embedded", len(files), len(files))
    report.seconds = round(time.perf_counter() - t0, 3)
    return report
