"""The arena: two versions answer one message side by side, anonymously; users vote.

Which two: the version in service, and a challenger. A candidate held for the
arena (``ARENA_GATE_VOTES``) comes first, then the active version's parent,
then any earlier version that served. Staff may instead choose the two
versions, whatever their status (a candidate, a rejected one): a comparison,
not a promotion, so what users are served stays as it is. Sides are shuffled
per match. A vote for
one side becomes an ``arena`` preference pair, pending review like any other.
The leaderboard ranks versions by Bradley–Terry with bootstrap 95% intervals.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from chat.models import Message
from chat.refusals import Refusal
from feedback.models import FeedbackProfile, PreferencePair, ReviewStatus
from feedback.stats import wilson_interval
from training import services
from training.bradley_terry import Outcome, standings
from training.models import ArenaMatch, ModelVersion

SCORES = {ArenaMatch.Winner.A: 1.0, ArenaMatch.Winner.B: 0.0}  # anything else: a tie
FINISHED = (Message.Status.COMPLETE, Message.Status.STOPPED)


def arena_allowed(*, user: AbstractBaseUser) -> bool:
    """Staff, and users who opted in on their settings page."""
    if user.is_staff:
        return True
    return FeedbackProfile.objects.filter(user=user, arena_opt_in=True).exists()


def arena_versions(*, rng: random.Random | None = None) -> tuple[ModelVersion, ModelVersion]:
    """The two versions of a new match, in random order (side A, side B)."""
    services.base_version_ensure()
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    challenger = _challenger(active)
    if challenger is None:
        raise Refusal("arena_unavailable", UNAVAILABLE)
    pair = [active, challenger]
    (rng or random).shuffle(pair)
    return pair[0], pair[1]


UNAVAILABLE = (
    "The arena needs two model versions, and only the one in service can answer so far. "
    "Staff can choose any two versions to compare (a candidate or a rejected one too) "
    "above the question box, or train a new version with Train now on the Learning "
    "dashboard."
)


def arena_versions_chosen(
    *, user: AbstractBaseUser, version_ids: tuple[int, int], rng: random.Random | None = None
) -> tuple[ModelVersion, ModelVersion]:
    """Two versions staff chose to compare, any status, in random order (side A, side B).

    Nothing is promoted: the versions answer this match only.
    """
    if not user.is_staff:
        raise Refusal("forbidden", "Only staff choose the versions to compare.", "versions")
    if version_ids[0] == version_ids[1]:
        raise Refusal("invalid", "Choose two different versions.", "versions")
    found = {version.pk: version for version in ModelVersion.objects.filter(pk__in=version_ids)}
    if len(found) != 2:
        raise Refusal("not_found", "No such model version.", "versions")
    pair = [found[version_ids[0]], found[version_ids[1]]]
    (rng or random).shuffle(pair)
    return pair[0], pair[1]


def arena_choices() -> list[ModelVersion]:
    """The versions staff may choose from, newest first: every status."""
    services.base_version_ensure()
    return list(ModelVersion.objects.order_by("-created_at", "-id"))


def arena_match_create(
    *,
    user: AbstractBaseUser,
    prompt_message: Message,
    replies: tuple[Message, Message],
    versions: tuple[ModelVersion, ModelVersion],
) -> ArenaMatch:
    return ArenaMatch.objects.create(
        user=user,
        prompt_message=prompt_message,
        reply_a=replies[0],
        reply_b=replies[1],
        version_a=versions[0],
        version_b=versions[1],
    )


def arena_vote(*, user: AbstractBaseUser, match_id: object, winner: object) -> ArenaMatch:
    """Record the user's vote once; a decisive one becomes a preference pair."""
    if winner not in ArenaMatch.Winner.values:
        raise Refusal("invalid", "winner must be a, b, tie or both_bad.", "winner")
    if isinstance(match_id, bool) or not isinstance(match_id, int):
        raise Refusal("invalid", "match must be an integer id.", "match")
    with transaction.atomic():
        match = (
            ArenaMatch.objects.select_for_update()
            .select_related("reply_a", "reply_b", "version_a", "version_b")
            .filter(pk=match_id, user=user)
            .first()
        )
        if match is None:
            raise Refusal("not_found", "No such arena match (or it is not yours).", "match")
        if match.winner:
            raise Refusal("already_voted", "You already voted on this match.", "match")
        if match.reply_a.status not in FINISHED or match.reply_b.status not in FINISHED:
            raise Refusal("not_finished", "Wait until both replies are finished.", "match")
        match.winner, match.voted_at = winner, timezone.now()
        match.pair = _pair(match)
        match.save(update_fields=["winner", "voted_at", "pair"])
    return match


def match_data(match: ArenaMatch, *, reveal: bool) -> dict:
    """A match for its voter: the versions' names only once the vote is in."""
    data = {
        "id": match.pk,
        "prompt": match.prompt_message_id,
        "a": match.reply_a_id,
        "b": match.reply_b_id,
        "winner": match.winner or None,
    }
    if reveal:
        data["versions"] = {"a": match.version_a.name, "b": match.version_b.name}
    return data


