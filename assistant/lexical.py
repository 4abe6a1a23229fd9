"""The lexical half of retrieval: a persisted, incremental SQLite FTS5 index beside Chroma.

Why here and why FTS5: Chroma 1.5 cannot rank by keywords on a local or self-hosted server
(sparse indexes and rank fusion are Cloud-only; `where_document` is an unranked filter), and
rebuilding an in-memory BM25 from every chunk at each start makes start-up time and memory
grow with the corpus. SQLite ships with Python, FTS5 ranks with BM25 in about a millisecond,
writes are transactional, and many processes on one host may read one file while another
writes (WAL). Measured choice and numbers: `bench/bench_index.py` and the issue notes.

Chroma stays the truth. Its manifest (`Index.manifest`: one record per document's committed
version) says what is searchable; this file mirrors it and `sync` brings it in line
incrementally, so a replica that missed an ingest (another process, another host in team
mode, a file deleted or corrupted by hand) catches up from Chroma instead of answering from a
stale index. Nothing here parses user text as a query language: query words are quoted.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from assistant.config import Settings
from assistant.verify import COMMON_SHARE, STOPWORDS, Vocabulary, stem, words

SCHEMA_VERSION = "2"
SCHEMA = """
CREATE TABLE IF NOT EXISTS info(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs(doc TEXT PRIMARY KEY, version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows(id INTEGER PRIMARY KEY, cid TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rows_doc ON rows(doc);
CREATE VIRTUAL TABLE IF NOT EXISTS passages USING fts5(text, name, tokenize='unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS stems(stem TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manifest(doc TEXT PRIMARY KEY, entry TEXT NOT NULL);
"""

NAME_WEIGHT = 0.5  # a document-name match counts half a passage-text match (`name_terms`)
POSTINGS_BUDGET = 10_000  # rows a query's terms may match before its common ones are scored apart (`search`)
CANDIDATES = 100  # rows the selective terms pass on to be scored with the common ones
BM25_K1, BM25_B = 1.2, 0.75  # FTS5 bm25()'s constants
SyncProgress = Callable[[int, int], None]  # (documents done, documents to bring in line)


class LexicalError(Exception):
    """The lexical index file cannot be used; the message names the file and the repair."""


@dataclass(frozen=True)
class DocPassages:
    """One document version's passages, as written by an ingest or fetched from Chroma by a sync."""

    doc: str
    version: str
    passages: list[tuple[str, str]]  # (chunk id, text)
    title: str = ""


Fetch = Callable[[list[tuple[str, str]]], list[DocPassages]]  # [(doc, version)] -> those versions' passages


def terms(text: str) -> list[str]:
    """The words BM25 sees: content words stemmed exactly as `verify` stems them (so the set of a passage's terms
    is its `content_stems`, and the lexical half matches "negotiations" to "negotiated" the way the checks do)."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and len(w) > 1]


def name_terms(doc: str, title: str) -> list[str]:
    """The terms that name a document: its file path without the extension (separators read as spaces) and its
    title. Users refer to a source by what it is called ("according to GAO-07-283", "on the scanned page"), and
    those words are often in no passage of it; indexed beside each passage (`NAME_WEIGHT`), they lift that
    document's passages for such a question while its own text still orders them."""
    return terms(re.sub(r"[_\-/\\.]+", " ", str(PurePosixPath(doc).with_suffix(""))) + " " + title)


def query_terms(query: str, max_terms: int = 32) -> list[str]:
    """A query's distinct terms, each later quoted as an FTS5 string (`LexicalIndex._ranked`), so that no user text
    is ever read as FTS5 syntax (AND, NEAR, *, column filters, unbalanced quotes). Stopwords are left out: they
    match nearly every passage, which costs time and adds nothing to a BM25 ranking."""
    unique = dict.fromkeys(t.replace('"', "") for t in terms(query))
    return [t for t in list(unique)[:max_terms] if t]


def selective_terms(stems: list[str], df: dict[str, int], budget: int) -> tuple[list[str], list[str]]:
    """(selective, common): the rarest stems whose passages add up to at most `budget` rows (always at least the
    rarest one), and the rest. Ranking cost grows with the rows a query's terms match, and rare terms are the ones
    that decide a BM25 ranking; common ones only reorder rows that rare ones found."""
    ordered = sorted(stems, key=lambda t: df.get(t, 0))
    selective, total = [ordered[0]], df.get(ordered[0], 0)
    for t in ordered[1:]:
        total += df.get(t, 0)
        if total > budget:
            break
        selective.append(t)
    return selective, [t for t in ordered if t not in selective]


FTS_TOKEN = re.compile(r"[^\W_]+")


def fts_tokens(text: str) -> list[str]:
    """Tokens as FTS5's unicode61 tokenizer cuts indexed (already folded) text: runs of letters and digits."""
    return FTS_TOKEN.findall(text)


def occurrences(phrase: tuple[str, ...], counts: Counter[str], text: str) -> int:
    """How often a phrase (a quoted term of one or more tokens, "1.7" being two) occurs in a text whose token
    counts are `counts`."""
    if len(phrase) == 1:
        return counts[phrase[0]]
    tokens = fts_tokens(text)
    size = len(phrase)
    return sum(1 for i in range(len(tokens) - size + 1) if tuple(tokens[i : i + size]) == phrase)


def marks(values: list[Any]) -> str:
    """SQL placeholders for an IN list of these values."""
    return ",".join("?" * len(values))


def _varint(block: bytes, i: int) -> tuple[int, int]:
    """One SQLite varint (big-endian, 7 bits a byte, high bit set on all but the last; a 9th byte gives 8 bits)."""
    value = 0
    for _ in range(8):
        byte = block[i]
        i += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, i
    return (value << 8) | block[i], i + 1


class LexicalIndex:
    """BM25 over every committed passage, plus each content stem's document frequency (`verify.Vocabulary`)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()  # one connection shared by the chat's worker threads
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=60, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            found = self.db.execute("SELECT value FROM info WHERE key='schema'").fetchone()
            if found is None:
                self.db.execute("INSERT INTO info VALUES('schema', ?)", (SCHEMA_VERSION,))
            elif found[0] != SCHEMA_VERSION:
                raise LexicalError(f"lexical index {path} has schema {found[0]}, not {SCHEMA_VERSION}")
        except (sqlite3.DatabaseError, OSError) as exc:
            raise LexicalError(f"lexical index {path} is unusable ({exc})") from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: a kill midway leaves the file as it was before (SQLite's journal)."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def versions(self) -> dict[str, str]:
        with self._lock:
            return dict(self.db.execute("SELECT doc, version FROM docs").fetchall())

    def count(self) -> int:
        with self._lock:
            return int(self.db.execute("SELECT count(*) FROM rows").fetchone()[0])

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    def replace(self, docs: Iterable[DocPassages]) -> None:
        """Make each document's passages exactly these (a new or changed version), in one transaction."""
        docs = list(docs)
        with self._write() as db:
            self._delete(db, [d.doc for d in docs])
            df: Counter[str] = Counter()
            for d in docs:
                db.execute("INSERT INTO docs VALUES(?, ?)", (d.doc, d.version))
                name = " ".join(name_terms(d.doc, d.title))
                for cid, text in d.passages:
                    rowid = db.execute("INSERT INTO rows(cid, doc) VALUES(?, ?)", (cid, d.doc)).lastrowid
                    indexed = terms(text)
                    db.execute("INSERT INTO passages(rowid, text, name) VALUES(?, ?, ?)",
                               (rowid, " ".join(indexed), name))
                    df.update(set(indexed))
            db.executemany("INSERT INTO stems VALUES(?, ?) ON CONFLICT(stem) DO UPDATE SET df = df + excluded.df",
                           df.items())

    def remove(self, docs: Iterable[str]) -> None:
        with self._write() as db:
            self._delete(db, list(docs))

    @staticmethod
    def _delete(db: sqlite3.Connection, docs: list[str]) -> None:
        df: Counter[str] = Counter()
        for doc in docs:
            rowids = [r[0] for r in db.execute("SELECT id FROM rows WHERE doc = ?", (doc,))]
            for (text,) in db.execute(f"SELECT text FROM passages WHERE rowid IN ({marks(rowids)})",
                                      rowids):
                df.update(set(text.split()))
            db.executemany("DELETE FROM passages WHERE rowid = ?", ((r,) for r in rowids))
            db.execute("DELETE FROM rows WHERE doc = ?", (doc,))
            db.execute("DELETE FROM docs WHERE doc = ?", (doc,))
        db.executemany("UPDATE stems SET df = df - ? WHERE stem = ?", ((n, s) for s, n in df.items()))
        db.execute("DELETE FROM stems WHERE df <= 0")

    def search(self, query: str, n: int, budget: int = POSTINGS_BUDGET, pool: int = CANDIDATES) -> list[str]:
        """Chunk ids of the n best BM25 matches over passage text and document name (`NAME_WEIGHT`), best first.

        FTS5 scores every row that matches any query term: a query of words each found in a fifth of 122,300
        passages took 130 ms (p50). Common words carry little weight in BM25 (a low idf), so when the query's terms
        match more than `budget` rows in all, FTS5 ranks only by its selective terms (`selective_terms`), and the
        `pool` best of those rows get the common terms' share of the score added here (`_with_common_share`), by the
        same formula, document lengths and collection statistics. A row matching only common words is then not
        considered: it could only rank by words that say little about what the question asks. Measured on 100,000
        real-text passages with the SQuAD articles among them: the gold passage of 58 of 65 questions in the top 15
        either way (54 with a 5,000 budget), p50 29 -> 14 ms, p95 78 -> 28 ms."""
        unique = query_terms(query)
        if not unique:
            return []
        with self._lock:
            df = dict(self.db.execute(f"SELECT stem, df FROM stems WHERE stem IN ({marks(unique)})",
                                      unique).fetchall())
            selective, common = selective_terms(unique, df, budget)
            ranked = self._ranked(selective, n if not common else pool)
            if common and ranked:
                ranked = self._with_common_share(ranked, common, df)[:n]
            ids = dict(self.db.execute(f"SELECT id, cid FROM rows WHERE id IN ({marks(ranked)})",
                                       [r for r, _ in ranked]).fetchall())
        return [ids[r] for r, _ in ranked if r in ids]

    def documents_stating(self, stems: list[str], names: bool = True) -> set[str]:
        """The documents that write every one of `stems` somewhere in their passages or (with `names`) their name,
        not necessarily in one passage: a report names its author or publisher once, in a byline or at its end."""
        found: set[str] | None = None
        sql = "SELECT DISTINCT rows.doc FROM passages JOIN rows ON rows.id = passages.rowid WHERE passages MATCH ?"
        terms = [t for t in (s.replace('"', "") for s in stems) if t]  # a quote would end the FTS5 phrase
        column = "" if names else "text : "
        with self._lock:
            for term in dict.fromkeys(terms):
                docs = {doc for (doc,) in self.db.execute(sql, (f'{column}"{term}"',))}
                found = docs if found is None else found & docs
                if not found:
                    break
        return found or set()

    def _ranked(self, stems: list[str], n: int) -> list[tuple[int, float]]:
        """(rowid, FTS5 bm25 score: lower is better) of the n best rows matching any of `stems`, best first."""
        sql = "SELECT rowid, bm25(passages, 1.0, ?) AS s FROM passages WHERE passages MATCH ? ORDER BY s LIMIT ?"
        return list(self.db.execute(sql, (NAME_WEIGHT, " OR ".join(f'"{t}"' for t in stems), n)))

    def _with_common_share(self, ranked: list[tuple[int, float]], common: list[str],
                           df: dict[str, int]) -> list[tuple[int, float]]:
        """`ranked` re-ordered after adding each row's BM25 share for the `common` stems, computed as FTS5's bm25()
        does (k1 1.2, b 0.75, idf floored at 1e-6, term frequency weighted per column, the row's length in all
        columns against the collection's average from FTS5's own totals)."""
        rows, tokens = self._totals()
        if not rows:
            return ranked
        average = tokens / rows
        idf = {c: max(1e-6, math.log((rows - df.get(c, 0) + 0.5) / (df.get(c, 0) + 0.5))) for c in common}
        phrases = {c: tuple(fts_tokens(c)) for c in common}
        found = self.db.execute(f"SELECT rowid, text, name FROM passages WHERE rowid IN ({marks(ranked)})",
                                [r for r, _ in ranked])
        counts = {r: (Counter(fts_tokens(t)), Counter(fts_tokens(m)), t, m) for r, t, m in found}
        scored = []
        for rowid, score in ranked:
            text, name, raw_text, raw_name = counts.get(rowid, (Counter(), Counter(), "", ""))
            norm = BM25_K1 * (1 - BM25_B + BM25_B * (text.total() + name.total()) / average)
            for c in common:
                f = occurrences(phrases[c], text, raw_text) + NAME_WEIGHT * occurrences(phrases[c], name, raw_name)
                score -= idf[c] * f * (BM25_K1 + 1) / (f + norm)
            scored.append((rowid, score))
        return sorted(scored, key=lambda rs: rs[1])

    def _totals(self) -> tuple[int, int]:
        """(rows, tokens in all columns) from FTS5's averages record (id 1 of its data table: a varint row count,
        then one varint token total per column; SQLite's documented FTS5 file format), read in microseconds where
        counting would scan the whole index. (0, 0) when there is none yet."""
        found = self.db.execute("SELECT block FROM passages_data WHERE id = 1").fetchone()
        if found is None:
            return 0, 0
        values, i, block = [], 0, bytes(found[0])
        while i < len(block):
            value, i = _varint(block, i)
            values.append(value)
        return (values[0], sum(values[1:])) if values else (0, 0)

    def vocabulary(self, share: float = COMMON_SHARE) -> Vocabulary:
        """The collection's stem frequencies, read from the index: only stems at or above `share` of all passages
        are loaded, which is all `Vocabulary.common` needs (a full load costs seconds at 100k passages)."""
        passages = self.count()
        with self._lock:
            rows = self.db.execute("SELECT stem, df FROM stems WHERE df >= ?", (math.ceil(share * passages),))
            return Vocabulary.from_counts(dict(rows.fetchall()), passages)

    def stale(self, committed: dict[str, str]) -> tuple[list[str], list[tuple[str, str]]]:
        """(documents to drop, (document, version) to fetch) for this index to mirror `committed`."""
        mine = self.versions()
        drop = [d for d in mine if d not in committed]
        fetch = [(d, v) for d, v in committed.items() if mine.get(d) != v]
        return drop, fetch

    def reset(self) -> None:
        with self._write() as db:
            for table in ("docs", "rows", "passages", "stems", "manifest"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM info WHERE key='stamp'")

    def cached_manifest(self, stamp: str | None) -> dict[str, dict[str, Any]] | None:
        """Chroma's manifest as it was at `stamp` (`Index.stamp`), if this mirror was last brought in line with
        exactly that one; else None. Reading a large manifest from Chroma costs a cold start about 70 µs per
        document (~1.7 s at 25,000), reading it here a small fraction of that."""
        if stamp is None:
            return None
        with self._lock:
            row = self.db.execute("SELECT value FROM info WHERE key='stamp'").fetchone()
            if row is None or row[0] != stamp:
                return None
            return {doc: json.loads(entry) for doc, entry in self.db.execute("SELECT doc, entry FROM manifest")}

    def remember_manifest(self, stamp: str | None, manifest: dict[str, dict[str, Any]]) -> None:
        """Keep the manifest this mirror was just brought in line with, under its stamp (see `cached_manifest`)."""
        if stamp is None:
            return
        with self._write() as db:
            db.execute("DELETE FROM manifest")
            db.executemany("INSERT INTO manifest VALUES(?, ?)", ((d, json.dumps(m)) for d, m in manifest.items()))
            db.execute("INSERT OR REPLACE INTO info VALUES('stamp', ?)", (stamp,))

    def sync(self, committed: dict[str, tuple[str, int]], fetch: Fetch, progress: SyncProgress | None = None,
             notice: Callable[[str], None] | None = None) -> int:
        """Mirror Chroma's committed versions ({doc: (version, passages)}): drop what it no longer has, fetch what
        changed. Returns how many documents changed here (0 when already in line: the usual case, two small reads).
        Passages missing or extra behind matching versions (rows deleted by hand, a foreign writer) are caught by
        the count and repaired by a full rebuild from Chroma, announced through `notice`."""
        changed = self._mirror({d: v for d, (v, _) in committed.items()}, fetch, progress)
        expected = sum(n for _, n in committed.values())
        if self.count() != expected:
            if notice:
                notice(f"the lexical index {self.path} holds {self.count():,} passages where Chroma has "
                       f"{expected:,}: rebuilding it from Chroma")
            self.reset()
            changed = self._mirror({d: v for d, (v, _) in committed.items()}, fetch, progress)
        return changed

    def _mirror(self, committed: dict[str, str], fetch: Fetch, progress: SyncProgress | None,
                batch: int = 64) -> int:
        """Drop what Chroma no longer has and fetch what changed, `batch` documents per Chroma read and per
        transaction: one read per document costs ~150 ms at 25,000 documents, one read of 64 about 4 ms each."""
        drop, todo = self.stale(committed)
        if drop:
            self.remove(drop)
        for i in range(0, len(todo), batch):
            self.replace(fetch(todo[i : i + batch]))
            if progress:
                progress(min(i + batch, len(todo)), len(todo))
        return len(drop) + len(todo)


def every_few_seconds(notice: Callable[[str], None], seconds: float = 2.0) -> SyncProgress:
    """Progress of a long sync (a first start against a large server collection, a rebuild) as a notice line at
    most every few seconds, and one at the end; a sync of a few documents stays silent."""
    last = [time.monotonic()]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= seconds or (done == total and total > 64):
            last[0] = now
            notice(f"lexical index: {done:,}/{total:,} documents brought in line with Chroma")
    return report


def lexical_path(settings: Settings) -> Path:
    """Where this process keeps the lexical index: beside a local Chroma index, or (team mode) a per-host copy in
    `index_dir` named for the shared server and collection, synced from it."""
    if settings.chroma_host:
        server = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{settings.chroma_host}_{settings.chroma_port}")
        return settings.index_dir / f"lexical-{server}-{settings.collection}.sqlite3"
    return settings.index_dir / f"lexical-{settings.collection}.sqlite3"


def committed_versions(manifest: dict[str, dict[str, Any]]) -> dict[str, tuple[str, int]]:
    """{doc: (version, passages)} from `Index.manifest`, what `LexicalIndex.sync` mirrors."""
    return {doc: (str(meta["doc_sha"]), int(meta["n_chunks"])) for doc, meta in manifest.items()}


def open_lexical(settings: Settings, notice: Callable[[str], None]) -> LexicalIndex:
    """Open the index; an unreadable file (not SQLite, another schema) is moved aside, said in one line, and a new
    one is built by the next `sync` from Chroma, so a damaged file never gives silently wrong results."""
    path = lexical_path(settings)
    try:
        return LexicalIndex(path)
    except LexicalError as exc:
        aside = path.with_name(path.name + ".unreadable")
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.replace(aside)
        notice(f"{exc}: moved it to {aside.name}; rebuilding it from Chroma")
        return LexicalIndex(path)
