"""Answer a question: retrieve -> numbered sentences -> constrained LLM output -> verified footnotes.

One `Answer` value flows to every surface (CLI, chat, brief, eval); they only render it.
The model returns sentence texts with passage NUMBERS; footnotes are built here from stored
offsets, so every quote is `original_text[start:end]` byte for byte.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache, partial
from typing import Any, Literal

from pydantic import BaseModel, Field

from assistant.chunking import EMPTY_ROW, TABLE_ROW, markdown_head, with_context
from assistant.config import Settings
from assistant.lexical import terms as lexical_terms
from assistant.llm import Backend, Message, Stats, copyable, get_backend, prompt
from assistant.retrieval import Passage, Retriever, check_query
from assistant.store import page_at
from assistant.verify import (
    ATTRIBUTION,
    DOCUMENT_NOUNS,
    MODERN_YEAR,
    MONTHS,
    NUMBER,
    SupportJudge,
    Verdict,
    acronym_words,
    answerability,
    answers_as_asked,
    content_stems,
    differences,
    doubt,
    fold,
    is_negator,
    labelled_row,
    premise_terms,
    question_kind,
    reversed_premise,
    shared_subject,
    spelling_variants,
    stem,
    ungrounded,
    unstated_negation,
    without_source,
)

REFUSAL = "The sources do not say."
PREMISE = "premise not in the sources"  # the reason of a correction's first sentence: a statement about the sources
SENTENCE_CHARS = 320  # schema bound per answer sentence: room for a copied news sentence (~240) to finish


class Footnote(BaseModel):
    """One cited passage: `quote` is exactly the document's stored text [start:end]; `page` is the 1-based
    physical page (None where the format has no pages), `page_label` the printed page number if the PDF
    defines one, `ocr` whether that page's text was read by OCR."""

    n: int
    doc: str
    title: str
    start: int
    end: int
    quote: str
    author: str | None = None
    date: str | None = None
    outlet: str | None = None
    url: str | None = None
    page: int | None = None
    page_label: str | None = None
    ocr: bool = False

    @classmethod
    def from_meta(cls, n: int, doc: str, start: int, end: int, quote: str, meta: dict[str, Any]) -> Footnote:
        """Build a footnote from a chunk's stored metadata; the page is the one the quote starts on."""
        page, label, ocr = page_at(meta, start)
        return cls(n=n, doc=doc, title=str(meta.get("title", doc)), start=start, end=end, quote=quote,
                   author=meta.get("author") or None, date=meta.get("date") or None,
                   outlet=meta.get("outlet") or None, url=meta.get("url") or None,
                   page=page, page_label=label, ocr=ocr)

    def locator(self) -> str:
        """Where the quote is, for every surface: 'p. 4 (printed 2), OCR' or 'characters 10–20'."""
        if self.page is None:
            return f"characters {self.start}–{self.end}"
        printed = f" (printed {self.page_label})" if self.page_label and self.page_label != str(self.page) else ""
        return f"p. {self.page}{printed}" + (", OCR" if self.ocr else "")


class AnswerSentence(BaseModel):
    text: str
    citations: list[int]
    supported: bool
    support: float
    reason: str = ""


class ConflictSide(BaseModel):
    citation: int
    details: list[str]


class Conflict(BaseModel):
    summary: str
    sides: list[ConflictSide]


class Answer(BaseModel):
    """What every surface renders."""

    question: str
    standalone_question: str
    answer: str
    refused: bool
    refusal_reason: str | None = None
    ungrounded: list[str] = Field(default_factory=list)  # question terms the sources do not state (a false premise)
    draft: list[str] = Field(default_factory=list)  # on refusal: what the model proposed, with the verdicts
    sentences: list[AnswerSentence] = Field(default_factory=list)
    citations: list[Footnote] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)
    searched: str = ""
    backend: str = ""
    model: str = ""
    incomplete: bool = False
    timings: dict[str, float] = Field(default_factory=dict)


@dataclass(frozen=True)
class PromptSentence:
    """A sentence shown to the model as `[n] text`, with where it lives."""

    n: int
    doc: str
    start: int
    end: int
    text: str
    meta: dict[str, Any]
    context: str = ""  # the retrieved chunk around it: where a question's premise may be stated

    @cached_property
    def heading(self) -> str:
        """The caption and column headers of the table this sentence is a row of, a line each: those its chunk was
        searched under (`chunking.table_context`) and, for a Markdown row, the table's head written above it in its
        own chunk (`markdown_head`; a table's title row may end one chunk and its column names open the next)."""
        at = self.context.find(self.text) if TABLE_ROW.match(self.text) else -1
        parts = (str(self.meta.get("context") or ""), markdown_head(self.context, at, unruled=False) if at > 0 else "")
        return "\n".join(dict.fromkeys(p for p in parts if p))

    @property
    def plain(self) -> str:
        """The sentence without the source's own footnote markers ("[12]"): as it is quoted and compared."""
        return MARKERS.sub("", self.text).strip()

    @property
    def readable(self) -> str:
        """The sentence as an answer quotes it: a table row with its caption and each cell's header
        (`verify.labelled_row`), source markers dropped; the footnote quotes it as written."""
        return MARKERS.sub("", labelled_row(self.text, self.heading)).strip()


# "redraft": the draft streamed so far is dropped and a new one follows (`echoes_example`).
Event = tuple[Literal["status", "delta", "redraft", "answer"], Any]


