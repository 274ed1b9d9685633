"""reciprocal_rank_fusion: one ranking from several, by rank alone."""

from __future__ import annotations

import pytest

from llm.retrieval.fusion import reciprocal_rank_fusion


def test_it_scores_by_reciprocal_rank():
    """Each list adds 1 / (k + rank), ranks counted from 1."""
    fused = dict(reciprocal_rank_fusion([[7, 8], [8]], k=60))
    assert fused[7] == pytest.approx(1 / 61)
    assert fused[8] == pytest.approx(1 / 62 + 1 / 61)


def test_it_puts_an_id_found_by_both_lists_first():
    """Second in both lists beats first in one."""
    fused = reciprocal_rank_fusion([[1, 3, 4], [2, 3, 5]])
    assert fused[0][0] == 3


def test_it_breaks_ties_by_first_appearance():
    """Equal scores keep the order the ids were first seen in."""
    fused = reciprocal_rank_fusion([[5, 6], [9, 4]])
    assert [item for item, _ in fused] == [5, 9, 6, 4]


def test_it_keeps_only_the_limit():
    """limit cuts the fused list after ranking."""
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 2, 1]], limit=2)
    assert len(fused) == 2
    assert {item for item, _ in fused} <= {1, 2, 3}


def test_it_fuses_nothing_to_nothing():
    """No lists, or empty ones, give an empty ranking."""
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []


def test_it_lets_a_smaller_k_favour_the_top_ranks():
    """With a small k, one first place outweighs two middling places."""
    rankings = [[1, 3, 2], [4, 5, 6, 2]]
    assert reciprocal_rank_fusion(rankings, k=1)[0][0] == 1
    assert reciprocal_rank_fusion(rankings, k=60)[0][0] == 2
