"""Hybrid retrieval: dense (Chroma's nearest neighbours) + BM25 (the persisted SQLite FTS5 index), fused by RRF.

llama-index's QueryFusionRetriever resolves an LLM at construction even when it never
calls one, so the reciprocal-rank fusion (a few lines) is done here instead.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from threading import Thread
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.embeddings import embedder_in_background, embedder_name
from assistant.lexical import SyncProgress, committed_versions, every_few_seconds, name_terms, open_lexical
from assistant.store import Index, StoredChunk, StoreError, page_at
from assistant.verify import ATTRIBUTION, without_source

RRF_K = 60
NEAR_DUPLICATE_COSINE = 0.9


class QueryError(Exception):
    """The query itself is unusable (empty, too long)."""


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its fused rank and score."""

    rank: int
    score: float
    chunk: StoredChunk

    def as_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "rank": self.rank,
            "doc": c.doc,
            "title": c.title,
            "start": c.start,
            "end": c.end,
            "page": page_at(c.meta, c.start)[0],
            "text": c.text,
            "score": round(self.score, 6),
            "id": c.id,
        }


def check_query(query: str, settings: Settings) -> str:
    """Reject empty, control-character-only or oversized queries with a one-line reason."""
    cleaned = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in query).strip()
    if not cleaned:
        raise QueryError("the question is empty")
    if len(cleaned) > settings.max_question_chars:
        raise QueryError(
            f"the question is {len(cleaned):,} characters; the limit is {settings.max_question_chars:,}"
            " (BRIEFING_MAX_QUESTION_CHARS)"
        )
    return " ".join(cleaned.split())


def without_named_source(query: str, names: Collection[frozenset[str]]) -> str:
    """The query for the dense half: an attribution ("according to GAO-07-283") left out where it names an indexed
    document (`verify.without_source`).

    Why: such a phrase says which document, not what the passage says. Embedded with the question it pulls the query
    vector toward what all that document's passages share and away from the one that answers (measured on the
    development PDFs: the passage stating "U.S. oil production peaked around 1970" ranked 7th with "according to
    GAO-07-283" and 1st without it). The lexical half keeps the phrase, where a document's name terms lift that
    document's passages (`lexical.name_terms`)."""
    return without_source(query, lambda named: any(named <= name for name in names))


