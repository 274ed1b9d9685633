"""Staff review in the Django admin: queue, bulk actions, stats, export download."""

from __future__ import annotations

import datetime
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from chat import services as chat_services
from feedback import services
from feedback.admin import _compact_moment
from feedback.models import PreferencePair, Rating
from feedback.stats import wilson_interval
from feedback.templatetags.feedback_charts import daily_chart
from tests.support.factories import exchange

pytestmark = pytest.mark.django_db


@pytest.fixture
def replies(alice):
    conversation = chat_services.conversation_create(owner=alice)
    _, replies = exchange(conversation, "Say <b>hi</b>", ["<script>alert(1)</script>", "Hello."])
    services.rating_submit(user=alice, message_id=replies[0].pk, value="down", reasons=["wrong"])
    services.rating_submit(user=alice, message_id=replies[1].pk, value="up", comment="nice")
    return replies


def test_bulk_approve_records_the_reviewer(staff_client, carol, replies):
    url = reverse("admin:feedback_rating_changelist")
    ids = [str(pk) for pk in Rating.objects.values_list("pk", flat=True)]
    response = staff_client.post(url, {"action": "mark_approved", "_selected_action": ids})
    assert response.status_code == 302
    for rating in Rating.objects.all():
        assert (rating.status, rating.reviewed_by) == ("approved", carol)
        assert rating.reviewed_at is not None
    assert PreferencePair.objects.get().status == "approved"


def test_bulk_exclude_records_the_reviewer(staff_client, carol, replies):
    url = reverse("admin:feedback_rating_changelist")
    rating = Rating.objects.get(value=-1)
    staff_client.post(url, {"action": "mark_excluded", "_selected_action": [rating.pk]})
    rating.refresh_from_db()
    assert (rating.status, rating.reviewed_by) == ("excluded", carol)
    assert Rating.objects.get(value=1).status == "pending"


def test_the_queue_filters_and_searches(staff_client, replies):
    url = reverse("admin:feedback_rating_changelist")
    for query, expected in [
        ({"status__exact": "pending"}, 2),
        ({"value__exact": "-1"}, 1),
        ({"reason": "wrong"}, 1),
        ({"q": "nice"}, 1),
        ({"model_version": "base-v0"}, 2),
    ]:
        response = staff_client.get(url, query)
        assert response.status_code == 200
        assert response.context["cl"].result_count == expected, query


def test_the_review_page_shows_the_context_escaped(staff_client, replies):
    rating = Rating.objects.get(value=-1)
    response = staff_client.get(reverse("admin:feedback_rating_change", args=[rating.pk]))
    html = response.content.decode()
    assert "Say &lt;b&gt;hi&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html


def test_it_lists_ratings_as_text_with_their_comment_and_a_link_to_review(staff_client, replies):
    """No emoji (an empty box without an emoji font): "Up" / "Down"; the comment has a
    column; each row opens the review queue on its rating."""
    response = staff_client.get(reverse("admin:feedback_rating_changelist"))
    html = response.content.decode()
    assert "👍" not in html and "👎" not in html
    assert "column-id" not in html and "column-model_version" not in html
    up, down = Rating.objects.get(value=1), Rating.objects.get(value=-1)
    assert re.search(r'class="field-rating_label"><a [^>]*>.*?</svg> Up</span>', html)
    assert re.search(r'class="field-rating_label"><a [^>]*>.*?</svg> Down</span>', html)
    assert '<td class="field-comment_excerpt">nice</td>' in html
    assert '<td class="field-reasons_display">Wrong</td>' in html
    for rating in (up, down):
        assert f'href="{reverse("review:queue")}?rating={rating.pk}"' in html
    assert html.count(">Review</a>") == 2


def test_it_shortens_the_reply_to_one_plain_line(staff_client, alice):
    conversation = chat_services.conversation_create(owner=alice)
    reply = "## Paris\n\n**Paris** is the `capital` of France, and its largest city by far."
    _, (message,) = exchange(conversation, "Capital?", [reply])
    services.rating_submit(user=alice, message_id=message.pk, value="up")
    response = staff_client.get(reverse("admin:feedback_rating_changelist"))
    (cell,) = re.findall(r'<td class="field-reply_excerpt">(.*?)</td>', response.content.decode())
    assert cell == "Paris Paris is the capital of France, and its largest city…"  # 60 at most


def test_the_list_shows_the_reviewer_under_the_status(staff_client, carol, replies):
    rating = Rating.objects.get(value=-1)
    services.ratings_review(
        ratings=Rating.objects.filter(pk=rating.pk), reviewer=carol, status="approved"
    )
    html = staff_client.get(reverse("admin:feedback_rating_changelist")).content.decode()
    assert 'Approved<br><span class="lc-quiet">by carol</span>' in html
    assert '<td class="field-status_display">Pending</td>' in html


