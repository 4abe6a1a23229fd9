"""The verification module: answerability, false premises, acronyms, the collection's common words, conflicts, and
no topic vocabulary in code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SEEDS

from assistant.config import Settings
from assistant.llm import Backend, Message, Scored, get_backend, option_logprobs
from assistant.verify import (
    DOUBT,
    JUDGE_EVIDENCE_CHARS,
    LATER_DOUBT,
    SUPPORT_ODDS,
    ModelJudge,
    StrictJudge,
    SupportJudge,
    Vocabulary,
    addresses,
    adds_to,
    aligned_differences,
    answerability,
    answers_as_asked,
    doubt,
    focus,
    labelled_row,
    names,
    question_kind,
    reversed_premise,
    same_name,
    spelling_variants,
    stated_later,
    ungrounded,
    unstated_negation,
    words,
)

# What the seed collection is about (the stems in 30% of its paragraphs), found from its text at run time.
SEED_COMMON = Vocabulary(p for f in sorted(SEEDS.glob("*.txt")) for p in f.read_text(encoding="utf-8").split("\n\n")
                         if p.strip()).common()

E250 = ("On December 12, 2023, the United States announced that it would impose sanctions on more than 250 "
        "individuals and organizations related to Russia’s war against Ukraine.")
SUMMIT = "Dec. September Dec Dec also included a summit between Kim and Russian President Vladimir Putin."
YUN = ("According to the Korean Central News Agency, discussions, led by North Korean External Economic Relations "
       "Minister Yun Jong Ho and the delegation led by Governor Oleg Kozhemyako, aimed to escalate economic "
       "cooperation to “higher levels.”")
LAST = ("Last year, North Korea showed interest in sending construction workers to help rebuild Russian-backed "
        "breakaway regions.")
NIS = ("In a message sent to journalists on December 12, 2023, the South Korean National Intelligence Service "
       "stated that it had detected North Korea’s preparations to send workers to Russia.")
SHIPPING = ("At the same time, some shipping companies have also been sanctioned for their involvement in the "
            "transfer of ammunition between North Korea and Russia.")

CASES = [
    ("How many individuals and organizations did the US sanction?", "More than 250 were sanctioned.", E250, True),
    ("Which North Korean minister led the talks?", "Minister Yun Jong Ho led them.", YUN, True),
    ("When did North Korea show interest in sending construction workers?", "Last year.", LAST, True),
    ("What is the population of Pyongyang?", "Officials met in Pyongyang on December 13, 2023.",
     "on December 13, 2023, officials hosted Oleg Kojemyako in Pyongyang", False),
    ("Which US government department announced the sanctions on more than 250 individuals?",
     "The United States announced sanctions.", E250, False),
    ("Where was the summit between Kim Jong Un and Vladimir Putin held?", "Kim and Putin met.", SUMMIT, False),
    ("Who is the director of South Korea's National Intelligence Service?", "The NIS detected it.", NIS, False),
    ("How many artillery shells did North Korea supply to Russia?", "250.", E250, False),
    ("When was Kim Yung Ho appointed Unification Minister?", "On December 12, 2023.", NIS, False),
    ("What are the names of the shipping companies that were sanctioned?", "Some were sanctioned.", SHIPPING, False),
    ("How much are North Korean workers in Russia paid?", "250.", E250, False),
    ("When did North Korean officials meet the visiting Russian governor in Pyongyang?",
     "They met recently, as reported on December 13.",
     "Senior North Korean economic figures recently met with Oleg Kozhemyako, the governor of Russia’s Primorye "
     "region, in Pyongyang, as reported by North Korean state media on December 13.", True),
    ("When did North Korean officials meet the visiting Russian governor in Pyongyang?", "On December 12, 2023.",
     NIS, False),
    ("Which South Korean agency said it had detected signs that North Korea was preparing to send workers?",
     "The National Intelligence Service said so.", NIS, True),
    ("How high is Mount Arden?", "1,986 m.", "Mount Arden is the highest peak of the range at 1,986 m.", True),
    ("How big is the Selby reservoir?", "3 million cubic metres.",
     "Selby is the biggest of the county's lakes, holding 3 million cubic metres.", True),
    ("How high is Mount Arden?", "40 km.", "Mount Arden has the longest ridge of the range, at 40 km.", False),
]


@pytest.mark.parametrize(("question", "answer", "evidence", "expected"), CASES, ids=[c[0][:40] for c in CASES])
def test_answerability(question: str, answer: str, evidence: str, expected: bool) -> None:
    ok, why = answerability(question, answer, [evidence], SEED_COMMON)
    assert ok is expected, why


def test_open_questions_are_left_to_the_support_judge() -> None:
    assert question_kind("What did the Unification Minister say about workers?") is None
    assert answerability("What did the minister say?", "He spoke.", ["Unrelated text."]) == (True, "ok")


def test_a_which_question_asks_for_a_name_only_about_a_class_of_named_things() -> None:
    assert question_kind("Which university did the painter attend?") == "name"
    assert question_kind("Which agency reported the talks?") == "name"
    assert question_kind("Which countries signed the treaty?") == "name"
    assert question_kind("Which material is the bridge made of?") is None
    evidence = ["The old bridge over the harbour is made of riveted steel."]
    assert answerability("Which material is the bridge made of?", "It is made of riveted steel.", evidence)[0]
    assert not answerability("Which university did the painter attend?", "The painter studied art.",
                             ["The painter studied art for four years."])[0]


def test_spelling_variants_are_reported_as_a_difference_of_spelling() -> None:
    a = "Prior to the visit, Kojemyako told Russian media that he hoped to expand cooperation."
    b = "Prior to the visit, Kozhemyako told Russian media that he hoped to expand cooperation."
    assert aligned_differences(a, b) == []


def test_spelling_variants_name_transliterations_not_related_words() -> None:
    assert spelling_variants("Then Kojemyako spoke.", "Then Kozhemyako spoke.") == [("Kojemyako", "Kozhemyako")]
    assert spelling_variants("Both North Korea and Russia.", "The North Korean side and Russia.") == []
    # Seen in an answer: a role word in another form is not a name spelled differently.
    assert spelling_variants("South Korean Unification Minister Kim Yung Ho said it.",
                             "officials of North Korea’s Ministry of Economy hosted him") == []


def test_differences_are_one_slot_filled_two_ways_not_two_different_continuations() -> None:
    a = ("The meeting in Pyongyang was with Oleg Kojemyako, the Governor of Russia’s Far East, in Pyongyang "
         "in order to increase economic cooperation.")
    b = "The meeting in Pyongyang was with Oleg Kozhemyako, the governor of Russia’s Primorye region, in Pyongyang."
    assert aligned_differences(a, b) == [("Far East", "Primorye region")]
    # Seen in an answer: "workers to Russia, [violating U.N.] Security ..." vs "workers to Russia [to finance
    # leader Kim] Jong Un's ..." was reported as a disagreement; the runs never meet again, so it is none.
    c = ("Further concerns revolve around North Korea potentially sending workers to Russia, violating U.N. "
         "Security Council sanctions over its nuclear and missile programs.")
    d = ("North Korea is trying to export workers to Russia to finance leader Kim Jong Un’s nuclear weapons program "
         "in violation of United Nations Security Council (UNSC) resolutions.")
    assert aligned_differences(c, d) == []


def test_name_and_place_questions_need_their_focus_word_not_the_question_wording() -> None:
    gov = ("According to North Korean state media (KCNA), on December 13, 2023, officials of North Korea’s Ministry "
           "of Economy hosted Oleg Kojemyako, the Governor of Russia’s Far East, in Pyongyang.")
    assert not answerability("What is the name of North Korea's Minister of Economy?",
                             "The Minister of Economy hosted Oleg Kojemyako.", [gov], SEED_COMMON)[0]
    met = "Senior North Korean economic figures recently met with Oleg Kozhemyako in Pyongyang."
    assert answerability("In which city did North Korean officials meet the Russian governor?",
                         "They met in Pyongyang.", [met]) == (True, "ok")


def test_an_open_question_about_a_subject_needs_a_cited_sentence_about_it() -> None:
    """"What did X say about Y?" answered with what X said about Z is a true sentence that answers another question."""
    said = "The signed text said the ceasefire was subject to the opening of the strait."
    question = "What did the signed text of the ceasefire say about sanctions relief?"
    assert not answerability(question, "It said the strait must open.", [said])[0]
    assert answerability(question, "It promised relief.", [said, "It promised relief from sanctions."]) == (True, "ok")
    assert answerability("What did the minister say about it?", "He spoke.", ["He spoke."]) == (True, "ok")


def test_measurement_questions_need_a_quantity_about_their_topic() -> None:
    """"How fast/deep/tall" asks for a measurement: a number the passage gives about something else is no answer."""
    impacts = "Tardigrades can survive impacts up to about 900 meters per second."
    assert question_kind("How fast can a tardigrade walk, in millimetres per second?") == "quantity"
    assert not answerability("How fast can a tardigrade walk, in millimetres per second?",
                             "Tardigrades can walk up to about 900 meters per second.", [impacts])[0]
    assert answerability("How fast can a tardigrade survive impacts?", "Up to about 900 meters per second.",
                         [impacts]) == (True, "ok")
    assert answerability("How deep is the lake?", "It is 1,642 metres deep.",
                         ["The lake is 1,642 metres deep at its deepest point."]) == (True, "ok")


def test_a_question_dated_to_one_year_is_not_answered_by_a_sentence_dated_to_another() -> None:
    """"Published in 1998" asks about 1998: a well-cited sentence about a 2010 paper answers another question. A
    range holds its years, a count is not a year, and an answer that names no year is left to the other checks."""
    paper = "In October 2010, the journal published a paper by the harbour survey team."
    assert answerability("In what month was the harbour survey published in 1998?",
                         "The harbour survey was published in October 2010.", [paper]) == (
        False, "the question asks about 1998; the cited passages date it 2010")
    assert not answerability("What was the population of the city in 1665?",
                             "The plague of 1576–77 killed 50,000, a third of the population.",
                             ["The plague of 1576–77 killed 50,000, a third of the population."])[0]
    boom = "During the building boom from 1910–1940, wages fell."
    assert answerability("What happened to wages in 1925?", "Wages fell during the building boom from 1910–1940.",
                         [boom]) == (True, "ok")
    troops = "The garrison of 1500 soldiers held the fort in 1650."
    assert answerability("How many soldiers held the fort in 1650?", "1500 soldiers held the fort.",
                         [troops]) == (True, "ok")
    crisis = "The price, which had peaked during the 1979 energy crisis at nearly $40 per barrel, fell later."
    assert answerability("What did the price peak at in 1973?", "The price peaked at $40 in the 1979 energy crisis.",
                         [crisis]) == (False, "the question asks about 1973; the cited passages date it 1979")
    war = "They won the war against the colony, which became independent in 1962."
    assert answerability("What did they win against the colony in the 1950's?", "They won the war.",
                         [war]) == (True, "ok")  # a decade is not its first year: left to the premise terms


def test_quantities_spelled_in_words_count() -> None:
    ev = "One eighth of the whole population were colored slaves."
    assert answerability("What fraction of the population were slaves?", "One eighth.", [ev])[0]
    assert answerability("How many years of unrequited toil did the bondsman endure?",
                         "Two hundred and fifty years.",
                         ["all the wealth piled by the bondsman's two hundred and fifty years of unrequited toil"])[0]


# The seed articles' own names (places, people, agencies). Test data, so it may name them; the code may not.
SEED_TOPIC = ("korea", "korean", "koreans", "russia", "russian", "pyongyang", "moscow", "seoul", "kojemyako",
              "kozhemyako", "oleg", "primorye", "putin", "kim", "jong", "yun", "ukraine", "kcna", "dprk", "unsc",
              "far east", "vladivostok")


@pytest.mark.parametrize("module", sorted(p.name for p in (SEEDS.parent / "assistant").rglob("*.py")))
def test_no_module_names_the_seed_topic(module: str) -> None:
    """Every rule must come from the language or from the user's documents at run time, never from one corpus."""
    text = next((SEEDS.parent / "assistant").rglob(module)).read_text(encoding="utf-8").lower()
    found = [w for w in SEED_TOPIC if re.search(rf"\b{w}\b", text)]
    assert not found, f"{module} names the seed topic: {found}"


