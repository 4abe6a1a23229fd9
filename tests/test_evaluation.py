"""Evaluation metrics and gates on crafted answers (no model), plus the judge's measured accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.answer import Answer, AnswerSentence, Footnote
from assistant.evaluation import (
    EVAL_DIR,
    EvalError,
    _citation_scores,
    _has_terms,
    check_gates,
    gate_verdict,
    judge_accuracy,
    load_facts,
    load_gates,
)
from assistant.verify import SupportJudge

Q250 = "the United States announced that it would impose sanctions on more than 250 individuals and organizations"
DENY = "both Russia and North Korea have denied the existence of such a transfer"


def _note(n: int, quote: str) -> Footnote:
    return Footnote(n=n, doc="d.txt", title="t", start=0, end=len(quote), quote=quote)


def test_citation_recall_and_precision_follow_the_alce_definitions() -> None:
    answer = Answer(
        question="q", standalone_question="q", answer="", refused=False,
        sentences=[
            AnswerSentence(text="The US would sanction more than 250 individuals and organizations.",
                           citations=[1, 2], supported=True, support=1.0),  # [2] is irrelevant
            AnswerSentence(text="Russia and North Korea have denied the transfer.", citations=[2],
                           supported=True, support=1.0),
            AnswerSentence(text="Something uncited.", citations=[], supported=False, support=0.0),
            AnswerSentence(text="A citation beyond the list.", citations=[5], supported=False, support=0.0),
        ],
        citations=[_note(1, Q250), _note(2, DENY)],
    )
    support, needed, out_of_range = _citation_scores(answer, SupportJudge())
    assert support == [True, True, False, False]
    assert needed == [True, False, True]
    assert out_of_range == 1


def test_gates_pass_and_fail_in_the_right_direction() -> None:
    gates = check_gates({"citation_recall": 0.8, "out_of_range_citations": 1.0},
                        {"citation_recall": 0.85, "out_of_range_citations": 0})
    assert gates["citation_recall"] == {"value": 0.8, "gate": 0.85, "kind": "min", "pass": False}
    assert gates["out_of_range_citations"]["kind"] == "max" and not gates["out_of_range_citations"]["pass"]
    with pytest.raises(EvalError, match="names no metric"):
        check_gates({}, {"nonsense": 1.0})


def test_shipped_gates_and_facts_load() -> None:
    gates = load_gates(EVAL_DIR / "gates.yaml")
    assert gates["out_of_range_citations"] == 0
    assert len(load_facts(EVAL_DIR / "facts.yaml")) >= 40


def test_malformed_facts_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "facts.yaml"
    bad.write_text("- {id: x\n")
    with pytest.raises(EvalError, match="cannot read facts file"):
        load_facts(bad)


def test_support_judge_balanced_accuracy_on_the_labelled_set() -> None:
    # Measured 0.869 (TPR 0.98, TNR 0.76): antonyms (denied/confirmed) are its known blind spot.
    assert judge_accuracy(SupportJudge()) >= 0.85


def test_a_claim_asserting_what_the_source_negates_is_unsupported() -> None:
    source = ("The agency stated that it had detected the preparations. However, the agency has not provided "
              "details on what these signs are.")
    judge = SupportJudge()
    assert not judge.judge("The agency provided details on the signs it detected.", source).supported
    assert judge.judge("The agency has not provided details on the signs.", source).supported
    assert judge.judge("The agency detected the preparations.", source).supported


def test_a_contraction_and_its_spelled_out_negation_say_the_same() -> None:
    """A claim may write "didn't" for its source's "did not" (and the other way round): both state the negation,
    so neither is "negation not in source" nor "source negates"; the plain assertion stays unsupported."""
    judge = SupportJudge()
    assert judge.judge("The minister didn't sign the accord.", "The minister did not sign the accord.").supported
    assert judge.judge("The minister did not sign the accord.", "The minister didn't sign the accord.").supported
    assert not judge.judge("The minister signed the accord.", "The minister didn't sign the accord.").supported
    assert not judge.judge("The minister didn't sign the accord.", "The minister signed the accord.").supported


def test_page_accuracy_counts_gold_pages_and_verified_restatements_only() -> None:
    """A citation is page-accurate on the gold page, or on another page of the gold document whose quote
    (re-read from the PDF on that page) states the expected answer; a quote is never trusted on its page
    number alone."""
    from types import SimpleNamespace

    from assistant.evaluation import _page_checks

    pdf = EVAL_DIR / "corpora" / "documents" / "docs" / "pdf" / "crs_IF12672_russia_nuclear_weapons.pdf"
    name = pdf.name
    answerer = SimpleNamespace(retriever=SimpleNamespace(documents={name: {"kind": "pdf", "source": str(pdf)}}))
    quote = "Russia has around 1,718 deployed nuclear"  # on page 1

    def answer(page: int) -> Answer:
        note = Footnote(n=1, doc=name, title="t", start=0, end=len(quote), quote=quote, page=page)
        return Answer(question="q", standalone_question="q", answer="a", refused=False, citations=[note],
                      sentences=[AnswerSentence(text="a", citations=[1], supported=True, support=1.0)])

    case = {"category": "single_doc", "expected": [["1,718"]], "support": [{"doc": name, "page": 3, "quote": "x"}]}
    assert _page_checks(case, answer(3), answerer) == (True, [False])  # the gold page (the quote check flags it)
    assert _page_checks(case, answer(2), answerer) == (False, [False])  # page 2 named, quote not there
    assert _page_checks(case, answer(1), answerer) == (True, [True])  # verified on page 1 and states 1,718
    other = {**case, "expected": [["2,600"]]}
    assert _page_checks(other, answer(1), answerer) == (False, [True])  # right page for the quote, wrong fact


def test_a_metric_no_case_measures_is_not_a_perfect_score_and_cannot_pass_a_gate() -> None:
    """An unmeasured metric is n/a, never 1.0; its gate fails on the whole suite (the gates ask for what the facts
    cannot show) and is not judged on a selection of cases, and either way the report keeps the answers."""
    from assistant.evaluation import CaseResult, metrics

    case = CaseResult(id="a", category="single_doc", question="q?", answer="x", refused=False, retrieved=True,
                      facts_found=True, refusal_ok=True, conflict_named=None, sentence_support=[True],
                      citations_needed=[True], out_of_range=0, total_s=1.0)
    values = metrics([case], 0.9)
    assert values["conflict_detection"] is None and values["page_accuracy"] is None
    assert values["unanswerable_refused"] is None and values["fact_recall"] == 1.0
    whole = check_gates(values, {"page_accuracy": 0.9, "fact_recall": 0.5})
    assert whole["page_accuracy"]["pass"] is False and whole["fact_recall"]["pass"] is True
    assert gate_verdict(whole["page_accuracy"], "pass", "FAIL") == "FAIL (no case of this suite measures it)"
    picked = check_gates(values, {"page_accuracy": 0.9}, subset=True)
    assert picked["page_accuracy"]["pass"] is None
    assert gate_verdict(picked["page_accuracy"], "pass", "FAIL") == "not judged (no selected case measures it)"


def test_a_sample_is_spread_evenly_and_the_same_every_run() -> None:
    from assistant.evaluation import evenly

    cases = list(range(100))
    assert evenly(cases, 50) == list(range(0, 100, 2)) == evenly(cases, 50)
    assert evenly(cases, None) == cases and evenly(cases, 500) == cases


def test_expected_terms_match_across_straight_and_typographic_quotes() -> None:
    """The model is shown typographic quotes (`llm.copyable`), so an answer writes “zip” where a gold answer was
    written with straight quotes: the same text."""
    answer = "Adhesive strips “zip” the mouth shut when it is not feeding."
    assert _has_terms(answer, [['"zip" the mouth shut']])
    assert _has_terms('They "zip" it.', [["“zip” it"]])
    assert not _has_terms(answer, [['"zap" the mouth shut']])


GOLD = "The harbour was dredged in 1911, and the first liners docked there two years later."
NEXT = "Trade through the harbour doubled within a decade."


def test_citation_relevance_needs_a_cited_quote_sharing_the_gold_span() -> None:
    """A citation is relevant when its quote and the gold quote share a span of one document: the gold phrase
    inside it, the same sentence cut at other boundaries; another sentence of the same document sharing a few
    words is not, and neither is the same text in another document."""
    from assistant.evaluation import overlaps

    assert overlaps(GOLD, "dredged in 1911")  # a gold phrase inside the cited sentence
    assert overlaps(GOLD + " " + NEXT, GOLD)  # the cited quote runs on into the next sentence
    assert overlaps("the first liners docked there two years later. " + NEXT, GOLD)  # cut at another boundary
    assert not overlaps(NEXT, GOLD)  # shares "the harbour" only
    assert not overlaps("Ships docked there two years later than planned, at the new quay.", GOLD)


def test_gold_checks_report_relevance_for_answers_and_the_lure_for_unanswerables() -> None:
    """Answered with the gold sentence cited: relevant; with a neighbouring sentence or another document's copy:
    not; a refusal is not measured for relevance. An unanswerable answered with the lure is a trap; a correction
    (a refusal) that names the lure is not; without a known lure nothing is measured."""
    from assistant.evaluation import _gold_checks

    def answered(text: str, quote: str, doc: str = "d.txt", refused: bool = False) -> Answer:
        note = Footnote(n=1, doc=doc, title="t", start=0, end=len(quote), quote=quote)
        return Answer(question="q", standalone_question="q", answer=text, refused=refused, citations=[note],
                      sentences=[AnswerSentence(text=text, citations=[1], supported=True, support=1.0)])

    case = {"category": "single_doc", "support": [{"doc": "d.txt", "quote": GOLD}]}
    assert _gold_checks(case, answered("In 1911.[1]", GOLD)) == (True, None)
    assert _gold_checks(case, answered("It doubled.[1]", NEXT)) == (False, None)
    assert _gold_checks(case, answered("In 1911.[1]", GOLD, doc="e.txt")) == (False, None)
    assert _gold_checks(case, answered("The sources do not say.", GOLD, refused=True)) == (None, None)
    trap = {"category": "unanswerable", "support": [], "lure": ["1911"]}
    assert _gold_checks(trap, answered("The canal was dredged in 1911.[1]", GOLD)) == (None, True)
    assert _gold_checks(trap, answered("The sources do not mention the canal; the harbour was dredged in 1911.[1]",
                                       GOLD, refused=True)) == (None, False)
    assert _gold_checks({**trap, "lure": []}, answered("In 1911.[1]", GOLD)) == (None, None)


def test_all_correct_and_answered_when_answerable_count_what_the_user_needed() -> None:
    """All-correct: an unanswerable refused, an answerable answered with its fact and a gold citation; a right fact
    citing the wrong sentence is not all correct. Answered-when-answerable counts answers, right or not; the trap
    share is of unanswerables with a known lure."""
    from assistant.evaluation import CaseResult, metrics

    def case(category: str, refused: bool, facts: bool | None, gold: bool | None, trapped: bool | None = None
             ) -> CaseResult:
        return CaseResult(id="c", category=category, question="q?", answer="a", refused=refused, retrieved=True,
                          facts_found=facts, refusal_ok=refused == (category == "unanswerable"), conflict_named=None,
                          sentence_support=[True], citations_needed=[True], out_of_range=0, total_s=1.0,
                          cited_gold=gold, trapped=trapped)

    values = metrics([case("single_doc", False, True, True), case("single_doc", False, True, False),
                      case("single_doc", True, False, None), case("unanswerable", True, None, None, False),
                      case("unanswerable", False, None, None, True)], 0.9)
    assert values["all_correct"] == 0.4  # the first answer and the refused unanswerable
    assert values["answered_when_answerable"] == 0.667
    assert values["citation_relevance"] == 0.5
    assert values["trap_answers"] == 0.5
    assert check_gates(values, {"trap_answers": 0.4})["trap_answers"]["pass"] is False  # lower is better
