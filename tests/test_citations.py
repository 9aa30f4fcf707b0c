from __future__ import annotations

from ragchat.citations import check, markers


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
