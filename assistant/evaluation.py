"""Groundedness evaluation (ALCE-style definitions, DESIGN.md §4) over a facts file.

Every answer sentence is judged against its cited passages only, by the same offline judge
the answers use; the judge's balanced accuracy on the labelled set is reported beside the
metrics so a reader knows how far to trust them.
"""

from __future__ import annotations

import html
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import yaml

from assistant.answer import PREMISE, Answer, Answerer
from assistant.config import REPO_ROOT
from assistant.verify import QUOTES, Judge, SupportJudge

EVAL_DIR = REPO_ROOT / "eval"
HIGHER_IS_BETTER = {"retrieval_recall_at_k", "fact_recall", "citation_recall", "citation_precision",
                    "citation_relevance", "answered_when_answerable", "refusal_accuracy", "unanswerable_refused",
                    "all_correct", "conflict_detection", "judge_balanced_accuracy", "page_accuracy",
                    "quotes_on_cited_page"}


class EvalError(Exception):
    """The facts or gates file is unusable."""


@dataclass
class CaseResult:
    id: str
    category: str
    question: str
    answer: str
    refused: bool
    retrieved: bool | None
    facts_found: bool | None
    refusal_ok: bool
    conflict_named: bool | None
    sentence_support: list[bool]
    citations_needed: list[bool]
    out_of_range: int
    total_s: float
    why: list[str] = field(default_factory=list)
    footnotes: list[dict[str, Any]] = field(default_factory=list)
    expected: list[list[str]] = field(default_factory=list)
    kind: str = ""
    page_ok: bool | None = None  # answered with a citation on a gold page (cases whose support names pages)
    quotes_on_page: list[bool] = field(default_factory=list)  # per paged footnote: its quote is on its page
    cited_gold: bool | None = None  # an answered case with known support: a citation overlaps a gold passage
    trapped: bool | None = None  # an unanswerable case with a known lure: answered with the lure


def load_facts(path: Path) -> list[dict[str, Any]]:
    try:
        cases = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EvalError(f"cannot read facts file {path}: {exc}") from None
    if not isinstance(cases, list) or not all(isinstance(c, dict) and "id" in c and "question" in c for c in cases):
        raise EvalError(f"{path}: expected a list of cases with id and question")
    return cases


Pair = tuple[str, str, str, bool | None]  # claim, evidence, question, supported (None when unlabelled)


def _label(row: dict[str, Any]) -> bool | None:
    """`supported`/`label` as a bool, or WiCE's strings: only "supported" counts (a partly supported claim is not)."""
    value = row.get("supported", row.get("label"))
    if isinstance(value, str):
        return value.strip().lower() in ("supported", "true", "yes")
    return None if value is None else bool(value)


def read_pairs(path: Path) -> list[Pair]:
    """Claim/evidence pairs from JSONL: `claim` plus `evidence` (a string or a list of sentences) or `quote`, an
    optional `question`, and an optional label (`supported` or `label`). A bad line is an error naming the line."""
    pairs: list[Pair] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"cannot read {path}: {exc}") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            evidence = row.get("evidence", row.get("quote"))
            if isinstance(evidence, list):
                evidence = " ".join(str(e) for e in evidence)
            if not isinstance(row, dict) or not isinstance(row.get("claim"), str) or not isinstance(evidence, str):
                raise ValueError("needs a string `claim` and `evidence` (or `quote`)")
        except (ValueError, AttributeError) as exc:
            raise EvalError(f"{path}:{i}: {exc}") from None
        pairs.append((row["claim"], evidence, str(row.get("question") or ""), _label(row)))
    return pairs


