"""The learning dashboard's figures (training/dashboard.py) and its page (live/dashboard.py)."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from chat import services as chat_services
from feedback import services as feedback_services
from llm.loading import model_label
from tests.support.factories import exchange
from training import dashboard, runs, services
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("sue", "", "pw-1", is_staff=True))
    return client


@pytest.fixture
def rated(alice):
    """Two versions in turn served alice; she rated three replies of the first one up."""
    base = ModelVersion.objects.create(name="base-v0", base_model="m")
    services.version_activate(version=base)
    conversation = chat_services.conversation_create(owner=alice)
    _, replies = exchange(conversation, "Hi?", ["A", "B", "C", "D"])
    for reply in replies[:3]:
        feedback_services.rating_submit(user=alice, message_id=reply.pk, value="up")
    feedback_services.rating_submit(user=alice, message_id=replies[3].pk, value="down")
    return base


def test_it_gives_each_version_its_rate_interval_and_serving_span(rated):
    (row,) = [row for row in dashboard.version_rows() if row["name"] == "base-v0"]
    assert (row["ratings"], row["up_rate"], row["replies"]) == (4, 0.75, 4)
    assert row["low"] < 0.75 < row["high"]
    assert row["first_served"] <= row["last_served"]
    daily = dashboard.daily_rates()
    assert daily["series"]["base-v0"][daily["dates"][0]] == {"ratings": 4, "up_rate": 0.75}


def test_the_next_tick_is_the_last_one_plus_its_interval():
    assert dashboard.next_tick() is None  # beat never synced its schedule
    every = IntervalSchedule.objects.create(every=300, period=IntervalSchedule.SECONDS)
    last = timezone.now() - datetime.timedelta(seconds=100)
    PeriodicTask.objects.create(
        name="training-tick", task="training.tick", interval=every, last_run_at=last
    )
    assert dashboard.next_tick() == last + datetime.timedelta(seconds=300)


def test_the_page_and_its_live_part_show_runs_and_refuse_a_second_train_now(staff_client, rated):
    run = TrainingRun.objects.create(status="running", stage="dpo", step=3, total_steps=12)
    page = staff_client.get(reverse("review:dashboard")).content.decode()
    assert 'data-testid="train-busy"' in page and f"Run {run.pk} is in flight" in page
    live = staff_client.get(reverse("review:dashboard"), {"part": "live"}).content.decode()
    assert "<html" not in live and 'data-testid="run-step">3<' in live
    response = staff_client.post(reverse("review:train-now"), follow=True)
    assert f"Not now: run {run.pk} is running (dpo, step 3 of 12)" in response.content.decode()
    assert TrainingRun.objects.count() == 1


def test_a_fresh_install_names_the_base_model_in_service_as_the_version_list_does(
    staff_client, settings
):
    """Before anyone opens the admin: the base model is the version in service."""
    page = staff_client.get(reverse("review:dashboard")).content.decode()
    base = model_label(settings.CHAT_MODEL)
    assert f'data-testid="active-version">{base}<' in page
    (version,) = ModelVersion.objects.all()
    assert (version.name, version.status) == (base, ModelVersion.Status.ACTIVE)
    assert "not a version" not in page and 'class="timeline-not' not in page


def test_a_finished_run_reads_as_its_verdict_not_its_last_stage(staff_client):
    run = TrainingRun.objects.create(status="running", stage="evaluating kto: drift", step=9)
    runs.training_run_finish(run, TrainingRun.Status.REJECTED, reason="The gate said no.")
    run.refresh_from_db()
    assert run.stage == "rejected"
    live = staff_client.get(reverse("review:dashboard"), {"part": "live"}).content.decode()
    assert 'data-testid="run-status">rejected<' in live and "evaluating kto" not in live


def test_train_now_queues_a_manual_run_and_states_its_plan(staff_client, feedback):
    """The row is the queue entry; the Celery task goes out on commit (here the test's
    transaction never commits; the browser test runs a real worker on it)."""
    page = staff_client.get(reverse("review:dashboard")).content.decode()
    assert "A run now would train: 0 thumbs, 10 pairs: DPO" in page
    response = staff_client.post(reverse("review:train-now"), follow=True)
    run = TrainingRun.objects.get()
    assert (run.trigger, run.status) == ("manual", "queued")
    page = response.content.decode()
    assert f"Run {run.pk} queued. 0 thumbs, 10 pairs: DPO" in page
    # The page's script clears the message once this run's card shows a verdict.
    assert f'data-about="run-{run.pk}"' in page
    assert run.metrics["plan"].endswith("judged on 3 held-out pairs")


def test_train_now_refuses_a_run_that_cannot_pass_and_says_what_is_missing(staff_client, rated):
    """Four pending thumbs: nothing approved to train on, nothing held out to judge."""
    page = staff_client.get(reverse("review:dashboard")).content.decode()
    assert "Train now would refuse: 0 thumbs, 0 pairs: too little feedback" in page
    response = staff_client.post(reverse("review:train-now"), follow=True)
    assert "Not started: 0 thumbs, 0 pairs: too little feedback" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_the_dashboard_is_staff_only(client, alice):
    """A visitor is sent to LoopChat's log-in; a user who is not staff is told so (403)."""
    response = client.get(reverse("review:dashboard"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    client.force_login(alice)
    assert client.get(reverse("review:dashboard")).status_code == 403
    assert client.post(reverse("review:train-now")).status_code == 403
    assert not TrainingRun.objects.exists()
