"""Held-out thumbs: did the candidate make up-rated replies likelier and down-rated ones less so?

A thumb is one reply with a label, so there is no pair to compare within. What
KTO and DPO call the implied reward of a reply is its log-likelihood change,
candidate minus parent (β × that, β aside). On held-out thumbs, learning the
feedback means the up-rated replies' changes rank above the down-rated ones'.
Three checks read that, each "not applicable" without both labels held out:

- ``thumbs_margin``: mean change of up-rated minus mean change of down-rated
  replies, in nats (the implied reward margin);
- ``thumbs_ranking``: the share of (up, down) combinations ranked right (the
  AUC), which must also be unlikely under labels that mean nothing (a one-sided
  Mann–Whitney test): random thumbs must not pass by luck;
- ``thumbs_up_likelier``: the up-rated replies held: their median change is
  above ``-up_rated_fall_share`` of the margin. The margin can grow while both
  kinds fall (the failure DPO showed, docs/training.md); the median resists the
  few flipped labels that noisy feedback holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean, median
from typing import Any

from llm.evaluation.report import Check
from llm.evaluation.scoring import completion_sequence, summed_log_probs
from llm.evaluation.thresholds import GateThresholds


@dataclass
class ThumbScores:
    """Each held-out thumb's label and its reply's log-likelihood under both models."""

    labels: list[bool]
    parent_logps: list[float]
    candidate_logps: list[float]

    @property
    def changes(self) -> list[float]:
        return [c - p for p, c in zip(self.parent_logps, self.candidate_logps, strict=True)]

    def by_label(self, label: bool) -> list[float]:
        return [d for d, up in zip(self.changes, self.labels, strict=True) if up == label]

    def counts(self) -> tuple[int, int]:
        up = sum(self.labels)
        return up, len(self.labels) - up


def thumb_scores(scoring, parent: str | None, candidate: str, rows: Sequence[Mapping[str, Any]]):
    """Score every held-out thumb's reply under the parent and the candidate."""
    sequences = [completion_sequence(scoring.tokenizer, r["prompt"], r["completion"]) for r in rows]
    return ThumbScores(
        labels=[bool(row["label"]) for row in rows],
        parent_logps=summed_log_probs(scoring, parent, sequences),
        candidate_logps=summed_log_probs(scoring, candidate, sequences),
    )


def ranking(ups: Sequence[float], downs: Sequence[float]) -> tuple[float, float]:
    """(AUC, one-sided p-value): P(up change > down change), ties half, and how likely by chance.

    The p-value is the Mann–Whitney U test's normal approximation (no tie
    correction, which only makes it more cautious here).
    """
    wins = sum((u > d) + 0.5 * (u == d) for u in ups for d in downs)
    n, m = len(ups), len(downs)
    auc = wins / (n * m)
    spread = math.sqrt(n * m * (n + m + 1) / 12)
    z = (wins - n * m / 2) / spread
    return auc, 0.5 * math.erfc(z / math.sqrt(2))


def thumbs_checks(scores: ThumbScores | None, t: GateThresholds) -> list[Check]:
    names = ("thumbs_margin", "thumbs_ranking", "thumbs_up_likelier")
    up, down = scores.counts() if scores else (0, 0)
    if min(up, down) < t.min_heldout_thumbs_per_label:
        detail = (
            f"not applicable: {up} up-rated and {down} down-rated held-out thumbs "
            f"(at least {t.min_heldout_thumbs_per_label} of each needed)"
        )
        return [Check.not_applicable(name, detail) for name in names]
    return [_margin(scores, t), _ranking(scores, t), _up_likelier(scores, t)]


def _margin(scores: ThumbScores, t: GateThresholds) -> Check:
    ups, downs = scores.by_label(True), scores.by_label(False)
    gap = fmean(ups) - fmean(downs)
    detail = (
        f"up-rated replies {fmean(ups):+.2f} nats, down-rated {fmean(downs):+.2f} "
        f"(log-likelihood change from the parent, {len(ups)} up, {len(downs)} down)"
    )
    return Check("thumbs_margin", gap >= t.min_margin_gain, gap, t.min_margin_gain, detail)


def _ranking(scores: ThumbScores, t: GateThresholds) -> Check:
    auc, p_value = ranking(scores.by_label(True), scores.by_label(False))
    passed = auc >= t.min_win_rate and p_value <= t.max_thumbs_p_value
    detail = (
        f"an up-rated reply gained more than a down-rated one in {auc:.0%} of "
        f"combinations (p = {p_value:.3f} if the labels meant nothing; at most "
        f"{t.max_thumbs_p_value:g})"
    )
    return Check("thumbs_ranking", passed, auc, t.min_win_rate, detail)


def _up_likelier(scores: ThumbScores, t: GateThresholds) -> Check:
    ups, downs = scores.by_label(True), scores.by_label(False)
    middle = median(ups)
    likelier = sum(change > 0 for change in ups)
    gap = max(fmean(ups) - fmean(downs), 0.0)
    threshold = t.min_up_rated_change - t.up_rated_fall_share * gap
    detail = (
        f"{likelier} of {len(ups)} up-rated replies became likelier (median change "
        f"{middle:+.2f} nats, allowed down to {threshold:+.2f}: {t.up_rated_fall_share:g} of the "
        f"{gap:.2f}-nat margin); a margin made by both falling does not count"
    )
    return Check("thumbs_up_likelier", middle > threshold, middle, threshold, detail)


def thumbs_metrics(scores: ThumbScores | None) -> dict[str, Any]:
    if scores is None or not scores.labels:
        return {"heldout_thumbs": 0}
    up, down = scores.counts()
    figures: dict[str, Any] = {"heldout_thumbs": len(scores.labels), "heldout_thumbs_up": up}
    if up:
        figures["up_rated_change_mean"] = fmean(scores.by_label(True))
    if down:
        figures["down_rated_change_mean"] = fmean(scores.by_label(False))
    if up and down:
        figures["thumbs_implied_margin"] = (
            figures["up_rated_change_mean"] - figures["down_rated_change_mean"]
        )
    return figures
