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
    context: str = ""  # the caption a run of table rows is read under (`table_context`), for search only

    @property
    def search_text(self) -> str:
        """What the embedder and the lexical index read: the quoted text, after its table caption if any."""
        return with_context(self.text, self.context)


# Abbreviations of English prose that the bundled Punkt model does not know (written without their final full stop,
# as Punkt keeps them). Unknown, Punkt ends a sentence at each: "employed by (i.e." / "in contract with) the property
# owner." became two shown sentences, so the model saw, cited and quoted half a sentence. Punkt still ends a sentence
# at one of them when the next word is one that starts sentences ("... nuts, etc. The market closed").
ABBREVIATIONS = frozenset("i.e e.g etc cf viz al incl esp resp dept govt intl".split())  # noqa: SIM905
# Abbreviations that are also words ("no", "fig", "sec") or letters ("p"), and ones a sentence may well end on: they
# abbreviate only before a number ("Public Law No. 109-58", "Fig. 3", "vol. 17, pp. 11-71", "ca. 1450"), so only
# there do they join the pieces Punkt cut ("He said no. Smith left." stays two sentences).
BEFORE_NUMBER = re.compile(r"\b(?:[Nn]os?|[Ff]igs?|[Vv]ols?|pp?|[Ss]ec|[Cc]h|[Ee]q|ca|[Ee]st|[Aa]pprox)\.$")
# A table's or figure's caption as reports print it: the label and number at the start of a line or a sentence, then
# ":" or "." and the title ("Table 2. Top 10 Foreign Holders ...", "Figure 5: Key Estimates ..."). A reference in
# prose ("shown in Table 2. The ...") does not start a sentence, so it is no caption.
CAPTION = re.compile(r"(?:^|(?<=\n)|(?<=[.!?]\s))(?:Table|Figure|Exhibit|Chart)\s+[A-Z]?-?\d+(?:[.-]\d+)?[.:]\s+\S")
# Dot leaders to a page number: a list of tables or figures, whose lines look like captions but head no rows.
LEADER = re.compile(r"\.{4,}|…{2,}|(?:\. ){4,}")
CAPTION_CHARS = 300  # caption plus column headers; a title longer than this is cut
TABLE_REACH = 1500  # furthest a caption may stand before the rows it heads
TABULAR_SHARE = 0.3  # share of a chunk's words that hold a digit, above which it reads as rows of data
# A line of a Markdown table (how the web-page and Word loaders write tables), and one that holds no words: the header
# rule ("|---|---|") or a row of empty cells.
TABLE_ROW = re.compile(r"[ \t]*\|")
EMPTY_ROW = re.compile(r"[\s|:-]*")
HEADER_RULE = re.compile(r"[ \t]*\|?(?:\s*:?-{3,}:?\s*\|)+\s*")  # "|---|:--:|" under a Markdown table's header
HEAD_LINES = 6  # lines of a Markdown table searched for its header rule
TABLE_LOOKBACK = 20_000  # characters searched back for the first line of a Markdown table
SPLITTER_VERSION = 4  # bumped when sentence spans or search texts change: `indexing.version_of` re-chunks


@lru_cache(maxsize=1)
def _punkt():  # type: ignore[no-untyped-def]
    """NLTK Punkt from the data llama-index ships (no download), located without importing `llama_index.core`
    (its package import costs ~1.8 s, which would fall on the first answer of every process), taught the common
    abbreviations it lacks (`ABBREVIATIONS`)."""
    from importlib.util import find_spec

    import nltk

    spec = find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llama-index-core is not installed; run .ci/setup")
    cache = str(Path(next(iter(spec.submodule_search_locations))) / "_static" / "nltk_cache")
    if cache not in nltk.data.path:
        nltk.data.path.append(cache)
    tokenizer = nltk.tokenize.PunktTokenizer("english")
    tokenizer._params.abbrev_types.update(ABBREVIATIONS)
    return tokenizer