@dataclass(frozen=True)
class ArenaVerdict:
    """How a candidate fared against its parent in the arena."""

    votes: int
    win_share: float | None  # candidate wins + half the ties, over votes
    low: float | None
    high: float | None

    @property
    def loses(self) -> bool:
        return self.high is not None and self.high < 0.5


def head_to_head(*, candidate: ModelVersion, parent: ModelVersion) -> ArenaVerdict:
    votes = ArenaMatch.objects.exclude(winner="").filter(
        version_a__in=[candidate, parent], version_b__in=[candidate, parent]
    )
    points, count = 0.0, 0
    for match in votes.only("winner", "version_a_id"):
        score = SCORES.get(match.winner, 0.5)
        points += score if match.version_a_id == candidate.pk else 1.0 - score
        count += 1
    if count == 0:
        return ArenaVerdict(0, None, None, None)
    # Wilson on whole wins: ties split as half a win each side.
    low, high = wilson_interval(points, count)
    return ArenaVerdict(count, points / count, low, high)


def arena_check(*, candidate: ModelVersion, parent: ModelVersion | None) -> dict:
    """The gate's arena check, as a gate report's check: judged once enough votes exist."""
    needed = settings.ARENA_GATE_VOTES
    if parent is None:
        return _check(True, None, "no parent version to compare with")
    verdict = head_to_head(candidate=candidate, parent=parent)
    if needed <= 0:
        return _check(True, verdict.win_share, "not required (ARENA_GATE_VOTES is 0)")
    if verdict.votes < needed:
        return _check(True, verdict.win_share, f"not judged: {verdict.votes} of {needed} votes")
    detail = (
        f"won {verdict.win_share:.0%} of {verdict.votes} votes against {parent.name} "
        f"(95% interval {verdict.low:.0%}–{verdict.high:.0%})"
    )
    return _check(not verdict.loses, verdict.win_share, detail)


def held_candidates_decide() -> list[ModelVersion]:
    """Promote or reject each candidate held for the arena once its votes are in."""
    decided = []
    if settings.ARENA_GATE_VOTES <= 0:
        return decided
    for version in ModelVersion.objects.filter(
        status=ModelVersion.Status.CANDIDATE, metrics__arena_hold=True
    ).select_related("parent"):
        check = arena_check(candidate=version, parent=version.parent)
        if check["detail"].startswith("not judged"):
            continue
        report = version.gate_report or {"passed": True, "checks": []}
        checks = [c for c in report.get("checks", []) if c["name"] != "arena_not_worse"]
        version.gate_report = {**report, "checks": [*checks, check], "passed": check["passed"]}
        version.save(update_fields=["gate_report"])
        if check["passed"]:
            services.version_activate(version=version)
        else:
            services.version_reject(version=version)
        decided.append(version)
    return decided


def leaderboard() -> list[dict]:
    """Versions by Bradley–Terry score, with bootstrap 95% intervals and vote counts.

    Cached per state of the votes (their count and the latest vote time, one cheap
    query): the bootstrap costs about a second per 10,000 votes.
    """
    voted = ArenaMatch.objects.exclude(winner="")
    state = voted.aggregate(count=Count("id"), latest=Max("voted_at"), last_id=Max("id"))
    key = f"arena:leaderboard:{state['count']}:{state['last_id']}:{state['latest']}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    votes = voted.values_list("version_a__name", "version_b__name", "winner")
    outcomes = [Outcome(a, b, SCORES.get(winner, 0.5)) for a, b, winner in votes]
    rows = [
        asdict(row) for row in standings(outcomes, samples=settings.ARENA_BOOTSTRAP_SAMPLES, seed=0)
    ]
    cache.set(key, rows, 3600)
    return rows


# -- helpers ----------------------------------------------------------------------


def _challenger(active: ModelVersion | None) -> ModelVersion | None:
    others = ModelVersion.objects.exclude(status=ModelVersion.Status.REJECTED)
    if active is not None:
        others = others.exclude(pk=active.pk)
    held = others.filter(status=ModelVersion.Status.CANDIDATE, metrics__arena_hold=True)
    if held.exists():
        return random.choice(list(held))
    if active is not None and active.parent_id and others.filter(pk=active.parent_id).exists():
        return active.parent
    earlier = list(others.filter(status=ModelVersion.Status.RETIRED))
    return random.choice(earlier) if earlier else None


def _pair(match: ArenaMatch) -> PreferencePair | None:
    if match.winner not in SCORES:
        return None  # a tie or both bad: no preference to learn from
    chosen, rejected = (
        (match.reply_a, match.reply_b)
        if match.winner == ArenaMatch.Winner.A
        else (match.reply_b, match.reply_a)
    )
    pair, _ = PreferencePair.objects.get_or_create(
        user=match.user,
        chosen=chosen,
        rejected=rejected,
        source=PreferencePair.Source.ARENA,
        defaults={
            "conversation_id": chosen.conversation_id,
            "prompt_message_id": match.prompt_message_id,
            "status": ReviewStatus.PENDING,
        },
    )
    return pair


def _check(passed: bool, value: float | None, detail: str) -> dict:
    return {
        "name": "arena_not_worse",
        "passed": passed,
        "value": value,
        "threshold": 0.5,
        "detail": detail,
    }
