"""Indexing and retrieval on the real embedder and real Chroma."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SEED_000, SEED_002, SEEDS, make_settings, stored_chunks

from assistant.chunking import chunk_document, sentence_spans, table_context
from assistant.config import Settings
from assistant.embeddings import get_embedder
from assistant.indexing import ingest
from assistant.ingest import IngestError, load
from assistant.lexical import name_terms
from assistant.retrieval import QueryError, Retriever, without_named_source
from assistant.store import Index, ModelMismatch, StoreError


def test_every_chunk_and_sentence_offset_round_trips(seed_cfg: Settings) -> None:
    chunks = stored_chunks(seed_cfg)
    assert {c.doc for c in chunks} == {SEED_000.name, SEED_002.name}
    for c in chunks:
        original = (SEEDS / c.doc).read_text(encoding="utf-8")
        assert original[c.start : c.end] == c.text
        assert c.sentences[0][0] == c.start and c.sentences[-1][1] == c.end
        for a, b in c.sentences:
            assert original[a:b].strip() == original[a:b] and original[a:b]


def test_reingest_unchanged_embeds_nothing_and_never_duplicates(cfg: Settings) -> None:
    first = ingest([SEEDS], cfg)
    count = Index(cfg, get_embedder(cfg).model_name).count()
    second = ingest([SEEDS], cfg)
    assert first.embedded == count > 0
    assert second.embedded == 0 and second.skipped == 2
    assert Index(cfg, get_embedder(cfg).model_name).count() == count


def test_changed_document_is_rechunked_and_vanished_one_removed(cfg: Settings, docs_copy: Path) -> None:
    ingest([docs_copy], cfg)
    target = docs_copy / SEED_002.name
    target.write_text(target.read_text(encoding="utf-8") + "\nA new closing sentence about Vladivostok port.\n")
    changed = ingest([docs_copy], cfg)
    assert changed.embedded > 0 and changed.skipped == 1
    chunks = [c for c in stored_chunks(cfg) if c.doc == SEED_002.name]
    assert len({c.meta["doc_sha"] for c in chunks}) == 1  # the old version's chunks are gone
    assert any("Vladivostok" in c.text for c in chunks)
    assert any("Vladivostok" in p.chunk.text for p in Retriever(cfg).search("closing sentence Vladivostok port", 3))

    (docs_copy / SEED_000.name).unlink()
    removed = ingest([docs_copy], cfg)
    assert removed.removed > 0 and removed.removed_docs == [SEED_000.name]
    assert {c.doc for c in stored_chunks(cfg)} == {SEED_002.name}
    assert set(Index(cfg, get_embedder(cfg).model_name).manifest()) == {SEED_002.name}


def test_metadata_and_footnote_references_of_the_long_seed() -> None:
    doc = load(SEED_000, 2_000_000)
    assert doc.title == "The Global Implications of the North Korea-Russia Rapprochement"
    assert doc.author == "Zeki Talustan GÜLTEN"
    assert [r.n for r in doc.references] == [1, 2, 3, 4, 5, 6]
    assert doc.references[0].outlet == "Associated Press News"
    assert doc.references[1].outlet == "Yahoo Finance"
    assert doc.references[2].url and doc.references[2].url.startswith("https://abcnews.go.com/")
    assert doc.references[0].accessed == "14.12.2023"
    at = doc.text.index("more than 250 individuals")
    ref = doc.reference_for(at, at + 40)  # the paragraph ends in [4]
    assert ref is not None and ref.n == 4 and ref.outlet == "Associated Press News"


FURNITURE = ["Date:", "Share:", "Similar Posts", "This post is also available in", "graduated from Yalova", "Ibıd"]


def test_page_furniture_is_never_a_retrievable_chunk(seed_cfg: Settings) -> None:
    chunks = stored_chunks(seed_cfg)
    for c in chunks:
        for junk in FURNITURE:
            assert junk not in c.text, (junk, c.id)
        assert "apnews.com" not in c.text  # the reference list is metadata, not content
    hits = Retriever(seed_cfg).search("Zeki Talustan Gülten Yalova University Erasmus graduated", 5)
    assert all("Yalova" not in p.chunk.text for p in hits)


QUESTIONS = [
    ("Who is the governor of Russia's Primorye region?", "governor of Russia’s Primorye region"),
    ("How many individuals and organizations did the US sanction?", "more than 250 individuals and organizations"),
    ("What did the South Korean Unification Minister say about workers?", "Unification Minister"),
    ("Which North Korean minister led the discussions?", "External Economic Relations Minister Yun Jong Ho"),
    ("What areas did Kozhemyako hope to expand cooperation in?", "agriculture, tourism and trade"),
    ("What did the National Intelligence Service detect?", "National Intelligence Service stated"),
    ("Did Russia and North Korea deny the weapons transfer?", "have denied the existence of such a transfer"),
    ("Were shipping companies sanctioned for ammunition transfers?", "shipping companies have also been sanctioned"),
    ("What did North Korea offer for rebuilding breakaway regions?", "construction workers"),
    ("When did the Kim Putin summit happen?", "summit between Kim and Russian President Vladimir Putin"),
    ("Why would sending workers violate UN resolutions?", "violation of UNSC resolutions"),
    ("What level of cooperation did the talks aim for?", "“higher levels.”"),
]


@pytest.mark.parametrize(("question", "needle"), QUESTIONS)
def test_retrieval_finds_the_passage(seed_cfg: Settings, question: str, needle: str) -> None:
    passages = Retriever(seed_cfg).search(question, 5)
    assert any(needle in p.chunk.text for p in passages), [p.chunk.text[:60] for p in passages]


def test_near_duplicates_do_not_crowd_out_distinct_evidence(seed_cfg: Settings) -> None:
    passages = Retriever(seed_cfg).search("North Korea workers Russia sanctions", 5)
    assert len({p.chunk.id for p in passages}) == 5
    assert {p.chunk.doc for p in passages} == {SEED_000.name, SEED_002.name}


def test_bad_files_are_refused_and_good_chunks_kept(cfg: Settings, docs_copy: Path) -> None:
    good = ingest([docs_copy], cfg)
    (docs_copy / "empty.txt").write_bytes(b"")
    (docs_copy / "blank.md").write_text("  \n\n \n")
    (docs_copy / "binary.txt").write_bytes(b"\x00\x01\x02PNG" * 100)
    (docs_copy / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (docs_copy / "huge.txt").write_text("word " * 1_100_000)  # 5.5 MB
    report = ingest([docs_copy], cfg)
    assert len(report.errors) == 5
    assert any("not UTF-8" in e for e in report.errors) and any("binary" in e for e in report.errors)
    assert any("empty" in e for e in report.errors) and any("limit" in e for e in report.errors)
    index = Index(cfg, get_embedder(cfg).model_name)
    assert index.count() == good.chunks and report.embedded == 0


def test_load_refuses_non_utf8_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.txt"
    bad.write_bytes(b"ok \xff\xfe")
    with pytest.raises(IngestError, match=r"not UTF-8 text \(bad byte at offset 3\)"):
        load(bad, 1000)


def test_index_built_with_another_embedding_model_is_refused(seed_cfg: Settings) -> None:
    with pytest.raises(ModelMismatch, match="re-ingest"):
        Index(seed_cfg, "some-other-embedder")


def test_queries_empty_or_oversized_are_refused(seed_cfg: Settings) -> None:
    retriever = Retriever(seed_cfg)
    with pytest.raises(QueryError, match="empty"):
        retriever.search(" \x00\x07 ")
    with pytest.raises(QueryError, match="limit"):
        retriever.search("x" * 100_000)


def test_search_on_missing_index_says_to_ingest(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="briefing ingest"):
        Retriever(make_settings(tmp_path))


def test_chunks_fit_the_embedder(seed_cfg: Settings) -> None:
    embedder = get_embedder(seed_cfg)
    for path in (SEED_000, SEED_002):
        for c in chunk_document(load(path, 2_000_000), seed_cfg.chunk_tokens, 1, embedder.count_tokens):
            assert embedder.count_tokens(c.text) <= 256


def test_changing_chunk_settings_rechunks_on_the_next_ingest(cfg: Settings) -> None:
    first = ingest([SEEDS], cfg)
    smaller = cfg.model_copy(update={"chunk_tokens": 64})
    second = ingest([SEEDS], smaller)
    assert second.embedded == second.chunks > first.chunks and second.skipped == 0
    assert Index(smaller, get_embedder(smaller).model_name).count() == second.chunks  # old chunks gone


def test_sentences_run_on_through_common_abbreviations() -> None:
    """A sentence is shown, cited and quoted whole: "e.g.", "i.e.", "et al.", "Vol.", "pp." and "No." before a
    number do not end it, while an abbreviation or a word that does close a sentence still ends it."""
    text = ("Some metals (e.g. iron and nickel) are magnetic. The team is employed by (i.e. in contract with) the "
            "owner. Smith et al. found a link in Vol. 3, pp. 4-9 of the review. Public Law No. 109-58 was signed. "
            "He said no. Jones left. They sold fruit, nuts, etc. The market closed at noon.")
    assert [text[a:b] for a, b in sentence_spans(text, 0, len(text))] == [
        "Some metals (e.g. iron and nickel) are magnetic.",
        "The team is employed by (i.e. in contract with) the owner.",
        "Smith et al. found a link in Vol. 3, pp. 4-9 of the review.",
        "Public Law No. 109-58 was signed.",
        "He said no.",
        "Jones left.",
        "They sold fruit, nuts, etc.",
        "The market closed at noon.",
    ]


def test_footnote_markers_close_the_sentence_they_follow() -> None:
    """A web page's "animals.[2][6] They were ..." is quoted as "animals.[2][6]" and "They were ...": a footnote
    quote never opens with the previous sentence's markers; a marker that opens a paragraph stays where it is."""
    text = ("Tardigrades are micro-animals.[2][6] They were first described in 1773.[7] In 1777 they were "
            "named.[8]")
    assert [text[a:b] for a, b in sentence_spans(text, 0, len(text))] == [
        "Tardigrades are micro-animals.[2][6]", "They were first described in 1773.[7]", "In 1777 they were named.[8]"]
    opening = "[1] Sources are listed below. See them."
    assert [opening[a:b] for a, b in sentence_spans(opening, 0, len(opening))] == [
        "[1] Sources are listed below.", "See them."]


