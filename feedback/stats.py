"""Feedback figures per model version, for the admin stats page and the canary.

Each version's totals, and the same figures split between grounded replies
(retrieved passages were in the prompt: ``Message.grounded``) and plain ones.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from chat.models import Message, grounded
from feedback.models import ALL_REASONS, Rating


@dataclass
class Thumbs:
    """Replies served, ratings and thumbs up: of one version, or of one kind of its replies."""

    replies: int = 0
    ratings: int = 0
    ups: int = 0

    @property
    def up_rate(self) -> float | None:
        return self.ups / self.ratings if self.ratings else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.ups, self.ratings)

    def minus(self, part: Thumbs) -> Thumbs:
        return Thumbs(self.replies - part.replies, self.ratings - part.ratings, self.ups - part.ups)


@dataclass
class VersionStats(Thumbs):
    model_version: str = ""
    grounded: Thumbs = field(default_factory=Thumbs)
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    daily: list[tuple[str, int, int]] = field(default_factory=list)  # (day, ups, ratings)

    @property
    def plain(self) -> Thumbs:
        return self.minus(self.grounded)


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion (sane at small counts)."""
    if trials == 0:
        return None
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    margin = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    margin /= denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)


def version_stats() -> list[VersionStats]:
    """Replies served, ratings, thumbs-up rate (in all, grounded and plain), top reasons
    and daily rate per version."""
    by_version = {
        name: VersionStats(**vars(total), model_version=name, grounded=grounded)
        for name, (total, grounded) in thumbs_by_version().items()
    }
    for stats in by_version.values():
        stats.top_reasons = _top_reasons(stats.model_version)
        stats.daily = _daily(stats.model_version)
    return sorted(by_version.values(), key=lambda stats: stats.model_version)


def thumbs_by_version() -> dict[str, tuple[Thumbs, Thumbs]]:
    """Per version: its totals, and those of its grounded replies (plain = the rest)."""
    served = (
        Message.objects.filter(role=Message.Role.ASSISTANT)
        .exclude(model_version="")
        .values("model_version")
        .annotate(count=Count("id"), grounded=Count("id", filter=grounded()))
    )
    by_version: dict[str, tuple[Thumbs, Thumbs]] = {}
    for row in served:
        by_version[row["model_version"]] = (Thumbs(row["count"]), Thumbs(row["grounded"]))
    up, rated_grounded = Q(value=Rating.Value.UP), grounded("message__")
    rated = Rating.objects.values("model_version").annotate(
        count=Count("id"),
        ups=Count("id", filter=up),
        grounded=Count("id", filter=rated_grounded),
        grounded_ups=Count("id", filter=rated_grounded & up),
    )
    for row in rated:
        total, part = by_version.setdefault(row["model_version"], (Thumbs(), Thumbs()))
        total.ratings, total.ups = row["count"], row["ups"]
        part.ratings, part.ups = row["grounded"], row["grounded_ups"]
    return by_version


def _top_reasons(model_version: str, limit: int = 5) -> list[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for reasons in Rating.objects.filter(model_version=model_version).values_list(
        "reasons", flat=True
    ):
        counts.update(reasons)
    return [(ALL_REASONS.get(key, key), count) for key, count in counts.most_common(limit)]


def _daily(model_version: str) -> list[tuple[str, int, int]]:
    rows = (
        Rating.objects.filter(model_version=model_version)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(count=Count("id"), ups=Count("id", filter=Q(value=Rating.Value.UP)))
        .order_by("day")
    )
    return [(row["day"].isoformat(), row["ups"], row["count"]) for row in rows]
