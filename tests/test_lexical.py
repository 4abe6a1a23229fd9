"""The persisted lexical index (SQLite FTS5): escaping, incremental updates, mirroring Chroma, repair."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from conftest import SEEDS, make_settings

from assistant import store
from assistant.config import Settings
from assistant.embeddings import get_embedder
from assistant.indexing import ingest, ingest_lock, repair
from assistant.ingest import IngestError
from assistant.lexical import (
    DocPassages,
    LexicalIndex,
    lexical_path,
    open_lexical,
    query_terms,
    selective_terms,
)
from assistant.retrieval import Retriever
from assistant.store import STAMP_ID, Index

TALKS = [("t1", "The negotiations on grain exports resumed in the capital."),
         ("t2", "Rail workers went on strike over pay."),
         ("t3", "Grain prices rose after the exports stalled.")]


def test_query_syntax_in_user_text_is_never_interpreted(tmp_path: Path) -> None:
    lex = LexicalIndex(tmp_path / "lex.sqlite3")
    lex.replace([DocPassages("a.txt", "v1", TALKS)])
    for hostile in ['"unbalanced', "NEAR(grain strike)", "grain AND OR", "text: grain", "gra*", "-grain ^",
                    "(((", "'; DROP TABLE rows; --"]:
        lex.search(hostile, 5)  # must not raise
        lex.search(hostile, 5, budget=0)  # nor when its common terms are scored apart
    assert query_terms('grain" OR "exports') == ["grain", "export"]  # quotes gone, OR a stopword
    assert lex.search("NEAR(grain strike)", 5)[:1] in (["t1"], ["t2"], ["t3"])
    assert lex.search("the of and", 5) == []  # stopwords only: nothing to rank by


def test_stemmed_terms_match_other_forms_and_rank_by_bm25(tmp_path: Path) -> None:
    lex = LexicalIndex(tmp_path / "lex.sqlite3")
    lex.replace([DocPassages("a.txt", "v1", TALKS)])
    assert lex.search("who negotiated?", 5) == ["t1"]  # negotiated ~ negotiations
    assert set(lex.search("grain export", 5)) == {"t1", "t3"}
    assert lex.search("striking rail worker", 5)[0] == "t2"


def test_the_rarest_terms_within_the_budget_are_selective_and_at_least_one_always_is() -> None:
    df = {"treaty": 5, "expire": 50, "year": 500}
    assert selective_terms(["year", "treaty", "expire"], df, 60) == (["treaty", "expire"], ["year"])
    assert selective_terms(["year", "treaty", "expire"], df, 0) == (["treaty"], ["expire", "year"])
    assert selective_terms(["year", "unseen"], df, 0) == (["unseen"], ["year"])


def test_a_query_whose_common_terms_are_scored_apart_ranks_as_fts5_bm25_does(tmp_path: Path) -> None:
    """Scoring common terms outside FTS5 (a query over the postings budget) must give FTS5's own ranking whenever
    the selective terms' candidates hold every row that matters: same formula, lengths, column weights and phrases
    of several tokens ("1.7"). Built so that the common words reorder what the rare one finds."""
    rng = random.Random(7)
    filler = ["ledger", "harbour", "quarry", "lantern", "meadow", "copper", "orchard", "signal", "valley", "timber"]
    docs = []
    for d in range(6):
        passages = []
        for p in range(12):
            words_ = rng.choices(filler, k=rng.randint(6, 40))
            words_ += ["report"] * rng.randint(0, 3) + ["1.7 percent"] * rng.randint(0, 2)
            if rng.random() < 0.4:
                words_ += ["treaty"] * rng.randint(1, 2)
            rng.shuffle(words_)
            passages.append((f"d{d}-{p}", " ".join(words_)))
        title = " ".join(rng.choices(filler, k=rng.randint(0, 30)))  # names count in a row's length too
        docs.append(DocPassages(f"report-{d}.txt" if d % 2 else f"notes-{d}.txt", "v1", passages, title))
    lex = LexicalIndex(tmp_path / "lex.sqlite3")
    lex.replace(docs)
    for query in ("treaty report 1.7 percent", "report treaty", "timber treaty report"):
        exact = lex.search(query, 10, budget=10**9)
        assert len(exact) == 10
        assert lex.search(query, 10, budget=0, pool=1000) == exact
    assert set(lex.search("treaty report", 50, budget=0)) <= {cid for d in docs for cid, t in d.passages
                                                             if "treaty" in t}


def test_a_new_version_replaces_passages_and_frequencies(tmp_path: Path) -> None:
    lex = LexicalIndex(tmp_path / "lex.sqlite3")
    lex.replace([DocPassages("a.txt", "v1", TALKS), DocPassages("b.txt", "v1", [("b1", "Grain was shipped.")])])
    assert lex.count() == 4 and "grain" in lex.vocabulary().common()  # in 3 of 4 passages
    lex.replace([DocPassages("a.txt", "v2", [("t9", "Ferry services were cancelled.")])])
    assert lex.versions() == {"a.txt": "v2", "b.txt": "v1"} and lex.count() == 2
    assert lex.search("negotiations", 5) == [] and lex.search("ferry", 5) == ["t9"]
    assert "grain" in lex.vocabulary().common() and "negoti" not in lex.vocabulary().df
    lex.remove(["b.txt"])
    assert lex.versions() == {"a.txt": "v2"} and "grain" not in lex.vocabulary(share=0.0).df


def test_a_question_naming_a_document_finds_its_passages(tmp_path: Path) -> None:
    """Users name a source by its file name or title ("according to GAO-07-283", "the scanned page"); the words
    are in no passage, so the passages of the named document must still come first (the name column)."""
    lex = LexicalIndex(tmp_path / "lex.sqlite3")
    same = "Production peaked around the start of the decade."
    lex.replace([DocPassages("reports/gao_07_283_oil.pdf", "v1", [("g1", same), ("g2", "Imports rose.")]),
                 DocPassages("other_review.pdf", "v1", [("o1", same)], title="Crude Oil Outlook")])
    assert lex.search("When did production peak, according to GAO-07-283?", 5)[0] == "g1"
    assert lex.search("When did production peak, says the crude oil outlook?", 5)[0] == "o1"  # by title
    assert lex.search("gao 07 283", 5)[:2] in (["g1", "g2"], ["g2", "g1"])  # the name alone: all its passages
    assert lex.search("imports", 5) == ["g2"]  # the passage text still decides within and across documents


def test_a_document_states_words_written_anywhere_in_it_or_its_name(tmp_path: Path) -> None:
    """An analysis names its publisher once, in a byline at its end, and a report its author in its file name: each
    word may be in a different passage, and a document missing any one of them does not state them all."""
    lex = LexicalIndex(tmp_path / "lex.sqlite3")
    lex.replace([DocPassages("vellmar_note.txt", "v1", [("v1", "Grain exports fell."), ("v2", "Written at Orvo.")]),
                 DocPassages("other.txt", "v1", [("o1", "Grain exports rose at Orvo.")])])
    assert lex.documents_stating(["grain", "orvo"]) == {"vellmar_note.txt", "other.txt"}
    assert lex.documents_stating(["vellmar", "orvo"]) == {"vellmar_note.txt"}  # a name word and a text word
    assert lex.documents_stating(["orvo", "tallin"]) == set()
    assert lex.documents_stating(["vellmar"], names=False) == set()  # its passages alone never write its name
    assert lex.documents_stating(["orvo"], names=False) == {"vellmar_note.txt", "other.txt"}


def test_sync_mirrors_chroma_and_rebuilds_when_counts_disagree(tmp_path: Path) -> None:
    chroma = {("a.txt", "v1"): TALKS, ("b.txt", "v2"): [("b1", "Grain was shipped.")]}
    fetched: list[str] = []

    def fetch(wanted: list[tuple[str, str]]) -> list[DocPassages]:
        fetched.extend(doc for doc, _ in wanted)
        return [DocPassages(doc, version, chroma[(doc, version)]) for doc, version in wanted]

    lex = LexicalIndex(tmp_path / "lex.sqlite3")
    lex.replace([DocPassages("gone.txt", "v0", [("g1", "Old text.")]), DocPassages("b.txt", "v1", [])])
    committed = {"a.txt": ("v1", 3), "b.txt": ("v2", 1)}
    assert lex.sync(committed, fetch) == 3  # gone.txt dropped, a.txt new, b.txt changed
    assert sorted(fetched) == ["a.txt", "b.txt"] and lex.count() == 4
    fetched.clear()
    assert lex.sync(committed, fetch) == 0 and fetched == []  # in line: nothing fetched
    with sqlite3.connect(lex.path) as db:  # passages deleted by hand behind matching versions
        db.execute("DELETE FROM rows WHERE cid = 't2'")
    said: list[str] = []
    lex.sync(committed, fetch, notice=said.append)
    assert lex.count() == 4 and lex.search("strike", 5) == ["t2"]
    assert said and "rebuilding" in said[0]


def test_an_unreadable_file_is_moved_aside_and_said(tmp_path: Path) -> None:
    cfg = make_settings(tmp_path)
    path = lexical_path(cfg)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    said: list[str] = []
    lex = open_lexical(cfg, said.append)
    assert lex.count() == 0 and len(said) == 1 and "rebuilding" in said[0]
    assert path.with_name(path.name + ".unreadable").exists()


def _rows(path: Path) -> set[tuple[str, ...]]:
    """Every passage row of a lexical index file: chunk id, document, version, indexed text and name."""
    with sqlite3.connect(path) as db:
        return set(db.execute("SELECT rows.cid, rows.doc, docs.version, passages.text, passages.name FROM rows "
                              "JOIN docs ON docs.doc = rows.doc JOIN passages ON passages.rowid = rows.id"))


def test_the_retriever_rebuilds_a_deleted_or_damaged_lexical_index_from_chroma(cfg: Settings) -> None:
    ingest([SEEDS], cfg)
    expected = Retriever(cfg).lexical.count()
    assert expected > 0
    path = lexical_path(cfg)
    written = _rows(path)
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    rebuilt = Retriever(cfg)
    assert rebuilt.lexical.count() == expected
    assert _rows(path) == written  # the same passages, documents, versions and names as the ingest wrote
    assert rebuilt.lexical.search("Kozhemyako agriculture tourism", 3)
    rebuilt.lexical.close()
    path.write_bytes(b"garbage" * 1000)
    assert Retriever(cfg).lexical.count() == expected


def test_a_second_ingest_at_once_is_refused_and_repair_reports(cfg: Settings) -> None:
    ingest([SEEDS], cfg)
    with ingest_lock(cfg), pytest.raises(IngestError, match="another ingest is writing this index"):
        ingest([SEEDS], cfg)
    assert ingest([SEEDS], cfg).embedded == 0  # the lock is released
    done = repair(cfg)
    assert done["documents"] == 2 and done["passages"] > 0 and done["orphan_chunks_removed"] == 0


def test_team_replicas_keep_their_lexical_copy_apart_from_a_local_index(tmp_path: Path) -> None:
    local = make_settings(tmp_path)
    team = make_settings(tmp_path, chroma_host="10.0.0.5", chroma_port=8001)
    assert lexical_path(local) != lexical_path(team)
    assert "10.0.0.5_8001" in lexical_path(team).name


def test_this_processs_own_ingest_is_searchable_without_renewing_the_chroma_reader(cfg: Settings,
                                                                                  tmp_path: Path) -> None:
    ingest([SEEDS], cfg)
    retriever = Retriever(cfg)
    reader = retriever.index
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "memo.txt").write_text("Memo\n\nThe quarterly Zorblatt survey covered fourteen harbours.\n")
    ingest([extra], cfg)
    retriever.refresh()
    assert retriever.index is reader  # its own writes are in its reader already
    assert retriever.search("Zorblatt survey", 3)[0].chunk.doc == "memo.txt"


def test_a_cold_start_reads_the_manifest_from_chroma_only_when_its_stamp_moved(cfg: Settings, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading every manifest record from Chroma grows with the corpus; a process whose lexical mirror was brought
    in line with the current stamp must take the manifest from the mirror, and must read Chroma again (and see the
    change) as soon as a commit or a removal moves the stamp."""
    ingest([SEEDS], cfg)
    first = Retriever(cfg)
    stamp = first.index.stamp()
    assert stamp and STAMP_ID not in first.documents and len(first.documents) == 2
    first.lexical.close()
    reads: list[int] = []
    real = Index.manifest
    monkeypatch.setattr(Index, "manifest", lambda self: reads.append(1) or real(self))
    second = Retriever(cfg)
    assert reads == [] and second.documents == first.documents  # the same manifest, from the mirror
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "memo.txt").write_text("Memo\n\nThe quarterly Zorblatt survey covered fourteen harbours.\n")
    ingest([extra], cfg)
    assert second.index.stamp() != stamp
    second.refresh()
    assert reads and "memo.txt" in second.documents
    assert second.search("Zorblatt survey", 3)[0].chunk.doc == "memo.txt"
    moved = second.index.stamp()
    (extra / "memo.txt").unlink()
    ingest([extra], cfg)  # a removal moves the stamp too
    assert second.index.stamp() != moved
    second.refresh()
    assert "memo.txt" not in second.documents


