"""Sentence-aware chunking with offsets into the original file.

llama-index's SentenceSplitter returns chunk strings and recovers offsets by searching the
text, which breaks when whitespace is normalised or a sentence repeats; we need exact spans
of every sentence (the answer prompt numbers single sentences), so we use NLTK's Punkt
`span_tokenize` (the model llama-index bundles) and group the spans ourselves.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from assistant.ingest import Document


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage: a run of whole sentences of one document."""

    id: str
    doc: str
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]  # absolute (start, end) of each sentence


@lru_cache(maxsize=1)
def _punkt():  # type: ignore[no-untyped-def]
    """NLTK Punkt from the data llama-index ships (no download), located without importing `llama_index.core`
    (its package import costs ~1.8 s, which would fall on the first answer of every process)."""
    from importlib.util import find_spec

    import nltk

    spec = find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llama-index-core is not installed; run .ci/setup")
    cache = str(Path(next(iter(spec.submodule_search_locations))) / "_static" / "nltk_cache")
    if cache not in nltk.data.path:
        nltk.data.path.append(cache)
    return nltk.tokenize.PunktTokenizer("english")


_MARKER_ONLY = re.compile(r"^(?:\[\d+\]\s*)+$")


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Absolute sentence spans inside text[start:end], whitespace trimmed.

    Punkt splits a footnote marker glued to a full stop ("resolutions.[1]") into its own
    sentence; the marker belongs to the sentence before it.
    """
    segment = text[start:end]
    out: list[tuple[int, int]] = []
    for a, b in _punkt().span_tokenize(segment):
        piece = segment[a:b]
        lead, trail = len(piece) - len(piece.lstrip()), len(piece.rstrip())
        if trail <= lead:
            continue
        span = (start + a + lead, start + a + trail)
        if out and _MARKER_ONLY.match(piece.strip()):
            out[-1] = (out[-1][0], span[1])
        else:
            out.append(span)
    return out


def chunk_id(doc_sha: str, start: int, end: int) -> str:
    """Stable across runs: same document bytes and span give the same id."""
    return hashlib.sha1(f"{doc_sha}:{start}:{end}".encode()).hexdigest()[:24]


def chunk_document(
    doc: Document, max_tokens: int, overlap: int, count_tokens: Callable[[str], int]
) -> list[Chunk]:
    """Group consecutive sentences (across paragraphs) up to `max_tokens`, sharing `overlap` sentences."""
    sents = [s for a, b in doc.content_spans for s in sentence_spans(doc.text, a, b)]
    sizes = [count_tokens(doc.text[a:b]) for a, b in sents]
    chunks: list[Chunk] = []
    i = 0
    while i < len(sents):
        j, total = i, 0
        while j < len(sents) and (j == i or total + sizes[j] <= max_tokens):
            total += sizes[j]
            j += 1
        group = tuple(sents[i:j])
        start, end = group[0][0], group[-1][1]
        chunks.append(Chunk(chunk_id(doc.sha256, start, end), doc.name, start, end, doc.text[start:end], group))
        if j >= len(sents):
            break
        i = max(i + 1, j - overlap)
    return chunks
