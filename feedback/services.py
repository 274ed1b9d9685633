"""Writes for feedback: ratings, preference pairs, review, per-user settings."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from chat.models import Message
from chat.refusals import Refusal
from feedback.models import (
    DOWN_REASONS,
    GROUNDED_ONLY_REASONS,
    UP_REASONS,
    FeedbackProfile,
    PreferencePair,
    Rating,
    ReviewAction,
    ReviewStatus,
)

MAX_COMMENT_CHARS = 2000
RATEABLE = (Message.Status.COMPLETE, Message.Status.STOPPED)
_VALUES = {"up": Rating.Value.UP, "down": Rating.Value.DOWN}


def rating_submit(
    *,
    user: AbstractBaseUser,
    message_id: object,
    value: object,
    reasons: object = None,
    comment: object = None,
) -> Rating | None:
    """Rate a reply ``"up"`` or ``"down"``, or clear the rating with ``None``."""
    rating = None
    if value is not None:
        rating_value = _rating_value(value)
        reasons = _clean_reasons(reasons, rating_value)
        comment = _clean_comment(comment)
    reply = _own_reply(user, message_id)
    if value is not None:
        _check_reasons_fit(reasons, reply)
        rating = Rating(
            user=user,
            message_id=reply.id,
            value=rating_value,
            reasons=reasons,
            comment=comment,
            model_version=reply.model_version,
            status=initial_review_status(reply.author_trusted),
            updated_at=timezone.now(),
        )
    # Without siblings no pair can change: one statement, atomic on its own (a
    # clearing deletes the rating's review actions too: two statements).
    with transaction.atomic() if reply.sibling_count > 1 or rating is None else nullcontext():
        if rating is None:
            _execute(_RATING_ACTIONS_DELETE_SQL, {"user": user.pk, "message": reply.id})
            _execute(_RATING_DELETE_SQL, {"user": user.pk, "message": reply.id})
        else:
            _rating_upsert(rating)
        if reply.sibling_count > 1:
            pairs_derive(user_id=user.pk, prompt_message_id=reply.parent_id)
    return rating


def preference_submit(*, user: AbstractBaseUser, chosen_id: object) -> list[PreferencePair]:
    """The user marks one sibling reply better than the others under the same message."""
    chosen = _own_reply(
        user, chosen_id, unfinished="Wait until the reply is finished to choose it."
    )
    # A reply the user wrote is already preferred over the one it rewrote (a
    # `written` pair); it takes no part in choices between the model's replies.
    siblings = list(
        Message.objects.filter(
            parent_id=chosen.parent_id, status__in=RATEABLE, written_by_user=False
        ).exclude(pk=chosen.id)
    )
    if not siblings:
        raise Refusal(
            "no_siblings", "Regenerate the reply first, then pick the better one.", "message"
        )
    status = initial_review_status(chosen.author_trusted)
    with transaction.atomic():
        # A new choice under this message replaces the previous one.
        PreferencePair.objects.filter(
            user=user, prompt_message_id=chosen.parent_id, source=PreferencePair.Source.EXPLICIT
        ).delete()
        return PreferencePair.objects.bulk_create(
            PreferencePair(
                user=user,
                conversation_id=chosen.conversation_id,
                prompt_message_id=chosen.parent_id,
                chosen_id=chosen.id,
                rejected=sibling,
                source=PreferencePair.Source.EXPLICIT,
                status=status,
            )
            for sibling in siblings
        )


def pairs_derive(*, user_id: int, prompt_message_id: int | None) -> None:
    """Rebuild the derived pairs under one user message from its replies' ratings.

    Every thumbs-up sibling is preferred over every thumbs-down sibling. A pair
    is approved only when both ratings are, excluded when either is, unless staff
    decided the pair itself (the review queue, the admin): that decision stays
    for as long as the two thumbs still make the pair.
    """
    if prompt_message_id is None:
        return
    params = {
        "user": user_id,
        "prompt": prompt_message_id,
        "derived": PreferencePair.Source.DERIVED.value,
        "up": Rating.Value.UP.value,
        "down": Rating.Value.DOWN.value,
        **{status.value: status.value for status in ReviewStatus},
        "now": connection.ops.adapt_datetimefield_value(timezone.now()),
    }
    # Joins the caller's transaction (a rating's upsert) or opens one.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # Two tabs rating siblings at once would each miss the other's rating:
        # derivations under one message take turns (SQLite has one writer anyway).
        # NO KEY: new replies and explicit pairs pointing at the message need not wait.
        if connection.features.has_select_for_update:
            lock = connection.ops.for_update_sql(no_key=True)
            cursor.execute(_PROMPT_LOCK_SQL + lock, params)
        cursor.execute(_PAIR_ACTIONS_DELETE_SQL, params)
        cursor.execute(_PAIRS_DELETE_SQL, params)
        cursor.execute(_PAIRS_DERIVE_SQL, params)


def ratings_review(
    *, ratings: QuerySet[Rating], reviewer: AbstractBaseUser, status: ReviewStatus
) -> int:
    """Approve or exclude ratings in bulk, recording who did it and when (one action each)."""
    with transaction.atomic():
        # Sorted by message: two reviews at once take the derivation locks in one order.
        affected = sorted(
            set(ratings.values_list("message__parent_id", "user_id")),
            key=lambda key: (key[0] is None, key),
        )
        previous = list(ratings.values_list("pk", "status"))
        count = ratings.update(status=status, reviewed_by=reviewer, reviewed_at=timezone.now())
        ReviewAction.objects.bulk_create(
            ReviewAction(rating_id=pk, reviewer=reviewer, previous_status=old, status=status)
            for pk, old in previous
        )
        for prompt_message_id, user_id in affected:
            pairs_derive(user_id=user_id, prompt_message_id=prompt_message_id)
    return count


def pairs_review(
    *, pairs: QuerySet[PreferencePair], reviewer: AbstractBaseUser, status: ReviewStatus
) -> int:
    return pairs.update(status=status, reviewed_by=reviewer, reviewed_at=timezone.now())


def profile_update(
    *, user: AbstractBaseUser, share_for_training: bool, arena_opt_in: bool | None = None
) -> FeedbackProfile:
    """Save the user's choices; ``arena_opt_in`` None keeps the arena choice as it was."""
    if not isinstance(share_for_training, bool):
        raise Refusal("invalid", "share_for_training must be true or false.", "share_for_training")
    if arena_opt_in is not None and not isinstance(arena_opt_in, bool):
        raise Refusal("invalid", "arena_opt_in must be true or false.", "arena_opt_in")
    defaults = {"share_for_training": share_for_training}
    if arena_opt_in is not None:
        defaults["arena_opt_in"] = arena_opt_in
    profile, _ = FeedbackProfile.objects.update_or_create(user=user, defaults=defaults)
    return profile


