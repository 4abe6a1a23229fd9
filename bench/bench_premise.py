"""False-premise checks measured on held-out SQuAD 2.0 pairs: what they stop of right answers and of lures.

Run on a quiet machine: `.venv/bin/python bench/bench_premise.py [--model N] [--seed S] [--dump FILE]`. Needs
`../shared/corpora/squad-dev/` beside the repository (its `build.py` reads the raw spreadsheet of the whole
official SQuAD 2.0 dev set). Pairs: every question of that set except the development cases in its
`questions.jsonl` (the ones `eval/corpora/squad` holds), each with the sentence that holds its gold answer
("answer") or, for an adversarial unanswerable question, the sentence holding its plausible wrong answer ("lure"):
the sentence an answer would cite. ~11,600 pairs, none of which any rule was built from.

- Word level (microseconds a pair, all pairs): how many `answer.false_premise` (premise terms, a reversed
  direction, an unstated negation) and `verify.answerability` stop, as `answer.finalize` calls them (the paragraph
  up to the end of the sentence as what the cited passage tells, the article title and the paragraph's text before
  the sentence as earlier text, the article's common stems).
- `--model N`: N answer and N lure pairs that pass every word-level check, spread by `--seed`, asked of the model
  premise check (`verify.answers_as_asked`'s request on the product's backend): per threshold, how many right
  answers it would withhold and how many lures it would catch. `verify.DOUBT` is marked; the last line is the
  product's rule (`verify.doubt`: stricter where the question's words follow the cited sentence). ~0.5 s a pair.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

from assistant.answer import false_premise
from assistant.config import REPO_ROOT, Settings
from assistant.llm import get_backend
from assistant.verify import (
    ASKED_SCHEMA,
    DOUBT,
    Vocabulary,
    answerability,
    asked_messages,
    doubt,
)

SQUAD = REPO_ROOT.parent / "shared" / "corpora" / "squad-dev"
THRESHOLDS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("squad_build", SQUAD / "build.py")
    if spec is None or spec.loader is None or not (SQUAD / "build.py").exists():
        raise SystemExit(f"needs {SQUAD}/build.py (../shared beside the repository)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def held_out_pairs() -> list[dict[str, Any]]:
    """(title, question, sentence, paragraph, label, spans: the gold or plausible answer texts) for every usable
    SQuAD 2.0 dev question not among the dev cases."""
    build = _build_module()
    dev = {json.loads(line)["q"] for line in (SQUAD / "questions.jsonl").open(encoding="utf-8")}
    pairs = []
    for row in build.read_xlsx(build.RAW_XLSX)[1:]:
        title, context, question, _, answers, starts, plausible, plausible_starts, impossible = (row + [""] * 9)[:9]
        if question in dev:
            continue
        lure = impossible.strip() == "1"
        texts, offsets = (build.as_list(plausible), build.as_list(plausible_starts)) if lure else (
            build.as_list(answers), build.as_list(starts))
        paragraph = build.as_list(context)[0]
        try:
            text, at = str(texts[0]), int(offsets[0])
        except (ValueError, IndexError):
            continue  # a lure without a plausible answer
        if paragraph[at : at + len(text)] != text:
            continue
        pairs.append({"title": title, "question": question, "paragraph": paragraph,
                      "sentence": build.evidence_span(paragraph, at, at + len(text)),
                      "label": "lure" if lure else "answer", "spans": [str(t) for t in texts]})
    return pairs


def articles(pairs: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each article's paragraphs, in the order the pairs first show them."""
    found: dict[str, list[str]] = defaultdict(list)
    for pair in pairs:
        if pair["paragraph"] not in found[pair["title"]]:
            found[pair["title"]].append(pair["paragraph"])
    return found


def common_stems(by_article: dict[str, list[str]]) -> dict[str, frozenset[str]]:
    """Each article's common stems (`verify.Vocabulary`): the product computes them over its whole collection."""
    return {title: Vocabulary(sorted(texts)).common() for title, texts in by_article.items()}


def word_level_stop(pair: dict[str, Any], common: frozenset[str]) -> str | None:
    """The first word-level check that stops this pair, through the product's own calls (`answer.false_premise`,
    then `verify.answerability`); None when all pass."""
    paragraph, sentence, question = pair["paragraph"], pair["sentence"], pair["question"]
    at = max(paragraph.find(sentence), 0)
    told = paragraph[: at + len(sentence)]  # as `answer.told_by`: the passage up to the cited sentence
    missing, flipped = false_premise(question, told, f"{pair['title'].replace('_', ' ')}. {paragraph[:at]}", [sentence])
    if flipped:
        return "reversed_premise"
    if missing:
        return "premise terms or negation"
    if not answerability(question, sentence, [sentence], common)[0]:
        return "answerability"
    return None


def model_margins(pairs: list[dict[str, Any]]) -> list[float]:
    """The premise check's log-odds of "no" over "yes" for each pair (the cited sentence as its evidence)."""
    backend = get_backend(Settings())
    margins = []
    for pair in pairs:
        _, scores = backend.scored(asked_messages(pair["question"], [pair["sentence"]]), ASKED_SCHEMA, ("yes", "no"))
        margins.append(scores["no"] - scores["yes"] if len(scores) == 2 else float("nan"))
    return margins


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=int, default=0, help="answer and lure pairs each for the model premise check")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--dump", type=Path, default=None, help="write the model-checked pairs and margins (JSONL)")
    args = ap.parse_args()
    pairs = held_out_pairs()
    common = common_stems(articles(pairs))
    stops = [word_level_stop(pair, common[pair["title"]]) for pair in pairs]
    report: dict[str, Any] = {}
    for label in ("answer", "lure"):
        mine = [stop for pair, stop in zip(pairs, stops, strict=True) if pair["label"] == label]
        report[label] = {"pairs": len(mine), "stopped": sum(s is not None for s in mine),
                         "by_check": dict(Counter(s for s in mine if s))}
        print(f"{label:6} pairs={len(mine)} word-level stopped={report[label]['stopped']} "
              f"{report[label]['by_check']}")
    if args.model:
        rng = random.Random(args.seed)
        passing = [pair for pair, stop in zip(pairs, stops, strict=True) if stop is None]
        picked = [p for label in ("answer", "lure")
                  for p in rng.sample([q for q in passing if q["label"] == label], args.model)]
        margins = model_margins(picked)
        for threshold in THRESHOLDS:
            withheld = sum(m > threshold for p, m in zip(picked, margins, strict=True) if p["label"] == "answer")
            caught = sum(m > threshold for p, m in zip(picked, margins, strict=True) if p["label"] == "lure")
            mark = "  <- verify.DOUBT" if threshold == DOUBT else ""
            print(f"model check, no-over-yes > {threshold:<4}: answers withheld {withheld}/{args.model}, "
                  f"lures caught {caught}/{args.model}{mark}")
        held = Counter(p["label"] for p, m in zip(picked, margins, strict=True)
                       if m > doubt(p["question"], [(p["sentence"], p["paragraph"])], p["title"].replace("_", " ")))
        print(f"model check at the product's threshold (verify.doubt): answers withheld {held['answer']}/{args.model}, "
              f"lures caught {held['lure']}/{args.model}")
        if args.dump:
            with args.dump.open("w", encoding="utf-8") as fh:
                fh.writelines(json.dumps({**p, "margin": m}) + "\n" for p, m in zip(picked, margins, strict=True))


if __name__ == "__main__":
    main()
