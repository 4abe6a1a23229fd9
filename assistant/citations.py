"""Checks on what an answer cites: claim support, answerability, and disagreement between sources.

The support judge is lexical (offline, microseconds): a claim is supported when its numbers
and names all occur in the cited text, its negation matches (nor does it plainly assert what
the text negates), and enough of its stemmed content words are there. Blending in MiniLM
cosine was measured and did not help (balanced accuracy 0.846 either way on the labelled set,
before the negated-scope check raised it to 0.857), so it is left out. Its balanced accuracy on
eval/judge_set.jsonl is measured by `briefing eval` and the tests; that number says how far
to trust its verdicts.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

STOPWORDS = frozenset(
    """a an the and or but of to in on at by for with from as is are was were be been being has have had do does did
    that this these those it its it's their there they them he she his her him we our you your i me my which who whom
    whose what when where why how than then so such also into over about after before during while would could should
    may might can will shall must not no nor only very more most other some any each both all said says say according
    one two""".split()  # noqa: SIM905
)
NEGATIONS = frozenset({"not", "no", "never", "without", "neither", "nor", "none", "denied", "deny", "denies"})
ALIASES = {
    "u.s.": "united states", "us": "united states", "u.n.": "united nations", "un": "united nations",
    "unsc": "united nations security council", "kcna": "korean central news agency", "dprk": "north korea",
}
MONTHS = "january february march april may june july august september october november december".split()  # noqa: SIM905
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
WORD = re.compile(r"[a-z0-9]+(?:[.'’][a-z0-9]+)*\.?")


def fold(text: str) -> str:
    """Lowercase, strip accents, straighten quotes: Kojemyako ≈ Kozhemyako is handled by fuzzy names."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"').lower()


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    out: list[str] = []
    for w in WORD.findall(fold(text)):
        w = w.rstrip(".") if w not in ALIASES else w
        w = w.removesuffix("'s").removesuffix("’s")
        out.extend(ALIASES.get(w, w).split())
    return out


IRREGULAR = {"met": "meet", "held": "hold", "led": "lead", "sent": "send", "took": "take", "gave": "give",
             "made": "make", "told": "tell", "spoke": "speak", "began": "begin", "came": "come", "went": "go",
             "sought": "seek", "brought": "bring", "paid": "pay", "built": "build", "won": "win", "left": "leave"}


def content_stems(text: str) -> set[str]:
    """Stemmed content words; irregular past forms map to their verb (met -> meet)."""
    return {_stemmer().stemWord(IRREGULAR.get(w, w)) for w in words(text) if w not in STOPWORDS and len(w) > 1}


def numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in NUMBER.findall(text)}