def test_acronyms_match_their_spelled_out_names_in_either_direction() -> None:
    judge = SupportJudge()
    assert judge.judge("The WHO issued the alert.", "The World Health Organization issued the alert.").supported
    assert judge.judge("The World Health Organization issued the alert.", "The WHO issued the alert.").supported
    assert judge.judge("The U.S. issued the alert.", "The United States issued the alert.").supported
    assert not judge.judge("The WTO issued the alert.", "The World Health Organization issued the alert.").supported


def test_collection_wide_words_are_common_and_rare_ones_are_not() -> None:
    texts = [f"The river carries silt number {i}." for i in range(9)] + ["The delta ends at the sea."]
    common = Vocabulary(texts).common()
    assert {"river", "silt"} <= {w[:5] for w in common} | common
    assert not {"delta", "sea"} & common


PREMISES = [
    # (question, what the cited passage says, the terms it does not state)
    ("Where were the writings of Plato acclaimed in 1846?",
     "In 1846 the natural history lectures of Louis Agassiz were acclaimed in New York.", ["Plato"]),
    ("What is the least important complexity class of counting problems?",
     "#P is an important complexity class of counting problems.", ["least"]),
    ("How many earthquakes are greater than a 4.7 magnitude?",
     "About 15 to 20 earthquakes a year are greater than magnitude 6.7.", ["4.7"]),
    ("What is the basic principle of the Canadian Parliament?",
     "The basic principle of the Scottish Parliament is that it may legislate on devolved matters.", ["Canadian"]),
    ("When was the FSO Car Factory founded?",
     "The FSO Car Factory was established in 1951.", []),
    # a syllable added inside a name makes another name; a letter changed or added is a spelling of the same one
    ("When did the War of the Australian Succession end?",
     "The War of the Austrian Succession formally ended in 1748.", ["Australian"]),
    ("When did Dostoyevsky move to the capital?", "Dostoevsky moved to the capital in 1849.", []),
    ("When was the factory of Fabryka Samochodów Osobowych founded?",
     "The FSO factory was founded in 1951.", []),
    ("Which city hosts the WHO?", "The World Health Organization is based in Geneva.", []),
    # a number written with thousands separators, in words or in Roman numerals is the same number
    ("Which region had a population of 22,680,010?", "The region had a population of 22,680,010 in 2010.", []),
    ("Which region had a population of 22,680,010?", "The region had a population of 21,680,010 in 2010.",
     ["22,680,010"]),
    ("Who bought the remaining 4 packages?", "Sky picked up the remaining four for £1.3bn.", []),
    ("Who bought the remaining 4 packages?", "Sky picked up the remaining five for £1.3bn.", ["4"]),
    ("Which allies fought in World War 2 from the colonies?", "In World War II the allies fought from the colonies.",
     []),
    ("What mediates Type 1 hypersensitivity?", "Type I hypersensitivity is mediated by IgE.", []),
    ("Who was 1 of the founders?", "No one founded it alone; it had six founders.", ["1"]),  # "one" is a pronoun too
    # an ordinal is a number: the century of a year the passage dates it in, or spelled out, is the same one
    ("Who wrote the treatise in the mid 19th century?", "In the mid-17th century a monk wrote the treatise.",
     ["19th"]),
    ("Who wrote the treatise in the 17th century?", "A monk wrote the treatise in 1652.", []),
    ("Who wrote the treatise in the 17th century?", "A monk wrote the treatise in 1752.", ["17th"]),
    ("Who wrote the treatise in the 17th century?", "A monk wrote the treatise in 1600.", []),  # as "the 1600s"
    ("Who wrote the treatise in the 15th century?", "A monk led 1500 troops and wrote the treatise.", ["15th"]),
    ("Who wrote the 7th treatise?", "A monk wrote the seventh treatise.", []),
    ("Which 19th-century treatise did the monk write?", "The monk wrote a treatise in 1652.", ["19th"]),
    ("Which 17th-century treatise did the monk write?", "The monk wrote a treatise in 1652.", []),
    # an order of magnitude in words: "thousand" is not "hundred", while "4,000" is thousands
    ("What was unchanged for nearly three thousand years?", "The code was unchanged for nearly three hundred years.",
     ["thousand"]),
    ("What was unchanged for nearly three thousand years?", "The code was unchanged for 3,000 years.", []),
    ("Which fund held several hundred million dollars?", "The fund held hundreds of millions of dollars.", []),
    ("What was unchanged for three hundred years?", "The code was unchanged for three thousand years.", ["hundred"]),
    # a decade or a round hundred of years is grounded by a year, decade or century inside it, not by another
    ("What was a centre of ivorywork in the 1100s?", "Salerno was a centre of ivorywork in the 11th century.",
     ["1100s"]),
    ("What was a centre of ivorywork in the 1100s?", "Salerno was a centre of ivorywork in the 12th century.", []),
    ("What was built in the 1900s?", "Harbor works since the late 19th century made it a port.", ["1900s"]),
    ("What was built in the 1900s?", "The port was built in the 1910s.", []),
    ("What did the club win in the 1960's?", "The club won the cup in 1965.", []),
    ("What did the club win in the 1960's?", "The club won the cup in the 1970s.", ["1960's"]),
    ("What did the club win in the 1960s?", "The club won the cup in the 20th century.", ["1960s"]),
    # a qualifier is grounded by one that says the same of an order, never by its opposite
    ("What was the last major change to the engine?", "The final major change to the engine was the turbine.", []),
    ("What was the first major change to the engine?", "The final major change to the engine was the turbine.",
     ["first"]),
    ("When was the first known reference to the disease?", "The earliest known reference to it dates from 430 BC.",
     []),
    ("Which city has the biggest port?", "Duisburg has the largest river port in Europe.", []),
    ("Which is the first building of the town?", "The oldest building of the town is the mill.", ["first"]),
    ("Which city has the biggest port?", "Duisburg has the smallest river port in Europe.", ["biggest"]),
    # a hyphenated name's likeness suffix ("-style", "-like") is not part of the name
    ("Which dynasties inspired the Chinese-like elements?", "The Chinese-style elements came from the Tang.", []),
    ("Which dynasties inspired the Japanese-like elements?", "The Chinese-style elements came from the Tang.",
     ["Japanese-like"]),
    # an acronym skips its name's linking words ("on", "for")
    ("Who chairs the IPCC?", "The Intergovernmental Panel on Climate Change is chaired by a scientist.", []),
    # a question's first word is a name only when it starts one, never when it is a preposition or conjunction
    ("Besides Britain, where did the refugees settle?", "Refugees settled in Britain as well as in Holland.", []),
    ("Western Union moved where?", "The company moved to Denver.", ["Western", "Union"]),
]


