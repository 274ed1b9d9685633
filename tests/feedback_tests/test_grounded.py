"""Feedback on replies grounded on the user's documents: exports carry the passages,
``unsupported`` fits only a grounded reply, stats split grounded from plain, and
reviewers see the sources the rated reply saw."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from chat import services as chat_services
from feedback import services
from feedback.exports import export_rows
from feedback.models import PreferencePair, Rating
from feedback.stats import version_stats
from tests.feedback_tests.test_export import _trainer_for, exported_dataset
from tests.support.factories import exchange, source

pytestmark = pytest.mark.django_db

PASSAGES = [
    source(1, "Refunds are paid within 14 days of the return.", page=3, cited=True),
    source(2, "Shipping is free above 50 euros.", filename="faq.md", page=None),
]


@pytest.fixture
def grounded(alice) -> list:
    """Two sibling replies of alice's that answered from PASSAGES: one good, one bad."""
    conversation = chat_services.conversation_create(owner=alice)
    _, replies = exchange(
        conversation,
        "When is my refund paid?",
        ["Within 14 days [1].", "Tomorrow."],
        sources=PASSAGES,
    )
    return replies


@pytest.fixture
def plain(alice) -> list:
    """Two sibling replies of alice's written without sources."""
    conversation = chat_services.conversation_create(owner=alice)
    return exchange(conversation, "Capital of France?", ["Paris.", "Lyon."])[1]


@pytest.fixture
def rated(alice, carol, grounded, plain) -> list:
    """Alice rated each pair good and bad; carol approved it all."""
    for good, bad in (grounded, plain):
        services.rating_submit(user=alice, message_id=good.pk, value="up")
        services.rating_submit(user=alice, message_id=bad.pk, value="down", reasons=["wrong"])
    services.ratings_review(ratings=Rating.objects.all(), reviewer=carol, status="approved")
    return [*grounded, *plain]


def rating_url(message) -> str:
    return f"/api/messages/{message.pk}/rating"


def put(client, message, body: dict):
    return client.put(rating_url(message), json.dumps(body), content_type="application/json")


# -- exports ----------------------------------------------------------------------


def test_an_unpaired_row_of_a_grounded_reply_holds_its_passages_and_sources(rated):
    """The prompt is exactly what the reply saw (numbered passages included); the row
    lists the passages with their cited flags; a plain reply's row has no sources."""
    good = rated[0]
    rows = {row["message_id"]: row for row in export_rows(format="kto")}
    row = rows[good.pk]
    assert row["prompt"] == good.prompt_messages
    assert "[1] (guide.pdf, page 3) Refunds are paid within 14 days" in row["prompt"][-1]["content"]
    assert "[2] (faq.md) Shipping is free" in row["prompt"][-1]["content"]
    assert [(s["number"], s["filename"], s["page"], s["cited"]) for s in row["sources"]] == [
        (1, "guide.pdf", 3, True),
        (2, "faq.md", None, False),
    ]
    assert row["sources"][0]["text"] == PASSAGES[0]["text"]
    assert "sources" not in rows[rated[2].pk]


def test_sft_rows_of_grounded_replies_keep_the_passages(rated):
    rows = list(export_rows(format="sft"))
    assert rows[0]["messages"] == [
        *rated[0].prompt_messages,
        {"role": "assistant", "content": "Within 14 days [1]."},
    ]
    assert rows[0]["sources"][0]["cited"] is True
    assert "sources" not in rows[1]


def test_a_pair_row_carries_the_grounded_prompt_and_sources(rated):
    grounded_row, plain_row = export_rows(format="dpo")
    assert grounded_row["prompt"] == rated[0].prompt_messages
    assert grounded_row["chosen"] == [{"role": "assistant", "content": "Within 14 days [1]."}]
    assert [passage["number"] for passage in grounded_row["sources"]] == [1, 2]
    assert "sources" not in plain_row


def test_siblings_that_saw_different_prompts_pair_under_the_chosen_ones(alice, carol, grounded):
    """A plain regeneration beside a grounded reply: the row is exported (not dropped),
    and whichever is chosen, its own prompt (and its sources, if any) is the row's."""
    plain_sibling = chat_services.reply_create(
        conversation=grounded[0].conversation, parent=grounded[0].parent
    )
    chat_services.reply_start(
        reply=plain_sibling,
        model_version="base-v0",
        prompt_messages=[{"role": "user", "content": "When is my refund paid?"}],
        prompt_tokens=6,
    )
    chat_services.reply_finish(reply=plain_sibling, content="No idea.", status="complete")
    services.preference_submit(user=alice, chosen_id=grounded[0].pk)
    services.pairs_review(pairs=PreferencePair.objects.all(), reviewer=carol, status="approved")
    rows = list(export_rows(format="dpo"))
    assert len(rows) == 2  # over the bad grounded sibling and over the plain one
    assert all(row["prompt"] == grounded[0].prompt_messages for row in rows)
    assert all(row["sources"][0]["cited"] for row in rows)

    services.preference_submit(user=alice, chosen_id=plain_sibling.pk)
    services.pairs_review(pairs=PreferencePair.objects.all(), reviewer=carol, status="approved")
    rows = list(export_rows(format="dpo"))
    assert [row["prompt"] for row in rows] == [plain_sibling.prompt_messages] * 2
    assert all("sources" not in row for row in rows)


