"""The Chroma collection: which documents are indexed, their chunks, and dense queries.

Writes go through llama-index's ChromaVectorStore; bookkeeping (per-document hashes, removal,
integrity) reads Chroma directly because llama-index has no notion of "this document's
version is complete". A document version is complete when all `n_chunks` of its chunks
carry its `doc_sha`: chunk ids are deterministic, so an interrupted ingest re-run just
upserts the missing ones and never duplicates.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.chunking import Chunk
from assistant.config import Settings
from assistant.ingest import Document

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


class StoreError(Exception):
    """The index cannot be opened or written; the message says what to do."""


class ModelMismatch(StoreError):
    """The collection was built with a different embedding model."""


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as read back from the index, with the document metadata the surfaces show."""

    id: str
    doc: str
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]
    title: str
    meta: dict[str, Any]


def _client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        try:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
        except Exception as exc:
            raise StoreError(
                f"cannot reach Chroma server {settings.chroma_host}:{settings.chroma_port} ({exc})"
            ) from None
    try:
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings)
    except OSError as exc:
        raise StoreError(f"cannot open index at {settings.index_dir}: {exc.strerror or exc}") from None
    except Exception as exc:
        raise StoreError(f"cannot open index at {settings.index_dir}: {exc}") from None


class Index:
    """One Chroma collection bound to one embedding model."""

    def __init__(self, settings: Settings, embed_model: str, create: bool = True, rebuild: bool = False):
        self.settings = settings
        self.embed_model = embed_model
        self.client = _client(settings)
        name = settings.collection
        existing = [c if isinstance(c, str) else c.name for c in self.client.list_collections()]
        if rebuild:
            for old in (name, texts_name(name)):
                if old in existing:
                    self.client.delete_collection(old)
        try:
            if create:
                self.col = self.client.get_or_create_collection(
                    name, embedding_function=None, metadata={"embed_model": embed_model, "hnsw:space": "cosine"}
                )
            else:
                self.col = self.client.get_collection(name, embedding_function=None)
        except Exception as exc:
            if not create:
                raise StoreError(f"no index yet at {self.location}: run `briefing ingest` first") from None
            raise StoreError(f"cannot open collection {name}: {exc}") from None
        self.texts = self._texts(create)
        built_with = (self.col.metadata or {}).get("embed_model")
        if built_with != embed_model:
            raise ModelMismatch(
                f"index was built with embedding model {built_with!r}, not {embed_model!r}: "
                f"re-ingest with `briefing ingest --rebuild` (or switch BRIEFING_EMBED_BACKEND back)"
            )

    def _texts(self, create: bool) -> Any:
        name = texts_name(self.settings.collection)
        if create:
            return self.client.get_or_create_collection(name, embedding_function=None)
        try:
            return self.client.get_collection(name, embedding_function=None)
        except Exception:  # an index from before extracted documents existed: nothing stored
            return None

    @property
    def location(self) -> str:
        if self.settings.chroma_host:
            return f"chroma://{self.settings.chroma_host}:{self.settings.chroma_port}/{self.settings.collection}"
        return str(self.settings.index_dir)

    def vector_store(self) -> Any:
        from llama_index.vector_stores.chroma import ChromaVectorStore

        return ChromaVectorStore(chroma_collection=self.col)

    def count(self) -> int:
        return int(self.col.count())

    def doc_versions(self) -> dict[str, dict[str, Any]]:
        """Per document: sha, source path, expected and present chunk counts (for skip/repair)."""
        res = self.col.get(include=["metadatas"])
        present: Counter[tuple[str, str]] = Counter()
        info: dict[str, dict[str, Any]] = {}
        for meta in res["metadatas"] or []:
            key = (str(meta["doc"]), str(meta["doc_sha"]))
            present[key] += 1
            info.setdefault(key[0], {}).setdefault(key[1], dict(meta))
        out: dict[str, dict[str, Any]] = {}
        for (doc, sha), n in present.items():
            meta = info[doc][sha]
            entry = out.setdefault(doc, {"versions": {}, "source": meta.get("source"), "title": meta.get("title")})
            entry["versions"][sha] = {"present": n, "expected": int(meta["n_chunks"])}
        return out

    def add(self, doc: Document, version: str, chunks: list[Chunk], embeddings: list[list[float]]) -> None:
        """Upsert a document version's chunks through llama-index (deterministic ids: idempotent)."""
        from llama_index.core.schema import TextNode

        ref = None
        nodes = []
        if doc.extracted:  # the text offsets index is not the file's: keep it beside the chunks, first
            assert self.texts is not None
            self.texts.upsert(ids=[version], documents=[doc.text], embeddings=[[0.0]],
                              metadatas=[{"doc": doc.name, "kind": doc.kind}])
        for chunk, emb in zip(chunks, embeddings, strict=True):
            ref = doc.reference_for(chunk.start, chunk.end)
            meta: dict[str, Any] = {
                "doc": doc.name,
                "doc_sha": version,
                "n_chunks": len(chunks),
                "source": str(doc.path.resolve()),
                "kind": doc.kind,
                "title": doc.title,
                "author": doc.author or "",
                "date": doc.date or "",
                "start": chunk.start,
                "end": chunk.end,
                "sentences": json.dumps(chunk.sentences),
                "pages": json.dumps(doc.pages_between(chunk.start, chunk.end)),
                "outlet": (ref.outlet or "") if ref else "",
                "url": ((ref.url if ref else None) or doc.url or ""),
            }
            nodes.append(
                TextNode(
                    id_=chunk.id,
                    text=chunk.text,
                    metadata=meta,
                    embedding=emb,
                    start_char_idx=chunk.start,
                    end_char_idx=chunk.end,
                    excluded_embed_metadata_keys=list(meta),
                    excluded_llm_metadata_keys=list(meta),
                )
            )
        if nodes:
            self.vector_store().add(nodes)

    def remove_doc(self, doc: str, keep_sha: str | None = None) -> int:
        """Delete a document's chunks (all, or all but one version). Returns how many went."""
        where: dict[str, Any] = {"doc": doc}
        if keep_sha is not None:
            where = {"$and": [{"doc": doc}, {"doc_sha": {"$ne": keep_sha}}]}
        ids = self.col.get(where=where, include=[])["ids"]
        if ids:
            self.col.delete(ids=ids)
        if self.texts is not None:
            text_ids = self.texts.get(where={"doc": doc}, include=[])["ids"]
            stale = [i for i in text_ids if i != keep_sha]
            if stale:
                self.texts.delete(ids=stale)
        return len(ids)

    def document_text(self, meta: dict[str, Any]) -> str | None:
        """The text a chunk's offsets index: the stored extraction, or the original file for .txt/.md."""
        if meta.get("kind", "text") == "text":
            try:
                return Path(str(meta.get("source", ""))).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                return None
        if self.texts is None:
            return None
        found = self.texts.get(ids=[str(meta.get("doc_sha"))], include=["documents"])["documents"]
        return str(found[0]) if found else None

    def all_chunks(self) -> list[StoredChunk]:
        """Every stored chunk (for BM25 and listings)."""
        res = self.col.get(include=["documents", "metadatas"])
        return [_stored(i, t, m) for i, t, m in zip(res["ids"], res["documents"], res["metadatas"], strict=True)]

    def get(self, ids: list[str], embeddings: bool = False) -> tuple[list[StoredChunk], list[list[float]]]:
        include = ["documents", "metadatas"] + (["embeddings"] if embeddings else [])
        res = self.col.get(ids=ids, include=include)
        chunks = [_stored(i, t, m) for i, t, m in zip(res["ids"], res["documents"], res["metadatas"], strict=True)]
        embs = [list(map(float, e)) for e in res["embeddings"]] if embeddings else []
        return chunks, embs