@pytest.mark.parametrize(("question", "context", "missing"), PREMISES, ids=[p[0][:40] for p in PREMISES])
def test_a_question_premise_must_be_stated_by_the_cited_passages(question: str, context: str,
                                                                 missing: list[str]) -> None:
    assert ungrounded(question, context) == missing


def test_a_number_the_claim_repeats_from_the_question_is_its_premise_not_its_assertion() -> None:
    judge = SupportJudge()
    question = "What did report GAO-07-283 recommend?"
    evidence = "The report recommends that the agency publish its criteria."
    assert judge.judge("Report GAO-07-283 recommends publishing the criteria.", evidence, question).supported
    assert not judge.judge("Report GAO-07-284 recommends publishing the criteria.", evidence, question).supported
    # ...and the premise itself is then held to the passages the answer cites:
    assert ungrounded(question, evidence) == ["GAO-07-283"]


def test_a_figure_read_from_the_wrong_column_is_not_supported() -> None:
    """A table row puts an amount beside a share; the digits of "310.6%" are in it, but only as an amount, so the
    claim is refused. The right share, the amount as an amount, and a percentage written in words all pass, and a
    number the question names is its premise."""
    judge = SupportJudge()
    row = "Amounts held, in billions, and share of the total held: Eastmoor $310.6 3.35% Westvale $249.5 3.22%"
    assert not judge.judge("Eastmoor held 310.6% of the total.", row).supported
    assert not judge.judge("Westvale held $3.22 billion.", row).supported
    assert judge.judge("Eastmoor held 3.35% of the total.", row).supported
    assert judge.judge("Eastmoor held $310.6 billion.", row).supported
    assert judge.judge("Rates rose 5 percent in the region.", "Rates in the region rose by 5%.").supported
    asked = "Which district grew by 12%?"
    assert judge.judge("Westvale grew by 12%.", "Westvale grew by 12 in the year.", asked).supported


def test_a_figure_read_from_another_entry_of_a_table_row_is_not_supported() -> None:
    """Rows set entries side by side; a figure belongs to the labels next to its run of figures (a rank before its
    name, an amount after it), so a claim giving it to an entry the row does not set beside it is refused, while
    every right reading passes. Prose is not judged so: there a figure's subject may stand anywhere."""
    judge = SupportJudge()
    row = "|  | 9 | Nelmouth | Harrow | 67,500 | 19 | Eastmoor | Canterfold | 29,100 |  |"
    assert not judge.judge("Nelmouth had 29,100 residents.", row).supported
    assert judge.judge("Nelmouth had 67,500 residents.", row).supported
    assert judge.judge("Eastmoor ranked 19th.", "Rank | Town | Region | Population\n" + row).supported
    assert judge.judge("Eastmoor had 29,100 residents.", row).supported
    printed = ("Amount held ($ billions) and share of the total, by holder\n"
               "Netherby $477.3 5.15% Westby $468.2 5.05% Eastmoor $327.8 4.23% Eastmoor $435.1 4.69%")
    assert not judge.judge("Netherby held $327.8 billion.", printed).supported
    assert judge.judge("Netherby held $477.3 billion, 5.15% of the total.", printed).supported
    assert judge.judge("It held $477.3 billion.", printed, "How much did Netherby hold?").supported
    prose = "The company employs 340 people in Lyon, and its rival Westby employs 120."
    assert judge.judge("The company employs 120 people.", prose).supported  # prose: the number check's concern


def test_a_rank_a_table_gives_as_a_bare_number_supports_its_ordinal_and_prose_does_not() -> None:
    """A table writes a rank as "9" in its Rank column; the claim says "ranked 9th". In prose "9" and "9th" are
    different facts, so there the ordinal is not granted."""
    judge = SupportJudge()
    question = "What rank did Nelmouth have among the largest towns?"
    table = "Largest towns | Rank | Town | Pop.\n|  | 9 | Nelmouth | 67,500 | 19 | Eastmoor | 29,100 |  |"
    assert judge.judge("Nelmouth ranked 9th among the largest towns.", table, question).supported
    assert not judge.judge("Nelmouth ranked 67th among the largest towns.", table, question).supported
    prose = "Nelmouth, one of the largest towns, has 9 ferry piers."
    assert not judge.judge("Nelmouth ranked 9th among the largest towns.", prose, question).supported


def test_a_unit_written_by_its_symbol_grounds_its_name_and_no_other_unit() -> None:
    """A table heads a column "July (°C)"; the question asks "in degrees Celsius": the same unit. A unit the text
    does not write ("Fahrenheit" where it writes only °C) is still not stated. A claim must write the unit as the
    source does, where the column check can hold each figure to its column."""
    evidence = "Average temperatures | Town | July (°C)\n| Nelmouth | 14/7 |"
    question = "What is the average July temperature in Nelmouth in degrees Celsius?"
    assert ungrounded(question, evidence) == []
    assert ungrounded(question.replace("Celsius", "Fahrenheit"), evidence) == ["Fahrenheit"]
    judge = SupportJudge()
    assert judge.judge("The average July temperature in Nelmouth is 14/7 °C.", evidence, question).supported
    assert not judge.judge("The average July temperature in Nelmouth is 14/7 degrees Celsius.", evidence).supported


