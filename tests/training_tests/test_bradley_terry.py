"""Bradley–Terry standings with bootstrap intervals (training/bradley_terry.py)."""

from __future__ import annotations

import math
import random

from training.bradley_terry import MIN_VOTES, Outcome, standings


def simulated(strengths: dict[str, float], games: int, seed: int = 1) -> list[Outcome]:
    rng = random.Random(seed)
    names = list(strengths)
    outcomes = []
    for _ in range(games):
        first, second = rng.sample(names, 2)
        p = strengths[first] / (strengths[first] + strengths[second])
        outcomes.append(Outcome(first, second, 1.0 if rng.random() < p else 0.0))
    return outcomes


def test_it_recovers_known_strengths_within_its_intervals():
    rows = standings(simulated({"a": 1.0, "b": 3.0, "c": 0.5}, 3000), samples=300)
    assert [row.name for row in rows] == ["b", "a", "c"]
    by_name = {row.name: row for row in rows}
    gap = by_name["b"].score - by_name["a"].score
    assert abs(gap - 400 * math.log10(3)) < 25  # 190.8 Elo points for 3:1 odds
    for row in rows:
        assert row.low < row.score < row.high
    assert sum(row.votes for row in rows) == 2 * 3000


def test_intervals_narrow_with_more_votes():
    few = standings(simulated({"a": 1.0, "b": 2.0}, 40), samples=300)
    many = standings(simulated({"a": 1.0, "b": 2.0}, 4000), samples=300)
    width = lambda rows: rows[0].high - rows[0].low  # noqa: E731
    assert width(many) < width(few) / 4


def test_ties_count_half_and_an_undefeated_version_stays_finite():
    tied = standings([Outcome("a", "b", 0.5)] * 10, samples=50)
    assert abs(tied[0].score - tied[1].score) < 1e-6
    assert tied[0].wins == 5.0
    swept = standings([Outcome("a", "b", 1.0)] * 5, samples=50)
    assert swept[0].name == "a" and math.isfinite(swept[1].score)


def test_no_votes_no_standings():
    assert standings([], samples=10) == []


def test_one_vote_gives_no_interval_and_unanimous_votes_still_a_wide_one():
    """Too few votes: no interval ("1131–1131" after one vote claimed certainty).
    Ten votes that all agree: an interval of real width, not a point."""
    one = standings([Outcome("a", "b", 1.0)], samples=200)
    assert all(row.low is None and row.high is None for row in one)
    swept = standings([Outcome("a", "b", 1.0)] * MIN_VOTES, samples=200)
    for row in swept:
        assert row.high - row.low > 100  # Elo points: ten votes do not pin a score down
        assert row.low <= row.score <= row.high
