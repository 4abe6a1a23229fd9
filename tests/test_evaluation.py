"""Evaluation metrics and gates on crafted answers (no model), plus the judge's measured accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.answer import Answer, AnswerSentence, Footnote
from assistant.citations import SupportJudge
from assistant.evaluation import (
    EVAL_DIR,
    EvalError,
    _citation_scores,
    check_gates,
    judge_accuracy,
    load_facts,
    load_gates,
)

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
    # Measured 0.857 (TPR 0.95, TNR 0.76): antonyms (denied/confirmed) are its known blind spot.
    assert judge_accuracy(SupportJudge()) >= 0.85


def test_a_claim_asserting_what_the_source_negates_is_unsupported() -> None:
    source = ("The agency stated that it had detected the preparations. However, the agency has not provided "
              "details on what these signs are.")
    judge = SupportJudge()
    assert not judge.judge("The agency provided details on the signs it detected.", source).supported
    assert judge.judge("The agency has not provided details on the signs.", source).supported
    assert judge.judge("The agency detected the preparations.", source).supported
