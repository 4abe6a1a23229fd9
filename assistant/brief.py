"""One-page brief: targeted retrievals -> verified evidence -> constrained BLUF and judgments -> `Brief`.

Built from several small steps a 1.5B CPU model can do, never one giant prompt:
- supporting evidence: a few sub-questions, each answered through `Answerer` (its citation
  rules, support checks and exact-quote footnotes are reused, not re-derived);
- BLUF and key judgments: one constrained call each over the verified evidence sentences
  (bounded JSON schema: ICD 203 likelihood `enum`, confidence `enum`, cites `enum`);
- conflicting reporting: deterministic, `verify.differences` over retrieved sentence
  pairs from different documents;
- information gaps: retrieved sentences that state what is missing ("without specifying");
- sources: document metadata plus the outlets and URLs each document cites itself.

Footnotes from every step are merged and renumbered by first use across the whole brief.
Surfaces only render a `Brief`, through `assistant.render`: Markdown, HTML, PDF (Chromium, fitted to one page),
DOCX (python-docx).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from assistant.answer import MARKERS, Footnote, clean_text, repair_cut
from assistant.config import Settings
from assistant.llm import Backend, Message, Scored, Stats, copyable, prompt
from assistant.verify import SupportJudge, content_stems, differences, faithful, topic_gap

ICD203 = ("almost no chance", "very unlikely", "unlikely", "roughly even chance", "likely", "very likely",
          "almost certain")
CONFIDENCE = ("high", "moderate", "low")
Likelihood = Literal["almost no chance", "very unlikely", "unlikely", "roughly even chance", "likely", "very likely",
                     "almost certain"]
Confidence = Literal["high", "moderate", "low"]
LIKELIHOOD_WORDS = re.compile(r"\b(" + "|".join(sorted(ICD203, key=len, reverse=True)) + r")\b", re.IGNORECASE)
HEDGES = re.compile(r"\b(likely|unlikely|probabl[ey]|possibl[ey]|certain(?:ly)?|chance|may|might|could)\b", re.I)
CONFIDENCE_WORDS = re.compile(r"\b(high|moderate|low|confidence|confident)\b", re.IGNORECASE)

SUBQUESTIONS = (  # one per facet of the evidence; {subject} = the topic's named parties
    "What happened recently in {topic}?",
    "What cooperation did {subject} officials hope to expand?",
    "Who is concerned about {subject}, and why?",
    "Who accused {subject} of what?",
)
BLUF_CHARS = 220  # schema bound of a BLUF sentence; one stopped there is cut back to a complete clause
PROMPT_SENTENCES = 8  # per sub-question: targeted retrieval needs fewer, and prompt tokens dominate latency
GAP_QUERY = "{subject}: details not specified, not provided, without specifying"
GAP = re.compile(
    r"\b(?:has|have|had|did|does|do|was|were|is|are)\s*(?:not|n[’']t)\s+(?:yet\s+)?(?:been\s+)?"
    r"(?:provided|provide|given|give|disclosed|disclose|specified|specify|said|say|revealed|reveal|detailed|named"
    r"|identified|confirmed|explained)\b"
    r"|\b(?:weren|wasn|hasn|haven|didn|isn|aren)[’']t\s+(?:been\s+)?(?:provided|given|disclosed|specified|revealed"
    r"|detailed|named|identified|confirmed)\b"
    r"|\bwithout (?:specifying|giving|providing|naming|disclosing|saying|elaborating)\b"
    r"|\bno (?:further )?details\b|\bdeclined to (?:say|comment|give|specify|elaborate)\b|\bremains? unclear\b",
    re.IGNORECASE,
)
REFERRING = re.compile(r"^(?:however,?\s+|but\s+|yet\s+)?(?:the (?:agency|ministry|service|report|minister|official"
                       r"|government|company|group)|it|they|he|she|this|that|these|those)\b", re.IGNORECASE)
SOURCING_ASSUMPTION = ("The documents are taken to report the events accurately; the brief has no independent "
                       "reporting to check them against.")


class BriefError(Exception):
    """The brief cannot be written (renderer missing, unknown format, cannot fit one page)."""


class BriefSentence(BaseModel):
    """A footnoted sentence. kind says what it is: a reported fact, an assumption or an information gap."""

    text: str
    citations: list[int]
    kind: Literal["fact", "assumption", "gap"] = "fact"
    support: float = 1.0


class Judgment(BaseModel):
    """An analytic judgment, marked as such: the likelihood term sits inside `text`, confidence is separate."""

    text: str
    claim: str
    likelihood: Likelihood
    confidence: Confidence
    citations: list[int]
    support: float = 0.0

    @property
    def confidence_sentence(self) -> str:
        return f"Confidence: {self.confidence}."


class ConflictSide(BaseModel):
    doc: str
    excerpt: str  # verbatim words of the cited quote, ending with the detail
    detail: str
    citation: int


class BriefConflict(BaseModel):
    """Two documents report the same thing differently; both sides are cited."""

    sides: list[ConflictSide]


class CitedSource(BaseModel):
    outlet: str | None = None
    url: str | None = None
    title: str | None = None


class SourceRow(BaseModel):
    label: str
    doc: str
    title: str
    outlet: str | None = None
    author: str | None = None
    date: str | None = None
    cites: list[CitedSource] = Field(default_factory=list)
    reliability: str = ""
    pages: list[int] = Field(default_factory=list)  # the pages of this document the brief cites

    def where(self) -> str:
        """The file name, with the cited pages for paged documents: 'report.pdf, pp. 2, 7'."""
        if not self.pages:
            return self.doc
        return f"{self.doc}, {'p.' if len(self.pages) == 1 else 'pp.'} {', '.join(map(str, self.pages))}"


class Brief(BaseModel):
    """What every brief surface renders (Markdown, HTML/PDF, DOCX, JSON)."""

    topic: str
    title: str
    date_line: str
    bluf: list[BriefSentence] = Field(default_factory=list)
    judgments: list[Judgment] = Field(default_factory=list)
    evidence: list[BriefSentence] = Field(default_factory=list)
    conflicts: list[BriefConflict] = Field(default_factory=list)
    assumptions: list[BriefSentence] = Field(default_factory=list)
    gaps: list[BriefSentence] = Field(default_factory=list)
    sources: list[SourceRow] = Field(default_factory=list)
    footnotes: list[Footnote] = Field(default_factory=list)
    backend: str = ""
    model: str = ""
    llm_calls: int = 0
    timings: dict[str, float] = Field(default_factory=dict)
    dropped: list[str] = Field(default_factory=list)
    trimmed: list[str] = Field(default_factory=list)
    pages: int | None = None

    def label(self, doc: str) -> str:
        return next((s.label for s in self.sources if s.doc == doc), doc)

    def citation_lists(self) -> Iterator[list[int]]:
        """Every citation list, in reading order (BLUF, judgments, evidence, conflicts, assumptions, gaps)."""
        for s in self.bluf:
            yield s.citations
        for j in self.judgments:
            yield j.citations
        for s in self.evidence:
            yield s.citations
        for c in self.conflicts:
            for side in c.sides:
                yield [side.citation]
        for s in [*self.assumptions, *self.gaps]:
            yield s.citations


# --- numbering ---------------------------------------------------------------------------------------------------


def renumber(brief: Brief) -> Brief:
    """Footnotes numbered by first use in reading order; uncited footnotes and sources dropped; docs relabelled."""
    order: dict[int, int] = {}
    for cites in brief.citation_lists():
        for c in cites:
            order.setdefault(c, len(order) + 1)
    by_old = {f.n: f for f in brief.footnotes}
    missing = set(order) - set(by_old)
    if missing:
        raise BriefError(f"citation(s) {sorted(missing)} have no footnote")
    notes = [by_old[old].model_copy(update={"n": new}) for old, new in sorted(order.items(), key=lambda kv: kv[1])]
    docs = list(dict.fromkeys(f.doc for f in notes))
    rows = {r.doc: r for r in brief.sources}
    pages = {d: sorted({f.page for f in notes if f.doc == d and f.page is not None}) for d in docs}
    sources = [rows[d].model_copy(update={"label": f"Doc {i}", "pages": pages[d]})
               for i, d in enumerate(docs, 1) if d in rows]

    def re_(cites: list[int]) -> list[int]:
        return list(dict.fromkeys(order[c] for c in cites))

    return brief.model_copy(update={
        "bluf": [s.model_copy(update={"citations": re_(s.citations)}) for s in brief.bluf],
        "judgments": [j.model_copy(update={"citations": re_(j.citations)}) for j in brief.judgments],
        "evidence": [s.model_copy(update={"citations": re_(s.citations)}) for s in brief.evidence],
        "conflicts": [BriefConflict(sides=[s.model_copy(update={"citation": order[s.citation]}) for s in c.sides])
                      for c in brief.conflicts],
        "assumptions": [s.model_copy(update={"citations": re_(s.citations)}) for s in brief.assumptions],
        "gaps": [s.model_copy(update={"citations": re_(s.citations)}) for s in brief.gaps],
        "footnotes": notes,
        "sources": sources,
    })


class Registry:
    """Footnotes from every step, keyed by exact span; ids are provisional until `renumber`."""

    def __init__(self) -> None:
        self.notes: dict[tuple[str, int, int], Footnote] = {}

    def add(self, note: Footnote) -> int:
        key = (note.doc, note.start, note.end)
        if key not in self.notes:
            self.notes[key] = note.model_copy(update={"n": len(self.notes) + 1})
        return self.notes[key].n

    def add_span(self, doc: str, start: int, end: int, text: str, meta: dict[str, Any]) -> int:
        return self.add(Footnote.from_meta(0, doc, start, end, text, meta))

    def quotes(self, ids: Iterable[int]) -> str:
        by_n = {f.n: f.quote for f in self.notes.values()}
        return " ".join(MARKERS.sub("", by_n[i]) for i in ids if i in by_n)

    def all(self) -> list[Footnote]:
        return sorted(self.notes.values(), key=lambda f: f.n)


# --- judgments wording -------------------------------------------------------------------------------------------


def judgment_sentence(likelihood: str, claim: str) -> str:
    """ICD 203 wording with the likelihood term inside the sentence and no confidence word."""
    clause = claim.strip().rstrip(".!?;: ")
    first = clause.split(" ", 1)[0]
    if first.lower() in {"the", "a", "an", "this", "these", "those", "such", "both", "further", "more", "its", "their"}:
        clause = clause[:1].lower() + clause[1:]
    if likelihood in ("almost no chance", "roughly even chance"):
        article = "a " if likelihood == "roughly even chance" else ""
        return f"We assess there is {article}{likelihood} that {clause}."
    return f"We assess it is {likelihood} that {clause}."


REPORTED = re.compile(r"^(?:[A-Z][\w’'.-]*\s+){1,5}(?:claims?|says?|said|states?|stated|believes?|argues?|warns?"
                      r"|reports?|reported|alleges?|alleged) that\s+")


def unhedge(claim: str) -> str:
    """The likelihood term carries the uncertainty: "X may affect Y" -> "X will affect Y"; a judgment is ours,
    not a report of someone's claim ("The union claims that X" -> "X")."""
    claim = REPORTED.sub("", claim)
    claim = re.sub(r"\b(?:is|are) (?:likely|expected|set) to\b", "will", claim)
    claim = re.sub(r"\b(?:may|might|could)\b(?! not)", "will", claim)
    claim = re.sub(r"\b(?:possibly|probably|likely|potentially|perhaps)\s+", "", claim)
    return re.sub(r"\bwill will\b", "will", claim)


