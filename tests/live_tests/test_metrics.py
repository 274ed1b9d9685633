"""``/metrics``: Prometheus text for staff or the bearer token, never for anyone else;
it moves with replies (tokens, first-token time), runs (by verdict, durations) and
feedback (by review status)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from chat import services
from feedback.services import rating_submit
from live.metrics.web import counting_websockets
from tests.support.chatting import chat_socket
from training.models import TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True)]

TOKEN = "a-long-random-metrics-token"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client: Client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def bearer_scrape() -> dict[tuple[str, tuple], float]:
    return scrape(Client(), Authorization=f"Bearer {TOKEN}")


def test_it_refuses_anonymous_users_other_tokens_and_non_staff(metrics_token, alice_client):
    assert Client().get("/metrics").status_code == 401
    wrong = Client().get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert alice_client.get("/metrics").status_code == 403


def test_without_a_token_set_no_bearer_gets_in(settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def test_it_answers_staff_by_session_and_the_bearer_token(metrics_token, admin_client):
    assert ("loopchat_replies_in_flight", ()) in scrape(admin_client)
    assert ("loopchat_replies_in_flight", ()) in bearer_scrape()


async def test_it_moves_after_a_reply(metrics_token, app, alice):
    before = await database_sync_to_async(bearer_scrape)()
    conversation = await database_sync_to_async(services.conversation_create)(owner=alice)
    await database_sync_to_async(services.conversation_update)(
        conversation=conversation, changes={"max_new_tokens": 16}
    )
    socket = await chat_socket(app, alice)
    await socket.send_json_to({"type": "send", "conversation": conversation.pk, "content": "Hi"})
    while (frame := await socket.receive_json_from(timeout=60))["type"] != "reply_done":
        pass
    await socket.disconnect()
    after = await database_sync_to_async(bearer_scrape)()
    tokens = frame["message"]["stats"]["completion_tokens"]

    def moved(name: str, labels: tuple = ()) -> float:
        return after[(name, labels)] - before.get((name, labels), 0)

    assert tokens > 0 and moved("loopchat_reply_tokens_total") == tokens
    assert moved("loopchat_reply_time_to_first_token_seconds_count") == 1
    assert moved("loopchat_reply_time_to_first_token_seconds_sum") > 0
    assert moved("loopchat_reply_tokens_per_second_count") == 1
    assert moved("loopchat_replies_total", (("status", "complete"),)) == 1
    assert after[("loopchat_replies_in_flight", ())] == 0


def test_it_counts_runs_by_verdict_and_their_durations(metrics_token):
    before = bearer_scrape()
    now = timezone.now()
    log = (
        f"{now - timedelta(seconds=90):%H:%M:%S} stage: preparing\n"
        f"{now - timedelta(seconds=60):%H:%M:%S} stage: training\n"
    )
    TrainingRun.objects.create(
        status=TrainingRun.Status.SUCCEEDED,
        in_flight=None,
        started_at=now - timedelta(seconds=90),
        finished_at=now,
        log=log,
    )
    TrainingRun.objects.create(
        status=TrainingRun.Status.RUNNING, stage="training", step=3, total_steps=12
    )
    after = bearer_scrape()
    succeeded = ("loopchat_training_runs", (("status", "succeeded"),))
    assert after[succeeded] == before[succeeded] + 1
    assert after[("loopchat_training_run_duration_seconds_count", ())] == 1
    assert after[("loopchat_training_run_duration_seconds_sum", ())] == pytest.approx(90, abs=1)
    training = (("stage", "training"),)
    assert after[("loopchat_training_stage_duration_seconds_sum", training)] == pytest.approx(
        60, abs=1.5
    )
    running = TrainingRun.objects.get(status=TrainingRun.Status.RUNNING)
    progress = ("loopchat_training_stage_progress", (("run", str(running.pk)), *training))
    assert after[progress] == 0.25


def test_it_counts_ratings_by_review_status(metrics_token, alice, replies):
    before = bearer_scrape()
    rating_submit(user=alice, message_id=replies[0].pk, value="up")
    after = bearer_scrape()
    pending = ("loopchat_feedback_ratings", (("status", "pending"),))
    assert after[pending] == before[pending] + 1
    assert ("loopchat_feedback_pairs", (("status", "approved"),)) in after


def test_it_counts_refused_api_requests_by_code(metrics_token, alice_client, conversation):
    before = bearer_scrape()
    answer = alice_client.patch(
        f"/api/conversations/{conversation.pk}/",
        data={"temperature": 99},
        content_type="application/json",
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid"
    invalid = ("loopchat_errors_total", (("code", "invalid"),))
    assert bearer_scrape()[invalid] == before.get(invalid, 0) + 1


async def test_it_counts_open_websockets_and_refused_frames(metrics_token, app, alice):
    """As config/asgi.py wraps the websocket application."""
    counted = counting_websockets(app)
    before = await database_sync_to_async(bearer_scrape)()
    socket = await chat_socket(counted, alice)
    await socket.send_json_to({"type": "no_such_frame"})
    while (frame := await socket.receive_json_from(timeout=10))["type"] != "error":
        pass
    during = await database_sync_to_async(bearer_scrape)()
    await socket.disconnect()
    after = await database_sync_to_async(bearer_scrape)()
    open_now = ("loopchat_websockets_open", ())
    assert during[open_now] == before[open_now] + 1 == after[open_now] + 1
    unknown = ("loopchat_errors_total", (("code", frame["code"]),))
    assert frame["code"] == "unknown_type"
    assert after[unknown] == before.get(unknown, 0) + 1