MARKERS = re.compile(r"\s*\[\d+\]")
# A label is the noun and a number or a CAPITAL letter ("Source B", "passage 3"): case-insensitive, the letter would
# also match the noun's own plural "s" ("governmental sources." lost "sources") or a word ("sources a").
LABELS = re.compile(r"\b(?i:according to )?(?i:source|passage|document)s?\s*(?:[A-Z]|\d+)\b[,:]?\s*")


def select_sentences(passages: list[Passage], question: str, limit: int) -> list[PromptSentence]:
    """The most question-relevant sentences of the retrieved chunks, in retrieval order; a question's acronym
    matches a sentence that spells it out ("US" and "the United States"). A line of a table that holds no word or
    figure (its header rule "|---|---|", an empty row) says nothing and would take a place in the prompt."""
    q = content_stems(question)
    seen: set[tuple[str, int, int]] = set()
    scored: list[tuple[float, int, tuple[str, int, int, str, dict[str, Any], str]]] = []
    for p in passages:
        c = p.chunk
        for a, b in c.sentences:
            key = (c.doc, a, b)
            text = c.text[a - c.start : b - c.start]
            if key in seen or EMPTY_ROW.fullmatch(text):
                continue
            seen.add(key)
            overlap = len(q & (content_stems(text) | {stem(w) for w in acronym_words(question, text)}))
            scored.append((overlap + 1.0 / p.rank, len(scored), (c.doc, a, b, text, c.meta, c.text)))
    best = sorted(scored, key=lambda s: -s[0])[:limit]
    ordered = [item for _, _, item in sorted(best, key=lambda s: s[1])]
    return [PromptSentence(i + 1, d, a, b, t, m, ctx) for i, (d, a, b, t, m, ctx) in enumerate(ordered)]