def test_the_cached_manifest_answers_only_for_its_own_stamp_and_a_reset_forgets_it(tmp_path: Path) -> None:
    lexical = LexicalIndex(tmp_path / "lex.sqlite3")
    manifest = {"a.txt": {"doc": "a.txt", "doc_sha": "v1", "n_chunks": 1}}
    assert lexical.cached_manifest(None) is None and lexical.cached_manifest("s1") is None
    lexical.remember_manifest("s1", manifest)
    assert lexical.cached_manifest("s1") == manifest
    assert lexical.cached_manifest("s2") is None
    lexical.reset()
    assert lexical.cached_manifest("s1") is None


def test_whole_collection_reads_go_page_by_page_and_miss_nothing(cfg: Settings, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    """Chroma fails one read of more than ~32,000 records, so the manifest, the orphan sweep of `--repair` and the
    legacy manifest read whole collections a page at a time; every record must still be seen exactly once."""
    ingest([SEEDS], cfg)
    whole = Index(cfg, get_embedder(cfg).model_name, create=False)
    manifest, chunks = whole.manifest(), whole.count()
    some = whole.col.get(limit=1, include=["embeddings", "metadatas", "documents"])
    orphan = {**some["metadatas"][0], "doc_sha": "superseded"}  # a chunk of a version that was never committed
    whole.col.add(ids=["orphan-1"], embeddings=[some["embeddings"][0]], metadatas=[orphan],
                  documents=[some["documents"][0]])
    monkeypatch.setattr(store, "PAGE", 4)
    assert whole.manifest() == manifest
    assert whole.orphans(manifest) == ["orphan-1"]
    assert repair(cfg) == {"documents": len(manifest), "passages": chunks, "orphan_chunks_removed": 1}
    assert whole.count() == chunks