def test_a_changed_sentence_splitter_rechunks_on_the_next_ingest(
    cfg: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored chunks split by an older splitter are replaced, not kept beside a splitter that would cut them
    differently."""
    first = ingest([SEEDS], cfg)
    monkeypatch.setattr("assistant.indexing.SPLITTER_VERSION", 999)
    second = ingest([SEEDS], cfg)
    assert second.embedded == second.chunks == first.chunks and second.skipped == 0
    assert Index(cfg, get_embedder(cfg).model_name).count() == first.chunks  # replaced, not added beside


def test_two_copies_of_one_file_are_two_documents(cfg: Settings, docs_copy: Path) -> None:
    """A report saved twice under two names is indexed twice: neither copy's chunks overwrite the other's, and
    removing one leaves the other whole."""
    copy = docs_copy / f"copy_of_{SEED_000.name}"
    copy.write_bytes(SEED_000.read_bytes())
    report = ingest([docs_copy], cfg)
    index = Index(cfg, get_embedder(cfg).model_name)
    per_doc = {d: sum(c.doc == d for c in stored_chunks(cfg)) for d in (SEED_000.name, copy.name)}
    assert report.embedded == report.chunks == index.count() and per_doc[SEED_000.name] == per_doc[copy.name] > 0
    copy.unlink()
    ingest([docs_copy], cfg)
    assert {c.doc for c in stored_chunks(cfg)} == {SEED_000.name, SEED_002.name}
    assert index.count() == report.chunks - per_doc[copy.name]


def test_warming_the_vectors_never_raises_and_leaves_errors_to_the_search(cfg: Settings) -> None:
    """The Retriever loads the vectors on a thread at start (`Index.warm`): an empty index, or a collection gone
    from under it, must not kill that thread with a traceback; the search that follows says what is wrong."""
    index = Index(cfg, get_embedder(cfg).model_name)
    index.warm()  # empty: nothing to load
    ingest([SEED_000], cfg)
    index = Index(cfg, get_embedder(cfg).model_name, create=False)
    index.warm()
    assert index.nearest(get_embedder(cfg).get_query_embedding("sanctions"), 3)
    index.client.delete_collection(cfg.collection)
    index.warm()  # the collection is gone: swallowed here
    with pytest.raises(Exception):  # noqa: B017 - Chroma's own error for a deleted collection
        index.nearest(get_embedder(cfg).get_query_embedding("sanctions"), 3)


def test_an_attribution_naming_a_document_is_left_out_of_the_dense_query_only() -> None:
    names = [frozenset(name_terms("reports/gao_07_283_crude_oil.pdf", "Crude Oil: Uncertainty about Future Supply")),
             frozenset(name_terms("crs_rs22331.pdf", "Congressional Research Service"))]
    assert without_named_source("Around what year did production peak, according to GAO-07-283?", names) \
        == "Around what year did production peak ?"
    assert without_named_source("According to the Congressional Research Service, what is a mine?", names) \
        == "what is a mine?"
    assert without_named_source("As reported by CRS, who signed it?", names) == "who signed it?"
    for kept in ("According to the minister, how many were deployed?",  # names no document: a passage must say it
                 "How many were deployed, according to official assessments?",
                 "According to GAO-07-283"):  # nothing else to search for
        assert without_named_source(kept, names) == kept


def test_the_dense_half_sees_the_question_without_the_named_source(
    seed_cfg: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    retriever = Retriever(seed_cfg)
    embedded: list[str] = []
    embed = retriever.embedder.get_query_embedding
    monkeypatch.setattr(retriever.embedder, "get_query_embedding", lambda q: embedded.append(q) or embed(q))
    named = f"Who hosted the governor, according to {SEED_002.stem}?"
    assert retriever.search(named, 3) and embedded[-1] == "Who hosted the governor ?"
    assert retriever.search("Who hosted the governor, according to the ministry?", 3)
    assert embedded[-1] == "Who hosted the governor, according to the ministry?"


REGIONS = ["Eastmoor", "Northfield", "Westvale", "Southbank", "Highcombe", "Lowmere", "Ashdown", "Briarwood",
           "Cresthill", "Dunmore", "Elmstead", "Fernside", "Glenholm", "Hartwell", "Ironbridge", "Juniper", "Kestrel",
           "Larchmont", "Millbrook", "Netherby"]


def _two_tables(folder: Path, kind: str) -> Path:
    """A report with two long tables over the same row labels, so the rows are chunked apart from their captions:
    only a caption says which table (and year, and unit) a row belongs to. As text, each row is a line under a printed
    caption ("Table 2. ..."); as a web page, a <table> with a <caption>, which the loader writes as Markdown."""
    rain = [(f"{r} North", f"{40 + i} mm", f"{r} South", f"{50 + i} mm") for i, r in enumerate(REGIONS)]
    fruit = [(r, f"{1200 + 37 * i:,} t", f"{10 + i}.5%") for i, r in enumerate(REGIONS)]
    intro = "This report gathers the regional figures of the year. The first table is about the weather."
    link = "The second table follows the first and gives the crops."
    if kind == "text":
        def table(caption: str, header: str, rows: list[tuple[str, ...]]) -> str:
            return f"{caption}\n\n{header}\n\n" + "\n\n".join(" ".join(row) for row in rows)

        text = (f"Regional statistics\n\n{intro}\n\n"
                + table("Table 1. Rainfall by District, 2023", "District Millimetres District Millimetres", rain)
                + f"\n\n{link}\n\n"
                + table("Table 2. Orchard Fruit Harvest by Region, 2024", "Region Tonnes Share of Total", fruit)
                + "\n")
        path = folder / "regional_statistics.txt"
    else:
        def table(caption: str, header: str, rows: list[tuple[str, ...]]) -> str:
            cells = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
            heads = "".join(f"<th>{h}</th>" for h in header.split())
            return f"<table><caption>{caption}</caption><thead><tr>{heads}</tr></thead><tbody>{cells}</tbody></table>"

        text = ("<html><head><title>Regional statistics</title></head><body><article><h1>Regional statistics</h1>"
                f"<p>{intro}</p>"
                + table("Rainfall by district, 2023", "District Millimetres District Millimetres", rain)
                + f"<p>{link}</p>" + table("Orchard fruit harvest by region, 2024", "Region Tonnes Share", fruit)
                + "<p>The harvest grew in most regions.</p></article></body></html>")
        path = folder / "regional_statistics.html"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["text", "html"])
def test_table_rows_chunked_apart_from_their_caption_are_searched_under_it(cfg: Settings, tmp_path: Path,
                                                                          kind: str) -> None:
    """A question names what a table is about ("orchard fruit harvest in 2024"), which only its caption states; the
    rows alone ("Netherby 1,903 t 29.5%") share only the row label with it, and the other table's rows hold that label
    twice. The caption is search text only: the stored, quoted text stays the file's own, and a lexical index rebuilt
    from Chroma searches the same way."""
    folder = tmp_path / "report"
    folder.mkdir()
    doc = load(_two_tables(folder, kind), 10**6)
    chunks = chunk_document(doc, 128, 1, get_embedder(cfg).count_tokens)
    rows = [c for c in chunks if "Netherby" in c.text and "1,903 t" in c.text]
    assert rows and all("rchard" in c.context and "2024" in c.context for c in rows)
    assert all("rchard" not in c.context for c in chunks if "rchard" in c.text)  # they hold the caption themselves
    ingest([folder], cfg)
    question = "How many tonnes of orchard fruit did Netherby harvest in 2024?"
    retriever = Retriever(cfg)
    first = next(p for p in retriever.search(question, 5) if "Netherby" in p.chunk.text)
    assert "1,903 t" in first.chunk.text
    assert first.chunk.text == doc.text[first.chunk.start : first.chunk.end]
    terms = "orchard fruit harvest Netherby 2024"
    written = retriever.lexical.search(terms, 2)
    lexical_path = retriever.lexical.path
    retriever.lexical.close()
    lexical_path.unlink()
    rebuilt = Retriever(cfg)
    assert rebuilt.lexical.search(terms, 2) == written
    assert any("1,903 t" in c.text for c in rebuilt.index.get(written)[0])


def test_a_caption_is_a_table_title_not_a_reference_or_a_list_of_tables() -> None:
    """Only a caption heads rows: a list of tables (dot leaders to a page number) and a reference in prose ("shown in
    Table 2. The ...") do not; prose after a table gets no caption, and a chunk holding its own caption needs none."""
    rows = "Eastmoor 1,200 t 10.5% Northfield 1,237 t 11.5% Westvale 1,274 t 12.5%"
    listing = "List of Tables\nTable 2. Orchard Fruit Harvest by Region ........ 7\n"
    assert not table_context(listing + rows, len(listing), rows)
    prose = "The totals are shown in Table 2. The harvest grew in 2024. "
    assert not table_context(prose + rows, len(prose), rows)
    caption = "Table 2. Orchard Fruit Harvest by Region, 2024\nRegion Tonnes Share\n"
    headed = table_context(caption + rows, len(caption), rows)
    assert headed == "Table 2. Orchard Fruit Harvest by Region, 2024 Region Tonnes Share"
    words = "The harvest grew in every region, and the growers expect a larger crop next year."
    assert not table_context(caption + rows + words, len(caption + rows), words)
    assert not table_context("Intro. " + caption + rows, 7, caption + rows)
    assert not table_context(caption + "x" * 2000 + rows, len(caption) + 2000, rows)  # too far to head these rows


def test_rows_of_a_markdown_table_carry_its_title_row_and_column_headers() -> None:
    """Web pages and Word files reach the index with their tables as Markdown: a chunk that opens on a row gets the
    table's first lines (title row, headers; rules and empty cells dropped); one that opens the table has them."""
    table = ("| Orchard fruit harvest by region, 2024 |  |  |\n|---|---|---|\n| Region | Tonnes | Share |\n"
             "|---|---|---|\n| Eastmoor | 1,200 | 10.5% |\n| Northfield | 1,237 | 11.5% |\n")
    text = "Regional figures follow.\n" + table
    later = text.index("| Northfield")
    head = "Orchard fruit harvest by region, 2024 | Region | Tonnes | Share"
    assert table_context(text, later, text[later:]) == head
    opening = text.index("| Orchard")
    assert not table_context(text, opening, text[opening:])


def test_a_title_cell_ruled_off_as_the_header_brings_the_column_names_after_it() -> None:
    """An HTML table whose first row is its title spanning every column reaches Markdown with that title above the
    rule and the column names as the first body row: rows chunked apart get both, and never a row of data."""
    table = ("|   Largest towns of the valley, 2021 census  |  |  |  |\n|---|---|---|---|\n"
             "|  | Rank | Town | Pop. |\n| | 1 | Eastmoor | 12,400 |\n| | 2 | Netherby | 9,100 |\n")
    later = table.index("| | 2 |")
    assert table_context(table, later, table[later:]) == "Largest towns of the valley, 2021 census | Rank | Town | Pop."
    unnamed = "| Towns of the valley |  |\n|---|---|\n| Netherby | 9,100 |\n| Westby | 8,000 |\n"
    later = unnamed.index("| Westby")
    assert table_context(unnamed, later, unnamed[later:]) == "Towns of the valley"  # the next row is data, not names