def page_at(meta: dict[str, Any], offset: int) -> tuple[int | None, str | None, bool]:
    """(page, label, ocr) of the page holding `offset`, from the chunk's page list (none for pageless text)."""
    try:
        pages = json.loads(str(meta.get("pages") or "[]"))
    except ValueError:
        return None, None, False
    found: tuple[int | None, str | None, bool] = (None, None, False)
    for number, start, label, ocr in pages:
        if start <= offset:
            found = (int(number), label, bool(ocr))
    return found


def texts_name(collection: str) -> str:
    """The collection beside the chunks that keeps each extracted document's text."""
    return f"{collection}_texts"


def _stored(cid: str, text: str | None, meta: Any) -> StoredChunk:
    return StoredChunk(
        id=cid,
        doc=str(meta["doc"]),
        start=int(meta["start"]),
        end=int(meta["end"]),
        text=text or "",
        sentences=tuple(tuple(s) for s in json.loads(str(meta["sentences"]))),  # type: ignore[misc]
        title=str(meta.get("title", "")),
        meta=dict(meta),
    )


def index_size_bytes(settings: Settings) -> int:
    """Bytes on disk of a local index (0 for a server)."""
    if settings.chroma_host or not settings.index_dir.exists():
        return 0
    return sum(f.stat().st_size for f in settings.index_dir.rglob("*") if f.is_file())