def test_a_figure_from_the_column_of_another_month_is_not_supported() -> None:
    """A header abbreviates a month ("Jan/Feb", "July") that a claim writes out: a January figure read from the
    July column is refused, the right one passes."""
    judge = SupportJudge()
    head = "Average daily maximum and minimum | Town | Jan/Feb (°C) | Jan/Feb (°F) | July (°C) | July (°F)"
    evidence = f"{head}\n| Nelmouth | 19/11 | 66/53 | 10/3 | 50/37 |"
    assert not judge.judge("The average maximum in Nelmouth in January is 10 °C (50 °F).", evidence).supported
    assert judge.judge("The average maximum in Nelmouth in January is 19 °C (66 °F).", evidence).supported
    assert judge.judge("In July Nelmouth averages a maximum of 10 °C.", evidence).supported


def test_a_row_reads_with_each_cell_after_its_header_and_the_caption_first() -> None:
    """A quoted row must be readable alone: its cells labelled by the head it aligns with (a caption written as the
    head's first cell, or on a line of its own); a row no head aligns with, and prose, stay as written."""
    row = "| Nelmouth | 19/11 | 10/3 |"
    labelled = "Maximum and minimum — Town: Nelmouth; Jan/Feb (°C): 19/11; July (°C): 10/3"
    assert labelled_row(row, "Maximum and minimum | Town | Jan/Feb (°C) | July (°C)") == labelled
    assert labelled_row(row, "Maximum and minimum\nTown | Jan/Feb (°C) | July (°C)") == labelled
    assert labelled_row(row, "Town | Jan/Feb (°C) | July (°C)") == labelled.split(" — ")[1]
    assert labelled_row(row, "Town | Rank") == row
    assert labelled_row("Nelmouth is warm.", "Town | Rank | Pop.") == "Nelmouth is warm."


def test_one_figure_of_a_paired_cell_must_be_named_as_its_half() -> None:
    """A cell "10/3" under "maximum and minimum" holds two quantities: one of them stated as the whole ("averages 10
    °C") or under the other's name is refused; named as its half, asked for by name, or both halves, it passes. A
    pair of months in a header names the period, not the halves, and a cell of one figure is not a pair."""
    judge = SupportJudge()
    head = "Average daily maximum and minimum | Town | Jan/Feb (°C) | Jan/Feb (°F) | July (°C) | July (°F)"
    evidence = f"{head}\n| Nelmouth | 19/11 | 66/53 | 10/3 | 50/37 |"
    claims = {"In July Nelmouth averages 10 °C.": False, "In July Nelmouth's average minimum is 10 °C.": False,
              "In July Nelmouth's average minimum is 3 °C.": True, "In July Nelmouth's average max. is 10 °C.": True,
              "In July Nelmouth averages 10/3 °C.": True, "In July Nelmouth's average maximum is 10/3 °C.": False,
              "In July Nelmouth's average maximum and minimum are 10 and 3 °C.": True}
    assert {claim: judge.judge(claim, evidence).supported for claim in claims} == claims
    assert judge.judge("In July it is 10 °C.", evidence, "What is Nelmouth's July maximum?").supported
    assert not judge.judge("In July it is 10 °C.", evidence, "What is Nelmouth's July minimum?").supported
    months = "Rainfall | Town | Jan/Feb (mm) | July (mm)\n| Nelmouth | 80/60 | 120 |"
    assert judge.judge("Nelmouth's January rainfall is 80 mm.", months).supported  # no halves named
    single = f"{head}\n| Nelmouth | 19 | 66 | 10 | 50 |"
    assert judge.judge("In July Nelmouth averages 10 °C.", single).supported


def test_a_figure_from_the_block_of_another_period_is_not_supported() -> None:
    """A table comparing two periods prints their blocks side by side, so each row holds one entry of each, in the
    heading's order, and a label may appear in both. A claim dated to one period must take its figure from an entry
    in that period's place; any row without such a heading, or a claim naming no single period, is not judged so."""
    judge = SupportJudge()
    head = "Table 4. Grain held by town, 2024 2019 Town Tonnes Share Town Tonnes Share"
    row = ("Eastmoor 1,185.5 12.8% Eastmoor 1,300.8 16.8% Netherby 866.0 9.3% Westby 1,040.3 13.4% "
           "Westby 683.5 7.4% Netherby 649.3 8.4%")
    asked = "How much grain did Westby hold in 2024?"
    assert not judge.judge("Westby held 1,040.3 tonnes in 2024.", f"{head}\n{row}", asked).supported
    assert judge.judge("Westby held 683.5 tonnes in 2024.", f"{head}\n{row}", asked).supported
    assert judge.judge("Netherby held 649.3 tonnes in 2019.", f"{head}\n{row}").supported
    assert judge.judge("Westby held 1,040.3 tonnes.", f"{head}\n{row}").supported  # no period named
    single = "Table 4. Grain held by town, 2024 Town Tonnes Share Town Tonnes Share"
    assert judge.judge("Westby held 1,040.3 tonnes in 2024.", f"{single}\n{row}", asked).supported


def test_a_figure_from_a_column_the_claim_does_not_name_is_not_supported() -> None:
    """A web page's table sets columns differing by one word side by side; aligned cell by cell under its headers,
    a row shows which column each figure is in, and a claim naming a unit, month or measure no column holding its
    figures is headed by is refused. An abbreviated header ("Pop.") is named by the word it begins."""
    judge = SupportJudge()
    head = "Average daily maximum and minimum temperatures | Town | January (°C) | January (°F) | July (°C) | July (°F)"
    row = "| Eastmoor | 20/13 | 68/56 | 11/6 | 52/42 |"
    evidence = f"{head}\n{row}"
    assert not judge.judge("The average January temperature in Eastmoor is 68/56 °C.", evidence).supported
    assert not judge.judge("The average January temperature in Eastmoor is 11/6 °C.", evidence).supported
    assert judge.judge("The average January temperature in Eastmoor is 20/13 °C.", evidence).supported
    assert judge.judge("The average July temperature in Eastmoor is 11/6 °C (52/42 °F).", evidence).supported
    towns = ("Largest towns, 2018 estimate | Rank | Name | Pop. | Rank | Name | Pop.\n"
             "|  | 9 | Nelmouth | 67,500 | 19 | Westby | 29,100 |")
    assert judge.judge("Nelmouth had a population of 67,500.", towns).supported
    assert not judge.judge("Nelmouth had a population of 9.", towns).supported


def test_a_claim_that_states_the_opposite_of_its_source_is_not_supported() -> None:
    judge = SupportJudge()
    evidence = "Exercise temporarily increases the heart rate. The song was released in the spring."
    assert judge.judge("Exercise temporarily increases the heart rate.", evidence).supported
    verdict = judge.judge("Exercise temporarily decreases the heart rate.", evidence)
    assert not verdict.supported and "opposite" in verdict.reason
    # an opposite word in another sentence of a long source is about something else:
    long = "Exercise is good for heart health. Later seasons were less popular with critics."
    assert judge.judge("Exercise is good for heart health, and more people now exercise.", long).reason != \
        "source says the opposite: more / less"


def test_a_negation_restricted_by_an_exception_asserts_the_exception() -> None:
    judge = SupportJudge()
    exclusive = "A prime is a number greater than 1 that has no positive divisors other than 1 and itself."
    assert judge.judge("A prime has exactly two positive divisors: 1 and itself.", exclusive).supported
    assert judge.judge("The index lists entries for letters.", "The index lists no entries except letters.").supported
    # without an exception the negation denies what it scopes, and a plain "but" contrast still denies its first half:
    denied = judge.judge("The trial showed positive results.", "The trial showed no positive results at all.")
    assert not denied.supported and "negates" in denied.reason
    contrast = judge.judge("The minister signed the accord.", "It was not the minister but his deputy who signed.")
    assert not contrast.supported
    # a negation's scope ends with its sentence:
    assert judge.judge("President Ruiz wrote the memo.", "The deal was not signed. President Ruiz wrote the memo.") \
        .supported


def test_a_negation_the_claim_repeats_from_the_question_is_the_questions_to_ground() -> None:
    judge = SupportJudge()
    evidence = "The deep-water rays, which lack spines, feed on worms buried in the silt."
    question = "Which rays do not have spines?"
    claim = "The deep-water rays do not have spines."
    assert judge.judge(claim, evidence, question).supported
    # the question-level check holds the negation to the source, which states a negative ("lack"):
    assert unstated_negation(question, evidence) is None
    # a negation the claim adds on its own is still one the source must state:
    assert not judge.judge(claim, evidence, "Which rays have spines?").supported
    assert judge.judge(claim, evidence).reason == "negation not in source"