def names(text: str) -> set[str]:
    """Capitalised words not at a sentence start (proper names), folded."""
    out = set()
    for m in re.finditer(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-zA-Z’'-]{2,})", text.strip()):
        w = fold(m.group(1)).removesuffix("'s")
        if w not in STOPWORDS and w not in MONTHS:
            out.add(w)
    return out


def _similar(a: str, b: str) -> bool:
    """Transliteration variants (Kojemyako/Kozhemyako) count as the same name."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 2 or a[:2] != b[:2]:
        return False
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def _name_present(name: str, evidence_words: set[str]) -> bool:
    return any(_similar(name, w) for w in evidence_words)


NEGATORS = NEGATIONS - {"neither", "none", "denied", "deny", "denies"}  # grammatical: they scope the next words


def negated_stems(text: str) -> set[str]:
    """Content words within three words after a grammatical negation ("has not provided details",
    "weren't specified"): a claim that asserts them plainly says the opposite of the source."""
    tokens = words(text)
    out: set[str] = set()
    for i, w in enumerate(tokens):
        if w in NEGATORS or w.endswith("n't"):
            out |= content_stems(" ".join(tokens[i + 1 : i + 4]))
    return out


@dataclass(frozen=True)
class Verdict:
    """Support of one claim by its cited text."""

    supported: bool
    score: float
    reason: str


class SupportJudge:
    """Claim-level support check (ALCE-style: the claim against its cited passages only)."""

    name = "lexical (numbers, names, negation, stemmed content-word coverage >= 0.6)"
    threshold = 0.6

    def judge(self, claim: str, evidence: str, question: str = "") -> Verdict:
        """Is `claim` supported by `evidence`? Words the claim repeats from `question` are its
        presupposition ("The first name of the governor who visited Pyongyang is Oleg"), not
        its assertion, so they are not required of the evidence; numbers always are.
        """
        if not evidence.strip():
            return Verdict(False, 0.0, "no cited passage")
        ev_words = set(words(evidence)) | set(words(question))
        missing_numbers = numbers(claim) - numbers(evidence)
        if missing_numbers:
            return Verdict(False, 0.1, f"number not in source: {', '.join(sorted(missing_numbers))}")
        missing_names = [n for n in names(claim) if not _name_present(n, ev_words)]
        missing_names = [n for n in missing_names if not all(w in ev_words for w in words(n))]
        if missing_names:
            return Verdict(False, 0.15, f"name not in source: {', '.join(sorted(missing_names))}")
        claim_neg = bool(NEGATIONS & set(words(claim)))
        if claim_neg and not NEGATIONS & set(words(evidence)):
            return Verdict(False, 0.2, "negation not in source")
        stems, question_stems = content_stems(claim), content_stems(question)
        negated = negated_stems(evidence) & stems - question_stems
        if not claim_neg and negated:
            return Verdict(False, 0.2, f"source negates: {', '.join(sorted(negated))}")
        asserted = stems - question_stems or stems
        coverage = len(asserted & content_stems(evidence)) / len(asserted) if asserted else 0.0
        return Verdict(coverage >= self.threshold, round(coverage, 3), f"coverage {coverage:.2f}")


QUANTITY = re.compile(
    r"\bhow (many|much|old|long|large|big|far)\b"
    r"|\b(population|age|value|cost|price|number of|amount|fraction|proportion|percentage)\b"
)
PERSON = re.compile(r"^\s*(who|whom|whose|which)\b|\bnames? of\b|\bwhat is the name\b")
PLACE = re.compile(r"^\s*where\b|\bin which (city|country|place)\b")
DATE = re.compile(r"^\s*when\b|\bwhat (date|day|year|month|time)\b|\bwhich (date|day|year|month)\b")
GENERIC = frozenset({"north", "korea", "korean", "russia", "russian", "south", "what", "which", "happen", "did", "do",
                     "dec", "president", "minister", "governor"})
ROLE_WORDS = frozenset({"minister", "governor", "president", "ministry"})
# The kind of thing a which/name-of question asks for: any name satisfies it ("which agency" is
# answered by "the National Intelligence Service"), so the word itself is not required.
CLASS_NOUNS = ("city", "country", "place", "town", "person", "people", "name", "names", "agency", "organization",
               "organisation", "outlet", "institution")


def COUNTRY_STEMS() -> set[str]:  # noqa: N802 - a constant that needs the stemmer
    return content_stems("north korea korean russia russian south")


RELATIVE_TIME = ("last year", "this year", "earlier", "recently", "previously", "in recent months")


def _has_date(text: str) -> bool:
    low = fold(text)
    return bool(re.search(r"\b(1[89]|20)\d\d\b", low)) or any(m in low for m in MONTHS) or any(
        t in low for t in RELATIVE_TIME
    )


NUMBER_WORDS = frozenset(
    """one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen
    eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million billion half
    third quarter fifth sixth seventh eighth ninth tenth dozen""".split()  # noqa: SIM905
)


def quantities(text: str) -> set[str]:
    """Amounts, in digits or words ("one-eighth", "two hundred and fifty"), not parts of a date."""
    low = fold(text)
    spelled = {w for w in re.findall(r"[a-z]+", low) if w in NUMBER_WORDS}
    dates = set(re.findall(r"\b(?:1[89]|20)\d\d\b", low))
    for month in MONTHS:
        for m in re.finditer(rf"{month}\s+(\d{{1,2}})\b|\b(\d{{1,2}})\s+{month}", low):
            dates.add(m.group(1) or m.group(2))
    return (numbers(text) - dates) | spelled


def question_kind(question: str) -> str | None:
    """What kind of thing the question asks for, when that can be checked: quantity, name, place, date."""
    q = fold(question)
    for kind, pattern in (("quantity", QUANTITY), ("date", DATE), ("place", PLACE), ("name", PERSON)):
        if pattern.search(q):
            return kind
    return None


def _stems(words_: list[str]) -> set[str]:
    generic = {_stemmer().stemWord(g) for g in GENERIC}
    return {_stemmer().stemWord(w) for w in words_ if w not in STOPWORDS and len(w) > 1} - generic


def answerability(question: str, answer: str, evidence: list[str]) -> tuple[bool, str]:
    """For questions that ask for a quantity, name, place or date: does one cited sentence hold
    that kind of thing TOGETHER with the question's topic?

    A true, well-cited sentence can still fail to answer ("population of X?" answered with
    "X is a capital"): supported is not the same as answered. Open questions (what/why/how)
    are left to the support judge.
    """
    kind = question_kind(question)
    if kind is None:
        return True, "ok"
    q_names = {fold(w) for w in re.findall(r"\b[A-Z][\w’'-]+", question)}
    topic = _stems(words(question)) - _stems(sorted(q_names))
    lead = re.search(r"\bwhich ((?:[\w']+\s+){0,3}[\w']+)|^\s*who (?:is|was|are|were) the (\w+)"
                     r"|\bname of (?:the )?((?:[\w']+\s+){0,3}[\w']+)", fold(question))
    focus = set()
    if lead:
        phrase = next(g for g in lead.groups() if g)
        name_stems = content_stems(" ".join(w for w in q_names if w not in ROLE_WORDS))
        focus = content_stems(phrase) - COUNTRY_STEMS() - name_stems - content_stems(" ".join(CLASS_NOUNS))
    count = re.search(r"how (?:many|much) (\w+)", fold(question))
    if count:
        focus |= _stems([count.group(1)])

    def has_kind(sentence: str) -> bool:
        if kind == "quantity":
            return bool(quantities(sentence) & quantities(answer))
        if kind == "date":
            return _has_date(sentence)
        new = {n for n in names(sentence) - q_names if n not in GENERIC}
        return bool(new)

    specific = {n for n in q_names if n not in STOPWORDS | GENERIC | ROLE_WORDS and n not in MONTHS}

    def anchored(sentence: str) -> bool:
        """Names every specific name of the question: a paraphrase ("senior economic figures met"
        for "officials meet") then needs only one shared topic word."""
        have_words = set(words(sentence))
        return bool(specific) and all(_name_present(n, have_words) for n in specific)

    typed = [s for s in evidence if has_kind(s)]
    if not typed:
        return False, f"question asks for a {kind}; the cited passages give none"
    for sentence in typed:
        have = content_stems(sentence)
        covered = len(topic & have) / len(topic) if topic else 1.0
        focused = len(focus & have) / len(focus) >= 0.5 if focus else True
        on_topic = covered >= 0.5 or (covered > 0 and anchored(sentence))
        if (kind in ("name", "place") or on_topic) and focused:
            return True, "ok"
    missing = sorted((topic | focus) - set().union(*(content_stems(s) for s in typed)))
    return False, f"no cited {kind} is about {', '.join(missing) or 'the question'}"


TOKEN = re.compile(r"[\w’'.-]+")


def _tokens(text: str) -> list[str]:
    return [t.strip(".") for t in TOKEN.findall(text) if t.strip(".")]


def _norm(token: str) -> str:
    return fold(token).removesuffix("'s")


def _new_details(phrase: list[str], other: list[str]) -> bool:
    """The phrase names something (capitalised or a number) that the other sentence never mentions."""
    return any(
        (t[:1].isupper() or t[:1].isdigit()) and not any(_similar(_norm(t), _norm(o)) for o in other) for t in phrase
    )


def _until_resync(tokens: list[str], start: int, other: set[str]) -> int:
    """End of the run after an anchor: up to the first word the other sentence also has (max 4)."""
    end = start
    while end < len(tokens) and end - start < 4 and tokens[end] not in other:
        end += 1
    return end


def aligned_differences(a: str, b: str) -> list[tuple[str, str]]:
    """Slots where two reports of the same thing say different things.

    After a shared run of three words ("the governor of Russia’s"), each sentence continues
    until it meets a word the other has again; if both continuations name something (a
    capitalised word or a number) the other sentence never mentions, and both runs meet again
    at the same word (or both sentences end), that is a difference: [Far East | Primorye region].
    Transliterations (Kojemyako/Kozhemyako) are not differences.
    """
    ta, tb = _tokens(a), _tokens(b)
    fa, fb = [_norm(t) for t in ta], [_norm(t) for t in tb]
    found: list[tuple[str, str]] = []
    for i in range(len(fa) - 3):
        anchor = fa[i : i + 3]
        if all(w in STOPWORDS for w in anchor):
            continue
        for j in range(len(fb) - 3):
            if fb[j : j + 3] != anchor:
                continue
            ea = _until_resync(fa, i + 3, set(fb[j + 3 :]))
            eb = _until_resync(fb, j + 3, set(fa[i + 3 :]))
            if fa[ea : ea + 1] != fb[eb : eb + 1]:
                continue  # not one slot filled two ways: the runs do not meet again at the same word
            pa, pb = ta[i + 3 : ea], tb[j + 3 : eb]
            pair = (" ".join(pa), " ".join(pb))
            if pa and pb and _new_details(pa, tb) and _new_details(pb, ta) and pair not in found:
                found.append(pair)
    return found


def spelling_variants(a: str, b: str) -> list[tuple[str, str]]:
    """Names the two passages spell differently (Kojemyako / Kozhemyako): worth telling a reader.

    Transliteration changes the inside of a name and keeps its ending; a different ending is a
    different word form (Minister / Ministry), not a spelling, so it is not reported.
    """
    found = []
    for x in sorted(names(a)):
        for y in sorted(names(b)):
            if len(x) > 4 and x[-2:] == y[-2:] and _similar(x, y) and not (x.startswith(y) or y.startswith(x)):
                found.append((x.capitalize(), y.capitalize()))
    return found


def shared_subject(a: str, b: str) -> bool:
    """Both passages name the same person/place (fuzzy), so a difference is about one thing."""
    na, nb = names(a), names(b)
    return any(_similar(x, y) for x in na for y in nb if len(x) > 3)