LEADING_MARKERS = re.compile(r"(?:\[\d+\]\s*)+")  # "[2][6] They were ...": markers Punkt left at a sentence's start


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Absolute sentence spans inside text[start:end], whitespace trimmed.

    Punkt cuts after the full stop of "micro-animals.[2][6] They were ...", so the next sentence
    starts with the footnote markers (and is only markers at a paragraph's end): they belong to
    the sentence before it, whose quote they close, not to the one a footnote would quote
    next. So does the rest of a sentence cut after an abbreviation that goes before a number
    (`BEFORE_NUMBER`).
    """
    segment = text[start:end]
    out: list[tuple[int, int]] = []
    for a, b in _punkt().span_tokenize(segment):
        piece = segment[a:b]
        lead, trail = len(piece) - len(piece.lstrip()), len(piece.rstrip())
        markers = LEADING_MARKERS.match(piece, lead)
        if out and markers:
            out[-1] = (out[-1][0], start + a + len(piece[: markers.end()].rstrip()))
            lead = markers.end()
        if trail <= lead:
            continue
        span = (start + a + lead, start + a + trail)
        if out and piece[lead : lead + 1].isdigit() and BEFORE_NUMBER.search(text[out[-1][0] : out[-1][1]]):
            out[-1] = (out[-1][0], span[1])
        else:
            out.append(span)
    return out


def chunk_id(doc: str, version: str, start: int, end: int) -> str:
    """Stable across runs, unique across documents and versions. Same name, version and span give the same id
    (re-writing a chunk is idempotent); two copies of one file under two names, or a new version of a document whose
    spans did not move (a new splitter or extractor that left it alone), get ids of their own, so storing one never
    overwrites, nor removing the old version deletes, the other's chunks."""
    return hashlib.sha1(f"{doc}\0{version}:{start}:{end}".encode()).hexdigest()[:24]


def chunk_document(
    doc: Document, max_tokens: int, overlap: int, count_tokens: Callable[[str], int], version: str = ""
) -> list[Chunk]:
    """Group consecutive sentences (across paragraphs) up to `max_tokens`, sharing `overlap` sentences; ids from the
    document's name and stored `version` (its bytes when none is given)."""
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
        cid = chunk_id(doc.name, version or doc.sha256, start, end)
        text = doc.text[start:end]
        chunks.append(Chunk(cid, doc.name, start, end, text, group, table_context(doc.text, start, text)))
        if j >= len(sents):
            break
        i = max(i + 1, j - overlap)
    return chunks


def table_context(text: str, start: int, chunk: str) -> str:
    """The caption and column headers of the table whose rows `chunk` holds, when the chunk starts after them.

    Why: a long table is chunked apart from its caption, and its rows alone state only labels and figures ("Eastmoor
    1,903 t 29.5%"); the question names what the table is about ("the fruit harvested in 2024"), which only the
    caption and headers say, so neither the embedder nor BM25 could find the rows. A chunk that opens on a Markdown
    table row gets the table's first lines (`markdown_head`); one that reads as data rows (`TABULAR_SHARE`) gets the
    nearest printed caption ("Table 2. ...") at most `TABLE_REACH` characters before it (a list of tables, with its dot
    leaders, is not one), unless the chunk holds a caption of its own. Either is search text only, never quoted as
    the chunk's."""
    if TABLE_ROW.match(chunk):
        return markdown_head(text, start)
    if CAPTION.search(chunk) or not reads_as_rows(chunk):
        return ""
    blocks = [text[m.start() : min(start, m.start() + CAPTION_CHARS)]
              for m in CAPTION.finditer(text, max(0, start - TABLE_REACH), start)]
    captions = [" ".join(b.split()) for b in blocks if not LEADER.search(b)]
    return captions[-1] if captions else ""


def reads_as_rows(text: str) -> bool:
    """Does `text` read as rows of a table: a Markdown table row, or words of which `TABULAR_SHARE` hold a digit
    (a printed table's text, "Eastmoor 1,903 t 29.5%")?"""
    words = text.split()
    return bool(TABLE_ROW.match(text)) or (
        bool(words) and sum(any(ch.isdigit() for ch in w) for w in words) >= TABULAR_SHARE * len(words))


def markdown_head(text: str, start: int, unruled: bool = True) -> str:
    """The head of the Markdown table that runs on into `start`: its lines above the last header rule among its first
    `HEAD_LINES` (title row and column headers; the first line when it has no rule), empty cells dropped, at most
    `CAPTION_CHARS`. Empty when the table starts at `start`. A web page's table often opens with its title in one
    cell spanning every column, so the converter rules it off as the header and the column names ("Rank | Region |
    Pop.") follow as the first body row: a head that is a single title cell takes that row too when it holds no
    figure (a row of data is no header). With `unruled` false, a table without a header rule has no head: read from
    inside a chunk that starts mid-table, its first line is a row of data."""
    first = start
    while first > max(0, start - TABLE_LOOKBACK):
        above = text.rfind("\n", 0, first - 1) + 1
        if not TABLE_ROW.match(text, above, first):
            break
        first = above
    lines = text[first:start].splitlines()[:HEAD_LINES]
    rules = [i for i, line in enumerate(lines) if HEADER_RULE.fullmatch(line)]
    if not rules and not unruled:
        return ""
    end = rules[-1] if rules else 1
    head = [cells(line) for line in lines[:end] if not EMPTY_ROW.fullmatch(line)]
    if head and all("|" not in h for h in head) and end + 1 < len(lines) and not re.search(r"\d", lines[end + 1]):
        head.append(cells(lines[end + 1]))  # a title row alone above the rule: the column headers come after it
    return " | ".join(head)[:CAPTION_CHARS]


def cells(line: str) -> str:
    """A Markdown table row's non-empty cells, one space inside each, joined by " | "."""
    return " | ".join(row_cells(line))


def row_cells(line: str) -> list[str]:
    """A Markdown table row's non-empty cells, one space inside each."""
    return [" ".join(c.split()) for c in line.split("|") if c.strip()]


def with_context(text: str, context: str) -> str:
    """A passage's search text: its table caption (if any) on a line before its own text."""
    return f"{context}\n{text}" if context else text