def test_the_list_dates_are_compact_with_the_full_time_in_the_tooltip():
    """The time today, day and month this year, the year before that."""
    now = timezone.now().replace(hour=14, minute=5)
    last_year = now.replace(year=now.year - 1, month=12, day=2)
    assert _compact_moment(now).endswith(">14:05</time>")
    assert _compact_moment(last_year).endswith(f">2 Dec {now.year - 1}</time>")
    assert f'title="{now.year - 1}-12-02 14:05 UTC"' in _compact_moment(last_year)
    if now.month > 1:  # earlier this year
        earlier = now.replace(month=1, day=2)
        assert _compact_moment(earlier).endswith(">2 Jan</time>")


def test_the_review_page_shows_reasons_as_labels_and_links_the_review_queue(
    staff_client, alice, replies
):
    """Never the stored JSON (``["wrong"]``): the labels the user picked."""
    rating = Rating.objects.get(value=-1)
    services.rating_submit(
        user=alice, message_id=rating.message_id, value="down", reasons=["wrong", "too_long"]
    )
    response = staff_client.get(reverse("admin:feedback_rating_change", args=[rating.pk]))
    html = response.content.decode()
    assert '<div class="readonly">Wrong, Too long</div>' in html
    assert "too_long" not in html and "&quot;wrong&quot;" not in html
    assert f'href="{reverse("review:queue")}?rating={rating.pk}"' in html


def test_the_stats_page_reports_each_version(staff_client, replies):
    response = staff_client.get(reverse("admin:feedback_stats"))
    assert response.status_code == 200
    (version,) = response.context["versions"]
    assert (version.model_version, version.replies, version.ratings, version.ups) == (
        "base-v0",
        2,
        2,
        1,
    )
    assert version.top_reasons == [("Wrong", 1)]
    assert len(version.daily) == 1
    assert b"<svg" in response.content


def test_the_stats_page_has_one_heading_and_a_chart_with_axes_dates_and_values(
    staff_client, replies
):
    html = staff_client.get(reverse("admin:feedback_stats")).content.decode()
    assert html.count("<h1") == 1 and "<h1>Feedback per model version</h1>" in html
    assert '<g class="lc-axis"' in html
    ticks = re.findall(r'<text class="lc-tick"[^>]*>([^<]*)</text>', html)
    assert ticks == ["0%", "50%", "100%"]
    today = timezone.localdate()
    assert re.search(rf'<text class="lc-date"[^>]*>{today.day} {today:%b}</text>', html)
    assert re.search(r'<text class="lc-value"[^>]*>50%</text>', html)
    assert f"<title>{today.isoformat()}: 1 of 2 up (50%)</title>" in html
    assert f"<td>{today.isoformat()}</td><td>1</td><td>2</td><td>50%</td>" in html  # no-SVG
    assert f'href="{reverse("review:dashboard")}"' in html


def test_the_daily_chart_labels_a_month_of_days_without_crowding():
    """30 bars: rates only in the tooltips, six or so dates, the last day's among them."""
    start = datetime.date(2026, 11, 1)
    daily = [((start + datetime.timedelta(days)).isoformat(), days % 3, 2) for days in range(30)]
    svg = daily_chart(daily)
    assert svg.count('<g class="lc-day">') == 30 and "lc-value" not in svg
    dates = re.findall(r'<text class="lc-date"[^>]*>([^<]*)</text>', svg)
    assert dates == ["1 Nov", "6 Nov", "11 Nov", "16 Nov", "21 Nov", "30 Nov"]
    assert "<title>2026-11-30: 2 of 2 up (100%)</title>" in svg
    assert daily_chart([]) == "—"


def test_the_export_downloads_jsonl(staff_client, replies):
    response = staff_client.get(
        reverse("admin:feedback_export"), {"format": "kto", "status": "any"}
    )
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [row["label"] for row in rows] == [False, True]
    bad = staff_client.get(reverse("admin:feedback_export"), {"format": "csv"})
    assert bad.status_code == 400


def test_non_staff_cannot_reach_the_review_pages(client, alice, replies):
    client.force_login(alice)
    for name in (
        "admin:feedback_rating_changelist",
        "admin:feedback_stats",
        "admin:feedback_export",
    ):
        assert client.get(reverse(name)).status_code == 302  # to the admin login


def test_wilson_interval():
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(8, 10)
    assert 0.49 < low < 0.5 and 0.94 < high < 0.95
    assert wilson_interval(10, 10)[1] == 1.0