def test_a_negation_with_a_time_limit_or_only_asserts_what_it_scopes() -> None:
    judge = SupportJudge()
    cleft = "It was not until 1871 that Maren Tolvik, for her survey of the delta, was awarded the Vellmar Medal."
    dated = judge.judge("Maren Tolvik was awarded the Vellmar Medal in 1871.", cleft, "Who won the Vellmar Medal?")
    assert dated.supported and not dated.contradicted
    late = "The council did not approve the harbour plan until March 1904."
    assert judge.judge("The council approved the harbour plan in March 1904.", late).supported
    both = "The railway served not only the port but also the new airport."
    assert judge.judge("The railway served the port.", both).supported
    # the number a time limit gives is still the claim's to match, and a plain negation still denies:
    assert not judge.judge("The council approved the harbour plan in March 1903.", late).supported
    denied = judge.judge("The council approved the harbour plan.", "The council did not approve the harbour plan.")
    assert not denied.supported and "negates" in denied.reason


def test_a_quotation_given_to_another_speaker_is_not_supported() -> None:
    judge = SupportJudge()
    source = "The deal was not signed. President Ana Ruiz wrote on May 8 that “we are talking about tariff relief”."
    moved = judge.judge("The signed agreement said that 'we are talking about tariff relief'.", source)
    assert not moved.supported and "Ana Ruiz" in moved.reason
    for kept in ("Ruiz wrote that “we are talking about tariff relief”.",
                 "The president wrote that 'we are talking about tariff relief'.",
                 "She wrote that “we are talking about tariff relief”."):
        assert judge.judge(kept, source).supported, kept
    # a sentence-opening common noun is not a name, and a quotation the source gives to nobody is left alone:
    assert judge.judge("The ministry said the talks were “useful and frank”.",
                       "Officials said the talks were “useful and frank”.").reason.startswith("coverage")
    assert judge.judge("The report calls it “a useful and frank exchange”.",
                       "It was “a useful and frank exchange”, the report says.").supported


def test_a_name_the_cited_passage_omits_may_be_written_elsewhere_in_its_document() -> None:
    question = "To what level did the Lyon talks between the two delegations aim to raise cooperation?"
    cited = "The discussions aimed to raise cooperation to higher levels."
    assert ungrounded(question, cited) == ["Lyon"]
    assert ungrounded(question, cited, "Delegations met in Lyon on Monday. The discussions aimed ...") == []
    # a year may say which event, like a name; other numbers and qualifiers are the fact itself, never borrowed
    assert ungrounded("Who brokered the April 2026 ceasefire?", "Pakistan brokered the ceasefire.",
                      "The ceasefire of April 2026 ...") == []
    assert ungrounded("How many quakes exceeded magnitude 4.7?", "Ten quakes exceeded magnitude 6.7.",
                      "A 4.7 reading ...") == ["4.7"]


def test_qualifiers_are_adjectives_not_compound_nouns_or_verbs() -> None:
    from assistant.verify import premise_terms

    assert premise_terms("What is the least important class?") == ["least"]
    assert premise_terms("What is the first name of the mayor?") == []
    assert premise_terms("How many days did the visit last?") == []


def test_an_attribution_left_in_the_question_names_a_premise() -> None:
    """An attribution that names no cited document is left in the question by `without_source`: the answer claims
    that this source said so, and a passage that never names it does not ground the claim."""
    from assistant.verify import premise_terms

    assert premise_terms("According to the Acme Institute, what did Lyon gain?") == ["Acme", "Institute", "Lyon"]
    assert ungrounded("What did Lyon gain, according to the Acme Institute?", "Lyon gained a port.") == [
        "Acme", "Institute"]
    assert ungrounded("What did Lyon gain, according to the Acme Institute?",
                      "The Acme Institute reports that Lyon gained a port.") == []
    assert ungrounded("According to officials, what did Lyon gain?", "Lyon gained a port.") == []


def test_a_footnote_number_glued_to_a_word_is_a_separate_token() -> None:
    assert words("the United States.32 said") == ["the", "united", "states", "32", "said"]
    assert words("in 1990.The talks") == ["in", "1990", "the", "talks"]
    assert words("3.5 percent, the U.S. and e.g. www.example.com") == [
        "3.5", "percent", "the", "us", "and", "eg", "www.example.com"]
    assert answerability("Which country imposed the sanctions?", "The United States imposed them.",
                         ["Sanctions were imposed by the United States.32"])[0]


def test_a_question_word_the_source_replaces_inside_the_same_phrase_is_a_false_premise() -> None:
    """"The Bergen school of geology" where the source says "the Bergen school of meteorology": the question asks
    about a school the source never names. Only a word the passages never use, replaced beside a shared run of
    words in a noun's phrase; a verb beside a shared run is a paraphrase, and a word the passages use is no
    premise of the question's own."""
    source = ("The institute gave birth to the Bergen school of meteorology. "
              "The mass night school reading movement grew.")
    assert ungrounded("What grew out of the Bergen school of geology?", source) == ["geology"]
    assert ungrounded("When did the early school reading movement begin?", source) == ["early"]
    assert ungrounded("What grew out of the Bergen school of meteorology?", source) == []
    opened = "The mayor opened a school for deaf children in the harbour district."
    assert ungrounded("When did the mayor found a school for deaf children?", opened) == []  # a verb: paraphrase
    assert ungrounded("What grew out of the Bergen school of geology?", source + " Its geology department...") == []
    assert ungrounded("The islands are made up almost entirely of what?",
                      "The islands consist almost entirely of basalt.") == []  # a particle, not a premise


def test_a_question_word_the_source_replaces_is_caught_beyond_three_shared_words_and_never_for_a_conjunction() -> None:
    """The shared run is counted as far as question and source keep matching ("[school reading movement] began in"),
    so a run whose first three words hold one content word still anchors; an opening "since" or "upon" is a
    conjunction the question opens with, not a detail the source replaces."""
    source = "Harbour schools are called free schools by the families there."
    assert ungrounded("Why are valley schools are called free schools?", source) == ["valley"]
    assert ungrounded("Since schools are called free schools, who pays for them?", source) == []


def test_a_negated_question_is_not_answered_by_a_text_that_states_no_negative() -> None:
    """"How many main groups are not known?" asked of "There are four main groups known": the question presupposes
    something is not so, and the text says only what is. A negator, a negative word, the question's word with a
    negative prefix or "-less" in the text is a negative stated; a question without a negator asks nothing of it."""
    known = "There are four main groups known: red, blue, green and grey."
    assert unstated_negation("How many main groups are not known?", known) == "not"
    assert unstated_negation("Who didn't vote?", "Everyone voted.") == "didn't"
    assert unstated_negation("How many main groups are known?", known) is None
    assert unstated_negation("How many main groups are not known?", "Four groups are unknown.") is None
    assert unstated_negation("Which part isn't active?", "The inactive part is the core.") is None
    assert unstated_negation("Which engine runs without pistons?", "A pistonless engine was built.") is None
    assert unstated_negation("Who didn't vote?", "Everyone voted except the mayor.") is None
    assert unstated_negation("What did the firm never disclose?", "The firm lacked a disclosure policy.") is None
    assert unstated_negation("Who did not attend?", "The minister did not attend.") is None
    # a negative elsewhere does not deny the negated word when the text states that word plainly
    assert unstated_negation("Which machine is not allowed to branch out?",
                             "For example, a non-deterministic machine is a computational model that is "
                             "allowed to branch out.") == "not"
    assert unstated_negation("Which machine is not allowed to branch out?",
                             "Only a deterministic machine is allowed to branch out.") is None
    # "non-" negates one word: stated only by that word negated, not by a negator elsewhere
    assert unstated_negation("Where was the non-Union Guild founded?",
                             "The Union Guild, not a state body, was founded in the port.") == "non-Union"
    assert unstated_negation("Where was the non-Union Guild founded?", "The non-Union Guild began in the port.") is None
    assert unstated_negation("Which non-elected members may speak?", "Members who are not elected may speak.") is None
    assert unstated_negation("Which nonprofit groups joined?", "Several groups joined.") is None  # not hyphenated