def evenly(items: list[Any], n: int | None) -> list[Any]:
    """N items spread evenly over the list, the same every run (all when N is None or not smaller)."""
    if not n or n >= len(items):
        return items
    return [items[i * len(items) // n] for i in range(n)]


def agreement(verdicts: list[bool], pairs: list[Pair]) -> dict[str, float]:
    """How verdicts agree with the labels: accepted share of the supported pairs, rejected share of the others, and
    their mean (balanced accuracy); empty when the pairs do not hold both labels."""
    pos = [v for v, p in zip(verdicts, pairs, strict=True) if p[3] is True]
    neg = [not v for v, p in zip(verdicts, pairs, strict=True) if p[3] is False]
    if not pos or not neg:
        return {}
    accepted, rejected = sum(pos) / len(pos), sum(neg) / len(neg)
    return {"supported_accepted": round(accepted, 3), "unsupported_rejected": round(rejected, 3),
            "balanced_accuracy": round((accepted + rejected) / 2, 3)}


def judge_pairs(judge: Judge, pairs: list[Pair], progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Verdicts on every pair, their agreement with the labels where labelled, and the judge's ms per pair.
    `progress(done)` after each pair: a model judge takes seconds a pair."""
    t0 = time.perf_counter()
    verdicts = []
    for claim, evidence, question, _ in pairs:
        verdicts.append(judge.judge(claim, evidence, question))
        if progress:
            progress(len(verdicts))
    ms = 1000 * (time.perf_counter() - t0) / max(1, len(pairs))
    return {"judge": judge.name, "pairs": len(pairs), "ms_per_pair": round(ms, 3),
            "verdicts": [v.__dict__ for v in verdicts], **agreement([v.supported for v in verdicts], pairs)}


def judge_accuracy(judge: SupportJudge, path: Path = EVAL_DIR / "judge_set.jsonl") -> float:
    """Balanced accuracy of the support judge on a labelled (claim, passage, supported) set."""
    return float(judge_pairs(judge, read_pairs(path)).get("balanced_accuracy", 0.0))


def _has_terms(text: str, groups: list[list[str]]) -> bool:
    """Every group has an alternative in the text; typographic and straight quotes are the same text (the model is
    shown typographic ones, `llm.copyable`)."""
    low = text.casefold().translate(QUOTES)
    return all(any(alt.casefold().translate(QUOTES) in low for alt in group) for group in groups)


def _citation_scores(answer: Answer, judge: SupportJudge) -> tuple[list[bool], list[bool], int]:
    """Per sentence: supported by its citations together; per citation: needed; count of out-of-range."""
    quotes = {f.n: f.quote for f in answer.citations}
    support, needed, out_of_range = [], [], 0
    for s in answer.sentences:
        bad = [n for n in s.citations if n not in quotes]
        out_of_range += len(bad)
        cites = [n for n in s.citations if n in quotes]
        if s.reason == PREMISE:  # a correction's "the passages found do not mention X": cites nothing by design
            continue
        if s.reason == "conflict between sources":  # a statement about the sources themselves
            support.append(bool(cites))
            needed.extend([True] * len(cites))
            continue
        q = answer.standalone_question
        together = bool(cites) and judge.judge(s.text, " ".join(quotes[n] for n in cites), q).supported
        support.append(together)
        for n in cites:
            alone = judge.judge(s.text, quotes[n], q).supported
            others = [m for m in cites if m != n]
            rest = bool(others) and judge.judge(s.text, " ".join(quotes[m] for m in others), q).supported
            needed.append(alone or not rest)
    return support, needed, out_of_range


def squash(text: str) -> str:
    """Whitespace, case, curly quotes and line-end hyphenation ignored: how a quote is matched across
    text extractors (a PDF's line breaks and hyphens differ between them)."""
    for a, b in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"')):
        text = text.replace(a, b)
    return "".join(ch for ch in text.lower() if not ch.isspace() and ch not in "-\u00ad\ufffe")


SHARED_RUN = 30  # squashed characters (about six words) two quotes of one sentence cut differently share at least


def overlaps(cited: str, gold: str) -> bool:
    """Do a cited quote and a gold support quote of one document share a span? Gold quotes are phrases or whole
    sentences and sentence splitters cut differently, so: one holds the other, or they share a run of half the
    shorter and at least a clause (`SHARED_RUN`). Two different sentences share words, not a clause-long run."""
    a, b = squash(cited), squash(gold)
    if not a or not b:
        return False
    if a in b or b in a:
        return True
    run = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size
    return run >= SHARED_RUN and 2 * run >= min(len(a), len(b))


def _gold_checks(case: dict[str, Any], answer: Answer) -> tuple[bool | None, bool | None]:
    """Citation relevance and trap: does an answered case with known support cite a gold passage (the issue's
    "citation relevance": a cited quote overlaps the gold support span)? Was an unanswerable case with a known
    lure (SQuAD's plausible wrong answer) answered with it? A correction is a refusal, so it is never a trap."""
    gold = case.get("support") or []
    lure = case.get("lure") or []
    if case.get("category") == "unanswerable":
        return None, (not answer.refused and _has_terms(answer.answer, [lure])) if lure else None
    if answer.refused or not gold:
        return None, None
    return any(f.doc == s["doc"] and overlaps(f.quote, s["quote"]) for f in answer.citations for s in gold), None


def all_correct(result: CaseResult) -> bool:
    """What the user needed from the case: an unanswerable question refused; an answerable one answered with its
    fact, citing a gold passage where the suite knows one, naming both sides where the sources conflict."""
    if result.category == "unanswerable":
        return result.refused
    return bool(result.facts_found) and result.cited_gold is not False and result.conflict_named is not False


def _page_checks(case: dict[str, Any], answer: Answer, answerer: Answerer) -> tuple[bool | None, list[bool]]:
    """Is a citation on a gold page (either page for a cross-page answer)? Is each cited quote really on
    the page its footnote names (re-checked on the original PDF, independently of the stored page map)?
    Reports repeat facts (a summary page and the body): a citation on another page of the gold document
    also counts when its quote, verified on that page, states the expected answer itself."""
    from assistant.pages import quote_on_page

    gold = {(s["doc"], s["page"]) for s in case.get("support", []) if s.get("page")}
    sources = {doc: str(meta.get("source", "")) for doc, meta in answerer.retriever.documents.items()
               if meta.get("kind") == "pdf"}
    checked = {f.n: quote_on_page(Path(sources[f.doc]), f.page, f.quote) for f in answer.citations
               if f.page is not None and f.doc in sources}
    page_ok = None
    if gold and case.get("category") != "unanswerable" and not answer.refused:
        docs = {doc for doc, _ in gold}
        page_ok = any((f.doc, f.page) in gold or (f.doc in docs and checked.get(f.n, False)
                      and _has_terms(f.quote, case.get("expected") or [[""]])) for f in answer.citations)
    return page_ok, list(checked.values())


def run_case(case: dict[str, Any], answerer: Answerer, judge: SupportJudge, k: int) -> CaseResult:
    """Ask one case's question and score the answer on every measure the suite reports, with why it fell short."""
    category = case.get("category", "single_doc")
    unanswerable = category == "unanswerable"
    quotes = [squash(s["quote"]) for s in case.get("support", [])]
    retrieved = None
    if quotes:
        passages = answerer.retriever.search(case["question"], k)
        retrieved = any(q in squash(p.chunk.text) for q in quotes for p in passages)
    answer = answerer.ask(case["question"])
    support, needed, oor = _citation_scores(answer, judge)
    expected = case.get("expected") or []
    facts = None if unanswerable else (not answer.refused and _has_terms(answer.answer, expected))
    sides = case.get("sides") or []
    conflict = None
    if category == "conflict" and len(sides) == 2:
        conflict = not answer.refused and all(_has_terms(answer.answer, [side]) for side in sides)
    result = CaseResult(
        id=case["id"], category=category, question=case["question"], answer=answer.answer, refused=answer.refused,
        retrieved=retrieved, facts_found=facts, refusal_ok=answer.refused == unanswerable, conflict_named=conflict,
        sentence_support=support, citations_needed=needed, out_of_range=oor,
        total_s=answer.timings.get("total_s", 0.0), footnotes=[f.model_dump() for f in answer.citations],
        expected=expected, kind=str(case.get("kind") or category),
    )
    result.page_ok, result.quotes_on_page = _page_checks(case, answer, answerer)
    result.cited_gold, result.trapped = _gold_checks(case, answer)
    result.why = _shortfalls(result, answer)
    return result


def _shortfalls(result: CaseResult, answer: Answer) -> list[str]:
    """Each measure a scored case fails, in words: what a reader of the report looks at first."""
    why = []
    if result.page_ok is False:
        why.append("no citation on the page that holds the answer")
    if not all(result.quotes_on_page):
        why.append("a cited quote is not on the page its footnote names")
    if result.retrieved is False:
        why.append("supporting passage not retrieved")
    if not result.refusal_ok:
        why.append("answered an unanswerable question" if result.category == "unanswerable" else
                   f"refused: {answer.refusal_reason} (draft: {' | '.join(answer.draft) or 'none'})")
    if result.facts_found is False and not answer.refused:
        why.append("expected terms missing")
    if result.conflict_named is False:
        why.append("conflict not named")
    if not all(result.sentence_support):
        why.append(f"{result.sentence_support.count(False)} sentence(s) not supported by their citations")
    if result.cited_gold is False:
        why.append("no citation overlaps a gold support passage")
    if result.trapped:
        why.append("answered with the lure")
    return why


def _mean(values: list[bool]) -> float | None:
    """The share of true values; None (shown as n/a) when no case measures it, never a perfect score."""
    return round(sum(values) / len(values), 3) if values else None


def metrics(results: list[CaseResult], judge_ba: float) -> dict[str, float | None]:
    answered = [r for r in results if not r.refused]
    times = sorted(r.total_s for r in results) or [0.0]
    return {
        "retrieval_recall_at_k": _mean([r.retrieved for r in results if r.retrieved is not None]),
        "fact_recall": _mean([bool(r.facts_found) for r in results if r.facts_found is not None]),
        "citation_recall": _mean([s for r in answered for s in r.sentence_support]),
        "citation_precision": _mean([n for r in answered for n in r.citations_needed]),
        "citation_relevance": _mean([r.cited_gold for r in results if r.cited_gold is not None]),
        "answered_when_answerable": _mean([not r.refused for r in results if r.category != "unanswerable"]),
        "refusal_accuracy": _mean([r.refusal_ok for r in results]),
        "unanswerable_refused": _mean([r.refused for r in results if r.category == "unanswerable"]),
        "trap_answers": _mean([r.trapped for r in results if r.trapped is not None]),
        "all_correct": _mean([all_correct(r) for r in results]),
        "conflict_detection": _mean([bool(r.conflict_named) for r in results if r.conflict_named is not None]),
        "out_of_range_citations": float(sum(r.out_of_range for r in results)),
        "latency_p50_s": round(statistics.median(times), 2),
        "latency_p95_s": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2),
        "judge_balanced_accuracy": judge_ba,
        "page_accuracy": _mean([bool(r.page_ok) for r in results if r.page_ok is not None]),
        "quotes_on_cited_page": _mean([q for r in results for q in r.quotes_on_page]),
    }


UNMEASURED = "no case of this suite measures it"
UNSELECTED = "no selected case measures it"


def check_gates(
    values: dict[str, float | None], gates: dict[str, float], subset: bool = False
) -> dict[str, dict[str, Any]]:
    """min gates for higher-is-better metrics, max gates for the rest (out-of-range, latency).

    A gate no case measured is never a pass: on the whole suite it fails (the gates file asks for what the facts
    cannot show); on cases picked with `--only`/`--sample` it is not judged (`pass` None) and says why. Either way
    it is reported beside the others, not raised: the answers already paid for stay in the report."""
    out: dict[str, dict[str, Any]] = {}
    for name, limit in gates.items():
        if name not in values:
            raise EvalError(f"gate {name!r} names no metric")
        value = values[name]
        gate: dict[str, Any] = {"value": value, "gate": limit, "kind": "min" if name in HIGHER_IS_BETTER else "max"}
        if value is None:
            gate |= {"pass": None, "note": UNSELECTED} if subset else {"pass": False, "note": UNMEASURED}
        else:
            gate["pass"] = value >= limit if name in HIGHER_IS_BETTER else value <= limit
        out[name] = gate
    return out


def load_gates(path: Path) -> dict[str, float]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EvalError(f"cannot read gates file {path}: {exc}") from None
    return {str(k): float(v) for k, v in (data.get("gates") or {}).items()}


def evaluate(
    cases: list[dict[str, Any]], answerer: Answerer, gates: dict[str, float],
    progress: Callable[[int, int, str], None] | None = None, subset: bool = False,
) -> dict[str, Any]:
    """Run every case; return the JSON report (metrics, gates, judge, backend, cases). `subset`: the cases are a
    selection of the suite (`check_gates`)."""
    judge = answerer.judge
    judge_ba = judge_accuracy(judge)
    results = []
    t0 = time.perf_counter()
    for i, case in enumerate(cases):
        if progress:
            progress(i, len(cases), case["id"])
        results.append(run_case(case, answerer, judge, answerer.cfg.k))
    if progress:
        progress(len(cases), len(cases), "done")
    values = metrics(results, judge_ba)
    return {
        "metrics": values,
        "gates": check_gates(values, gates, subset),
        "judge": {"name": judge.name, "balanced_accuracy": judge_ba},
        "backend": answerer.backend.name,
        "model": answerer.backend.model,
        "n_questions": len(results),
        "seconds": round(time.perf_counter() - t0, 1),
        "cases": [r.__dict__ for r in results],
    }


def _by_category(report: dict[str, Any]) -> dict[str, float]:
    cats: dict[str, list[bool]] = {}
    for c in report["cases"]:
        cats.setdefault(c.get("kind") or c["category"], []).append(not c["why"])
    return {k: sum(v) / len(v) for k, v in sorted(cats.items())}


def gate_verdict(gate: dict[str, Any], passed: str, failed: str) -> str:
    """How a gate's outcome reads in a report or table: passed, failed, or why it was not judged or not measured."""
    verdict = "not judged" if gate["pass"] is None else passed if gate["pass"] else failed
    return f"{verdict} ({gate['note']})" if gate.get("note") else verdict


def write_report(report: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """report.md for reading, report.html with per-category bars for looking."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Groundedness evaluation — {report['backend']} / {report['model']}", "",
             f"Judge: {report['judge']['name']}, balanced accuracy {report['judge']['balanced_accuracy']} "
             "on eval/judge_set.jsonl.", "", "| metric | value | gate | pass |", "| --- | --- | --- | --- |"]
    for name, value in report["metrics"].items():
        gate = report["gates"].get(name)
        lines.append(f"| {name} | {'n/a' if value is None else value} | "
                     f"{gate['kind'] + ' ' + str(gate['gate']) if gate else ''} | "
                     f"{'' if not gate else gate_verdict(gate, 'yes', '**NO**')} |")
    lines += ["", "## Cases", ""]
    for c in report["cases"]:
        status = "ok" if not c["why"] else "FAIL: " + "; ".join(c["why"])
        lines += [f"### {c['id']} ({c['category']}) — {status}", "", f"**Q:** {c['question']}", "",
                  f"**A:** {c['answer']}", "", f"Expected terms: {c['expected'] or '(refusal)'}", ""]
        lines += [f"- [{f['n']}] {f['doc']}:{f['start']}-{f['end']}" + (f" p. {f['page']}" if f.get("page") else "")
                  + f" “{f['quote']}”" for f in c["footnotes"]]
        lines.append("")
    md = folder / "report.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    bars = "".join(
        f"<div class=row><span>{html.escape(cat)}</span><div class=bar><div style='width:{share * 100:.0f}%'></div>"
        f"</div><b>{share:.0%}</b></div>" for cat, share in _by_category(report).items()
    )
    rows = "".join(
        f"<tr class={ {True: 'ok', False: 'bad', None: 'na'}[g['pass']]}><td>{html.escape(n)}</td><td>{g['value']}</td>"
        f"<td>{g['kind']} {g['gate']}</td><td>{html.escape(gate_verdict(g, 'pass', 'FAIL'))}</td></tr>"
        for n, g in report["gates"].items()
    )
    cases = "".join(
        f"<details><summary class={'ok' if not c['why'] else 'bad'}>{html.escape(c['id'])}: "
        f"{html.escape('; '.join(c['why']) or 'ok')}</summary><p><b>Q</b> {html.escape(c['question'])}</p>"
        f"<p><b>A</b> {html.escape(c['answer'])}</p></details>" for c in report["cases"]
    )
    page = f"""<!doctype html><meta charset=utf-8><title>Groundedness evaluation</title>
<style>body{{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto}}.row{{display:flex;gap:1em;
align-items:center}}.row span{{width:10em}}.bar{{flex:1;background:#eee;height:1em}}.bar div{{background:#3a7;
height:100%}}.ok{{color:#185}}.bad{{color:#b22}}td{{padding:.2em 1em}}</style>
<h1>Groundedness evaluation</h1><p>{html.escape(report['backend'])} / {html.escape(report['model'])};
judge: {html.escape(report['judge']['name'])} (balanced accuracy {report['judge']['balanced_accuracy']})</p>
<h2>Cases passing, by category</h2>{bars}<h2>Gates</h2><table>{rows}</table><h2>Cases</h2>{cases}"""
    page_path = folder / "report.html"
    page_path.write_text(page, encoding="utf-8")
    return md, page_path
