"""Staff review of feedback: the queue, bulk approve / exclude, stats, export."""

from __future__ import annotations

import datetime
import json
import re

from django.contrib import admin, messages
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from chat.models import grounded
from feedback import services, stats
from feedback.exports import ANY_STATUS, FORMATS, export_rows
from feedback.models import ALL_REASONS, FeedbackProfile, PreferencePair, Rating, ReviewStatus


class ReasonFilter(admin.SimpleListFilter):
    title = "reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return list(ALL_REASONS.items())

    def queryset(self, request, queryset):
        reason = self.value()
        if reason not in ALL_REASONS:
            return queryset
        if connection.features.supports_json_field_contains:
            return queryset.filter(reasons__contains=[reason])
        # SQLite cannot look inside JSON lists: filter the (reviewable-sized) list here.
        matching = [
            pk for pk, reasons in queryset.values_list("pk", "reasons") if reason in reasons
        ]
        return queryset.filter(pk__in=matching)


class GroundedFilter(admin.SimpleListFilter):
    """Replies grounded on retrieved passages, or plain ones."""

    title = "sources"
    parameter_name = "grounded"

    def lookups(self, request, model_admin):
        return [("yes", "Grounded on sources"), ("no", "Plain")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(grounded("message__"))
        if self.value() == "no":
            return queryset.exclude(grounded("message__"))
        return queryset


def _review_action(status: ReviewStatus, label: str, service):
    @admin.action(description=label)
    def action(model_admin, request: HttpRequest, queryset: QuerySet) -> None:
        count = service(queryset, reviewer=request.user, status=status)
        model_admin.message_user(request, f"{count} marked {status}.", messages.SUCCESS)

    action.__name__ = f"mark_{status}"
    return action


def _review_ratings(queryset, *, reviewer, status):
    return services.ratings_review(ratings=queryset, reviewer=reviewer, status=status)


def _review_pairs(queryset, *, reviewer, status):
    return services.pairs_review(pairs=queryset, reviewer=reviewer, status=status)


def _conversation_html(prompt_messages: list[dict] | None, reply: str) -> str:
    """What the model saw, then its reply; every piece escaped."""
    turns = [(message["role"], message["content"]) for message in prompt_messages or []]
    rows = format_html_join(
        "",
        '<div class="lc-turn lc-{}"><b>{}</b><pre>{}</pre></div>',
        ((role, role, content) for role, content in turns),
    )
    return format_html(
        '<div class="lc-context">{}<div class="lc-turn lc-reply"><b>reply</b><pre>{}</pre></div></div>',
        rows,
        reply,
    )


# Markdown's emphasis and code marks, and each line's heading, quote or list marker.
MARKDOWN_MARKS = re.compile(r"\*\*|__|`+|^\s*(?:#{1,6}|>|[-*+]|\d+\.)\s+", re.MULTILINE)


def _sources_html(sources: list[dict]) -> str:
    """The numbered passages a reply saw, where each came from, cited ones marked."""
    if not sources:
        return "None: a plain reply, no passages were retrieved."
    items = format_html_join(
        "",
        "<li><b>[{}]</b> {}{} {}<pre>{}</pre></li>",
        (
            (
                source.get("number"),
                source.get("filename", ""),
                "" if source.get("page") is None else f", page {source['page']}",
                "(cited)" if source.get("cited") else "(not cited)",
                source.get("text", ""),
            )
            for source in sources
        ),
    )
    return format_html('<ol class="lc-sources">{}</ol>', items)


def _excerpt(text: str, length: int) -> str:
    """One line of at most ``length`` characters, Markdown's marks left out (the review
    queue shows the reply rendered)."""
    line = " ".join(MARKDOWN_MARKS.sub("", text).split())
    return line if len(line) <= length else line[: length - 1].rstrip() + "…"


def _compact_moment(moment: datetime.datetime | None) -> str:
    """As a mail client lists it: "14:05" today, "2 Dec" this year, "2 Dec 2025" before;
    the full time in its tooltip."""
    if moment is None:
        return ""
    local, today = timezone.localtime(moment), timezone.localdate()
    if local.date() == today:
        short = f"{local:%H:%M}"
    elif local.year == today.year:
        short = f"{local.day} {local:%b}"
    else:
        short = f"{local.day} {local:%b %Y}"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.isoformat(),
        f"{local:%Y-%m-%d %H:%M %Z}",
        short,
    )


def _review_url(rating: Rating) -> str:
    """The focus view, opened on this rating."""
    return f"{reverse('review:queue')}?rating={rating.pk}"