def test_a_question_negation_that_denies_nothing_asks_no_negative_of_the_text() -> None:
    """"What was not proclaimed until 1271?" dates an event, as "It was not until 1271 that the dynasty was
    proclaimed" does, though the text's "not" stands seven words from its "proclaimed"; "not only" adds. Neither
    presupposes a denial, so the text owes none; a plain negated question still does."""
    cleft = "It was not until 1271 that the Vellmar dynasty was proclaimed in the traditional style."
    assert unstated_negation("What was not proclaimed until 1271?", cleft) is None
    assert unstated_negation("What does the charter not only allow?", "The charter allows trade and travel.") is None
    assert unstated_negation("What was not proclaimed?", "The Vellmar dynasty was proclaimed in 1271.") == "not"


def test_a_question_word_the_source_states_the_other_way_is_a_false_premise() -> None:
    """"An increase in student applications" where the source says the applications declined, "public schools"
    where it says private ones: the opposite, said of the question's own subject. A sentence that also says the
    question's way near the subject, or says the other way only of something else, reverses nothing; nor does a
    question that names both ways, or an opposite word that is part of a name."""
    declined = "In the early 1950s, student applications declined as a result of increasing crime and poverty."
    asked = "During which decade was there an increase in student applications?"
    assert reversed_premise(asked, declined) == ("increase", "declined")
    assert reversed_premise(asked, "In the early 1950s, student applications rose sharply.") is None
    assert reversed_premise("When did crime increase?", declined) is None  # "increasing crime": its own way
    assert reversed_premise("When did poverty fall?", "Crime rose in the 1950s while poverty fell.") is None
    assert reversed_premise("What did fewer people buy?", "More people bought bicycles.") == ("fewer", "more")
    assert reversed_premise("Why did sales rise and then fall?", "Sales fell after prices rose.") is None
    assert reversed_premise("Who led the applications office?", declined) is None  # no way asked
    private = "Most private schools in the region charge fees."
    assert reversed_premise("Do public schools in the region charge fees?", private) == ("public", "private")
    assert reversed_premise("Which schools in the region charge fees?", private) is None
    assert reversed_premise("Where does water east of the basin flow?",
                            "Water on the eastern side of the basin flowed west.") is None  # "eastern": its own way
    assert reversed_premise("How long did the war in the Middle East last?",
                            "The war in the West lasted a decade.") is None  # a name's word: `ungrounded` checks it
    # a negative prefix makes the opposite of the text's word, unless the text negates that word itself
    assert reversed_premise("What do unstable isotope studies show?", "Stable isotope studies show the age.") == (
        "unstable", "stable")
    assert reversed_premise("Which homes was the service unavailable to?", "The service became available to homes.") \
        == ("unavailable", "available")
    assert reversed_premise("When did they show new information?", "They showed its formation in 1993.") is None
    assert reversed_premise("Why is the problem unsolved?", "The problem is not solved because it is hard.") is None
    assert reversed_premise("Which studies are unstable?", "Unstable and stable isotope studies differ.") is None
    assert reversed_premise("What did the survey discover?", "The survey did cover the coast.") is None  # nor "dis-"


def test_opposites_come_from_a_language_lexicon_not_only_the_hand_list() -> None:
    """WordNet's antonyms of adjectives, adverbs and verbs (`lexicon/antonyms.txt`) reverse a premise as the hand
    list does ("perfect"/"imperfect", "up"/"down", "shallow"/"deep"); an opposite the text negates itself ("not
    shallow") or that the question negates ("isn't deep") says the question's way; function-word pairs ("all" and
    "some") are not opposites, since their scope decides what they reverse."""
    deep = "Researchers found that the northern lakes are deep and cold."
    assert reversed_premise("Which lakes are shallow?", deep) == ("shallow", "deep")
    assert reversed_premise("What bid down the wages of clerks?", "Demand bid up the wages of clerks.") == (
        "down", "up")
    assert reversed_premise("Which lakes are shallow?", "Researchers found the lakes are not deep.") is None
    assert reversed_premise("Which lakes aren't deep?", "Researchers found the lakes are shallow.") is None
    assert reversed_premise("Which lakes do all visitors see?", "Some visitors see the lakes.") is None
    judge = SupportJudge()
    assert not judge.judge("The northern lakes are shallow.", deep).supported


def test_a_name_the_question_fuses_from_two_names_of_the_source_is_a_false_premise() -> None:
    """Each word of "Maria Lindqvist" is written, but in two other people's names: the question is about someone
    the source does not name. A middle initial, a possessive or a title in between still name one person, and a
    place written before a title ("the Westport Mayor" of "Mayor Olsen") describes rather than names."""
    founders = "The firm was founded by Maria Olsen in 1990 and run by Erik J. Lindqvist from 1995."
    assert ungrounded("When did Maria Lindqvist found the firm?", founders) == ["Maria Lindqvist"]
    assert ungrounded("When did Erik Lindqvist take over the firm?", founders) == []
    assert ungrounded("When did Olsen's firm open?", founders) == []
    assert ungrounded("What did the Westport Mayor open?",
                      "Westport grew fast. In 1990 Mayor Olsen opened the bridge.") == []


def test_an_answer_that_only_restates_the_question_answers_nothing() -> None:
    """A draft with the asked-for part left out adds no word or number to the question; a yes/no or either-or
    question may be answered in its own words."""
    valve = "A butterfly valve controls the flow of water from the second tank."
    assert adds_to("What type of valve controls the flow?", "The valve controls the flow.") == (
        False, "the draft answer only restates the question")
    assert not answerability("What type of valve controls the flow?", "The valve controls the flow.", [valve])[0]
    assert adds_to("What type of valve controls the flow?", "A butterfly valve controls the flow.") == (True, "ok")
    assert adds_to("Which tank feeds the flow?", "The 2 tanks feed the flow.") == (True, "ok")
    assert adds_to("When did the flow begin?", "The flow began in May.") == (True, "ok")  # a month, not a modal
    assert adds_to("Does the valve control the flow?", "The valve controls the flow.") == (True, "ok")
    assert adds_to("Is the flow controlled by the pump or the valve?", "The valve controls the flow.") == (True, "ok")


def test_a_quantity_noun_asks_for_a_quantity_only_as_what_the_question_asks() -> None:
    """"What was the population of" asks for a number; "what property ... shows there is an infinite number of
    primes" asks for a property, and a cited sentence that states it is not refused for giving no number."""
    assert question_kind("What was the estimated population of the valley in 1900?") == "quantity"
    assert question_kind("What percentage of the budget went to roads?") == "quantity"
    assert question_kind("What property of the series shows that there is an infinite number of primes?") is None
    assert answerability("What property of the series shows that there is an infinite number of primes?",
                         "The series diverges, so there are infinitely many primes.",
                         ["The series diverges, so there must be infinitely many primes."]) == (True, "ok")


def test_a_when_question_is_answered_by_an_era_or_an_early_year() -> None:
    """"When" is answered by "65.5 million years ago", "the 14th century", "the 1960s", "44 BC", "in 1348" or "the
    year 1390", not only by a modern year or a month."""
    for when in ("It died out 65.5 million years ago.", "It spread in the 14th century.", "It peaked in the 1960s.",
                 "It was founded in 44 BC.", "The plague reached the port in 1348.",
                 "The oldest seal is from the year 1390."):
        assert answerability("When did it happen?", when, [when]) == (True, "ok"), when
    assert not answerability("When did it happen?", "It happened.", ["It happened after a long wait."])[0]


def test_a_when_question_is_answered_by_a_date_before_present() -> None:
    """Geology and archaeology date by years before present ("ca. 22,000–14,000 yr BP", "by 9000 BP"); a bare
    "bp" after a small number is a length of DNA, not a date."""
    for when in ("The ice peaked ca. 22,000–14,000 yr BP, when sheets covered the plain.",
                 "By 9000 BP, the ice had peaked and melted."):
        assert answerability("When did the ice peak?", when, [when]) == (True, "ok"), when
    assert not answerability("When was the strand cut?", "It was cut at 12 bp.", ["It was cut at 12 bp."])[0]


