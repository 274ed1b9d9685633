"""The arena: two anonymous versions answer over the websocket, a vote becomes a pair,
the leaderboard moves, and the gate can hold a candidate until the arena judged it."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.core.cache import cache

from chat.models import Message
from feedback.models import FeedbackProfile, PreferencePair
from tests.live_tests.test_consumer import connect, receive_until
from tests.support.tiny_model import build_tiny_adapter
from training import arena, services
from training.models import ArenaMatch, ModelVersion

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def versions(tiny_engine_settings, tiny_model_dir, tmp_path_factory):
    cache.clear()
    tiny_engine_settings.CHAT_DEFAULT_MAX_NEW_TOKENS = 12
    adapter = build_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter") / "v1")
    base = ModelVersion.objects.create(name="base", base_model=str(tiny_model_dir))
    v1 = ModelVersion.objects.create(
        name="v1-dpo", base_model=str(tiny_model_dir), adapter_path=str(adapter), parent=base
    )
    services.version_activate(version=base)
    services.version_activate(version=v1)  # base retires: it is v1's parent, the challenger
    return base, v1


@pytest.fixture
def arena_user(alice):
    FeedbackProfile.objects.create(user=alice, arena_opt_in=True)
    return alice


async def ask(app, user, content="Which is better?"):
    communicator, _ = await connect(app, user)
    await communicator.send_json_to({"type": "arena", "content": content, "nonce": "n1"})
    frames = await receive_until(communicator, "arena_match")
    done = []
    while len(done) < 2:
        frame = await communicator.receive_json_from(timeout=60)
        if isinstance(frame.get("message"), dict):
            assert not frame["message"]["model_version"], "anonymous until the vote"
        if frame["type"] == "reply_done":
            done.append(frame["message"])
    return communicator, frames, done


async def test_it_answers_with_two_anonymous_versions_and_a_vote_makes_a_pair(
    app, arena_user, versions
):
    communicator, frames, done = await ask(app, arena_user)
    match = frames[-1]["match"]
    assert "versions" not in match
    assert {reply["id"] for reply in done} == {match["a"], match["b"]}
    stored = await database_sync_to_async(
        lambda: {m.pk: m.model_version for m in Message.objects.filter(role="assistant")}
    )()
    assert set(stored.values()) == {"tiny-random-llama", "v1-dpo"}  # each side its version

    await communicator.send_json_to(
        {"type": "arena_vote", "match": match["id"], "winner": "b", "nonce": "v"}
    )
    voted = (await receive_until(communicator, "arena_voted"))[-1]
    assert voted["nonce"] == "v"
    assert set(voted["match"]["versions"].values()) == {"base", "v1-dpo"}
    pair = await database_sync_to_async(PreferencePair.objects.get)()
    assert (pair.source, pair.status, pair.chosen_id, pair.rejected_id) == (
        "arena",
        "pending",
        match["b"],
        match["a"],
    )
    assert voted["pair"] == pair.pk

    await communicator.send_json_to({"type": "arena_vote", "match": match["id"], "winner": "a"})
    again = (await receive_until(communicator, "error"))[-1]
    assert again["code"] == "already_voted"
    board = await database_sync_to_async(arena.leaderboard)()
    winner = voted["match"]["versions"]["b"]
    assert board[0]["name"] == winner and board[0]["votes"] == 1
    await communicator.disconnect()


async def test_a_tie_makes_no_pair(app, arena_user, versions):
    communicator, frames, _ = await ask(app, arena_user)
    match = frames[-1]["match"]
    await communicator.send_json_to({"type": "arena_vote", "match": match["id"], "winner": "tie"})
    voted = (await receive_until(communicator, "arena_voted"))[-1]
    assert voted["pair"] is None
    assert not await database_sync_to_async(PreferencePair.objects.exists)()
    await communicator.disconnect()


async def test_the_arena_is_refused_without_opt_in_or_a_second_version(
    app, alice, bob, tiny_engine_settings, tiny_model_dir
):
    communicator, _ = await connect(app, bob)
    await communicator.send_json_to({"type": "arena", "content": "Hi", "nonce": "x"})
    refused = (await receive_until(communicator, "error"))[-1]
    assert (refused["code"], refused["nonce"]) == ("forbidden", "x")
    await communicator.disconnect()

    await database_sync_to_async(FeedbackProfile.objects.create)(user=alice, arena_opt_in=True)
    communicator, _ = await connect(app, alice)
    await communicator.send_json_to({"type": "arena", "content": "Hi"})
    refused = (await receive_until(communicator, "error"))[-1]
    assert refused["code"] == "arena_unavailable"
    assert not await database_sync_to_async(Message.objects.exists)()  # nothing half-made
    await communicator.disconnect()


async def test_staff_compare_two_versions_they_choose_and_users_are_served_as_before(
    app, alice, tiny_engine_settings, tiny_model_dir, tmp_path_factory
):
    """A rejected version is no challenger, but staff may pit it against the one in
    service; it answers this match only and stays rejected. Others may not choose."""
    cache.clear()
    tiny_engine_settings.CHAT_DEFAULT_MAX_NEW_TOKENS = 8

    def make_versions():
        adapter = build_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter") / "v1")
        base = services.base_version_ensure()
        rejected = ModelVersion.objects.create(
            name="v1-rejected",
            base_model=str(tiny_model_dir),
            adapter_path=str(adapter),
            parent=base,
            status=ModelVersion.Status.REJECTED,
        )
        FeedbackProfile.objects.create(user=alice, arena_opt_in=True)
        return base, rejected

    base, rejected = await database_sync_to_async(make_versions)()
    communicator, _ = await connect(app, alice)
    chosen = {"type": "arena", "content": "Hi", "versions": [base.pk, rejected.pk]}
    await communicator.send_json_to(chosen)
    refused = (await receive_until(communicator, "error"))[-1]
    assert (refused["code"], refused["field"]) == ("forbidden", "versions")
    await communicator.send_json_to({"type": "arena", "content": "Hi"})
    refused = (await receive_until(communicator, "error"))[-1]
    assert refused["code"] == "arena_unavailable"
    assert "choose any two versions" in refused["message"]
    await communicator.disconnect()

    alice.is_staff = True
    await database_sync_to_async(alice.save)()
    communicator, _ = await connect(app, alice)
    await communicator.send_json_to(chosen)
    await receive_until(communicator, "arena_match")
    match = await database_sync_to_async(ArenaMatch.objects.get)()
    assert {match.version_a_id, match.version_b_id} == {base.pk, rejected.pk}
    await receive_until(communicator, "reply_done")
    await communicator.disconnect()
    await database_sync_to_async(rejected.refresh_from_db)()
    assert rejected.status == ModelVersion.Status.REJECTED
    active = await database_sync_to_async(ModelVersion.objects.get)(status="active")
    assert active.pk == base.pk


async def test_votes_on_someone_elses_match_or_bad_winners_are_refused(
    app, arena_user, bob, versions
):
    communicator, frames, _ = await ask(app, arena_user)
    match_id = frames[-1]["match"]["id"]
    await communicator.send_json_to({"type": "arena_vote", "match": match_id, "winner": "c"})
    assert (await receive_until(communicator, "error"))[-1]["code"] == "invalid"
    await communicator.disconnect()
    await database_sync_to_async(FeedbackProfile.objects.create)(user=bob, arena_opt_in=True)
    other, _ = await connect(app, bob)
    await other.send_json_to({"type": "arena_vote", "match": match_id, "winner": "a"})
    assert (await receive_until(other, "error"))[-1]["code"] == "not_found"
    await other.disconnect()
    assert await database_sync_to_async(lambda: ArenaMatch.objects.get(pk=match_id).winner)() == ""


def votes(user, candidate, parent, wins: int, losses: int) -> None:
    """Stored matches between candidate and parent, as the arena would store them."""
    from chat import services as chat_services

    conversation = chat_services.conversation_create(owner=user)
    question = chat_services.user_message_create(
        conversation=conversation, content="q", parent=None
    )
    reply = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content="r"
    )
    for index in range(wins + losses):
        swap = index % 2 == 0
        ArenaMatch.objects.create(
            user=user,
            prompt_message=question,
            reply_a=reply,
            reply_b=reply,
            version_a=parent if swap else candidate,
            version_b=candidate if swap else parent,
            winner=("b" if swap else "a") if index < wins else ("a" if swap else "b"),
        )


@pytest.mark.parametrize(("wins", "losses", "status"), [(14, 6, "active"), (3, 17, "rejected")])
def test_a_held_candidate_is_promoted_or_rejected_once_the_votes_are_in(
    settings, alice, tiny_model_dir, wins, losses, status
):
    settings.ARENA_GATE_VOTES = 20
    parent = ModelVersion.objects.create(name="base", base_model=str(tiny_model_dir))
    services.version_activate(version=parent)
    candidate = ModelVersion.objects.create(
        name="v2",
        base_model=str(tiny_model_dir),
        adapter_path="/x",
        parent=parent,
        metrics={"arena_hold": True},
        gate_report={"passed": True, "checks": []},
    )
    votes(alice, candidate, parent, wins=wins - 1, losses=losses)
    assert arena.held_candidates_decide() == []  # 19 votes: not judged yet
    assert arena.arena_versions()[0] in (candidate, parent)  # the arena offers it
    votes(alice, candidate, parent, wins=1, losses=0)
    assert arena.held_candidates_decide() == [candidate]
    candidate.refresh_from_db()
    assert candidate.status == status
    check = candidate.gate_report["checks"][-1]
    assert check["name"] == "arena_not_worse" and check["passed"] == (status == "active")
    assert "of 20 votes" in check["detail"]


def test_staff_promoting_a_version_that_lost_in_the_arena_are_told(
    settings, client, alice, django_user_model, tiny_model_dir
):
    settings.ARENA_GATE_VOTES = 20
    parent = ModelVersion.objects.create(name="base", base_model=str(tiny_model_dir))
    services.version_activate(version=parent)
    candidate = ModelVersion.objects.create(
        name="v2", base_model=str(tiny_model_dir), adapter_path="/x", parent=parent
    )
    votes(alice, candidate, parent, wins=2, losses=18)
    client.force_login(django_user_model.objects.create_superuser("root", "", "root-pw-1"))
    response = client.post(
        "/admin/training/modelversion/",
        {"action": "promote", "_selected_action": [candidate.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "V2 is now in service" in page  # the admin capitalises messages
    assert "Note: in the arena, v2 won 10% of 20 votes against base" in page
