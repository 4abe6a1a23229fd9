"""The answer path end to end on held-out SQuAD 2.0 pairs: draft, every check, and what the user would get.

Run on a quiet machine: `.venv/bin/python bench/bench_drafts.py [--n N] [--seed S] [--dump FILE]`. Needs
`../shared/corpora/squad-dev/` beside the repository (see `bench_premise.py`, whose held-out pairs it uses: every
official SQuAD 2.0 dev question outside the 100 dev cases). No retrieval: the model is shown the question's own
paragraph and a neighbouring paragraph of the same article (as the product shows the retrieved chunks' sentences,
at most `max_prompt_sentences`), drafts its answer on the product's backend and prompt, and `answer.finalize` checks
it with every check the product runs, the model premise check included. ~10 s a pair.

Per kind it prints: answers answered with the gold text (and how many of those cite the sentence that holds it) /
answered without it / withheld, and lures refused or corrected / answered. `--dump` writes each pair with its shown
sentences, the model's raw draft, the outcome and the footnotes' quotes, so a new check on drafts can be measured
offline on material it was not built from: `--replay FILE` re-checks a dump's drafts with the code as it is now (no
drafting; the model premise check still runs) and counts the outcomes that changed, so a change to the checks is
measured on held-out drafts in a tenth of the time.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

from bench_premise import articles, common_stems, held_out_pairs

from assistant.answer import PromptSentence, answer_messages, answer_schema, finalize
from assistant.chunking import sentence_spans
from assistant.config import Settings
from assistant.llm import Stats, get_backend
from assistant.verify import SupportJudge, answers_as_asked


def shown_sentences(pair: dict[str, Any], article: list[str], limit: int, rng: random.Random) -> list[PromptSentence]:
    """The pair's paragraph and the next one of its article (the one before, for the last), in a random order of the
    two, cut to `limit` sentences without cutting the pair's own paragraph."""
    at = article.index(pair["paragraph"])
    other = article[at + 1] if at + 1 < len(article) else article[at - 1] if at > 0 else ""
    own = [(pair["paragraph"], a, b) for a, b in sentence_spans(pair["paragraph"], 0, len(pair["paragraph"]))]
    more = [(other, a, b) for a, b in sentence_spans(other, 0, len(other))][: max(0, limit - len(own))]
    blocks = [own, more] if rng.random() < 0.5 else [more, own]
    title = pair["title"].replace("_", " ")
    return [PromptSentence(i + 1, pair["title"], a, b, text[a:b], {"title": title}, text)
            for i, (text, a, b) in enumerate(s for block in blocks for s in block)]


def replayed_sentences(row: dict[str, Any], article: list[str]) -> list[PromptSentence]:
    """A dump row's shown sentences as the product's PromptSentences again, each found in its own paragraph."""
    title = row["title"].replace("_", " ")
    found = []
    for i, text in enumerate(row["shown"]):
        passage = next(p for p in [row["paragraph"], *article] if text in p)
        at = passage.find(text)
        found.append(PromptSentence(i + 1, row["title"], at, at + len(text), text, {"title": title}, passage))
    return found


def outcome(pair: dict[str, Any], answer_text: str, refused: bool) -> str:
    """What the user got: a lure is right only refused; an answer only with its gold text."""
    if pair["label"] == "lure":
        return "refused" if refused else "answered"
    if refused:
        return "withheld"
    return "right" if any(span.casefold() in answer_text.casefold() for span in pair["spans"]) else "wrong"


def checked(pair: dict[str, Any], sents: list[PromptSentence], raw: str, backend: Any, judge: SupportJudge,
            common: frozenset[str]) -> dict[str, Any]:
    """The pair as dumped: shown sentences, raw draft, and what `answer.finalize` makes of the draft."""
    answer = finalize(pair["question"], pair["question"], raw, sents, judge, "", [], common,
                      {pair["title"]: [(0, pair["paragraph"])]}, partial(answers_as_asked, backend))
    cited = [c.quote for c in answer.citations]
    return {**pair, "shown": [s.text for s in sents], "raw": raw,
            "outcome": outcome(pair, answer.answer, answer.refused), "answer": answer.answer,
            "reason": answer.refusal_reason, "cited": cited, "cites_gold": cites_gold(pair, cited)}


def cites_gold(pair: dict[str, Any], cited: list[str]) -> bool:
    """Whether a footnote quotes text of the sentence that holds the gold (or, for a lure, the plausible) answer: the
    held-out form of the eval's citation relevance."""
    gold = pair["paragraph"].find(pair["sentence"])
    spans = [(at, at + len(q)) for q in cited if (at := pair["paragraph"].find(q)) >= 0]
    return any(a < gold + len(pair["sentence"]) and gold < b for a, b in spans)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50, help="answer and lure pairs each")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dump", type=Path, default=None, help="write each pair, its draft and its outcome (JSONL)")
    ap.add_argument("--replay", type=Path, default=None, help="re-check the drafts of an earlier dump (JSONL)")
    args = ap.parse_args()
    cfg = Settings()
    backend = get_backend(cfg)
    judge = SupportJudge()
    pairs = held_out_pairs()
    by_article = articles(pairs)
    common = common_stems(by_article)
    if args.replay:
        picked = [json.loads(line) for line in args.replay.open(encoding="utf-8")]
    else:
        rng = random.Random(args.seed)
        picked = [p for label in ("answer", "lure")
                  for p in rng.sample([q for q in pairs if q["label"] == label], args.n)]
    counts: dict[str, Counter[str]] = {"answer": Counter(), "lure": Counter()}
    right_on_gold = 0
    changed: Counter[str] = Counter()
    dump = args.dump.open("w", encoding="utf-8") if args.dump else None
    t0 = time.perf_counter()
    for i, pair in enumerate(picked, 1):
        if args.replay:
            sents = replayed_sentences(pair, by_article[pair["title"]])
            raw = pair["raw"]
        else:
            sents = shown_sentences(pair, by_article[pair["title"]], cfg.max_prompt_sentences, rng)
            raw = "".join(backend.stream(answer_messages(pair["question"], sents), answer_schema(len(sents)),
                                         cfg.max_answer_tokens, Stats()))
        row = checked({k: pair[k] for k in ("title", "question", "paragraph", "sentence", "label", "spans")},
                      sents, raw, backend, judge, common[pair["title"]])
        got = row["outcome"]
        right_on_gold += got == "right" and row["cites_gold"]
        counts[pair["label"]][got] += 1
        was = f" (was {pair['outcome']})" if args.replay and pair["outcome"] != got else ""
        changed[f"{pair['label']} {pair.get('outcome')} -> {got}"] += bool(was)
        print(f"[{i}/{len(picked)} {time.perf_counter() - t0:.0f}s] {pair['label']} {got}{was}: "
              f"{pair['question'][:70]}", flush=True)
        if dump:
            dump.write(json.dumps(row) + "\n")
    if dump:
        dump.close()
    a, lure = counts["answer"], counts["lure"]
    na, nl = max(1, a.total()), max(1, lure.total())
    print(f"answers ({a.total()}): right {a['right']} ({a['right'] / na:.2f}), wrong {a['wrong']}, "
          f"withheld {a['withheld']}; right citing the sentence that holds the answer {right_on_gold}")
    print(f"lures ({lure.total()}): refused or corrected {lure['refused']} ({lure['refused'] / nl:.2f}), "
          f"answered {lure['answered']}")
    for change, count in sorted(changed.items()):
        if count:
            print(f"changed: {change}: {count}")


if __name__ == "__main__":
    main()