CONTESTED = re.compile(r"\b(?:den(?:ied|y|ies)|claim(?:s|ed)?|accus\w*|alleg\w*)\b", re.IGNORECASE)


def confidence_cap(confidence: str, notes: list[Footnote]) -> str:
    """Confidence is never higher than the basis allows: high needs two documents, and a basis that is only
    claims, accusations or denials is low."""
    rank = {c: i for i, c in enumerate(("low", "moderate", "high"))}
    cap = "high" if len({f.doc for f in notes}) >= 2 else "moderate"
    if notes and all(CONTESTED.search(f.quote) for f in notes):
        cap = "low"
    return confidence if rank[confidence] <= rank[cap] else cap


def claim_problem(claim: str) -> str | None:
    """Why a judgment claim cannot be used (likelihood or confidence words inside it), else None."""
    if LIKELIHOOD_WORDS.search(claim) or HEDGES.search(claim):
        return "claim carries its own likelihood wording"
    if CONFIDENCE_WORDS.search(claim):
        return "claim carries a confidence word"
    if len(claim.split()) < 4:
        return "claim too short"
    return None


# --- schemas -----------------------------------------------------------------------------------------------------


def _cites(n: int) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "integer", "enum": list(range(1, n + 1))}}


def bluf_schema(n: int) -> dict[str, Any]:
    item = {"type": "object", "properties": {"text": {"type": "string", "minLength": 10, "maxLength": BLUF_CHARS},
                                             "cites": _cites(n)},
            "required": ["text", "cites"], "additionalProperties": False}
    return {"type": "object", "properties": {"sentences": {"type": "array", "minItems": 2, "maxItems": 3,
                                                           "items": item}},
            "required": ["sentences"], "additionalProperties": False}


