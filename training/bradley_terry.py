"""Bradley–Terry ratings with bootstrap intervals, as Chatbot Arena ranks models.

Plain Python and numpy, no Django. Each version i has a strength p_i and
P(i beats j) = p_i / (p_i + p_j). A tie counts half a win to each side. The
strengths are fitted by Hunter's MM algorithm, with one virtual tie of every
version against a fixed anchor of strength 1: a version that never won still
gets a finite score, and scores are on one scale across resamples. Scores are
shown Elo-style, 1000 + 400·log10(p): 1000 is the anchor, +400 is 10:1 odds.

The intervals are a parametric bootstrap: each resample draws as many votes as
there are (which two versions met, with replacement) and decides each by the
fitted odds. Resampling the observed outcomes instead gives a zero-width
interval whenever every vote agreed (one vote, or ten wins out of ten), a
certainty the votes do not hold. A version with fewer than ``MIN_VOTES`` votes
gets no interval at all: too few to say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ANCHOR_GAMES = 1.0  # virtual games of each version against the anchor (half won)
ITERATIONS = 200
TOLERANCE = 1e-9
MIN_VOTES = 10  # a version's votes before its interval means anything


@dataclass(frozen=True)
class Outcome:
    """One vote: ``score`` is 1 if ``first`` won, 0 if ``second`` won, 0.5 a tie."""

    first: str
    second: str
    score: float


@dataclass(frozen=True)
class Standing:
    name: str
    score: float
    low: float | None  # bootstrap 2.5th percentile; None below MIN_VOTES votes
    high: float | None  # bootstrap 97.5th percentile; None below MIN_VOTES votes
    votes: int
    wins: float  # ties count half


def strengths(wins: np.ndarray, games: np.ndarray) -> np.ndarray:
    """MM fit. ``wins[..., i, j]``: i's wins over j (ties half); ``games[..., i, j]``:
    games of i and j. Leading axes are independent fits (the bootstrap's resamples)."""
    strength = np.ones(wins.shape[:-1])
    total_wins = wins.sum(axis=-1) + ANCHOR_GAMES / 2
    for _ in range(ITERATIONS):
        pair_sums = strength[..., :, None] + strength[..., None, :]
        denominator = (games / pair_sums).sum(axis=-1) + ANCHOR_GAMES / (strength + 1.0)
        updated = total_wins / denominator
        done = np.max(np.abs(np.log(updated) - np.log(strength))) < TOLERANCE
        strength = updated
        if done:
            break
    return strength


def elo_scale(strength: np.ndarray) -> np.ndarray:
    return 1000.0 + 400.0 * np.log10(strength)


def standings(outcomes: Sequence[Outcome], *, samples: int = 1000, seed: int = 0) -> list[Standing]:
    """Every version that played, best first, with its bootstrap 95% interval.

    A resample draws as many votes as there are, with replacement, each decided
    by the fitted odds of its two versions; all resamples are fitted at once
    (one array per resample along the first axis).
    """
    names = sorted({o.first for o in outcomes} | {o.second for o in outcomes})
    if not names:
        return []
    index = {name: i for i, name in enumerate(names)}
    first = np.array([index[o.first] for o in outcomes])
    second = np.array([index[o.second] for o in outcomes])
    score = np.array([o.score for o in outcomes], dtype=float)
    wins, games = _tables(len(names), first[None], second[None], score[None])
    fitted = strengths(wins, games)[0]
    point = elo_scale(fitted)
    low, high = point, point
    if samples:
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(outcomes), (samples, len(outcomes)))
        odds = fitted[first[picks]] / (fitted[first[picks]] + fitted[second[picks]])
        drawn = (rng.random(picks.shape) < odds).astype(float)
        resampled = elo_scale(strengths(*_tables(len(names), first[picks], second[picks], drawn)))
        low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
    votes = games[0].sum(axis=-1)
    rows = [
        Standing(
            name=name,
            score=float(point[i]),
            low=float(low[i]) if votes[i] >= MIN_VOTES else None,
            high=float(high[i]) if votes[i] >= MIN_VOTES else None,
            votes=int(votes[i]),
            wins=float(wins[0, i].sum()),
        )
        for i, name in enumerate(names)
    ]
    return sorted(rows, key=lambda row: -row.score)


def _tables(k: int, first: np.ndarray, second: np.ndarray, score: np.ndarray):
    """Win and game tables per row of ``first``/``second``/``score`` (one row per resample)."""
    rows = np.arange(first.shape[0])[:, None]
    wins = np.zeros((first.shape[0], k, k))
    games = np.zeros((first.shape[0], k, k))
    np.add.at(wins, (rows, first, second), score)
    np.add.at(wins, (rows, second, first), 1.0 - score)
    np.add.at(games, (rows, first, second), 1.0)
    np.add.at(games, (rows, second, first), 1.0)
    return wins, games
