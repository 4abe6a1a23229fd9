"""The Chroma collections: the chunks, each extracted document's text, and the manifest of committed versions.

Chunk writes go through llama-index's ChromaVectorStore; search and bookkeeping (per-document
hashes, removal, integrity) read Chroma directly: search so that a cold start does not pay
llama-index's import, bookkeeping because llama-index has no notion of "this document's
version is complete". The manifest (`{collection}_docs`, one small record per document) is that
notion: a version is written there only after all its chunks are stored, so it is the commit
marker every reader trusts (the lexical index mirrors it, retrieval drops chunks of any other
version) and an interrupted ingest never shows half a document. Chunk ids are deterministic,
so a re-run upserts what is missing and never duplicates. A stamp record in the manifest
changes with every commit or removal, so a reader learns whether anything changed from one
record instead of re-reading one record per document.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.chunking import Chunk, with_context
from assistant.config import Settings
from assistant.ingest import Document
from assistant.lexical import DocPassages

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


# Manifest changes this process made ({(index location, doc): committed version, or None when removed}): see
# `written_elsewhere`. Keyed by index, since the same file may be committed to two indexes with the same version.
WRITTEN_HERE: dict[tuple[str, str], str | None] = {}
# The manifest record that carries `Index.stamp` (a "/" never occurs in a file name, so never in a document's id).
STAMP_ID = "/stamp"


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
            for old in (name, texts_name(name), manifest_name(name)):
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
        self._legacy = manifest_name(name) not in existing  # written before manifests existed: derive one once
        self.docs = self.client.get_or_create_collection(manifest_name(name), embedding_function=None)
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

    def written_elsewhere(self, before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> bool:
        """Did another process change a LOCAL index between two manifests? Chroma's embedded mode caches vectors
        per process, so this process's reader then misses the new ones ("Error finding id") until it is renewed
        (`reopened`); a server (team mode) has no such cache, and this process's own writes are already in it."""
        if self.settings.chroma_host:
            return False
        changed = {d: after.get(d, {}).get("doc_sha") for d in set(before) | set(after)
                   if before.get(d, {}).get("doc_sha") != after.get(d, {}).get("doc_sha")}
        return any(WRITTEN_HERE.get((self.location, doc), "?") != version for doc, version in changed.items())

    def reopened(self) -> Index:
        """The same index through a new Chroma reader (see `written_elsewhere`). The old reader is left to whoever
        still holds it (an ingest running in this process), so each renewal keeps one more reader alive: it happens
        only when another process wrote the index."""
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
        return Index(self.settings, self.embed_model, create=False)

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

    def manifest(self) -> dict[str, dict[str, Any]]:
        """Per document, its committed version's metadata (`doc_sha`, `n_chunks`, source, kind, title, url). An
        index written before the manifest existed gets one from its complete chunk sets, once."""
        found = {str(m["doc"]): dict(m) for i, m in all_metadatas(self.docs) if i != STAMP_ID}
        if not found and self._legacy and self.count():
            found = self._derive_manifest()
        return found

    def _derive_manifest(self) -> dict[str, dict[str, Any]]:
        metas: dict[tuple[str, str], dict[str, Any]] = {}
        present: Counter[tuple[str, str]] = Counter()
        for _, meta in all_metadatas(self.col):
            key = (str(meta["doc"]), str(meta["doc_sha"]))
            present[key] += 1
            metas.setdefault(key, dict(meta))
        complete = [metas[key] for key, n in present.items() if n == int(metas[key]["n_chunks"])]
        self.commit(complete)
        return {str(m["doc"]): manifest_entry(m) for m in complete}

    def commit(self, metas: list[dict[str, Any]]) -> None:
        """Mark these document versions (chunk metadata or manifest entries) as the searchable ones."""
        if metas:
            entries: list[dict[str, Any]] = [manifest_entry(m) for m in metas]
            ids = [str(e["doc"]) for e in entries] + [STAMP_ID]  # the stamp in the same write: never seen alone
            self.docs.upsert(ids=ids, embeddings=[[0.0]] * len(ids), metadatas=entries + [_new_stamp()])
            WRITTEN_HERE.update(((self.location, e["doc"]), e["doc_sha"]) for e in entries)

    def uncommit(self, docs: list[str]) -> None:
        """Withdraw documents from the manifest. A delete cannot share a write with the stamp, so the stamp changes
        before and after it: a reader that looked in between, or a kill in between, still finds a new stamp."""
        if docs:
            self.restamp()
            self.docs.delete(ids=docs)
            self.restamp()
            WRITTEN_HERE.update(dict.fromkeys((self.location, doc) for doc in docs))

    def restamp(self) -> None:
        """A new stamp: the manifest changed (or an index from before stamps gets its first)."""
        self.docs.upsert(ids=[STAMP_ID], embeddings=[[0.0]], metadatas=[_new_stamp()])

    def stamp(self) -> str | None:
        """A token that changes with every manifest change (one small read, where the manifest of a large corpus is
        thousands of records): a searching process re-reads the manifest only when it differs from the one it last
        mirrored. None for an index whose manifest predates stamps (it gets one at its next ingest)."""
        res = self.docs.get(ids=[STAMP_ID], include=["metadatas"])
        return str(res["metadatas"][0]["stamp"]) if res["metadatas"] else None

    def passages_of(self, wanted: list[tuple[str, str]]) -> list[DocPassages]:
        """The passages of these (document, version) pairs, in one Chroma read, for the lexical index to mirror.
        A version asked for but holding no chunks comes back empty, so the mirror still records it. Each passage is
        its search text (`Chunk.search_text`), as the ingest wrote it to the mirror."""
        res = self.col.get(where={"doc_sha": {"$in": sorted({v for _, v in wanted})}},
                           include=["documents", "metadatas"])
        passages: dict[tuple[str, str], list[tuple[str, str]]] = {key: [] for key in wanted}
        titles: dict[tuple[str, str], str] = {}
        for cid, text, meta in zip(res["ids"], res["documents"], res["metadatas"], strict=True):
            key = (str(meta["doc"]), str(meta["doc_sha"]))
            if key in passages:
                passages[key].append((cid, with_context(text or "", str(meta.get("context") or ""))))
                titles.setdefault(key, str(meta.get("title") or ""))
        return [DocPassages(doc, version, found, titles.get((doc, version), ""))
                for (doc, version), found in passages.items()]

    def orphans(self, manifest: dict[str, dict[str, Any]]) -> list[str]:
        """Ids of chunks that belong to no committed version (left by an interrupted or superseded ingest)."""
        return [cid for cid, meta in all_metadatas(self.col)
                if manifest.get(str(meta["doc"]), {}).get("doc_sha") != meta["doc_sha"]]

    def delete_chunks(self, ids: list[str]) -> None:
        for i in range(0, len(ids), 5000):
            self.col.delete(ids=ids[i : i + 5000])

    def add(self, batch: list[tuple[Document, str, list[Chunk], list[list[float]]]]) -> list[dict[str, Any]]:
        """Upsert document versions' chunks through llama-index in one write (deterministic ids: idempotent);
        returns each version's metadata for `commit`."""
        nodes: list[Any] = []
        metas: list[dict[str, Any]] = []
        for doc, version, chunks, embeddings in batch:
            if doc.extracted:  # the text offsets index is not the file's: keep it beside the chunks, first
                assert self.texts is not None
                self.texts.upsert(ids=[version], documents=[doc.text], embeddings=[[0.0]],
                                  metadatas=[{"doc": doc.name, "kind": doc.kind}])
            nodes += self._nodes(doc, version, chunks, embeddings)
            metas.append({"doc": doc.name, "doc_sha": version, "n_chunks": len(chunks),
                          "source": str(doc.path.resolve()), "kind": doc.kind, "title": doc.title,
                          "url": doc.url or ""})
        if nodes:
            self.vector_store().add(nodes)
        return metas

    @staticmethod
    def _nodes(doc: Document, version: str, chunks: list[Chunk], embeddings: list[list[float]]) -> list[Any]:
        from llama_index.core.schema import TextNode

        nodes = []
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
                "context": chunk.context,
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
        return nodes

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

    def nearest(self, vector: list[float], n: int) -> list[str]:
        """Ids of the n chunks nearest a query vector (cosine), straight from Chroma: the search path keeps
        llama-index's import (~1.8 s) out of every cold start."""
        res = self.col.query(query_embeddings=[vector], n_results=n, include=[])
        return list(res["ids"][0]) if res["ids"] else []

    def warm(self) -> None:
        """Have Chroma load the vector index into memory now, as it otherwise does at the first read (0.5-0.8 s at
        122,300 passages). Chroma does this outside the GIL but behind its own lock, so a thread running it overlaps
        a cold start's work that is not Chroma's (`Retriever.refresh`). Any failure is left for the real query to
        report, with its own message."""
        try:
            found = self.col.get(limit=1, include=["embeddings"])["embeddings"]
            if found is not None and len(found):
                self.nearest(list(map(float, found[0])), 1)
        except Exception:  # noqa: BLE001 - a warm-up; the search that follows raises and explains
            return

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


PAGE = 10_000  # rows per read of a whole collection


def all_metadatas(col: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, metadata) of every record, read a page at a time: Chroma 1.5 fails one read of more than about 32,000
    records ("too many SQL variables", measured at 122,300 chunks), and a page bounds memory too."""
    offset = 0
    while True:
        res = col.get(limit=PAGE, offset=offset, include=["metadatas"])
        yield from ((cid, dict(meta)) for cid, meta in zip(res["ids"], res["metadatas"] or [], strict=True))
        if len(res["ids"]) < PAGE:
            return
        offset += PAGE


def _new_stamp() -> dict[str, Any]:
    """The stamp record's metadata: a fresh random token (see `Index.stamp`)."""
    return {"stamp": uuid.uuid4().hex}


def manifest_name(collection: str) -> str:
    """The collection that records each document's committed version (see the module docstring)."""
    return f"{collection}_docs"


MANIFEST_KEYS = ("doc", "doc_sha", "n_chunks", "source", "kind", "title", "url")


def manifest_entry(meta: dict[str, Any]) -> dict[str, Any]:
    """The part of a chunk's metadata that describes its document version."""
    return {k: meta.get(k, "") for k in MANIFEST_KEYS}


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