def answer_schema(n: int) -> dict[str, Any]:
    """Bounded schema: small models loop on unbounded arrays and strings."""
    return {
        "type": "object",
        "properties": {
            "sentences": {
                "type": "array",
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "minLength": 3, "maxLength": SENTENCE_CHARS},
                        "cites": {"type": "array", "minItems": 1, "maxItems": 3,
                                  "items": {"type": "integer", "enum": list(range(1, n + 1))}},
                    },
                    "required": ["text", "cites"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["sentences"],
        "additionalProperties": False,
    }


def answer_system(example: bool = True) -> str:
    """The answer's rules, then a worked example: the one-shot example is what makes a small model fill the
    constrained output at all (without it, it returned empty lists); `example=False` is the retry after a draft that
    copied it (`echoes_example`)."""
    rules = prompt("answer_rules").rstrip("\n")
    return f"{rules}\n\n{prompt('answer_example')}" if example else rules


@lru_cache(maxsize=1)
def example_stems() -> tuple[frozenset[str], ...]:
    """The content stems of each passage and answer the worked example shows (`answer_system`)."""
    text = prompt("answer_example")
    lines = re.findall(r"^\[\d+\] (.+)$", text, re.MULTILINE) + re.findall(r'"text":"([^"]+)"', text)
    return tuple(frozenset(content_stems(line)) for line in lines)


def echoes_example(raw: str, sents: list[PromptSentence]) -> bool:
    """Whether a draft sentence restates the prompt's worked example instead of the passages. A small model copies
    the example's passage or answer when the question resembles the example's ("In what year were they first
    described?" drew the example's "opened a plant in Lyon in 2019"); those words come from none of the user's
    sources, so the draft is no answer, and a refusal would hide an answer the passages hold. Every content word of
    the sentence in one line of the example, and not every one in the passages shown (a collection about that very
    subject may state them)."""
    copied = [stems for text, _ in parse_output(raw)
              if (stems := content_stems(text)) and any(stems <= line for line in example_stems())]
    if not copied:  # the usual case, decided without reading the passages
        return False
    shown = set().union(*(content_stems(s.text) for s in sents))
    return any(not stems <= shown for stems in copied)


def answer_messages(question: str, sentences: list[PromptSentence], example: bool = True) -> list[Message]:
    """System prompt first and fixed (its KV cache is reused); passages are plain numbered data, their quotes
    `copyable`. Rows of a table follow an unnumbered line with its caption and column headers: a row alone states
    bare labels and figures ("Eastmoor $310.6 3.35%"), which the model cannot read into an answer without knowing
    what each column holds; unnumbered, the heading can be read but not cited."""
    lines: list[str] = []
    previous = ""
    for s in sentences:
        heading = copyable(s.heading.replace("\n", " | "))  # as one line: two chunks of a table write it alike
        if heading and heading != previous:
            lines.append(f"(table: {heading})")
        lines.append(f"[{s.n}] {copyable(MARKERS.sub('', s.text))}")
        previous = heading
    shown = "\n".join(lines)
    return [
        {"role": "system", "content": answer_system(example)},
        {"role": "user", "content": prompt("answer_user").format(passages=shown, question=question)},
    ]


ITEM = re.compile(r'\{\s*"text"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"cites"\s*:\s*\[([^\]]*)\]\s*\}')


def parse_output(raw: str) -> list[tuple[str, list[Any]]]:
    """(text, cites) pairs; a stream cut mid-way keeps its complete sentences."""
    try:
        data = json.loads(raw)
        items = data.get("sentences", []) if isinstance(data, dict) else []
        return [(str(i.get("text", "")), list(i.get("cites", []))) for i in items if isinstance(i, dict)]
    except (json.JSONDecodeError, AttributeError):
        out = []
        for m in ITEM.finditer(raw):
            text = json.loads(f'"{m.group(1)}"')
            cites: list[Any] = [int(x) for x in re.findall(r"-?\d+", m.group(2))]
            out.append((text, cites))
        return out


def repair_cut(text: str, limit: int) -> str:
    """A sentence stopped at the schema's maxLength is cut back to its last complete clause
    ("... reported on 13" would state a wrong date); "" when no clause of six words is left."""
    if len(text) < limit - 12 or text.rstrip().endswith((".", "!", "?", "”", '"')):
        return text
    head = text[: text.rfind(",")] if "," in text else ""
    return head.rstrip() + "." if len(head.split()) >= 6 else ""


def clean_text(text: str) -> str:
    """Strip leaked citation markers and passage labels from model prose."""
    text = MARKERS.sub("", text)
    text = LABELS.sub("", text).strip()
    return text[:1].upper() + text[1:] if text else text


class TextStreamer:
    """Turns streamed JSON into the prose the user should see as it is generated."""

    FIELD = re.compile(r'"text"\s*:\s*"((?:[^"\\]|\\.)*)')

    def __init__(self) -> None:
        self.buffer = ""
        self.emitted = ""

    def feed(self, delta: str) -> str:
        self.buffer += delta
        unescape = {'\\"': '"', "\\n": " ", "\\\\": "\\"}
        parts = []
        for p in self.FIELD.findall(self.buffer):
            for old, new in unescape.items():
                p = p.replace(old, new)
            parts.append(p)
        visible = " ".join(MARKERS.sub("", p) for p in parts)
        if not visible.startswith(self.emitted):
            return ""
        new, self.emitted = visible[len(self.emitted) :], visible
        return new


def _evidence(cites: list[int], sents: list[PromptSentence]) -> str:
    """The cited sentences as the judges read them: table rows under their table's caption and headers, on lines
    before them. The heading says what a row's bare figures are ("Population, June 2018 estimate"), which a claim
    about the row must state; the quote stays the row itself."""
    cited = [sents[c - 1] for c in cites]
    parts: list[str] = []  # prose runs on in one line; a table row stands on its own, as its cells align there
    for s in cited:
        if parts and not TABLE_ROW.match(s.text) and not TABLE_ROW.match(parts[-1]):
            parts[-1] += f" {s.text}"
        else:
            parts.append(s.text)
    return with_context("\n".join(parts), "\n".join(_headings(cited)))


def _headings(cited: list[PromptSentence]) -> list[str]:
    """The cited table rows' captions and headers, each once and in citing order: rows of one table share them."""
    return list(dict.fromkeys(s.heading for s in cited if s.heading))


UNFINISHED = re.compile(r"(?:\b[a-z][\w’'-]*|[,;(–—-])\s*$")  # ends mid-sentence: a lowercase word, a comma, a dash
BREAK_GAP = 240  # at most a running header or footer between the halves of one sentence


def _whole_sentences(cites: list[int], sents: list[PromptSentence]) -> list[int]:
    """Add the other half of a cited sentence that a page break cut in two. Running headers and footers are kept
    out of the sentences (`chunking`), so a sentence that runs across pages is shown as two: "... must not exceed
    300 kilograms (kg) of" and "UF6 containing 3.67% u-235". Cited alone, either half misquotes the source and
    fails the judge; the halves are two shown sentences of one chunk, close together, the first ending
    mid-sentence."""
    def joined(a: PromptSentence, b: PromptSentence) -> bool:
        return (a.doc == b.doc and a.context == b.context and 0 <= b.start - a.end <= BREAK_GAP
                and bool(UNFINISHED.search(a.text)))

    out: list[int] = []
    for n in cites:
        if n > 1 and joined(sents[n - 2], sents[n - 1]):
            out.append(n - 1)
        out.append(n)
        if n < len(sents) and joined(sents[n - 1], sents[n]):
            out.append(n + 1)
    return list(dict.fromkeys(out))


def _repoint(
    text: str, cites: list[int], sents: list[PromptSentence], judge: SupportJudge, question: str,
    pool: list[PromptSentence],
) -> list[int]:
    """Small models often cite the neighbour of the right sentence: move to one that supports the claim, with the
    sentence it refers back to when the claim names what it leaves unnamed (`_antecedent`). When no single sentence
    does, the model's own citations are completed the same way: a run of sentences it cites ("F and -F are equal in
    magnitude") may leave unnamed what the sentence before the run names ("Newton's Third Law is ..."). A single
    sentence comes first because it is the shorter thing for a reader to check, and one chosen on its own support
    rather than for standing next to the model's pick.

    Of sentences that support the claim equally, the one that also states the words the claim repeats from the
    question wins. The judge excuses those words as the question's presupposition, so a sentence sharing only the
    answer's words ("Governor Rell led the delegation", asked who met the harbour master) ties with the one that
    links the answer to what was asked ("Governor Rell met the harbour master")."""
    own = judge.judge(text, _evidence(cites, pool), question)
    if own.supported:
        return cites
    options = [_antecedent(text, [s.n], pool, judge, question) for s in sents]
    top = max(verdict.score for _, verdict in options)
    tied = [option for option in options if option[1].score == top]  # the question-free reading only breaks ties
    best, verdict = tied[0] if len(tied) == 1 else max(
        tied, key=lambda option: judge.judge(text, _evidence(option[0], pool)).score)
    if not verdict.supported:
        best, verdict = _antecedent(text, cites, pool, judge, question, own)
    return best if verdict.supported else cites


def _prune(text: str, cites: list[int], sents: list[PromptSentence], judge: SupportJudge, question: str) -> list[int]:
    """Drop citations that add nothing (ALCE: not supporting alone while the others still do), so a
    reader is never sent to a passage that does not bear on the sentence; corroborating ones stay."""
    kept = list(cites)
    for c in cites:
        rest = [k for k in kept if k != c]
        if rest and not judge.judge(text, _evidence([c], sents), question).supported \
                and judge.judge(text, _evidence(rest, sents), question).supported:
            kept = rest
    return kept


MONTH_YEAR = re.compile(rf"\b(?:(in)\s+)?({'|'.join(MONTHS)})\s+({MODERN_YEAR})\b", re.IGNORECASE)


REFERENCE_REACH = 2  # sentences back a reference may reach: further on, a paragraph has often changed subject


def _antecedent(
    text: str, cites: list[int], pool: list[PromptSentence], judge: SupportJudge, question: str,
    verdict: Verdict | None = None,
) -> tuple[list[int], Verdict]:
    """Also cite the sentence that names what the cited one refers back to. A paragraph names a country, a person or
    a firm once and then says "a country that has the largest adult illiterate population" or "the company"; the
    model's claim resolves it ("Freedonia has the largest ..."), so against the cited sentence alone it fails
    on that name only. The nearest of the `REFERENCE_REACH` sentences before it in the same paragraph (shown to the
    model or not) is added when the two together support the claim, so the reader is sent to where the name is
    written and the judge still reads the whole claim against what is cited. Only for a claim rejected for a name.
    Returns the citations with the judge's verdict on them; `verdict` is the one on `cites` alone, when already read."""
    if verdict is None:
        verdict = judge.judge(text, _evidence(cites, pool), question)
    if verdict.supported or not verdict.reason.startswith("name not in source"):
        return cites, verdict
    for earlier in _before_in_paragraph(pool[cites[0] - 1], pool)[:REFERENCE_REACH]:
        joined = judge.judge(text, _evidence([earlier.n, *cites], pool), question)
        if joined.supported:
            return [earlier.n, *cites], joined
    return cites, verdict


def _before_in_paragraph(sentence: PromptSentence, pool: list[PromptSentence]) -> list[PromptSentence]:
    """The sentences of `pool` before `sentence` in its paragraph, nearest first: the same document, and a retrieved
    passage that holds both shows no blank line between them (passages overlap, so it may be either one's)."""
    before = []
    for s in pool:
        if s.doc != sentence.doc or s.end > sentence.start:
            continue
        for context in dict.fromkeys((sentence.context, s.context)):
            at, here = context.find(s.text), context.find(sentence.text)
            if 0 <= at < here and "\n\n" not in context[at + len(s.text) : here]:
                before.append(s)
                break
    return sorted(before, key=lambda s: -s.start)


def _sharpen_date(text: str, cites: list[int], sents: list[PromptSentence], question: str) -> tuple[str, list[int]]:
    """Give the day when a date question is answered with only a month and year ("expired in February 2026") and a
    shown sentence about the question's subject states a day of that very month ("the treaty's February 5, 2026,
    expiration date"): summaries round dates that the body states in full, and "on what date" asks for the full
    one. The day is copied verbatim from that sentence, which is cited too, so the sharpened claim is still judged
    against what it cites. Left as it is when the best-matching sentences name different days of the month (which
    day is the event's is not for a word rule to decide)."""
    found = MONTH_YEAR.search(text)
    if question_kind(question) != "date" or found is None or re.search(r"\b\d{1,2}\s*$", text[: found.start()]):
        return text, cites  # not a date question, no month-and-year date, or the day is already given ("5 May 2020")
    month, year = found.group(2), found.group(3)
    full = re.compile(rf"\b{month}\s+\d{{1,2}},?\s+{year}\b|\b\d{{1,2}}\s+{month},?\s+{year}\b", re.IGNORECASE)
    subject = content_stems(question)
    days = [(len(subject & content_stems(s.text)), m.group(0), s.n) for s in sents for m in full.finditer(s.text)]
    best = max((overlap for overlap, _, _ in days), default=0)
    if best * 2 < len(subject) or len({d.replace(",", "") for o, d, _ in days if o == best}) != 1:
        return text, cites
    date, n = next((d, n) for o, d, n in days if o == best)
    preposition = {"in": "on ", "In": "On "}.get(found.group(1) or "", "")  # "in May 2020" -> "on May 5, 2020"
    sharpened = text[: found.start()] + preposition + date + text[found.end():]
    return sharpened, list(dict.fromkeys([*cites, n]))


ConflictFound = tuple[int, int, str, list[str], list[str]]  # passage a, passage b, summary, a's words, b's words


def _conflicts(cited: list[int], sents: list[PromptSentence]) -> list[ConflictFound]:
    """Cited sentences that another document reports with a different name, place or number,
    else (weaker) spells a name differently."""
    found: list[ConflictFound] = []
    for c in cited:
        a = sents[c - 1]
        others = [o for o in sents if o.doc != a.doc and shared_subject(a.text, o.text)]
        for kind, compare in (("differ: one says {a}, the other {b}", differences),
                              ("spell the name differently: {a} and {b}", spelling_variants)):
            hit = next(((o, d) for o in others if (d := compare(a.plain, o.plain))), None)
            if hit:
                o, diffs = hit
                side_a, side_b = [d[0] for d in diffs], [d[1] for d in diffs]
                quoted = {key: ", ".join(f"“{d}”" for d in side) for key, side in (("a", side_a), ("b", side_b))}
                found.append((a.n, o.n, "The sources " + kind.format(**quoted) + ".", side_a, side_b))
                break
    return found[:2]


def finalize(
    question: str, standalone: str, raw: str, sents: list[PromptSentence], judge: SupportJudge, searched: str,
    unshown: list[PromptSentence] | None = None, common: frozenset[str] = frozenset(),
    retrieved: dict[str, list[tuple[int, str]]] | None = None,
    asked: Callable[[str, list[str], float], bool] | None = None, names: dict[str, frozenset[str]] | None = None,
    stating: Callable[[list[str]], set[str]] | None = None,
    named_only: Callable[[list[str]], dict[str, set[str]]] | None = None,
) -> Answer:
    """Validate, verify, re-point and renumber the model's output into an Answer.

    The model may only cite `sents` (what it was shown). `unshown` are the other sentences of
    the retrieved chunks, numbered after them: only the conflict check may cite one, when
    word alignment shows it reports the cited fact differently (code-verified, not model-chosen).
    A question whose specific terms the cited passages do not state gets a correction, not an
    answer (`correction`). `common` are the collection's ubiquitous stems (`verify.Vocabulary`);
    `retrieved` each document's retrieved passages as (start, text): where a name the cited passage omits may be
    written (`earlier_text`). `names` are the documents' name terms (`lexical.name_terms`): a question's
    attribution that names every cited document ("according to GAO-07-283") is not asked of the cited sentences
    (`verify.without_source`); `stating(stems)` the documents that write those stems anywhere: where an attribution
    that stays may be grounded (`attributed`); `named_only(stems)` the documents only whose names write each stem: a
    question naming another document by such a word is not answered from these (`names_another`).
    `asked(question, cited texts, threshold)` is the last check, made
    only when all the others pass (`verify.answers_as_asked`, a model call; its threshold from `verify.doubt`): when
    it finds the question not answered as asked, a correction again. A draft none of whose sentences is supported
    gives way to the cited source sentences that hold its answer, quoted (`quoted`), before any refusal.
    """
    valid = {s.n for s in sents}
    pool = sents + [s for s in unshown or [] if s.n > len(sents)]
    checked: list[tuple[str, list[int], bool, float, str]] = []
    loose: list[tuple[str, list[int]]] = []  # claims the judge found too thin, not contradicted
    for text, cites in parse_output(raw):
        text = clean_text(repair_cut(text, SENTENCE_CHARS))
        if not text:
            continue
        good = list(dict.fromkeys(c for c in cites if isinstance(c, int) and c in valid))
        if not good:
            checked.append((text, [], False, 0.0, "no valid citation"))
            continue
        good = _repoint(text, _whole_sentences(good, sents), sents, judge, standalone, pool)
        good = _whole_sentences(_prune(text, good, pool, judge, standalone), pool)  # pruning never halves one
        text, good = _sharpen_date(text, good, sents, standalone)
        verdict = judge.judge(text, _evidence(good, pool), standalone)
        checked.append((text, good, verdict.supported, verdict.score, verdict.reason))
        if not verdict.supported and not verdict.contradicted:
            loose.append((text, good))
    drafted = checked
    supported = [c for c in checked if c[2]]
    if drafted and not supported:
        checked = supported = quoted(loose, pool, standalone)
    refusal: str | None = None
    if not drafted:
        refusal = "the model found no answer in the passages"
    elif not supported:
        refusal = "no sentence of the draft answer is supported by its cited passages" + (
            ", and no cited sentence holds its answer words" if loose else "")
    else:
        backing = [pool[n - 1] for c in supported for n in c[1]]
        context = told_by(backing)
        cited_names = [(names or {}).get(s.doc, frozenset()) for s in backing]
        asked_of_text = without_source(standalone, lambda named: all(named <= name for name in cited_names))
        cited = [s.text for s in backing]
        document = f"{earlier_text(backing, retrieved or {})} {attributed(asked_of_text, backing, stating)}"
        missing, flipped = false_premise(asked_of_text, context, document.strip(), cited)
        missing += [w for w in names_another(asked_of_text, backing, named_only, stating) if w not in missing]
        if missing or flipped:
            return correction(question, standalone, missing, supported, pool, searched, flipped)
        claims_evidence = [_evidence(c[1], pool) for c in supported]  # as the judge read each claim's citations
        ok, why = answerability(asked_of_text, " ".join(c[0] for c in supported), claims_evidence, common)
        refusal = None if ok else why
        if ok and asked is not None:
            threshold = doubt(asked_of_text, [(s.text, s.context) for s in backing], " ".join(_titles(backing)))
            if not asked(asked_of_text, list(dict.fromkeys(with_context(s.text, s.heading) for s in backing)),
                         threshold):
                return correction(question, standalone, [], supported, pool, searched)
    if refusal:
        draft = [f"{t} {cites} -> {why}" for t, cites, _, _, why in drafted]
        return Answer(question=question, standalone_question=standalone, answer=f"{REFUSAL}\n{searched}",
                      refused=True, refusal_reason=refusal, searched=searched, draft=draft)
    conflicts = _conflicts(list(dict.fromkeys(n for c in supported for n in c[1])), pool)
    for a, b, summary, _, _ in conflicts:
        checked.append((summary, [a, b], True, 1.0, "conflict between sources"))
    return _renumber(question, standalone, checked, conflicts, pool, searched)


def quoted(
    loose: list[tuple[str, list[int]]], pool: list[PromptSentence], question: str
) -> list[tuple[str, list[int], bool, float, str]]:
    """When no sentence of the draft is supported, the source's own sentence that holds the draft's answer, quoted.

    A small model often finds the right sentence and then restates it loosely ("exactly two divisors: 1 and
    itself" of "no divisors other than 1 and itself"), and the judge rightly rejects the restatement. The words a
    claim adds to the question are its answer; the cited sentence holding most of them says that answer in the
    source's words, which are supported by construction. `loose` are the claims the judge found too thin, with
    their citations: a claim it found contradicted (a number or name the source lacks, another speaker, a negation,
    an opposite: `Verdict.contradicted`) asserts another answer than its sentence's, often the question's false
    premise, and is never swapped for a quote. Only a cited sentence is quoted (an uncited one would be the code's
    guess), whole (both halves of one a page break cut), and the quote still faces every check of the question an
    answer faces (false premise, answerability, the model check)."""
    asked = content_stems(question)
    found: dict[tuple[int, ...], tuple[str, list[int], bool, float, str]] = {}
    for text, cites in loose:
        answer = content_stems(text) - asked
        held, n = max(((len(answer & content_stems(pool[c - 1].text)), c) for c in cites), default=(0, 0))
        if held:
            whole = _whole_sentences([n], pool)
            quote = " ".join(pool[c - 1].readable for c in whole)
            found[tuple(whole)] = (quote, whole, True, 1.0, "quoted from the source: the draft's wording unsupported")
    return list(found.values())


def false_premise(
    question: str, context: str, earlier: str, cited: list[str]
) -> tuple[list[str], tuple[str, str] | None]:
    """What the question presupposes that the cited passages do not state, as `correction` reports it: its specific
    terms (`verify.ungrounded`, in the cited passages' context or the `earlier` text of their documents), a direction
    the cited sentences reverse (`reversed_premise`) or a negation they do not state (`unstated_negation`). The
    first found is reported: a later check only matters when the question's own words pass the earlier ones."""
    missing = ungrounded(question, context, earlier)
    said = " ".join(cited)
    flipped = reversed_premise(question, said)
    if missing or flipped:
        return missing, flipped
    negator = unstated_negation(question, said)
    return ([negator] if negator else []), None


def told_by(cited: list[PromptSentence]) -> str:
    """What the cited sentences' passages say up to the last cited sentence in each: where a question's premise must
    be stated for the cited sentences to be about it. A sentence refers back to what its passage has named ("the
    company", "he"), not ahead: a name or number written only after it in the passage is about something else
    ("Who first proved X?" is not answered by a sentence on Y because the next sentence names X). The same reason
    as `earlier_text`'s, inside the cited passage. A cited table row's heading comes first: its caption qualifies
    every row under it ("Largest urban areas", "Top 10 holders"), as the judge reads it (`_evidence`)."""
    upto: dict[str, int] = {}
    for s in cited:
        context = s.context or s.text
        at = context.find(s.text)
        upto[context] = max(upto.get(context, 0), at + len(s.text) if at >= 0 else len(context))
    return " ".join([*(f"{h}." for h in _headings(cited)), *(context[:end] for context, end in upto.items())])


def earlier_text(cited: list[PromptSentence], retrieved: dict[str, list[tuple[int, str]]]) -> str:
    """The retrieved passages of the cited documents up to the end of the last cited sentence there. A report
    names a place, a person or an event once and then refers back to it ("the talks", "Hutton"), so a name the
    question asks about may be written earlier than the sentence that answers. Written only LATER, it belongs to
    another part of the report (a table row, a footnote about someone else) and does not make the cited sentence
    about it: "How much did X hold?" is not answered by "In 2025, foreigners held 31%" because a later table
    lists X. Each cited document's title comes first: it names what the whole document is about ("Jacksonville,
    Florida"), which its sentences then leave unsaid ("the city's hottest month on record"). A title ends as a
    sentence does, so its name never runs on into the passage's first word ("Intergovernmental Panel on Climate
    Change A chapter ..." is not an initialism of IPCC). A cited table row's caption and headers are read with the
    cited passage itself (`told_by`), not again here."""
    last: dict[str, int] = {}
    for s in cited:
        last[s.doc] = max(last.get(s.doc, 0), s.end)
    earlier = [text[: end - start] for doc, end in last.items() for start, text in retrieved.get(doc, [])
               if start < end]
    return " ".join([*(f"{title}." for title in _titles(cited) if title), *earlier]).strip()


def attributed(question: str, cited: list[PromptSentence], stating: Callable[[list[str]], set[str]] | None) -> str:
    """The specific terms of the question's attributions ("according to the Vellmar Institute") that the cited
    documents ground. Such a term is a premise (`verify.premise_terms`), but a report names its author or publisher
    in a byline or at its end, and the source it quotes once: no retrieved passage need hold it, so every cited
    document writing it somewhere will do. A source the cited documents never name stays unstated ("according to
    GAO-09-114" answered from another report). An attribution to a piece of writing ("the Vellmar analysis",
    `DOCUMENT_NOUNS`) names the cited document by its publisher, whose name the kept text may lack altogether; its
    names are granted, its numbers ("a 1954 review") are not."""
    docs = {s.doc for s in cited}
    grounded = []
    for found in ATTRIBUTION.finditer(question):
        said = found.group(1)
        *_, last = said.split() or [""]
        writing = fold(last) in DOCUMENT_NOUNS
        grounded += [t for t in premise_terms(said) if (writing and not NUMBER.fullmatch(t))
                     or (stating is not None and (stems := lexical_terms(t)) and docs <= stating(stems))]
    return " ".join(grounded)


def names_another(question: str, cited: list[PromptSentence],
                  named_only: Callable[[list[str]], dict[str, set[str]]] | None,
                  stating: Callable[[list[str]], set[str]] | None) -> list[str]:
    """The question's words that name an uncited document and nothing the cited documents write: "What heading is
    printed on the scanned page?" answered from a report, when only scanned_page_22.pdf is called "scanned".

    Why: a user points at a document by what it is called, and such a word is in no passage of it (the file name's
    "scanned", a saved page's "Wikipedia"), so no check that reads passages sees which document is meant, and the
    premise check holds names, numbers and qualifiers, not such a common word. A sentence of another document can
    carry every other word of the question ("printed", "heading") and be published as the named document's answer.
    A word the cited documents write anywhere (or that names one of them) is theirs too."""
    if named_only is None:
        return []
    docs = {s.doc for s in cited}
    spelled: dict[str, str] = {}
    for word in re.findall(r"[\w’'-]+", question):
        for term in lexical_terms(word):
            spelled.setdefault(term, word)
    return [spelled[term] for term, named in named_only(list(spelled)).items()
            if named and not named & docs and not (stating is not None and docs & stating([term]))]


def _titles(cited: list[PromptSentence]) -> list[str]:
    """The cited documents' titles, once each: what a whole document is about, which its sentences leave unsaid."""
    return list(dict.fromkeys(str(s.meta.get("title") or "") for s in cited))


def correction(
    question: str, standalone: str, missing: list[str], supported: list[tuple[str, list[int], bool, float, str]],
    sents: list[PromptSentence], searched: str, flipped: tuple[str, str] | None = None,
) -> Answer:
    """The question rests on terms its sources do not state (a false premise, a wrong qualifier, a negation) or on a
    direction they reverse (`flipped`: the question's word, the passage's; `verify.reversed_premise`): say so, and
    show what the passages nearest to it say, quoted verbatim and cited, instead of answering the question as asked
    (the model's own sentence would restate the false premise as if the source said it). With neither, the model
    check found the question not answered as asked, without naming a word."""
    rest = [t for t in missing if not flipped or t.lower() != flipped[0]]  # a reversed word is said once, as such
    terms = " or ".join(f"“{t}”" for t in rest)
    found, reasons = [], []
    if flipped:
        found.append(f"say “{flipped[1]}” where the question says “{flipped[0]}”")
        reasons.append(f"the cited passages say “{flipped[1]}” where the question says “{flipped[0]}”")
    if rest:  # a negation is not mentioned but said: "do not say “never”"
        negations = all(is_negator(t) for t in rest)
        found.append(f"do not {'say' if negations else 'mention'} {terms}")
        reasons.append(f"the question's {terms} {'is' if len(rest) == 1 else 'are'} not in the passages an answer "
                       "would cite")
    statement = (f"The passages found {' and '.join(found)}, so they do not answer the question as asked. " if found
                 else "The passages found do not answer the question as asked. ") + "What they do say:"
    reason = "; ".join(reasons) or "the cited passages do not answer the question as asked (model check)"
    cited = list(dict.fromkeys(n for c in supported for n in c[1]))[:2]
    quotes = [(f"“{sents[n - 1].readable}”", [n], True, 1.0, "quoted from the source") for n in cited]
    near = _renumber(question, standalone, [(statement, [], True, 1.0, PREMISE), *quotes], [], sents, searched)
    return near.model_copy(update={
        "refused": True, "ungrounded": [*rest, *([flipped[0]] if flipped else [])],
        "answer": f"{near.answer}\n{searched}", "refusal_reason": reason})


def _renumber(
    question: str,
    standalone: str,
    checked: list[tuple[str, list[int], bool, float, str]],
    conflicts: list[ConflictFound],
    sents: list[PromptSentence],
    searched: str,
) -> Answer:
    """Footnotes numbered by first use; only cited sentences become footnotes."""
    order: dict[int, int] = {}
    for _, cites, *_ in checked:
        for c in cites:
            order.setdefault(c, len(order) + 1)
    sentences = [
        AnswerSentence(text=t, citations=[order[c] for c in cites], supported=ok, support=score, reason=why)
        for t, cites, ok, score, why in checked
    ]
    notes = []
    for old, new in sorted(order.items(), key=lambda kv: kv[1]):
        s = sents[old - 1]
        m = s.meta
        notes.append(Footnote.from_meta(new, s.doc, s.start, s.end, s.text, m))
    rendered = " ".join(
        s.text + "".join(f"[{n}]" for n in s.citations) + ("" if s.supported else " (unverified)") for s in sentences
    )
    found = [Conflict(summary=summary, sides=[ConflictSide(citation=order[a], details=da),
                                              ConflictSide(citation=order[b], details=db)])
             for a, b, summary, da, db in conflicts]
    return Answer(question=question, standalone_question=standalone, answer=rendered, refused=False,
                  sentences=sentences, citations=notes, conflicts=found, searched=searched)


class Answerer:
    """Holds the retriever, backend and judge for a process; answers many questions."""

    def __init__(self, cfg: Settings, backend: Backend | None = None, retriever: Retriever | None = None):
        self.cfg = cfg
        self.retriever = retriever or Retriever(cfg)
        self.backend = backend or get_backend(cfg)
        self.judge = SupportJudge()

    def standalone(self, question: str, history: list[dict[str, str]]) -> str:
        """Rewrite a follow-up into a standalone question (one short constrained call)."""
        if not history:
            return question
        turns = "\n".join(f"{t['role']}: {t['content'][:400]}" for t in history[-4:])
        messages: list[Message] = [
            {"role": "system", "content": prompt("rewrite_system")},
            {"role": "user", "content": f"Conversation:\n{turns}\n\nLast question: {question}"},
        ]
        schema = {"type": "object", "properties": {"question": {"type": "string", "minLength": 3, "maxLength": 200}},
                  "required": ["question"]}
        raw = "".join(self.backend.stream(messages, schema, 80, Stats()))
        try:
            rewritten = str(json.loads(raw)["question"]).strip()
        except (ValueError, KeyError, TypeError):
            return question
        return rewritten or question

    def stream(self, question: str, history: list[dict[str, str]] | None = None) -> Iterator[Event]:
        """Events: status lines, prose deltas as generated, then the verified Answer."""
        t0 = time.perf_counter()
        question = check_query(question, self.cfg)
        standalone = self.standalone(question, history or [])
        if standalone != question:
            yield ("status", f"searching for: {standalone}")
        passages = self.retriever.search(standalone, self.cfg.k)
        t_retrieved = time.perf_counter()
        sents = select_sentences(passages, standalone, self.cfg.max_prompt_sentences)
        docs = sorted({p.chunk.doc for p in passages})
        searched = f"Searched {len(passages)} passages ({len(sents)} sentences) in {', '.join(docs) or 'no documents'}."
        stats = Stats()
        first: float | None = None
        for example in (True, False):  # drafted again without the worked example if the draft copied it
            raw, incomplete = "", False
            streamer = TextStreamer()
            try:
                for delta in self.backend.stream(answer_messages(standalone, sents, example),
                                                 answer_schema(len(sents)), self.cfg.max_answer_tokens, stats):
                    raw += delta
                    visible = streamer.feed(delta)
                    if visible:
                        first = first or time.perf_counter()
                        yield ("delta", visible)
            except Exception as exc:  # keep what was streamed, mark it incomplete, re-raise if nothing came
                if not raw:
                    raise
                incomplete = True
                yield ("status", f"generation stopped early: {exc}")
            if incomplete or not example or not echoes_example(raw, sents):
                break
            yield ("redraft", "the draft repeated the instructions' example, not the passages: drafting again…")
        t_generated = time.perf_counter()
        if raw.strip():
            yield ("status", "checking the answer against its sources…")
        answer = finalize(question, standalone, raw, sents, self.judge, searched,
                          self._counterparts(raw, sents, passages, standalone), self.retriever.common_stems(),
                          {d: [(p.chunk.start, p.chunk.text) for p in passages if p.chunk.doc == d] for d in docs},
                          partial(answers_as_asked, self.backend) if self.cfg.premise_check else None,
                          self.retriever.document_names(), self.retriever.documents_stating,
                          self.retriever.named_only)
        answer.incomplete = incomplete or (stats.generated_tokens >= self.cfg.max_answer_tokens)
        answer.backend, answer.model = self.backend.name, self.backend.model
        end = time.perf_counter()
        answer.timings = {
            "retrieve_s": round(t_retrieved - t0, 3),
            "first_token_s": round((first or end) - t0, 3),
            "total_s": round(end - t0, 3),
            "llm_s": round(stats.total_s, 3),  # the answer's model call alone
            "verify_s": round(end - t_generated, 3),  # every check after generation, the model check among them
            "prompt_tokens": stats.prompt_tokens,
            "cached_tokens": stats.cached_tokens,
            "generated_tokens": stats.generated_tokens,
            "prompt_tok_per_s": round(stats.prompt_per_s, 1),
            "gen_tok_per_s": round(stats.generate_per_s, 1),
        }
        yield ("answer", answer)

    def _counterparts(
        self, raw: str, sents: list[PromptSentence], passages: list[Passage], question: str
    ) -> list[PromptSentence]:
        """Sentences the model was not shown that may report its cited facts differently: the rest of
        the retrieved chunks, plus the other documents' closest chunks to each cited sentence
        (a rewrite of the same report often spells names differently, so the question misses it)."""
        cited = sorted({c for _, cites in parse_output(raw) for c in cites if isinstance(c, int)
                        and 1 <= c <= len(sents)})
        extra = []
        for n in cited[:3]:
            near = self.retriever.search(sents[n - 1].text, 6, diverse=False)  # here the near-duplicate IS the point
            extra += [p for p in near if p.chunk.doc != sents[n - 1].doc][:2]
        shown = {(s.doc, s.start) for s in sents}
        rest = [x for x in select_sentences(passages + extra, question, 10_000) if (x.doc, x.start) not in shown]
        unique = list({(x.doc, x.start): x for x in rest}.values())
        return [PromptSentence(len(sents) + i + 1, x.doc, x.start, x.end, x.text, x.meta, x.context)
                for i, x in enumerate(unique)]

    def ask(self, question: str, history: list[dict[str, str]] | None = None) -> Answer:
        answer: Answer | None = None
        for kind, value in self.stream(question, history):
            if kind == "answer":
                answer = value
        assert answer is not None
        return answer