class Retriever:
    """Dense search in Chroma plus BM25 in the persisted lexical index, fused by reciprocal rank.

    Nothing grows with the corpus in this process: candidates are ids from both halves, and only the few fused
    ones are read back from Chroma. Both halves answer from the committed versions in Chroma's manifest, which is
    re-read at most every `sync_seconds` (another process or replica may have ingested since)."""

    def __init__(self, settings: Settings, index: Index | None = None, progress: SyncProgress | None = None):
        from assistant.llm import notice

        self.settings = settings
        loading = embedder_in_background(settings)
        self.index = index or Index(settings, embedder_name(settings), create=False)
        self._notice = notice
        self.lexical = open_lexical(settings, notice)
        self._n = max(10, 3 * self.settings.k)
        self._common: frozenset[str] | None = None
        self._names: dict[str, frozenset[str]] | None = None
        self.documents: dict[str, dict[str, Any]] = {}
        self._loaded = False
        self._stamp: str | None = None
        self._warming: Thread | None = None
        self.refresh(progress)
        self.embedder = loading.result()
        if self._warming:
            self._warming.join()

    def refresh(self, progress: SyncProgress | None = None) -> None:
        """Re-read the manifest and bring the lexical index in line with it (a no-op when nothing changed). When
        another process ingested into a local index, the Chroma reader is renewed so the dense half sees its vectors
        too (`Index.written_elsewhere`)."""
        stamp = self.index.stamp()  # read before the manifest: a change in between only makes the next look again
        if not self._loaded:  # the vectors load while the lexical mirror is checked (`Index.warm`)
            self._warming = Thread(target=self.index.warm, name="vectors", daemon=True)
            self._warming.start()
        if self._loaded and stamp is not None and stamp == self._stamp:
            self._synced = time.monotonic()
            return
        cached = self.lexical.cached_manifest(stamp)
        manifest = cached if cached is not None else self.index.manifest()
        if self._loaded and self.index.written_elsewhere(self.documents, manifest):
            self.index = self.index.reopened()
            manifest = self.index.manifest()
        self.documents, self._loaded = manifest, True
        if self.lexical.sync(committed_versions(self.documents), self.index.passages_of,
                             progress or every_few_seconds(self._notice), self._notice):
            self._common = self._names = None
        if cached is None:
            self.lexical.remember_manifest(stamp, manifest)
        self._stamp, self._synced = stamp, time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._synced >= self.settings.sync_seconds:
            self.refresh()

    def common_stems(self) -> frozenset[str]:
        """Stems found in a large share of the indexed passages (`verify.Vocabulary`), once per change."""
        if self._common is None:
            self._common = self.lexical.vocabulary().common()
        return self._common

    def search(self, query: str, k: int | None = None, diverse: bool = True) -> list[Passage]:
        """Top-k passages for a query; near-duplicates pushed behind distinct evidence unless `diverse` is off."""
        query = check_query(query, self.settings)
        k = k or self.settings.k
        self._fresh()
        if not self.documents:
            raise StoreError("the index is empty: run `briefing ingest` first")
        fused: dict[str, float] = {}
        for ranking in (self._dense_ids(query), self._lexical_ids(query)):
            for rank, cid in enumerate(ranking):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
        ordered = sorted(fused, key=lambda c: -fused[c])
        chunks, embs = self.index.get(ordered, embeddings=True)
        current = {c.id: (c, np.asarray(e)) for c, e in zip(chunks, embs, strict=True)
                   if self.documents.get(c.doc, {}).get("doc_sha") == c.meta.get("doc_sha")}
        ordered = [cid for cid in ordered if cid in current]
        chosen = self._diversify(ordered, k, current) if diverse else ordered[:k]
        return [Passage(rank=i + 1, score=fused[cid], chunk=current[cid][0]) for i, cid in enumerate(chosen)]

    def document_names(self) -> dict[str, frozenset[str]]:
        """Each indexed document's name terms (`lexical.name_terms`), by document, once per change: the dense query
        and the answer checks (`answer.finalize`) both read them."""
        if self._names is None:
            self._names = {doc: frozenset(name_terms(doc, str(meta.get("title") or "")))
                           for doc, meta in self.documents.items()}
        return self._names

    def documents_stating(self, stems: list[str]) -> set[str]:
        """The indexed documents that write every one of `stems` somewhere (`LexicalIndex.documents_stating`)."""
        with self._lexical_errors():
            return self.lexical.documents_stating(stems)

    def named_only(self, stems: list[str]) -> dict[str, set[str]]:
        """For each of `stems` that some document's name carries (`document_names`), the documents whose name
        carries it while none of their passages writes it: a word that only names a document ("scanned" of
        scanned_report_p4.pdf, "wikipedia" of a saved page's title), which a question uses to say which document it
        asks about (`answer.names_another`)."""
        names = self.document_names()
        found = {s: {d for d, terms in names.items() if s in terms} for s in dict.fromkeys(stems)}
        with self._lexical_errors():
            return {s: docs - self.lexical.documents_stating([s], names=False) for s, docs in found.items() if docs}

    def _dense_ids(self, query: str) -> list[str]:
        if ATTRIBUTION.search(query):  # cheap test first: the document names are built only for such a question
            query = without_named_source(query, self.document_names().values())
        return self.index.nearest(self.embedder.get_query_embedding(query), self._n)

    def _lexical_ids(self, query: str) -> list[str]:
        with self._lexical_errors():
            return self.lexical.search(query, self._n)

    @contextmanager
    def _lexical_errors(self) -> Iterator[None]:
        """A damaged lexical index reported as what to do about it, not as an SQLite traceback."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"the lexical index {self.lexical.path} is damaged ({exc}): "
                             "run `briefing ingest --repair`") from None

    @staticmethod
    def _diversify(ordered: list[str], k: int, found: dict[str, tuple[StoredChunk, np.ndarray]]) -> list[str]:
        """Greedy pick: a candidate too similar to a picked passage of ANOTHER document waits.

        One article rewrites the other, so their paraphrases would fill every slot; they are
        kept (conflicts need both sides) but only after distinct evidence.
        """
        if len(ordered) <= k:
            return ordered
        picked: list[str] = []
        waiting: list[str] = []
        for cid in ordered:
            chunk, vec = found[cid]
            dup = any(found[p][0].doc != chunk.doc and float(found[p][1] @ vec) > NEAR_DUPLICATE_COSINE
                      for p in picked)
            (waiting if dup else picked).append(cid)
            if len(picked) == k:
                break
        return (picked + waiting)[:k]