# -- helpers ----------------------------------------------------------------------


# The rating hot path is plain SQL: the ORM's query compilation cost more than
# the database work (benchmarks/ratings.py). Tables and columns are Django's defaults.
_OWN_REPLY_SQL = """
    SELECT m.id, m.parent_id, m.conversation_id, m.status, m.model_version,
           (SELECT COUNT(*) FROM chat_message s WHERE s.parent_id = m.parent_id)
               AS sibling_count,
           m.sources <> '[]' AS grounded,  -- Message.grounded
           m.written_by_user,
           EXISTS (SELECT 1 FROM feedback_feedbackprofile p
                   WHERE p.user_id = %(user)s AND p.trusted) AS author_trusted
    FROM chat_message m JOIN chat_conversation c ON c.id = m.conversation_id
    WHERE m.id = %(message)s AND c.owner_id = %(user)s AND m.role = %(role)s
"""
# Created or changed in one statement; a change keeps created_at and resets review.
_RATING_UPSERT_SQL = """
    INSERT INTO feedback_rating (user_id, message_id, value, reasons, comment, model_version,
                                 status, created_at, updated_at)
    VALUES (%(user)s, %(message)s, %(value)s, %(reasons)s, %(comment)s, %(model_version)s,
            %(status)s, %(now)s, %(now)s)
    ON CONFLICT (user_id, message_id) DO UPDATE SET
        value = excluded.value, reasons = excluded.reasons, comment = excluded.comment,
        status = excluded.status, reviewed_by_id = NULL, reviewed_at = NULL,
        updated_at = excluded.updated_at
"""
# Its review actions go with a cleared rating (raw SQL has no ORM cascade).
_RATING_ACTIONS_DELETE_SQL = """
    DELETE FROM feedback_reviewaction WHERE rating_id IN (
        SELECT id FROM feedback_rating WHERE user_id = %(user)s AND message_id = %(message)s)
"""
_RATING_DELETE_SQL = (
    "DELETE FROM feedback_rating WHERE user_id = %(user)s AND message_id = %(message)s"
)
_PROMPT_LOCK_SQL = "SELECT id FROM chat_message WHERE id = %(prompt)s "
# Pairs staff decided (reviewed_by set) survive while their two thumbs still hold;
# the insert then skips them (the unique constraint), keeping id and decision.
_STALE_PAIRS_SQL = """
    SELECT id FROM feedback_preferencepair p
    WHERE p.user_id = %(user)s AND p.prompt_message_id = %(prompt)s AND p.source = %(derived)s
      AND (p.reviewed_by_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM feedback_rating up JOIN feedback_rating down ON down.user_id = up.user_id
          WHERE up.user_id = %(user)s AND up.message_id = p.chosen_id AND up.value = %(up)s
            AND down.message_id = p.rejected_id AND down.value = %(down)s))
"""
# A pair's review actions go with it (raw SQL has no ORM cascade).
_PAIR_ACTIONS_DELETE_SQL = (
    f"DELETE FROM feedback_reviewaction WHERE pair_id IN ({_STALE_PAIRS_SQL})"
)
_PAIRS_DELETE_SQL = f"DELETE FROM feedback_preferencepair WHERE id IN ({_STALE_PAIRS_SQL})"
_PAIRS_DERIVE_SQL = """
    INSERT INTO feedback_preferencepair (user_id, conversation_id, prompt_message_id, chosen_id,
                                         rejected_id, source, status, created_at, updated_at)
    SELECT up.user_id, chosen.conversation_id, chosen.parent_id, up.message_id,
           down.message_id, %(derived)s,
           CASE WHEN up.status = %(excluded)s OR down.status = %(excluded)s THEN %(excluded)s
                WHEN up.status = %(approved)s AND down.status = %(approved)s THEN %(approved)s
                ELSE %(pending)s END,
           %(now)s, %(now)s
    FROM feedback_rating up
    JOIN chat_message chosen ON chosen.id = up.message_id
    JOIN chat_message rejected ON rejected.parent_id = chosen.parent_id
    JOIN feedback_rating down ON down.message_id = rejected.id AND down.user_id = up.user_id
    WHERE up.user_id = %(user)s AND chosen.parent_id = %(prompt)s
      AND up.value = %(up)s AND down.value = %(down)s
    ON CONFLICT (user_id, chosen_id, rejected_id, source) DO NOTHING
"""


