"""The whole loop from another app: an API completion rated through /v1/feedback,
approved in the review queue, exported, counted by the next run, whose version
then serves the API; rollback brings the API back to the old version."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from chat import keys
from feedback.exports import export_rows
from feedback.models import PreferencePair, Rating
from tests.support.api import api_client
from tests.training_tests.test_pipeline import permissive_gate, run_once, tiny_training  # noqa: F401
from training.services import base_version_ensure, version_activate

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "What should I name my cat?"}]


@pytest.fixture
def api(tiny_engine, alice):
    """POSTs as alice's app: her key, the engine in the scope as config/asgi.py puts it."""
    client, secret = api_client(tiny_engine), keys.api_key_create(owner=alice).secret

    def post(url: str, body: dict):
        response = async_to_sync(client.post)(
            url,
            json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.status_code == 200, response.content
        return response

    return post


def complete(api, **fields):
    body = {"model": "loopchat", "messages": MESSAGES, "max_tokens": 4, **fields}
    return api("/v1/chat/completions", body)


def test_api_feedback_trains_the_version_that_then_serves_the_api(
    api,
    tiny_training,  # noqa: F811
    tiny_engine_settings,
    feedback,
    bob,
):
    permissive_gate(tiny_training)
    base = base_version_ensure()
    first = complete(api)
    assert first["X-LoopChat-Version"] == base.name == "tiny-random-llama"
    conversation = first.json()["conversation"]
    second = complete(api, conversation=conversation)  # the same messages: a sibling
    worse, better = first.json()["id"], second.json()["id"]
    api("/v1/feedback", {"completion": better, "kind": "thumb", "value": "up"})
    api("/v1/feedback", {"completion": worse, "kind": "thumb", "value": "down"})
    api("/v1/feedback", {"completion": worse, "kind": "written_reply", "content": "Whiskers."})
    ours = Rating.objects.filter(message__conversation_id=conversation)
    assert ours.count() == 2 and set(ours.values_list("status", flat=True)) == {"pending"}

    # Staff approve them in the review queue.
    bob.is_staff = True
    bob.save()
    staff = Client()
    staff.force_login(bob)
    for rating in ours:
        staff.post(f"/review/api/ratings/{rating.pk}", {"status": "approved"}, "application/json")
    written = PreferencePair.objects.get(conversation_id=conversation, source="written")
    staff.post(f"/review/api/pairs/{written.pk}", {"status": "approved"}, "application/json")
    pairs = PreferencePair.objects.filter(conversation_id=conversation, status="approved")
    assert set(pairs.values_list("source", flat=True)) == {"derived", "written"}

    exported = [
        row for row in export_rows(format="dpo") if row["conversation_id"] == str(conversation)
    ]
    assert {row["source"] for row in exported} == {"derived", "written"}
    assert all(row["prompt"] == MESSAGES for row in exported)

    run = run_once()
    assert run.status == "succeeded", run.error or run.reason
    assert set(pairs.values_list("pk", flat=True)) <= set(run.pair_ids)
    assert complete(api)["X-LoopChat-Version"] == run.version.name != base.name

    version_activate(version=base)  # rollback
    assert complete(api)["X-LoopChat-Version"] == base.name
