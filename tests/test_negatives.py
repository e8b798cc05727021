"""Hard negatives: the false-negative guard keeps only documents scoring clearly below the positive."""

from __future__ import annotations

import pytest

from irtune.training.negatives import MinedCandidates


@pytest.mark.parametrize(
    ("positive", "expected"),
    [
        # positive 0.8, margin 0.05: ceiling 0.76
        (0.8, ["n3", "n4", "n5"]),
        # positive -0.2: ceiling -0.21 (pos - |pos| * margin, as sentence-transformers' PR #3821);
        # pos * (1 - margin) = -0.19 would keep n4, which scores above the positive itself
        (-0.2, ["n5"]),
    ],
)
def test_a_negative_scores_at_most_the_positive_minus_its_margin(positive, expected):
    mined = MinedCandidates(
        {"q": [("n1", 0.9), ("n2", 0.77), ("n3", 0.75), ("n4", -0.195), ("n5", -0.25)]},
        {"q": {"p": positive}},
    )
    assert mined.negatives_for("q", "p", occurrence=0, count=5, relative_margin=0.05) == expected