def test_a_sentence_may_open_with_the_name_a_who_question_asks_for() -> None:
    """Every sentence capitalises its first word, so `names` skips it; a first word that is no ordinary English word
    in any inflection, or has a capital inside, is a name all the same. Ordinary words that open a sentence are not."""
    from assistant.verify import opening_name

    assert opening_name("Orvandel also mapped the delta.") == {"orvandel"}
    assert opening_name("DelKorra's survey mapped it.") == {"delkorra"}
    assert opening_name("Surveyors mapped the delta.") == set()
    assert opening_name("Debates are open to the public.") == set()
    assert opening_name("The delta was mapped.") == set()
    mapped = "Orvandel also mapped the delta in 1702."
    assert answerability("Who mapped the delta?", mapped, [mapped]) == (True, "ok")
    plain = "Surveyors mapped the delta in 1702."
    assert answerability("Who mapped the delta?", plain, [plain])[1].startswith("question asks for a name")


def test_the_unit_a_date_question_asks_in_is_not_its_topic() -> None:
    """"In what year did the plant open?" of "The plant was founded in 1883.": a sentence giving a year seldom writes
    "year", so the cited date need be about the plant only; a date about something else still answers nothing."""
    founded = "The plant was founded in 1883."
    assert answerability("In what year did the plant open?", founded, [founded]) == (True, "ok")
    assert not answerability("In what year did the plant open?", founded, ["The harbour was built in 1883."])[0]
    assert not answerability("Which month did the plant open?", founded, ["The harbour opened in March."])[0]


def test_a_question_asks_with_its_main_clause_not_a_leading_one() -> None:
    """"When the envoy arrived, what did he ask for?" asks for a thing, not a date: the leading clause sets the
    scene. A question asked in its first words keeps its kind."""
    assert question_kind("When the envoy promoted unity, what did he call for ending?") is None
    assert question_kind("If a matter is not reserved, who is it devolved to?") == "name"
    assert question_kind("When did the envoy arrive, and why?") == "date"
    sentence = "The envoy promoted unity, calling for the shedding of old rivalries."
    assert answerability("When the envoy promoted unity, what did he call for ending?", sentence, [sentence])[0]


def test_a_number_written_with_thousands_separators_is_one_word() -> None:
    """"10,000" is the number a question writes "10000", not the two words "10" and "000"; "1,2" (a list) and "3.5"
    stay as they were."""
    assert words("It cost 1,000,000 pounds, not 1,2 or 3.5.") == [
        "it", "cost", "1000000", "pounds", "not", "1", "2", "or", "3.5"]
    sentence = "By 1883, the plant employed 10,000."
    assert answerability("When did the plant reach 10000 workers?", sentence, [sentence]) == (True, "ok")


def test_a_name_with_diacritics_is_one_word() -> None:
    """"Zakarīya" cut at the ī would be checked as "zakar", which no folded source contains: a correct claim
    copied from its source was refused."""
    source = "Muhammad ibn Zakarīya Rāzi (Rhazes) acted to promote the medical uses of chemical compounds."
    assert {"zakariya", "razi", "rhazes"} <= names("The physician Muhammad ibn Zakarīya Rāzi (Rhazes) wrote.")
    assert SupportJudge().judge("Muhammad ibn Zakarīya Rāzi promoted the medical uses of chemical compounds.",
                                source).supported


def test_a_name_with_digits_is_one_word_and_its_digits_are_not_a_spelling() -> None:
    """A gene, model or product code ("CYP27B1") cut at its first digit was checked as "cyp", which no source word
    is: a claim naming it as its source does was rejected. Two codes differing in a digit are two names."""
    source = "The cell expresses the enzyme gene CYP27B1, which converts the precursor."
    assert "cyp27b1" in names("The gene responsible is CYP27B1.")
    assert SupportJudge().judge("The gene responsible is CYP27B1.", source).supported
    assert not same_name("cyp27b1", "cyp27b2")
    assert same_name("cyp27b1", "cyp27b1") and same_name("nepal", "nepali")


def test_a_place_and_its_people_or_language_are_one_name() -> None:
    """English names a people after its place by a few endings ("-land"/"-ish", "-ain"/"-ish", "-ia"/"-ian",
    "-y"/"-ian", "-a"/"-ese", "-stan"/"-stani"): "the Veslish capital" states "Vesland's capital". A place with a
    syllable more is still another place (Ostria/Ostralian), and two places one letter apart are two places."""
    for place, people in (("vesland", "veslish"), ("brettain", "brettish"), ("corvia", "corvian"), ("tarly", "tarlian"),
                          ("quana", "quanese"), ("dastan", "dastani"), ("norkland", "norklandic")):
        assert same_name(place, people) and same_name(people, place), (place, people)
    assert not same_name("ostria", "ostralian") and not same_name("taran", "taraqi") and not same_name("dan", "danish")
    assert ungrounded("Which city was Vesland's capital?", "Karvo served as the Veslish capital city.") == []


def test_a_name_or_place_answer_comes_from_a_sentence_about_the_question() -> None:
    """"Who rejected the harbour plan?" is not answered by a sentence that names someone for something else: any
    name satisfies the question's type, so the sentence must share a topic word with it or name its own names."""
    founded = "Anna Berg founded the shipping company in 1901."
    assert not answerability("Who rejected the proposal for a new harbour?", founded, [founded])[0]
    rejected = "Anna Berg rejected the harbour plan."
    assert answerability("Who rejected the proposal for a new harbour?", rejected, [rejected]) == (True, "ok")
    assert answerability("Who did the Lyon mayor meet?", "He met Anne Martin.",
                         ["In Lyon, the mayor met Anne Martin."]) == (True, "ok")


# A constructed text (no corpus's words): each "no" question changes one common noun or relation of a "yes" one, the
# kind of false premise no word list tells from a paraphrase.
OPENING = ("The city library opened in 1931, two years after a fire destroyed the old town hall. Its first director "
           "was the poet Anna Berg, who ran it until 1950.")


@pytest.fixture(scope="module")
def model(seed_cfg: Settings) -> Backend:
    return get_backend(seed_cfg, "embedded")


@pytest.mark.slow
@pytest.mark.parametrize(("question", "answered"), [
    ("When did the city library open?", True),
    ("Who was the first director of the library?", True),
    ("When did the city museum open?", False),
    ("Which building did a flood destroy?", False),
])
def test_the_model_check_reads_a_changed_noun_or_relation(model: Backend, question: str, answered: bool) -> None:
    assert answers_as_asked(model, question, [OPENING]) is answered


class Verdict:
    """A backend that answers a scored check with a fixed output and fixed option log-probabilities, and keeps the
    prompts it was shown."""

    name, model = "fixed", "fixed"

    def __init__(self, raw: str, scores: dict[str, float], options: tuple[str, ...] = ("yes", "no"),
                 shown: str = "Question: Q?") -> None:
        self.raw, self.scores, self.options, self.shown = raw, scores, options, shown
        self.prompts: list[str] = []

    def stream(self, *_: object) -> Iterator[str]:
        raise AssertionError("a scored check makes one scored call, never a streamed one")

    def scored(self, messages: list[Message], schema: dict[str, Any], options: tuple[str, ...]) -> Scored:
        assert options == self.options and self.shown in messages[-1]["content"]
        self.prompts.append(messages[-1]["content"])
        return self.raw, self.scores


def test_an_answer_is_withheld_only_when_the_model_clearly_prefers_no() -> None:
    """The small model's "no" is noisy near even odds, so a "no" withholds the answer only when it beats "yes" by
    more than `DOUBT`; a server without log-probabilities decides by its verdict; anything else withholds it."""
    no = '{"answers":"no"}'
    assert answers_as_asked(Verdict(no, {"yes": -1.0, "no": -1.0 + DOUBT / 2}), "Q?", ["text"])
    assert not answers_as_asked(Verdict(no, {"yes": -2.0, "no": -2.0 + DOUBT * 2}), "Q?", ["text"])
    assert answers_as_asked(Verdict('{"answers":"yes"}', {}), "Q?", ["text"])
    assert not answers_as_asked(Verdict(no, {}), "Q?", ["text"])
    assert not answers_as_asked(Verdict("{", {}), "Q?", ["text"])
    leaning_no = Verdict(no, {"yes": -1.0, "no": -1.0 + DOUBT / 2})
    assert not answers_as_asked(leaning_no, "Q?", ["text"], threshold=LATER_DOUBT)  # `doubt` made it strict


