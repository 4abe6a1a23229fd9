"""One-page briefs: numbering, wording rules, deterministic sections, rendering, the one-page loop, and the
seed-topic brief end to end on the real 1.5B model."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SEEDS
from typer.testing import CliRunner

from assistant.answer import Footnote
from assistant.brief import (
    CONFIDENCE,
    ICD203,
    LIKELIHOOD_WORDS,
    Brief,
    BriefConflict,
    BriefError,
    BriefSentence,
    BriefWriter,
    ConflictSide,
    Judgment,
    Registry,
    SourceRow,
    claim_problem,
    confidence_cap,
    find_conflicts,
    find_gaps,
    judgment_sentence,
    judgments_schema,
    renumber,
)
from assistant.config import Settings
from assistant.llm import Message, Stats
from assistant.render import check_format, pdf_pages, to_html, to_markdown, write, write_pdf
from assistant.verify import role_swap, topic_gap, unsupported_lead

D000, D002 = "000_4f251fb10e67f7e9.txt", "002_66b593ec0b11b73e.txt"
TEXT = {D000: (SEEDS / D000).read_text(encoding="utf-8"), D002: (SEEDS / D002).read_text(encoding="utf-8")}
TOPIC = "North Korea–Russia economic cooperation"
HAS_PDF = shutil.which("chromium") is not None and shutil.which("pdfinfo") is not None
needs_pdf = pytest.mark.skipif(not HAS_PDF, reason="needs chromium and poppler-utils (pdfinfo)")
CONFIDENCE_WORD = re.compile(r"\b(high|moderate|low|confidence)\b", re.IGNORECASE)


def note(n: int, doc: str, needle: str) -> Footnote:
    start = TEXT[doc].index(needle)
    return Footnote(n=n, doc=doc, title=doc, start=start, end=start + len(needle), quote=needle)


SANCTIONS = ("On December 12, 2023, the United States announced that it would impose sanctions on more than 250 "
             "individuals and organizations related to Russia’s war against Ukraine.")
MEETING = TEXT[D002][: TEXT[D002].index("December 13.") + len("December 13.")]
DENIAL = ("Both the U.S. and South Korea have accused North Korea of supplying weaponry to Russia for conflict with "
          "Ukraine, a claim denied by Russia and North Korea.")
GAP_002 = "However, specific areas of cooperation weren’t specified in the report."


def crafted(evidence_lines: int = 3) -> Brief:
    """Provisional footnote ids deliberately out of reading order (as the registry assigns them)."""
    notes = [note(1, D000, SANCTIONS), note(2, D002, MEETING), note(3, D002, DENIAL), note(4, D002, GAP_002),
             note(5, D000, "officials of North Korea’s Ministry of Economy hosted Oleg Kojemyako")]
    evidence = [BriefSentence(text="The United States announced sanctions on more than 250 individuals and "
                                   "organizations.", citations=[1]),
                BriefSentence(text="North Korean officials met Oleg Kozhemyako in Pyongyang.", citations=[2]),
                BriefSentence(text="The U.S. and South Korea accused North Korea of supplying weaponry to Russia.",
                              citations=[3])]
    while len(evidence) < evidence_lines:
        i = len(evidence)
        evidence.append(BriefSentence(text=f"Long evidence line {i}: " + "officials discussed cooperation on "
                                      "agriculture, tourism and trade at great length " * 6, citations=[1 + i % 3]))
    return Brief(
        topic=TOPIC, title="North Korea–Russia economic cooperation", date_line="1 January 2024 · 2 documents",
        bluf=[BriefSentence(text="North Korean officials met Oleg Kozhemyako in Pyongyang.", citations=[2]),
              BriefSentence(text="The United States announced sanctions.", citations=[1])],
        judgments=[Judgment(text=judgment_sentence("likely", "North Korea will send workers to Russia"),
                            claim="North Korea will send workers to Russia", likelihood="likely",
                            confidence="moderate", citations=[3, 2])] * 3,
        evidence=evidence[:evidence_lines],
        conflicts=[BriefConflict(sides=[
            ConflictSide(doc=D000, excerpt="the Governor of Russia’s Far East", detail="Far East", citation=5),
            ConflictSide(doc=D002, excerpt="the governor of Russia’s Primorye region", detail="Primorye region",
                         citation=2)])],
        gaps=[BriefSentence(text="Specific areas of cooperation weren’t specified in the report.", citations=[4],
                            kind="gap")],
        assumptions=[BriefSentence(text="The documents are taken to report events accurately.", citations=[],
                                   kind="assumption")],
        sources=[SourceRow(label=D000, doc=D000, title="The Global Implications", author="Zeki Talustan GÜLTEN",
                           reliability="named author."),
                 SourceRow(label=D002, doc=D002, title="Senior North Korean economic figures…",
                           reliability="no byline.")],
        footnotes=notes,
    )


# --- numbering and wording ---


def test_footnotes_renumbered_by_first_use_across_the_whole_brief() -> None:
    brief = renumber(crafted())
    # reading order: BLUF [2],[1]; judgments [3],[2]; evidence ...; conflict [5],[2]; gap [4]
    assert [s.citations for s in brief.bluf] == [[1], [2]]
    assert brief.judgments[0].citations == [3, 1]
    assert [f.n for f in brief.footnotes] == list(range(1, len(brief.footnotes) + 1))
    assert brief.footnotes[0].quote == MEETING and brief.footnotes[1].quote == SANCTIONS
    for f in brief.footnotes:
        assert TEXT[f.doc][f.start : f.end] == f.quote
    cited = {n for cites in brief.citation_lists() for n in cites}
    assert cited == {f.n for f in brief.footnotes}
    assert [s.label for s in brief.sources] == ["Doc 1", "Doc 2"] and brief.sources[0].doc == D002


def test_paged_documents_list_their_cited_pages_in_the_sources_table() -> None:
    brief = crafted()
    paged = [f.model_copy(update={"page": {1: 3, 5: 1}.get(f.n)}) if f.doc == D000 else f for f in brief.footnotes]
    out = renumber(brief.model_copy(update={"footnotes": paged}))
    row = next(r for r in out.sources if r.doc == D000)
    assert row.pages == [1, 3] and row.where() == f"{D000}, pp. 1, 3"
    assert next(r for r in out.sources if r.doc == D002).where() == D002  # no pages: the file name alone
    md = to_markdown(out)
    assert "pp. 1, 3)" in md and ", p. 3" in md  # the table and the footnote both say where


def test_uncited_footnotes_and_sources_are_dropped_after_trimming() -> None:
    brief = crafted()
    only_002 = brief.model_copy(update={"bluf": brief.bluf[:1], "judgments": [], "evidence": brief.evidence[1:2],
                                        "conflicts": [], "gaps": []})
    out = renumber(only_002)
    assert [f.quote for f in out.footnotes] == [MEETING]
    assert [s.doc for s in out.sources] == [D002]


def test_registry_merges_the_same_span_from_different_steps() -> None:
    reg = Registry()
    a = reg.add(note(7, D002, MEETING))
    b = reg.add_span(D002, 0, len(MEETING), MEETING, {"title": "t"})
    c = reg.add(note(9, D000, SANCTIONS))
    assert a == b == 1 and c == 2 and len(reg.all()) == 2


@pytest.mark.parametrize("likelihood", ICD203)
@pytest.mark.parametrize("confidence", CONFIDENCE)
def test_judgment_sentence_carries_one_likelihood_term_and_never_a_confidence_word(
    likelihood: str, confidence: str
) -> None:
    j = Judgment(text=judgment_sentence(likelihood, "North Korea will send workers to Russia."),
                 claim="North Korea will send workers to Russia", likelihood=likelihood,  # type: ignore[arg-type]
                 confidence=confidence, citations=[1])  # type: ignore[arg-type]
    terms = [m.group(1).lower() for m in LIKELIHOOD_WORDS.finditer(j.text)]
    assert terms == [likelihood]
    assert not CONFIDENCE_WORD.search(j.text)
    assert j.confidence_sentence == f"Confidence: {confidence}."
    assert not LIKELIHOOD_WORDS.search(j.confidence_sentence)
    assert j.text.endswith("that North Korea will send workers to Russia.")


def test_claims_with_their_own_likelihood_or_confidence_words_are_rejected() -> None:
    assert claim_problem("North Korea will likely send workers") is not None
    assert claim_problem("There is high confidence North Korea sends workers") is not None
    assert claim_problem("North Korea may send workers to Russia") is not None
    assert claim_problem("North Korea will send workers to Russia") is None


def test_confidence_is_capped_by_corroboration_and_contested_basis() -> None:
    meeting, sanctions, denial = note(1, D002, MEETING), note(2, D000, SANCTIONS), note(3, D002, DENIAL)
    assert confidence_cap("high", [meeting]) == "moderate"  # one document
    assert confidence_cap("high", [meeting, sanctions]) == "high"  # two documents agree
    assert confidence_cap("moderate", [denial]) == "low"  # accused and denied
    assert confidence_cap("low", [meeting, sanctions]) == "low"  # never raised


def test_judgments_schema_is_bounded_with_icd203_and_confidence_enums() -> None:
    schema = judgments_schema(6)
    arr = schema["properties"]["judgments"]
    item = arr["items"]["properties"]
    assert arr["maxItems"] == 4 and arr["minItems"] == 3
    assert item["likelihood"]["enum"] == list(ICD203) and item["confidence"]["enum"] == list(CONFIDENCE)
    assert item["cites"]["items"]["enum"] == [1, 2, 3, 4, 5, 6] and item["claim"]["maxLength"] <= 200


def test_role_reversal_is_caught_where_the_lexical_judge_is_blind() -> None:
    assert role_swap("North Korea accuses Russia of supplying weaponry to Ukraine.", DENIAL)
    assert role_swap("Russia will supply weaponry to Ukraine", DENIAL)
    assert role_swap("The U.S. and South Korea accused North Korea of supplying weapons to Russia.", DENIAL) is None
    assert role_swap("North Korea was accused of supplying weaponry to Russia.", DENIAL) is None


def test_a_leading_name_absent_from_the_source_is_caught() -> None:
    assert unsupported_lead("Brazilian officials met Oleg Kozhemyako in Pyongyang.", MEETING)
    assert unsupported_lead("Senior North Korean figures met Oleg Kozhemyako.", MEETING) is None
    assert unsupported_lead("The meeting took place in Pyongyang.", MEETING) is None


def test_topics_the_documents_do_not_cover_are_named() -> None:
    both = TEXT[D000] + TEXT[D002]
    assert topic_gap(TOPIC, both) is None
    assert topic_gap("Kim Jong Un nuclear program", both) is None  # "Un" is not the U.N. alias
    assert "brazilian" in (topic_gap("Brazilian coffee export prices", both) or "")
    assert topic_gap("China–Russia trade", both) == "china"


# --- deterministic sections from the seeds ---


def seed_sentences() -> list[tuple[str, int, int, str, dict[str, Any]]]:
    from assistant.chunking import sentence_spans
    from assistant.ingest import load

    out = []
    for doc in (D000, D002):
        d = load(SEEDS / doc, 2_000_000)
        for a, b in d.content_spans:
            for s, e in sentence_spans(d.text, a, b):
                out.append((doc, s, e, d.text[s:e], {"title": d.title}))
    return out


def test_conflicts_name_far_east_vs_primorye_and_skip_aliases() -> None:
    reg = Registry()
    conflicts = find_conflicts(seed_sentences(), reg)
    pairs = [{s.detail for s in c.sides} for c in conflicts]
    assert {"Far East", "Primorye region"} in pairs
    assert all("U.N" not in " ".join(p) for p in pairs)  # U.N. = United Nations, not a disagreement
    for c in conflicts:
        assert {s.doc for s in c.sides} == {D000, D002}
        for side in c.sides:
            quote = next(f for f in reg.all() if f.n == side.citation).quote
            assert side.excerpt in quote and side.excerpt.endswith(side.detail)


def test_gaps_are_sentences_stating_missing_detail_cited_as_such() -> None:
    reg = Registry()
    gaps = find_gaps(seed_sentences(), reg)
    texts = " ".join(g.text for g in gaps)
    assert "weren’t specified" in texts and "without specifying the details" in texts
    nis = next(g for g in gaps if "without specifying" in g.text)
    quotes = {f.n: f.quote for f in reg.all()}
    assert any("has not provided details" in quotes[c] for c in nis.citations)  # the other document's version
    for f in reg.all():
        assert TEXT[f.doc][f.start : f.end] == f.quote


# --- rendering ---


def test_markdown_has_every_section_in_order() -> None:
    md = to_markdown(renumber(crafted()))
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert [h[3:].split(" (")[0] for h in heads] == [
        "Bottom line up front", "Key judgments", "Supporting evidence", "Conflicting reporting",
        "Key assumptions and information gaps", "Sources", "Notes"]
    assert "Confidence: moderate." in md and "**Gap:**" in md and "**Assumption:**" in md
    assert "Far East" in md and "Primorye region" in md and "Doc 1" in md
    assert re.search(r"^1\. “Senior North Korean", md, re.MULTILINE)


def test_html_escapes_document_text() -> None:
    brief = renumber(crafted())
    bad = [BriefSentence(text="<script>alert(1)</script> & co", citations=[1])]
    hostile = brief.model_copy(update={"evidence": bad, "title": "<b>x</b>"})
    page = to_html(hostile)
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_unknown_extension_is_a_one_line_error_with_exit_2(tmp_path: Path) -> None:
    with pytest.raises(BriefError):
        check_format(tmp_path / "brief.txt")
    from assistant.cli import app

    result = CliRunner().invoke(app, ["brief", TOPIC, "--out", str(tmp_path / "brief.html")])
    assert result.exit_code == 2
    assert "unknown brief format" in result.output and len(result.output.strip().splitlines()) == 1


def test_docx_and_markdown_outputs(tmp_path: Path) -> None:
    pytest.importorskip("docx")
    import docx

    brief = renumber(crafted())
    write(brief, tmp_path / "b.docx")
    text = "\n".join(p.text for p in docx.Document(str(tmp_path / "b.docx")).paragraphs)
    assert "Bottom line up front" in text and "Confidence: moderate." in text and MEETING in text
    write(brief, tmp_path / "b.md")
    assert (tmp_path / "b.md").read_text(encoding="utf-8").startswith("# North Korea")


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def check_pdf_footnotes(path: Path, brief: Brief) -> None:
    """Every [n] in the printed text is in the printed footnote list, which is exactly 1..N."""
    text = pdf_text(path)
    first = text.index("[1] “")
    body, notes = text[:first], text[first:]
    listed = [int(n) for n in re.findall(r"\[(\d+)\] “", notes)]
    assert sorted(listed) == list(range(1, len(brief.footnotes) + 1))
    used = {int(n) for n in re.findall(r"\[(\d+)\]", body)}
    assert used and used <= set(listed)


@needs_pdf
def test_one_page_loop_shortens_a_deliberately_long_brief(tmp_path: Path) -> None:
    long = crafted(evidence_lines=14)
    out = tmp_path / "long.pdf"
    fitted = write_pdf(long, out)
    assert pdf_pages(out) == 1 and fitted.pages == 1
    assert fitted.trimmed and len(fitted.evidence) < 14
    text = pdf_text(out)
    assert "Bottom line up front".upper() in text.upper() and "Confidence:" in text
    check_pdf_footnotes(out, fitted)


@needs_pdf
def test_a_short_brief_prints_as_written(tmp_path: Path) -> None:
    fitted = write_pdf(renumber(crafted()), tmp_path / "short.pdf")
    assert fitted.pages == 1 and fitted.trimmed == []


# --- the writer's orchestration, with a scripted model ---


class Scripted:
    """Answers every constrained call from the numbered lines in its prompt (echoing them, so they are supported)."""

    name, model = "scripted", "scripted"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def stream(self, messages: list[Message], schema: dict[str, Any], max_tokens: int, stats: Stats) -> Iterator[str]:
        user = messages[-1]["content"]
        lines = re.findall(r"^\[(\d+)\] (.+)$", user, re.MULTILINE)
        if "judgments" in schema["properties"]:
            self.calls.append("judgments")
            out = {"judgments": [{"claim": re.sub(r"[.!?]$", "", text).replace("may ", ""),
                                  "likelihood": ICD203[4 + i % 3], "confidence": CONFIDENCE[i % 3],
                                  "cites": [int(n)]} for i, (n, text) in enumerate(lines[:4])]}
        else:
            self.calls.append("facts" if "Topic:" in user else "answer")
            out = {"sentences": [{"text": text, "cites": [int(n)]} for n, text in lines[:2]]}
        yield json.dumps(out)


def test_writer_builds_every_section_from_six_calls(seed_cfg: Settings) -> None:
    scripted = Scripted()
    brief = BriefWriter(seed_cfg, backend=scripted).write(TOPIC)
    assert brief.llm_calls == 6 and scripted.calls == ["answer"] * 4 + ["facts", "judgments"]
    assert 2 <= len(brief.bluf) <= 3 and brief.evidence and brief.sources
    # every scripted judgment cites a verified fact, so all four are kept, in order, worded with their ICD 203 term
    assert [j.citations for j in brief.judgments] == [[1], [2], [3], [4]]
    assert [j.likelihood for j in brief.judgments] == [ICD203[4 + i % 3] for i in range(4)]
    assert all(j.text.startswith(f"We assess it is {j.likelihood} that ") for j in brief.judgments)
    assert any({"Far East", "Primorye region"} == {s.detail for s in c.sides} for c in brief.conflicts)
    cited = {n for cites in brief.citation_lists() for n in cites}
    assert cited == {f.n for f in brief.footnotes} and [f.n for f in brief.footnotes] == sorted(cited)
    for f in brief.footnotes:
        assert TEXT[f.doc][f.start : f.end] == f.quote
    refs = next(r for r in brief.sources if r.doc == D000).cites
    assert {c.outlet for c in refs} == {"Associated Press News", "Yahoo Finance", "ABC News"}
    assert all(c.url and c.url.startswith("https://") for c in refs)


def test_a_topic_outside_the_documents_is_refused_before_any_llm_call(seed_cfg: Settings) -> None:
    scripted = Scripted()
    with pytest.raises(BriefError, match="do not cover"):
        BriefWriter(seed_cfg, backend=scripted).write("Brazilian coffee export prices")
    assert scripted.calls == []


# --- real model, end to end ---


@pytest.mark.slow
def test_seed_topic_brief_end_to_end_on_the_real_model(seed_cfg: Settings, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    writer = BriefWriter(seed_cfg)
    brief = writer.write(TOPIC)
    seconds = time.perf_counter() - t0
    out = tmp_path / "brief.pdf"
    printed = write(brief, out) if HAS_PDF else brief
    print(f"\nbrief: {seconds:.1f} s with model load, {brief.timings['total_s']} s generation, "
          f"{brief.llm_calls} LLM calls, trimmed {printed.trimmed}, dropped {brief.dropped}")
    assert brief.llm_calls <= 6
    if HAS_PDF:
        info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
        assert re.search(r"^Pages:\s+1$", info, re.MULTILINE)
        check_pdf_footnotes(out, printed)
    cited = {n for cites in printed.citation_lists() for n in cites}
    assert cited == {f.n for f in printed.footnotes}
    for f in printed.footnotes:
        assert TEXT[f.doc][f.start : f.end] == f.quote
    assert 2 <= len(printed.bluf) <= 3
    assert len(printed.judgments) >= 3
    for j in printed.judgments:
        assert j.likelihood in ICD203 and j.confidence in CONFIDENCE and j.citations
        assert [m.group(1).lower() for m in LIKELIHOOD_WORDS.finditer(j.text)] == [j.likelihood]
        assert not CONFIDENCE_WORD.search(j.text)
    assert any({"Far East", "Primorye region"} == {s.detail for s in c.sides} for c in printed.conflicts)
    assert printed.gaps and all(g.citations for g in printed.gaps)