@pytest.mark.parametrize("format", ["kto", "dpo", "reward", "sft"])
def test_grounded_and_plain_rows_together_load_into_each_trl_trainer(
    rated, tmp_path, tiny_model_dir, format
):
    """The sources column (present on some rows only) neither breaks loading nor TRL."""
    dataset = exported_dataset(format, tmp_path)
    assert "sources" in dataset.column_names
    assert {row["sources"] is None for row in dataset} == {False, True}  # grounded, plain
    prepared = _trainer_for(format, dataset, tiny_model_dir, tmp_path).train_dataset
    assert len(prepared) == len(dataset)
    assert any(column.endswith("_ids") for column in prepared.column_names)


# -- the "unsupported" reason ---------------------------------------------------------


def test_unsupported_is_accepted_on_a_grounded_reply(alice_client, grounded):
    response = put(alice_client, grounded[1], {"value": "down", "reasons": ["unsupported"]})
    assert response.status_code == 200, response.content
    assert response.json()["rating"]["reasons"] == ["unsupported"]
    assert Rating.objects.get().reasons == ["unsupported"]


def test_unsupported_is_refused_on_a_plain_reply_and_nothing_is_written(alice_client, plain):
    response = put(alice_client, plain[1], {"value": "down", "reasons": ["wrong", "unsupported"]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", "reasons")
    assert "Not supported by the sources" in error["message"]
    assert "without sources" in error["message"]
    assert not Rating.objects.exists()


def test_another_users_reply_is_not_found_before_its_sources_are_judged(bob_client, plain):
    """Refusing ``unsupported`` must not tell bob whether alice's reply was grounded."""
    response = put(bob_client, plain[1], {"value": "down", "reasons": ["unsupported"]})
    assert response.status_code == 404


def test_the_rating_form_is_told_which_reasons_need_sources():
    from feedback.selectors import reason_choices

    choices = reason_choices()
    assert choices["down"]["unsupported"] == "Not supported by the sources"
    assert choices["grounded_only"] == ["unsupported"]


# -- stats ------------------------------------------------------------------------


def test_version_stats_split_grounded_from_plain_and_keep_the_totals(alice, rated, plain):
    services.rating_submit(user=alice, message_id=plain[1].pk, value="up")  # plain: 2 of 2 up
    (version,) = version_stats()
    assert (version.replies, version.ratings, version.ups) == (4, 4, 3)
    assert (version.grounded.replies, version.grounded.ratings, version.grounded.ups) == (2, 2, 1)
    assert (version.plain.replies, version.plain.ratings, version.plain.ups) == (2, 2, 2)
    assert (version.grounded.up_rate, version.plain.up_rate) == (0.5, 1.0)
    assert version.plain.interval is not None


def test_the_admin_stats_page_shows_both_splits(staff_client, rated):
    html = staff_client.get(reverse("admin:feedback_stats")).content.decode()
    assert "<th>Grounded replies</th><th>Plain replies</th>" in html
    assert '<td data-split="grounded">50% up' in html
    assert "1 of 2 ratings, 2 replies" in html


def test_the_learning_dashboard_shows_both_splits(staff_client, alice, rated, plain):
    services.rating_submit(user=alice, message_id=plain[1].pk, value="up")
    response = staff_client.get(reverse("review:dashboard"), {"part": "live"})
    # The base model's own version (put in service on a fresh install) has no ratings.
    (row,) = [row for row in response.context["data"]["versions"] if row["ratings"]]
    assert (row["ratings"], row["grounded"]["ratings"], row["plain"]["ratings"]) == (4, 2, 2)
    assert (row["grounded"]["up_rate"], row["plain"]["up_rate"]) == (0.5, 1.0)
    html = response.content.decode()
    assert '<td data-label="Grounded replies" data-split="grounded">50% up' in html
    assert '<td data-label="Plain replies" data-split="plain">100% up' in html


# -- review -------------------------------------------------------------------------


def test_the_review_item_shows_the_sources_the_rated_reply_saw(staff_client, alice, grounded):
    services.rating_submit(user=alice, message_id=grounded[1].pk, value="down")
    item = staff_client.get(reverse("review:api-next")).json()["item"]
    assert item["sources"] == [
        {
            "number": 1,
            "filename": "guide.pdf",
            "page": 3,
            "heading": "",
            "text": PASSAGES[0]["text"],
            "cited": True,
        },
        {
            "number": 2,
            "filename": "faq.md",
            "page": None,
            "heading": "",
            "text": PASSAGES[1]["text"],
            "cited": False,
        },
    ]
    assert item["sibling"]["grounded"] is True
    assert "Sources:\n[1] (guide.pdf, page 3)" in item["context"][-1]["content"]


def test_a_plain_reply_under_review_has_no_sources(staff_client, alice, plain):
    services.rating_submit(user=alice, message_id=plain[0].pk, value="up")
    item = staff_client.get(reverse("review:api-next")).json()["item"]
    assert item["sources"] == [] and item["sibling"]["grounded"] is False


def test_the_queue_page_has_a_place_for_the_sources(staff_client):
    html = staff_client.get(reverse("review:queue")).content.decode()
    assert 'data-testid="review-sources"' in html and "Sources the reply saw" in html


def test_the_admin_rating_page_lists_the_sources_cited_ones_marked(staff_client, alice, grounded):
    services.rating_submit(user=alice, message_id=grounded[0].pk, value="up")
    rating = Rating.objects.get()
    html = staff_client.get(reverse("admin:feedback_rating_change", args=[rating.pk])).content
    html = html.decode()
    assert "<li><b>[1]</b> guide.pdf, page 3 (cited)" in html
    assert "<li><b>[2]</b> faq.md (not cited)" in html
    grounded_only = staff_client.get(
        reverse("admin:feedback_rating_changelist"), {"grounded": "no"}
    )
    assert grounded_only.context["cl"].result_count == 0