def judgments_schema(n: int) -> dict[str, Any]:
    item = {"type": "object",
            "properties": {"claim": {"type": "string", "minLength": 10, "maxLength": 150},
                           "likelihood": {"type": "string", "enum": list(ICD203)},
                           "confidence": {"type": "string", "enum": list(CONFIDENCE)},
                           "cites": _cites(n)},
            "required": ["claim", "likelihood", "confidence", "cites"], "additionalProperties": False}
    return {"type": "object", "properties": {"judgments": {"type": "array", "minItems": 3, "maxItems": 4,
                                                           "items": item}},
            "required": ["judgments"], "additionalProperties": False}


def facts_messages(system: str, topic: str, facts: list[BriefSentence]) -> list[Message]:
    shown = "\n".join(f"[{i}] {copyable(s.text)}" for i, s in enumerate(facts, 1))
    return [{"role": "system", "content": prompt(system)},
            {"role": "user", "content": prompt("brief_user").format(facts=shown, topic=topic)}]


def _load_json(raw: str, key: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return []
    items = data.get(key, []) if isinstance(data, dict) else []
    return [i for i in items if isinstance(i, dict)]


# --- deterministic sections ---------------------------------------------------------------------------------------


Sentence = tuple[str, int, int, str, dict[str, Any]]  # doc, start, end, text, chunk meta


def passage_sentences(passages: Iterable[Any]) -> list[Sentence]:
    """Every sentence of the retrieved chunks, once, as exact spans of the original files."""
    seen: set[tuple[str, int, int]] = set()
    out: list[Sentence] = []
    for p in passages:
        c = p.chunk
        for a, b in c.sentences:
            if (c.doc, a, b) not in seen:
                seen.add((c.doc, a, b))
                out.append((c.doc, a, b, c.text[a - c.start : b - c.start], c.meta))
    return out


def _excerpt(sentence: str, detail: str, words_before: int = 4) -> str | None:
    """Verbatim words of `sentence` ending with `detail` (tokens joined by any non-word run)."""
    parts = [re.escape(t) for t in detail.split()]
    m = re.search(r"\W+".join(parts), sentence)
    if not m:
        return None
    head = sentence[: m.start()].split(" ")
    lead = " ".join(head[-(words_before + 1):]).lstrip() if len(head) > 1 else ""
    return (lead + sentence[m.start() : m.end()]).strip()


def find_conflicts(sentences: list[Sentence], registry: Registry, limit: int = 2) -> list[BriefConflict]:
    """Sentences of different documents that report one subject differently (`verify.differences`, the same
    check answers use), each side cited with a verbatim excerpt."""
    found: list[BriefConflict] = []
    pairs: set[tuple[str, str]] = set()
    for i, (da, sa, ea, ta, ma) in enumerate(sentences):
        for db, sb, eb, tb, mb in sentences[i + 1 :]:
            if da == db:
                continue
            for x, y in differences(MARKERS.sub("", ta), MARKERS.sub("", tb)):
                if (x.lower(), y.lower()) in pairs:
                    continue
                ex, ey = _excerpt(ta, x), _excerpt(tb, y)
                if not ex or not ey:
                    continue
                pairs.add((x.lower(), y.lower()))
                found.append(BriefConflict(sides=[
                    ConflictSide(doc=da, excerpt=ex, detail=x, citation=registry.add_span(da, sa, ea, ta, ma)),
                    ConflictSide(doc=db, excerpt=ey, detail=y, citation=registry.add_span(db, sb, eb, tb, mb)),
                ]))
                if len(found) >= limit:
                    return found
    return found


def _strip_lead(text: str) -> str:
    text = re.sub(r"^(?:however|but|yet|still),?\s+", "", MARKERS.sub("", text).strip(), flags=re.IGNORECASE)
    return text[:1].upper() + text[1:]


def find_gaps(sentences: list[Sentence], registry: Registry, limit: int = 2) -> list[BriefSentence]:
    """Sentences that state what the sources do not say, cited as such.

    A gap that refers back ("the agency has not provided details") is merged with a
    self-contained gap of another document about the same thing, so it reads on its own.
    """
    hits: list[tuple[int, Sentence]] = [(i, s) for i, s in enumerate(sentences) if GAP.search(s[3])]
    groups: list[tuple[set[str], list[tuple[int, Sentence]]]] = []
    for i, s in hits:
        context = s[3]
        prev = sentences[i - 1] if i > 0 and sentences[i - 1][0] == s[0] and sentences[i - 1][2] < s[1] else None
        if REFERRING.match(_strip_lead(s[3])) and prev:
            context = prev[3] + " " + s[3]
        stems = content_stems(context)
        for other, members in groups:
            if len(stems & other) / max(1, min(len(stems), len(other))) >= 0.35:
                members.append((i, s))
                other |= stems
                break
        else:
            groups.append((stems, [(i, s)]))
    gaps: list[BriefSentence] = []
    for _, g in groups[:limit]:
        standalone = [s for _, s in g if not REFERRING.match(_strip_lead(s[3]))]
        if standalone:
            main = min(standalone, key=lambda s: len(s[3]))
            cites = [registry.add_span(*s) for s in [main] + [s for _, s in g if s is not main]]
            gaps.append(BriefSentence(text=_strip_lead(main[3]), citations=cites, kind="gap"))
            continue
        i, main = g[0]  # refers back ("the agency has not ..."): say what it refers to, citing both sentences
        prev = sentences[i - 1] if i > 0 and sentences[i - 1][0] == main[0] else None
        if prev is None:
            continue
        lead = re.sub(r"^(?:Dec\.|Jan\.|[A-Z][a-z]{2}\.)\s+", "", MARKERS.sub("", prev[3]).strip()).rstrip(".")
        text = f"{lead}; {_strip_lead(main[3])[:1].lower()}{_strip_lead(main[3])[1:]}"
        gaps.append(BriefSentence(text=text, citations=[registry.add_span(*prev), registry.add_span(*main)],
                                  kind="gap"))
    return gaps


def source_rows(docs: dict[str, dict[str, Any]], max_bytes: int) -> list[SourceRow]:
    """One row per document: its metadata, the outlets and URLs it cites itself, and a reliability note."""
    from assistant.ingest import IngestError, load

    rows = []
    for doc, meta in docs.items():
        cited: list[CitedSource] = []
        try:
            if meta.get("kind", "text") != "text":  # only text files carry a reference list of their own
                raise IngestError("no reference list")
            document = load(Path(str(meta.get("source", ""))), max_bytes)
            seen: set[tuple[str | None, str | None]] = set()
            for r in document.references:
                if (r.outlet or r.url) and (r.outlet, r.url) not in seen:
                    seen.add((r.outlet, r.url))
                    cited.append(CitedSource(outlet=r.outlet, url=r.url, title=r.title))
        except (IngestError, OSError):
            pass
        author, date = meta.get("author") or None, meta.get("date") or None
        notes = ["named author" if author else "no byline", "dated" if date else "undated"]
        outlets = sorted({c.outlet for c in cited if c.outlet})
        if outlets:
            notes.append(f"secondary: cites {len(outlets)} outlet{'s' if len(outlets) > 1 else ''}")
        else:
            notes.append("cites no sources of its own; cannot be traced")
        rows.append(SourceRow(label=doc, doc=doc, title=str(meta.get("title") or doc), outlet=None,
                              author=author, date=date, cites=cited, reliability="; ".join(notes) + "."))
    return rows


MONTH_DATE = re.compile(r"\b(January|February|March|April|May|June|July|August|September|October|November|December)"
                        r"\s+(\d{1,2}),\s+(\d{4})\b")


def latest_date(quotes: Iterable[str]) -> str | None:
    found = []
    for q in quotes:
        for m in MONTH_DATE.finditer(q):
            try:
                found.append(dt.datetime.strptime(" ".join(m.groups()), "%B %d %Y").date())
            except ValueError:
                continue
    return f"{max(found):%-d %B %Y}" if found else None


# --- generation --------------------------------------------------------------------------------------------------


class CountingBackend:
    """Wraps a backend to count LLM calls and tokens across the whole brief."""

    def __init__(self, inner: Backend):
        self.inner = inner
        self.name, self.model = inner.name, inner.model
        self.calls = 0
        self.prompt_tokens = 0
        self.generated_tokens = 0

    def stream(self, messages: list[Message], schema: dict[str, Any], max_tokens: int, stats: Stats) -> Iterator[str]:
        self.calls += 1
        try:
            yield from self.inner.stream(messages, schema, max_tokens, stats)
        finally:
            self.prompt_tokens += stats.prompt_tokens
            self.generated_tokens += stats.generated_tokens

    def scored(self, messages: list[Message], schema: dict[str, Any], options: tuple[str, ...]) -> Scored:
        self.calls += 1
        return self.inner.scored(messages, schema, options)


Progress = Callable[[str], None]


def subject_of(topic: str) -> str:
    """The named parties of a topic ("France–Germany rail links" -> "France and Germany")."""
    found = list(dict.fromkeys(m.group(0) for m in re.finditer(r"[A-Z][\w’'.]*(?:\s+[A-Z][\w’'.]*)*", topic)))
    if not found:
        return topic
    return found[0] if len(found) == 1 else ", ".join(found[:-1]) + " and " + found[-1]


def _similar_sentence(a: str, b: str) -> bool:
    sa, sb = content_stems(a), content_stems(b)
    return bool(sa and sb) and len(sa & sb) / min(len(sa), len(sb)) >= 0.7


class BriefWriter:
    """Generates a `Brief` on a topic from the index: one LLM call per evidence sub-question, one for the BLUF,
    one for the judgments (6 in all)."""

    def __init__(self, cfg: Settings, backend: Backend | None = None, retriever: Any = None):
        from assistant.answer import Answerer
        from assistant.llm import get_backend

        t0 = time.perf_counter()
        self.cfg = cfg
        self.counter = CountingBackend(backend or get_backend(cfg))
        # The sub-questions are the product's own, about a topic `topic_gap` has already found in the documents:
        # they carry no user premise for the model check to catch, so it is left out (four calls fewer).
        narrow = cfg.model_copy(update={"max_prompt_sentences": min(cfg.max_prompt_sentences, PROMPT_SENTENCES),
                                        "premise_check": False})
        self.answerer = Answerer(narrow, backend=self.counter, retriever=retriever)
        self.retriever = self.answerer.retriever
        self.judge = SupportJudge()
        self.setup_s = round(time.perf_counter() - t0, 2)  # model load, index and BM25 build

    def _call(self, messages: list[Message], schema: dict[str, Any], max_tokens: int) -> str:
        return "".join(self.counter.stream(messages, schema, max_tokens, Stats()))

    def write(self, topic: str, progress: Progress | None = None) -> Brief:
        from assistant.retrieval import check_query

        say = progress or (lambda _msg: None)
        t0 = time.perf_counter()
        topic = check_query(topic, self.cfg)
        registry = Registry()
        dropped: list[str] = []
        passages: list[Any] = []
        evidence: list[BriefSentence] = []
        timings: dict[str, float] = {}
        overview = self.retriever.search(topic, self.cfg.k)
        missing = topic_gap(topic, " ".join(p.chunk.text for p in overview))
        if missing:
            raise BriefError(f"the indexed documents do not cover {topic!r} (no mention of {missing}); "
                             "nothing to brief")
        passages += overview

        for i, template in enumerate(SUBQUESTIONS, 1):
            question = template.format(topic=topic, subject=subject_of(topic))
            say(f"evidence {i}/{len(SUBQUESTIONS)}: {question}")
            passages += self.retriever.search(question, self.cfg.k)
            answer = self.answerer.ask(question)
            if answer.refused:
                dropped.append(f"sub-question refused: {question} ({answer.refusal_reason})")
                continue
            ids = {f.n: registry.add(f) for f in answer.citations}
            for s in answer.sentences:
                if s.reason == "conflict between sources":
                    continue  # the conflicts section is built from all retrieved pairs
                cites = [ids[c] for c in s.citations]
                text = s.text  # already cut back to a complete clause by the answer path
                why = s.reason if not s.supported else None
                if why is None:
                    verdict = self.judge.judge(text, registry.quotes(cites))
                    why = faithful(text, registry.quotes(cites)) if verdict.supported else verdict.reason
                if why:
                    dropped.append(f"evidence dropped: {s.text} ({why})")
                elif any(_similar_sentence(text, e.text) for e in evidence):
                    dropped.append(f"evidence repeats another: {text}")
                else:
                    evidence.append(BriefSentence(text=text, citations=cites, support=s.support))
        timings["evidence_s"] = round(time.perf_counter() - t0, 2)
        if not evidence:
            raise BriefError(f"the sources say nothing about {topic!r} that passes the citation checks")

        facts = evidence[:10]
        say("bottom line up front")
        bluf = self._bluf(topic, facts, registry, dropped)
        timings["bluf_s"] = round(time.perf_counter() - t0 - sum(timings.values()), 2)
        say("key judgments")
        judgments = self._judgments(topic, facts, registry, dropped)
        timings["judgments_s"] = round(time.perf_counter() - t0 - sum(timings.values()), 2)

        passages += self.retriever.search(GAP_QUERY.format(subject=subject_of(topic)), 2 * self.cfg.k)
        pool = passage_sentences(passages)
        conflicts = find_conflicts(pool, registry)
        gaps = find_gaps(pool, registry)
        docs: dict[str, dict[str, Any]] = {f.doc: {} for f in registry.all()}
        for p in passages:
            if p.chunk.doc in docs:
                docs[p.chunk.doc] = p.chunk.meta
        sources = source_rows(docs, int(self.cfg.max_file_mb * 1_000_000))
        assumptions = [BriefSentence(text=SOURCING_ASSUMPTION, citations=[], kind="assumption")]
        denied = [s for s in pool if re.search(r"\bden(?:ied|y|ies)\b", s[3], re.IGNORECASE)]
        if denied:
            d = denied[0]
            assumptions.append(BriefSentence(
                text="Accusations that the accused deny are treated as unconfirmed, not as established fact.",
                citations=[registry.add_span(*d)], kind="assumption"))
        timings["sections_s"] = round(time.perf_counter() - t0 - sum(timings.values()), 2)

        quotes = [f.quote for f in registry.all()]
        latest = latest_date(quotes)
        today = dt.date.today()
        brief = Brief(topic=topic, title=topic[:1].upper() + topic[1:], date_line="", bluf=bluf,
                      judgments=judgments, evidence=evidence, conflicts=conflicts, assumptions=assumptions, gaps=gaps,
                      sources=sources, footnotes=registry.all(), backend=self.counter.name, model=self.counter.model,
                      llm_calls=self.counter.calls, dropped=dropped)
        brief = renumber(brief)
        n = len(brief.sources)
        brief.date_line = (f"{today:%-d %B %Y} · {n} source document{'s' if n != 1 else ''}"
                           + (f" · reporting up to {latest}" if latest else "")
                           + f" · prepared offline ({self.counter.name}: {self.counter.model})")
        timings["total_s"] = round(time.perf_counter() - t0, 2)
        timings["setup_s"] = self.setup_s
        timings["prompt_tokens"] = self.counter.prompt_tokens
        timings["generated_tokens"] = self.counter.generated_tokens
        brief.timings = timings
        return brief

    def _check(self, text: str, cites: list[int], facts: list[BriefSentence], registry: Registry,
               relaxed: bool = False) -> tuple[list[int], float] | str:
        """Facts cited -> their footnotes, checked against the exact quotes (support, then roles); a cited fact
        that does not support the sentence is re-pointed to the one fact that does. Returns why it failed."""
        valid = [c for c in dict.fromkeys(cites) if isinstance(c, int) and 1 <= c <= len(facts)]
        if not valid:
            return "no valid citation"
        threshold = 0.45 if relaxed else self.judge.threshold

        def verdict(fact_ids: list[int]) -> tuple[str | None, float, list[int]]:
            notes = list(dict.fromkeys(n for c in fact_ids for n in facts[c - 1].citations))
            quotes = registry.quotes(notes)
            v = self.judge.judge(text, quotes)
            if not v.reason.startswith("coverage") or v.score < threshold:
                return v.reason, v.score, notes
            return faithful(text, quotes), v.score, notes

        why, score, notes = verdict(valid)
        if why:
            best = max(range(1, len(facts) + 1), key=lambda i: verdict([i])[1])
            retry = verdict([best])
            if retry[0] is None:
                return retry[2], retry[1]
            return why
        return notes, score

    def _bluf(self, topic: str, facts: list[BriefSentence], registry: Registry,
              dropped: list[str]) -> list[BriefSentence]:
        raw = self._call(facts_messages("brief_bluf_system", topic, facts), bluf_schema(len(facts)), 260)
        out: list[BriefSentence] = []
        for item in _load_json(raw, "sentences"):
            text = clean_text(str(item.get("text", "")))
            text = repair_cut(text, BLUF_CHARS)
            if text and text[-1] not in ".!?”\"":
                text += "."
            checked = self._check(text, list(item.get("cites", [])), facts, registry) if text else "empty"
            if isinstance(checked, str):
                dropped.append(f"BLUF sentence dropped: {text} ({checked})")
                continue
            if any(_similar_sentence(text, s.text) for s in out):
                dropped.append(f"BLUF sentence repeats another: {text}")
                continue
            out.append(BriefSentence(text=text, citations=checked[0], support=checked[1]))
        for f in facts:  # the BLUF always has 2 sentences: fall back to the leading verified facts
            if len(out) >= 2:
                break
            if not any(_similar_sentence(f.text, s.text) for s in out):
                out.append(f)
        return out[:3]

    def _judgments(self, topic: str, facts: list[BriefSentence], registry: Registry,
                   dropped: list[str]) -> list[Judgment]:
        raw = self._call(facts_messages("brief_judgments_system", topic, facts), judgments_schema(len(facts)), 320)
        out: list[Judgment] = []
        for item in _load_json(raw, "judgments"):
            claim = unhedge(clean_text(str(item.get("claim", ""))).rstrip("."))
            likelihood, confidence = item.get("likelihood"), item.get("confidence")
            problem = claim_problem(claim)
            if likelihood not in ICD203 or confidence not in CONFIDENCE:
                problem = "likelihood or confidence outside the scales"
            checked = problem or self._check(claim, list(item.get("cites", [])), facts, registry, True)
            if isinstance(checked, str):
                dropped.append(f"judgment dropped: {claim} ({checked})")
                continue
            if any(_similar_sentence(claim, j.claim) for j in out):
                dropped.append(f"judgment repeats another: {claim}")
                continue
            capped = confidence_cap(str(confidence), [f for f in registry.all() if f.n in checked[0]])
            if capped != confidence:
                dropped.append(f"judgment confidence lowered from {confidence} to {capped}: {claim}")
            out.append(Judgment(text=judgment_sentence(str(likelihood), claim), claim=claim,
                                likelihood=likelihood, confidence=capped, citations=checked[0],  # type: ignore[arg-type]
                                support=checked[1]))
        return out[:4]