@dataclass(frozen=True)
class OwnReply:
    """What rating a reply needs to know about it, read in one query."""

    id: int
    parent_id: int | None
    conversation_id: int
    status: str
    model_version: str
    sibling_count: int
    grounded: bool  # retrieved passages were in its prompt (Message.grounded)
    written_by_user: bool  # the user wrote it ("Write a better reply")
    author_trusted: bool


def _own_reply(
    user: AbstractBaseUser,
    message_id: object,
    *,
    unfinished: str = "Only finished replies can be rated.",
) -> OwnReply:
    """The user's finished reply, with its sibling count and the user's trust.

    ``unfinished`` is the refusal for a reply still being written, in the words
    of what the user tried (rating it, choosing it)."""
    reply_id_parse(message_id)
    params = {"user": user.pk, "message": message_id, "role": Message.Role.ASSISTANT.value}
    with connection.cursor() as cursor:
        cursor.execute(_OWN_REPLY_SQL, params)
        row = cursor.fetchone()
    if row is None:
        raise Refusal("not_found", "No such reply (or it is not yours).", "message")
    reply = OwnReply(
        *row[:6], grounded=bool(row[6]), written_by_user=bool(row[7]), author_trusted=bool(row[8])
    )
    if reply.status not in RATEABLE:
        raise Refusal("not_rateable", unfinished, "message")
    if reply.written_by_user:
        raise Refusal(
            "not_rateable", "A reply you wrote yourself is not rated or compared.", "message"
        )
    return reply


def reply_id_parse(message_id: object) -> int:
    """A reply id as the frames and the API send it; refused when it cannot be one."""
    if isinstance(message_id, bool) or not isinstance(message_id, int):
        raise Refusal("invalid", "message must be an integer id.", "message")
    if not 0 < message_id < 2**63:
        raise Refusal("not_found", "No such reply (or it is not yours).", "message")
    return message_id


def _rating_upsert(rating: Rating) -> None:
    names = ("user", "message", "value", "reasons", "comment", "model_version", "status")
    params = {"now": connection.ops.adapt_datetimefield_value(rating.updated_at)}
    for name in names:
        field = Rating._meta.get_field(name)
        params[name] = field.get_db_prep_save(getattr(rating, field.attname), connection)
    _execute(_RATING_UPSERT_SQL, params)


def _execute(sql: str, params: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _rating_value(value: object) -> int:
    if value not in _VALUES:
        raise Refusal("invalid", 'value must be "up", "down" or null.', "value")
    return _VALUES[value]


def _clean_reasons(reasons: object, value: int) -> list[str]:
    if reasons is None:
        return []
    allowed = UP_REASONS if value == Rating.Value.UP else DOWN_REASONS
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise Refusal("invalid", "reasons must be a list of reason keys.", "reasons")
    unknown = [reason for reason in reasons if reason not in allowed]
    if unknown:
        raise Refusal(
            "invalid",
            f"Unknown reason(s) {', '.join(unknown)}; expected: {', '.join(allowed)}.",
            "reasons",
        )
    return sorted(set(reasons), key=list(allowed).index)


def _check_reasons_fit(reasons: list[str], reply: OwnReply) -> None:
    """Reasons about the sources (``unsupported``) only fit a reply that had some."""
    misplaced = [DOWN_REASONS[reason] for reason in reasons if reason in GROUNDED_ONLY_REASONS]
    if misplaced and not reply.grounded:
        raise Refusal(
            "invalid",
            f"“{'”, “'.join(misplaced)}” is only for a reply grounded on your documents; "
            "this reply was written without sources.",
            "reasons",
        )


def _clean_comment(comment: object) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        raise Refusal(
            "invalid",
            f"comment must be text of at most {MAX_COMMENT_CHARS} characters.",
            "comment",
        )
    return comment.strip()


def initial_review_status(trusted: bool) -> str:
    if trusted and settings.FEEDBACK_AUTO_APPROVE_TRUSTED:
        return ReviewStatus.APPROVED
    return ReviewStatus.PENDING