HARBOUR = ("The harbour was dredged in 1901. Engineer Tova Lind designed the new quay. Fishermen later sold their "
           "catch at a covered market beside it.\nTwo bridges were added in 1950.")
QUAY = "Engineer Tova Lind designed the new quay."


@pytest.mark.parametrize(("question", "later"), [
    ("Who designed the covered market?", ["cover", "market"]),  # made from the next sentence: strict
    ("Who designed the new quay?", []),
    ("Who designed the quay after the harbour was dredged?", []),  # the sentence before is its context
    ("Who designed the two bridges?", []),  # the next paragraph (a new line) is another part of the document
    ("Who designed the quay in Portvik's covered market?", []),  # the title says what the document is about
])
def test_a_question_whose_words_follow_the_cited_sentence_gets_a_strict_model_check(
        question: str, later: list[str]) -> None:
    """A question is about the part of a paragraph that states its words. Words written only after the cited
    sentence (and not before it, nor in the title) mean the question was made from what follows, so the model
    check withholds the answer at even odds of "no" (`LATER_DOUBT`) instead of `DOUBT`."""
    title = "Portvik covered market" if "Portvik" in question else "Harbour works"
    assert stated_later(question, [(QUAY, HARBOUR)], title) == later
    assert doubt(question, [(QUAY, HARBOUR)], title) == (LATER_DOUBT if later else DOUBT)
    assert doubt(question, [(QUAY, QUAY)], title) == DOUBT  # a sentence shown without its passage: nothing follows


def test_option_scores_are_read_where_the_model_wrote_its_verdict() -> None:
    """llama.cpp and Ollama both list, per generated token, its top alternatives: the scores come from the first
    token that IS an option (not the JSON punctuation before it); an option outside the top ones is very unlikely."""
    tokens = [{"token": '{"', "top_logprobs": [{"token": '{"', "logprob": 0.0}]},
              {"token": "no", "top_logprobs": [{"token": "no", "logprob": -0.3}, {"token": "yes", "logprob": -1.9}]},
              {"token": '"}', "top_logprobs": []}]
    assert option_logprobs(tokens, ("yes", "no")) == {"yes": -1.9, "no": -0.3}
    assert option_logprobs(tokens[:2] + [{"token": "yes", "top_logprobs": []}], ("yes", "maybe")) == {
        "yes": -30.0, "maybe": -30.0}
    assert option_logprobs(tokens[:1], ("yes", "no")) == {}


def test_the_model_judge_accepts_a_claim_only_above_even_odds_and_reads_a_bare_verdict() -> None:
    """The model judge's verdict is its log-odds of "supported" over "not" against `SUPPORT_ODDS`; a server without
    log-probabilities decides by the verdict it wrote; unreadable output or no evidence is never support."""
    yes, claim = '{"verdict":"supported"}', "Claim: The bridge opened in 1932."

    def judged(raw: str, scores: dict[str, float], evidence: str = "It opened in 1932.") -> tuple[bool, float]:
        v = ModelJudge(Verdict(raw, scores, ("supported", "not"), claim)).judge("The bridge opened in 1932.", evidence)
        return v.supported, v.score

    assert judged(yes, {"supported": -0.2, "not": -1.9}) == (True, 1.7)
    assert judged(yes, {"supported": -1.0, "not": -1.0 + SUPPORT_ODDS + 0.1})[0] is False
    assert judged(yes, {}) == (True, 1.0)
    assert judged('{"verdict":"not supported"}', {})[0] is False
    assert judged("{", {})[0] is False
    assert judged(yes, {"supported": 0.0, "not": -9.0}, evidence=" ") == (False, 0.0)


def test_the_strict_judge_needs_both_judges_and_asks_the_model_only_about_what_the_words_support() -> None:
    """Each judge's false accepts are of a different kind, so the strict one accepts only what both accept; the
    model call (seconds) is skipped when the lexical judge (microseconds) already rejects."""
    evidence = "The bridge was opened to traffic in 1932."

    def strict(scores: dict[str, float], claim: str) -> tuple[bool, int]:
        backend = Verdict('{"verdict":"supported"}', scores, ("supported", "not"), "Claim:")
        return StrictJudge(SupportJudge(), ModelJudge(backend)).judge(claim, evidence).supported, len(backend.prompts)

    assert strict({"supported": -0.1, "not": -3.0}, "The bridge opened in 1932.") == (True, 1)
    assert strict({"supported": -3.0, "not": -0.1}, "The bridge opened in 1932.") == (False, 1)
    assert strict({"supported": -0.1, "not": -3.0}, "The bridge opened in 1933.") == (False, 0)


def test_long_evidence_is_cut_to_the_sentences_about_the_claim_in_source_order() -> None:
    """A model judge shown a whole page would take tens of seconds and lose the sentence that matters: it sees the
    sentences sharing most words with the claim, in the order the source has them, within its character budget."""
    filler = [f"Section {i} describes the weather in spring and the colour of the hills." for i in range(60)]
    page = " ".join(filler[:20] + ["The harbour bridge opened to traffic in 1932."] + filler[20:40]
                    + ["The bridge is made of steel."] + filler[40:])
    backend = Verdict('{"verdict":"supported"}', {"supported": -0.1, "not": -3.0}, ("supported", "not"), "Claim:")
    assert ModelJudge(backend).judge("The steel bridge opened in 1932.", page).supported
    shown = backend.prompts[0]
    assert len(shown) < len(page) and len(shown) <= JUDGE_EVIDENCE_CHARS + 200
    assert shown.index("opened to traffic in 1932") < shown.index("made of steel")
    assert focus("The steel bridge opened in 1932.", page, len(page)) == page


@pytest.mark.slow
@pytest.mark.parametrize(("claim", "supported"), [
    ("Anna Berg, a poet, was the library's first director.", True),
    ("A poet headed the library when it opened.", True),
    ("Anna Berg was a painter.", False),
    ("The library opened in 1941.", False),
    ("Anna Berg ran the library until 1970.", False),
])
def test_the_model_judge_reads_a_paraphrase_and_a_changed_detail(model: Backend, claim: str, supported: bool) -> None:
    """The 1.5B model's measured weak spot is left out on purpose and written down in `ModelJudge`: a relation
    turned around with every word kept ("opened before the fire" for after) is often accepted."""
    assert ModelJudge(model).judge(claim, OPENING).supported is supported


def test_an_answer_that_leaves_out_what_its_cited_sentence_says_of_the_question_answers_another_question() -> None:
    """A draft that names none of the question's words, though the sentence it cites states them, reports another
    fact of that sentence (the guilds, asked about the councils); one that restates them, refers back to the
    question's subject, gives the asked-for thing alone, or cites a sentence that words it all differently is left
    to the other checks."""
    guilds = "Six of the guilds are members of the Merchants' League, and nine of the councils form the Harbour Board."
    question = "How many councils form the Harbour Board?"
    ok, why = answerability(question, "Six of the guilds are members of the Merchants' League.", [guilds])
    assert not ok
    assert why == ("the draft answer leaves out what the question asks about (councils, form, harbour, board), which "
                   "its cited text states")
    assert answerability(question, "Nine of the councils form the Harbour Board.", [guilds]) == (True, "ok")
    quay = "The engineer designed the new quay; the market hall opened in the spring after long delays."
    assert not addresses("What did the engineer design?", "The market hall opened in the spring after long delays.",
                         quay)[0]
    assert addresses("What did the engineer design?", "She designed the new quay and its two cranes there.", quay)[0]
    assert addresses("What did the engineer design?", "The new quay with two cranes.", quay)[0]
    assert addresses("Where are most visitors drawn in the region?",
                     "Most of these events are centred on the capital and its harbour towns.",
                     "Most of these events are centred on the capital and its harbour towns.")[0]