# A small triangle beside "Up" / "Down": text, not an emoji, so it reads without an emoji font.
THUMB_ICONS = {True: ("M5 1 9.5 9h-9z", "#2e7d32"), False: ("M.5 1h9L5 9z", "#c62828")}


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    # Fits 1280 px with the navigation and filter sidebars open: short headers,
    # excerpts, the reviewer under the status; the version is a filter (and on the
    # stats page); the change view has every field.
    list_display = (
        "rating_label",
        "reasons_display",
        "comment_excerpt",
        "reply_excerpt",
        "user",
        "status_display",
        "created",
        "review_link",
    )
    list_filter = (
        "status",
        "value",
        ReasonFilter,
        GroundedFilter,
        "model_version",
        "created_at",
        ("user", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("comment", "message__content", "user__username", "model_version")
    date_hierarchy = "created_at"
    list_select_related = ("user", "message", "reviewed_by")
    actions = [
        _review_action(ReviewStatus.APPROVED, "Approve selected ratings", _review_ratings),
        _review_action(ReviewStatus.EXCLUDED, "Exclude selected ratings", _review_ratings),
    ]
    readonly_fields = (
        "user",
        "message",
        "value",
        "reasons_display",
        "comment",
        "model_version",
        "in_review_queue",
        "conversation_context",
        "sources_display",
        "status",
        "reviewed_by",
        "reviewed_at",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="rating", ordering="value")
    def rating_label(self, rating: Rating) -> str:
        return format_html(
            '<span class="lc-thumb"><svg width="10" height="10" viewBox="0 0 10 10" '
            'aria-hidden="true"><path d="{}" fill="{}"/></svg> {}</span>',
            *THUMB_ICONS[rating.is_up],
            "Up" if rating.is_up else "Down",
        )

    @admin.display(description="reasons")
    def reasons_display(self, rating: Rating) -> str:
        return ", ".join(ALL_REASONS.get(reason, reason) for reason in rating.reasons)

    @admin.display(description="comment")
    def comment_excerpt(self, rating: Rating) -> str:
        return _excerpt(rating.comment, 50)

    @admin.display(description="reply")
    def reply_excerpt(self, rating: Rating) -> str:
        return _excerpt(rating.message.content, 60)

    @admin.display(description="status", ordering="status")
    def status_display(self, rating: Rating) -> str:
        if rating.reviewed_by is None:
            return rating.get_status_display()
        return format_html(
            '{}<br><span class="lc-quiet">by {}</span>',
            rating.get_status_display(),
            rating.reviewed_by.get_username(),
        )

    @admin.display(description="created", ordering="created_at")
    def created(self, rating: Rating) -> str:
        return _compact_moment(rating.created_at)

    @admin.display(description="review")
    def review_link(self, rating: Rating) -> str:
        return format_html(
            '<a href="{}" title="The whole conversation, rendered, in the review queue">Review</a>',
            _review_url(rating),
        )

    @admin.display(description="review queue")
    def in_review_queue(self, rating: Rating) -> str:
        return format_html(
            '<a href="{}">Review it in the review queue</a> (the whole conversation, rendered)',
            _review_url(rating),
        )

    @admin.display(description="what the model saw, and its reply")
    def conversation_context(self, rating: Rating) -> str:
        return _conversation_html(rating.message.prompt_messages, rating.message.content)

    @admin.display(description="sources the reply saw")
    def sources_display(self, rating: Rating) -> str:
        return _sources_html(rating.message.sources)

    def get_urls(self):
        extra = [
            path("stats/", self.admin_site.admin_view(self.stats_view), name="feedback_stats"),
            path("export/", self.admin_site.admin_view(self.export_view), name="feedback_export"),
        ]
        return extra + super().get_urls()

    def stats_view(self, request: HttpRequest) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Feedback per model version",
            "versions": stats.version_stats(),
            "export_formats": FORMATS,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/feedback/stats.html", context)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """The same JSONL as ``manage.py export_feedback``, as a download."""
        if not request.user.has_perm("feedback.view_rating"):
            return HttpResponse(status=403)
        format = request.GET.get("format", "kto")
        status = request.GET.get("status", ReviewStatus.APPROVED)
        if format not in FORMATS or status not in [*ReviewStatus.values, ANY_STATUS]:
            return HttpResponse("Unknown format or status.", status=400)
        try:
            since = (
                datetime.date.fromisoformat(request.GET["since"])
                if request.GET.get("since")
                else None
            )
        except ValueError:
            return HttpResponse("since must be a date like 2026-01-31.", status=400)
        rows = export_rows(format=format, status=status, since=since)
        response = StreamingHttpResponse(
            (json.dumps(row, ensure_ascii=False) + "\n" for row in rows),
            content_type="application/x-ndjson",
        )
        response["Content-Disposition"] = f'attachment; filename="feedback-{format}-{status}.jsonl"'
        return response


@admin.register(PreferencePair)
class PreferencePairAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "source",
        "chosen",
        "rejected",
        "user",
        "status",
        "created_at",
        "reviewed_by",
    )
    list_filter = ("status", "source", "created_at", ("user", admin.RelatedOnlyFieldListFilter))
    search_fields = ("chosen__content", "rejected__content", "user__username")
    list_select_related = ("user", "chosen", "rejected", "reviewed_by")
    actions = [
        _review_action(ReviewStatus.APPROVED, "Approve selected pairs", _review_pairs),
        _review_action(ReviewStatus.EXCLUDED, "Exclude selected pairs", _review_pairs),
    ]
    readonly_fields = (
        "user",
        "conversation",
        "prompt_message",
        "chosen_reply",
        "rejected_reply",
        "source",
        "status",
        "reviewed_by",
        "reviewed_at",
        "created_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="chosen (with what the model saw)")
    def chosen_reply(self, pair: PreferencePair) -> str:
        return _conversation_html(pair.chosen.prompt_messages, pair.chosen.content)

    @admin.display(description="rejected")
    def rejected_reply(self, pair: PreferencePair) -> str:
        return format_html("<pre>{}</pre>", pair.rejected.content)


@admin.register(FeedbackProfile)
class FeedbackProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "share_for_training", "trusted", "updated_at")
    list_filter = ("share_for_training", "trusted")
    list_editable = ("trusted",)
    search_fields = ("user__username",)
    readonly_fields = ("share_for_training",)  # the user's own choice
