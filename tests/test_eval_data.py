"""Checks that the evaluation data in eval/ is well formed and grounded in its documents.

Uses only the standard library and PyYAML and imports nothing from the project.

Files checked:
  eval/facts.yaml                          questions over the seed documents
  eval/judge_set.jsonl                     (claim, passage, label) rows for the support judge
  eval/corpora/public_domain/facts.yaml    questions over the public-domain corpus
  eval/corpora/public_domain/docs/*.txt    the public-domain corpus

Seeds are read from <repo>/seeds if that folder exists, otherwise from <repo>/../shared/seeds.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO / "eval"
SEEDS_DIR = REPO / "seeds" if (REPO / "seeds").is_dir() else REPO.parent / "shared" / "seeds"
PD_ROOT = EVAL / "corpora" / "public_domain"
PD_DOCS_DIR = PD_ROOT / "docs"

SEED_FACTS = EVAL / "facts.yaml"
PD_FACTS = PD_ROOT / "facts.yaml"
JUDGE_SET = EVAL / "judge_set.jsonl"

CATEGORIES = {"single_doc", "both_docs", "conflict", "unanswerable"}
SUPPORTED_KINDS = {"paraphrase", "verbatim"}
NEGATIVE_KINDS = {"number", "name", "negation", "place", "other_doc", "unstated"}

SEED_MINIMUMS = {"total": 40, "single_doc": 15, "both_docs": 8, "conflict": 4, "unanswerable": 12}
PD_MINIMUMS = {"total": 10, "unanswerable": 3}
JUDGE_MIN_ROWS = 60


# --------------------------------------------------------------------------- helpers


def _read_docs(folder: Path) -> dict[str, str]:
    docs = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))}
    assert docs, f"no .txt documents found in {folder}"
    return docs


def _load_cases(path: Path) -> list[dict]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, list), f"{path} must hold a YAML list"
    return data


@pytest.fixture(scope="module")
def seed_docs() -> dict[str, str]:
    return _read_docs(SEEDS_DIR)


@pytest.fixture(scope="module")
def pd_docs() -> dict[str, str]:
    return _read_docs(PD_DOCS_DIR)


@pytest.fixture(scope="module")
def seed_cases() -> list[dict]:
    return _load_cases(SEED_FACTS)


@pytest.fixture(scope="module")
def pd_cases() -> list[dict]:
    return _load_cases(PD_FACTS)


@pytest.fixture(scope="module")
def judge_rows() -> list[dict]:
    rows = []
    for n, line in enumerate(JUDGE_SET.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:  # pragma: no cover - message only
            pytest.fail(f"{JUDGE_SET.name}:{n} is not valid JSON: {exc}")
    return rows


def _is_term_group(group) -> bool:
    return isinstance(group, list) and len(group) > 0 and all(isinstance(t, str) and t.strip() for t in group)


def _group_in(group: list[str], text: str) -> bool:
    low = text.lower()
    return any(term.lower() in low for term in group)


def _check_cases(cases: list[dict], docs: dict[str, str]) -> list[str]:
    """Return a list of problems; an empty list means the cases are valid."""
    problems: list[str] = []
    ids = [c.get("id") for c in cases]
    for dup, n in Counter(ids).items():
        if n > 1:
            problems.append(f"duplicate id {dup!r} ({n}x)")

    for c in cases:
        cid = c.get("id")
        if not isinstance(cid, str) or not cid.strip():
            problems.append(f"case without id: {c!r}")
            continue
        for key in ("question", "category", "expected", "support"):
            if key not in c:
                problems.append(f"{cid}: missing field {key!r}")
        q = c.get("question")
        if not isinstance(q, str) or not q.strip().endswith("?"):
            problems.append(f"{cid}: question must be a non-empty string ending in '?'")
        cat = c.get("category")
        if cat not in CATEGORIES:
            problems.append(f"{cid}: invalid category {cat!r}")
            continue
        expected = c.get("expected") or []
        support = c.get("support") or []
        sides = c.get("sides") or []
        if not isinstance(expected, list) or not isinstance(support, list) or not isinstance(sides, list):
            problems.append(f"{cid}: expected, support and sides must be lists")
            continue

        # Every support quote must appear verbatim in the named document.
        for s in support:
            doc, quote = s.get("doc"), s.get("quote")
            if doc not in docs:
                problems.append(f"{cid}: unknown doc {doc!r}")
                continue
            if not isinstance(quote, str) or not quote.strip():
                problems.append(f"{cid}: empty quote")
                continue
            if "\n" in quote:
                problems.append(f"{cid}: quote spans a line break: {quote!r}")
            if quote not in docs[doc]:
                problems.append(f"{cid}: quote not verbatim in {doc}: {quote!r}")

        if cat == "unanswerable":
            if expected or support:
                problems.append(f"{cid}: unanswerable cases need empty expected and support")
            if sides:
                problems.append(f"{cid}: only conflict cases may have sides")
            continue

        # Answerable cases.
        if not expected or not support:
            problems.append(f"{cid}: answerable cases need non-empty expected and support")
            continue
        for g in expected:
            if not _is_term_group(g):
                problems.append(f"{cid}: malformed term group {g!r}")
        support_docs = {s.get("doc") for s in support}
        cited_text = "\n".join(docs[d] for d in support_docs if d in docs)
        for g in expected:
            if _is_term_group(g) and not _group_in(g, cited_text):
                problems.append(f"{cid}: no alternative of {g!r} occurs in the cited documents")

        if cat == "single_doc":
            if len(support_docs) != 1:
                problems.append(f"{cid}: single_doc support must come from exactly one document")
        elif cat == "both_docs" and len(support_docs) < 2:
            problems.append(f"{cid}: both_docs needs a support quote from each document")
        if cat == "conflict":
            if len(sides) != 2 or not all(_is_term_group(g) for g in sides):
                problems.append(f"{cid}: conflict cases need exactly two non-empty sides")
            elif len(support_docs) < 2:
                problems.append(f"{cid}: conflict needs support from two documents")
            else:
                # The two sides must be stated by two different cited documents.
                holders = [{d for d in support_docs if d in docs and _group_in(g, docs[d])} for g in sides]
                for g, h in zip(sides, holders, strict=True):
                    if not h:
                        problems.append(f"{cid}: side {g!r} occurs in no cited document")
                if all(holders) and not any(a != b for a in holders[0] for b in holders[1]):
                    problems.append(f"{cid}: both sides come from the same single document")
        elif sides:
            problems.append(f"{cid}: only conflict cases may have sides")
    return problems


# --------------------------------------------------------------------------- seed facts


def test_seed_documents_present(seed_docs):
    assert "000_4f251fb10e67f7e9.txt" in seed_docs
    assert "002_66b593ec0b11b73e.txt" in seed_docs


def test_seed_facts_valid(seed_cases, seed_docs):
    problems = _check_cases(seed_cases, seed_docs)
    assert not problems, "\n".join(problems)


def test_seed_facts_counts(seed_cases):
    counts = Counter(c["category"] for c in seed_cases)
    assert len(seed_cases) >= SEED_MINIMUMS["total"], counts
    for cat in ("single_doc", "both_docs", "conflict", "unanswerable"):
        assert counts[cat] >= SEED_MINIMUMS[cat], f"{cat}: {counts[cat]} < {SEED_MINIMUMS[cat]}"


def test_seed_single_doc_covers_both_documents(seed_cases):
    docs = Counter(c["support"][0]["doc"] for c in seed_cases if c["category"] == "single_doc")
    assert len(docs) == 2, f"single_doc cases should draw on both seeds, got {dict(docs)}"


# --------------------------------------------------------------------------- public-domain corpus


def test_public_domain_docs_shape(pd_docs):
    assert len(pd_docs) >= 2
    for name, text in pd_docs.items():
        first, _, body = text.partition("\n")
        assert first.strip(), f"{name}: first line must be a title"
        n_words = len(body.split())
        assert 300 <= n_words <= 1200, f"{name}: {n_words} words, expected 300-1200"


def test_public_domain_facts_valid(pd_cases, pd_docs):
    problems = _check_cases(pd_cases, pd_docs)
    assert not problems, "\n".join(problems)


def test_public_domain_facts_counts(pd_cases, pd_docs):
    counts = Counter(c["category"] for c in pd_cases)
    assert len(pd_cases) >= PD_MINIMUMS["total"], counts
    assert counts["unanswerable"] >= PD_MINIMUMS["unanswerable"], counts
    cited = {s["doc"] for c in pd_cases for s in c["support"]}
    assert cited == set(pd_docs), f"every public-domain document should be cited; cited {cited}"


def test_corpora_do_not_share_ids(seed_cases, pd_cases):
    overlap = {c["id"] for c in seed_cases} & {c["id"] for c in pd_cases}
    assert not overlap, overlap


# --------------------------------------------------------------------------- judge set


def test_judge_rows_valid(judge_rows, seed_docs):
    problems = []
    ids = Counter(r.get("id") for r in judge_rows)
    problems += [f"duplicate id {i!r}" for i, n in ids.items() if n > 1]
    required = {"id", "claim", "doc", "quote", "supported", "kind"}
    for r in judge_rows:
        rid = r.get("id")
        missing = required - set(r)
        if missing:
            problems.append(f"{rid}: missing {sorted(missing)}")
            continue
        if not isinstance(r["claim"], str) or not r["claim"].strip():
            problems.append(f"{rid}: empty claim")
        if not isinstance(r["supported"], bool):
            problems.append(f"{rid}: supported must be true/false")
        if r["doc"] not in seed_docs:
            problems.append(f"{rid}: unknown doc {r['doc']!r}")
            continue
        quote = r["quote"]
        if not isinstance(quote, str) or not quote.strip():
            problems.append(f"{rid}: empty quote")
            continue
        if "\n" in quote:
            problems.append(f"{rid}: quote spans a line break")
        if quote not in seed_docs[r["doc"]]:
            problems.append(f"{rid}: quote not verbatim in {r['doc']}: {quote!r}")
        if quote.rstrip()[-1] not in '.!?”"':
            problems.append(f"{rid}: quote should end at a sentence boundary: {quote!r}")
        if r["claim"].strip() == quote.strip() and r["supported"] is False:
            problems.append(f"{rid}: a claim identical to its passage cannot be unsupported")
        kind = r["kind"]
        if r["supported"] is True and kind not in SUPPORTED_KINDS:
            problems.append(f"{rid}: supported rows need kind in {sorted(SUPPORTED_KINDS)}, got {kind!r}")
        if r["supported"] is False and kind not in NEGATIVE_KINDS:
            problems.append(f"{rid}: unsupported rows need kind in {sorted(NEGATIVE_KINDS)}, got {kind!r}")
    assert not problems, "\n".join(problems)


def test_judge_set_counts_and_balance(judge_rows):
    assert len(judge_rows) >= JUDGE_MIN_ROWS, len(judge_rows)
    labels = Counter(r["supported"] for r in judge_rows)
    assert labels[True] > 0 and labels[False] > 0, labels
    share = labels[True] / len(judge_rows)
    assert 0.35 <= share <= 0.65, f"supported share {share:.2f} is not roughly half"
    kinds = Counter(r["kind"] for r in judge_rows if r["supported"] is False)
    missing = NEGATIVE_KINDS - set(kinds)
    assert not missing, f"hard-negative kinds missing: {sorted(missing)}"


def test_judge_set_uses_both_documents(judge_rows, seed_docs):
    for label in (True, False):
        used = {r["doc"] for r in judge_rows if r["supported"] is label}
        assert used == set(seed_docs), f"supported={label} rows use only {used}"


def test_squad_suite_is_grounded_in_its_documents():
    """The third-party suite CI gates on: every answer found in its support quote, every quote in its document."""
    folder = REPO / "eval" / "corpora" / "squad"
    cases = _load_cases(folder / "facts.yaml")
    problems = [p for p in _check_cases(cases, _read_docs(folder / "docs"))
                if "spans a line break" not in p]  # the articles write subscripts (O2) on a line of their own
    assert not problems, "\n".join(problems)
    counts = Counter(c["category"] for c in cases)
    assert counts["unanswerable"] >= 30 and counts["single_doc"] >= 60, counts
    assert (folder / "SOURCE.md").read_text(encoding="utf-8").count("CC BY-SA") >= 1
