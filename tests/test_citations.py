from __future__ import annotations

from ragchat.citations import check, declines, markers, review


def test_markers_in_order_of_first_use():
    assert markers("A [2]. B [1][2]. C [10].") == [2, 1, 10]


def test_marker_without_source_is_flagged():
    assert check("Yes [1], and also [3].", ["one", "two"]) == [
        "[3] points to no source (there are 2)"
    ]


def test_quotation_must_occur_in_the_cited_excerpt():
    sources = ["The fee is seventy-five crowns per household.", "Meetings are held in March."]
    assert check('It says "seventy-five crowns per household" [1].', sources) == []
    assert (
        check("It says “Meetings are  held in march” [2].", sources) == []
    )  # spacing, case, quotes
    assert check('It says "seventy-five crowns per household" [2].', sources) == [
        'quotation "seventy-five crowns per household" is not in [2]'
    ]
    assert check('They wrote "a hundred crowns for everyone".', sources) == [
        'quotation "a hundred crowns for everyone" is not in any excerpt'
    ]


def test_short_quotes_are_not_checked():
    assert check('The word "fee" appears [1].', ["nothing"]) == []


def test_numbers_leave_out_markers_and_list_numbering():
    from ragchat.citations import numbers

    text = "1. Revenue [2] was $1,800.5 million in FY2023,\n2) up 12.5% on 0800 555 0199."
    assert numbers(text) == ["1,800.5", "2023", "12.5", "0800", "555", "0199"]


def test_a_number_no_excerpt_holds_is_flagged():
    sources = ["Each tour takes about forty minutes.", "Capital spending: 1,800 (in millions)."]
    flagged = review("Restoring takes about 4 days [1].", sources)
    assert flagged.unsupported_numbers == ["4"] and not flagged.citations_valid
    assert flagged.problems == ["number 4 not found in any excerpt"]
    fine = review(
        "A tour takes 40 minutes [1]; capex was $1.8 billion (1800 million) [2].", sources
    )
    assert fine.unsupported_numbers == [] and fine.citations_valid and not fine.uncited
    assert review(
        "In 2023 it was 1,800 [2].", sources, question="What was it in 2023?"
    ).citations_valid
    assert review("It was 1,812 [2].", sources).unsupported_numbers == ["1,812"]
    assert review("About 1,780 [2].", sources).unsupported_numbers == ["1,780"]  # no tolerance here


def test_an_answer_that_cites_nothing_is_flagged_unless_it_declines():
    sources = ["The fee is 75 crowns."]
    assert review("The fee is 75 crowns.", sources).uncited
    assert review("The fee is 75 crowns.", sources).problems == ["the answer cites no excerpt"]
    assert not review("The documents do not say what the fee is.", sources).uncited
    assert not review("The fee is 75 crowns [1].", sources).uncited
    assert not review("Anything.", []).uncited  # no excerpts were given


def test_declines():
    assert declines("The excerpts do not mention a restore time.")
    assert declines("I cannot find that in the documents.")
    assert not declines("The restore takes forty minutes [1].")
