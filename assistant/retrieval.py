"""Hybrid retrieval: dense (Chroma through llama-index) + BM25 (bm25s through llama-index), fused by RRF.

llama-index's QueryFusionRetriever resolves an LLM at construction even when it never
calls one, so the reciprocal-rank fusion (a few lines) is done here instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.embeddings import get_embedder
from assistant.store import Index, StoredChunk, StoreError, page_at
from assistant.verify import Vocabulary

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


class Retriever:
    """Holds the dense retriever and an in-memory BM25 over every chunk; build once, query often."""

    def __init__(self, settings: Settings, index: Index | None = None):
        self.settings = settings
        self.embedder = get_embedder(settings)
        self.index = index or Index(settings, self.embedder.model_name, create=False)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild BM25 from the store (after an ingest)."""
        from llama_index.core import VectorStoreIndex
        from llama_index.core.schema import BaseNode, TextNode
        from llama_index.retrievers.bm25 import BM25Retriever

        self.chunks = {c.id: c for c in self.index.all_chunks()}
        self._common: frozenset[str] | None = None
        self._n = max(10, 3 * self.settings.k)
        self._bm25 = None
        if self.chunks:
            nodes: list[BaseNode] = [TextNode(id_=c.id, text=c.text) for c in self.chunks.values()]
            self._bm25 = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=min(self._n, len(nodes)))
        vindex = VectorStoreIndex.from_vector_store(self.index.vector_store(), embed_model=self.embedder)
        self._dense = vindex.as_retriever(similarity_top_k=self._n)

    def common_stems(self) -> frozenset[str]:
        """Stems found in a large share of the indexed passages (`verify.Vocabulary`), once per refresh."""
        if self._common is None:
            self._common = Vocabulary(c.text for c in self.chunks.values()).common()
        return self._common

    def search(self, query: str, k: int | None = None, diverse: bool = True) -> list[Passage]:
        """Top-k passages for a query; near-duplicates pushed behind distinct evidence unless `diverse` is off."""
        query = check_query(query, self.settings)
        k = k or self.settings.k
        if not self.chunks:
            raise StoreError("the index is empty: run `briefing ingest` first")
        fused: dict[str, float] = {}
        for ranking in (self._dense_ids(query), self._bm25_ids(query)):
            for rank, cid in enumerate(ranking):
                if cid in self.chunks:
                    fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
        ordered = sorted(fused, key=lambda c: -fused[c])
        chosen = self._diversify(ordered, k) if diverse else ordered[:k]
        return [Passage(rank=i + 1, score=fused[cid], chunk=self.chunks[cid]) for i, cid in enumerate(chosen)]

    def _dense_ids(self, query: str) -> list[str]:
        return [n.node.node_id for n in self._dense.retrieve(query)]

    def _bm25_ids(self, query: str) -> list[str]:
        if self._bm25 is None:
            return []
        return [n.node.node_id for n in self._bm25.retrieve(query) if (n.score or 0) > 0]

    def _diversify(self, ordered: list[str], k: int) -> list[str]:
        """Greedy pick: a candidate too similar to a picked passage of ANOTHER document waits.

        One article rewrites the other, so their paraphrases would fill every slot; they are
        kept (conflicts need both sides) but only after distinct evidence.
        """
        if len(ordered) <= k:
            return ordered
        _, embs = self.index.get(ordered, embeddings=True)
        got, _ = self.index.get(ordered)
        vec = {c.id: np.asarray(e) for c, e in zip(got, embs, strict=True)}
        picked: list[str] = []
        waiting: list[str] = []
        for cid in ordered:
            dup = any(
                self.chunks[p].doc != self.chunks[cid].doc and float(vec[p] @ vec[cid]) > NEAR_DUPLICATE_COSINE
                for p in picked
            )
            (waiting if dup else picked).append(cid)
            if len(picked) == k:
                break
        return (picked + waiting)[:k]
