"""Replies grounded on documents, through the real websocket consumer and chain:
the passages reach the prompt within the context window, the reply stores them
with its exact prompt, and nobody's documents reach anyone else's replies."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.core.cache import cache

from chat import services as chat_services
from chat.models import Message
from chat.refusals import Refusal
from documents import selectors
from documents.indexes import owner_index
from documents.models import Chunk
from live.routing import websocket_application
from llm.loading import prompt_measure
from tests.documents_tests.conftest import MANUAL
from tests.live_tests.test_consumer import connect, receive_until

pytestmark = [pytest.mark.django_db(transaction=True)]

QUESTION = "How many months does the Kettle K-40 warranty last?"


@pytest.fixture(autouse=True)
def chat_settings(tiny_engine_settings):
    cache.clear()  # rate-limit counters
    tiny_engine_settings.CHAT_DEFAULT_MAX_NEW_TOKENS = 16
    return tiny_engine_settings


async def ask(engine, user, conversation, content=QUESTION, parent=None) -> list[dict]:
    communicator, _ = await connect(websocket_application(engine), user)
    try:
        await communicator.send_json_to(
            {"type": "send", "conversation": conversation.pk, "content": content, "parent": parent}
        )
        return await receive_until(communicator, "reply_done")
    finally:
        await communicator.disconnect()


def of_type(frames: list[dict], frame_type: str) -> list[dict]:
    return [frame for frame in frames if frame["type"] == frame_type]


async def test_a_reply_cites_the_conversations_document_and_stores_what_it_saw(
    tiny_engine, alice, conversation, upload
):
    document = await database_sync_to_async(upload)(
        alice, "kettle.md", MANUAL, conversation=conversation
    )
    frames = await ask(tiny_engine, alice, conversation)
    types = [frame["type"] for frame in frames]
    assert types.index("reply_started") < types.index("sources") < types.index("reply_done")
    assert "token" not in types[: types.index("sources")]
    sources = of_type(frames, "sources")[0]["sources"]
    assert [source["number"] for source in sources] == list(range(1, len(sources) + 1))
    assert {source["document"] for source in sources} == {document.pk}
    assert any("27 months" in source["text"] for source in sources)

    done = of_type(frames, "reply_done")[0]["message"]
    assert [s["number"] for s in done["sources"]] == [s["number"] for s in sources]
    assert all(isinstance(source["cited"], bool) for source in done["sources"])
    reply = await database_sync_to_async(Message.objects.get)(pk=done["id"])
    assert reply.grounded and reply.sources == done["sources"]
    system, human = reply.prompt_messages[0], reply.prompt_messages[-1]
    assert system["role"] == "system" and "[1]" in system["content"] + human["content"]
    assert "27 months" in human["content"] and QUESTION in human["content"]


async def test_the_reply_marks_the_passages_it_drew_on(tiny_engine, alice, conversation, upload):
    """Cited marks come from the reply's text: here the stored reply is judged again."""
    await database_sync_to_async(upload)(alice, "kettle.md", MANUAL, conversation=conversation)
    done = of_type(await ask(tiny_engine, alice, conversation), "reply_done")[0]["message"]
    reply = await database_sync_to_async(Message.objects.get)(pk=done["id"])
    quoted = next(s for s in reply.sources if "27 months" in s["text"])
    finished = await database_sync_to_async(chat_services.reply_finish)(
        reply=reply,
        content=f"The warranty lasts 27 months from the date of purchase [{quoted['number']}].",
        status=Message.Status.COMPLETE,
        cited=[quoted["number"]],
    )
    assert [s["number"] for s in finished.sources if s["cited"]] == [quoted["number"]]


TOASTER = (
    "# Toaster T-9 manual\n\n## Warranty\n\n"
    "Warranty terms: the warranty lasts 14 months; a warranty claim needs the receipt.\n"
)


async def test_a_follow_up_question_searches_with_the_subject_named_before(
    tiny_engine, alice, conversation, upload
):
    """ "How long does the warranty last?" alone prefers the toaster's wordier
    warranty passage; after "Tell me about the Kettle K-40." it is the kettle's."""
    add = database_sync_to_async(upload)
    kettle = await add(alice, "kettle.md", MANUAL, conversation=conversation)
    toaster = await add(alice, "toaster.md", TOASTER, conversation=conversation)
    follow_up = "How long does the warranty last?"

    alone = of_type(await ask(tiny_engine, alice, conversation, follow_up), "sources")[0]
    assert alone["sources"][0]["document"] == toaster.pk

    first = await ask(tiny_engine, alice, conversation, "Tell me about the Kettle K-40.")
    reply = of_type(first, "reply_done")[0]["message"]["id"]
    after = await ask(tiny_engine, alice, conversation, follow_up, parent=reply)
    assert of_type(after, "sources")[0]["sources"][0]["document"] == kettle.pk


async def test_a_plain_conversation_gets_a_plain_reply(tiny_engine, alice, conversation):
    frames = await ask(tiny_engine, alice, conversation)
    assert of_type(frames, "sources") == []
    assert of_type(frames, "reply_done")[0]["message"]["sources"] == []


async def test_a_message_no_passage_matches_is_told_so_and_the_model_may_say_it_does_not_know(
    tiny_engine, alice, conversation, upload
):
    await database_sync_to_async(upload)(alice, "kettle.md", MANUAL, conversation=conversation)
    frames = await ask(tiny_engine, alice, conversation, "Xylophones quizzically juggle zebras?")
    assert [(f["sources"], f["matched"]) for f in of_type(frames, "sources")] == [([], False)]
    done = of_type(frames, "reply_done")[0]["message"]
    reply = await database_sync_to_async(Message.objects.get)(pk=done["id"])
    assert reply.sources == [] and not reply.grounded
    system = reply.prompt_messages[0]
    assert system["role"] == "system"
    assert "no passage matched" in system["content"]
    assert "say that you do not know" in system["content"]


async def test_nobody_elses_documents_reach_a_reply(tiny_engine, alice, bob, conversation, upload):
    await database_sync_to_async(upload)(alice, "kettle.md", MANUAL, conversation=conversation)
    await database_sync_to_async(upload)(alice, "library.md", MANUAL)
    bobs = await database_sync_to_async(chat_services.conversation_create)(owner=bob)
    bobs.use_library = True
    await database_sync_to_async(bobs.save)()
    frames = await ask(tiny_engine, bob, bobs)
    assert of_type(frames, "sources") == []
    # Nor can bob send into alice's conversation to use its documents.
    refused = await ask_refused(tiny_engine, bob, conversation)
    assert refused["code"] == "not_found"


async def ask_refused(engine, user, conversation) -> dict:
    communicator, _ = await connect(websocket_application(engine), user)
    try:
        await communicator.send_json_to(
            {"type": "send", "conversation": conversation.pk, "content": QUESTION, "parent": None}
        )
        return (await receive_until(communicator, "error"))[-1]
    finally:
        await communicator.disconnect()


async def test_the_library_is_searched_only_when_the_conversation_says_so(
    tiny_engine, alice, conversation, upload
):
    await database_sync_to_async(upload)(alice, "library.md", MANUAL)
    assert of_type(await ask(tiny_engine, alice, conversation), "sources") == []
    conversation.use_library = True
    await database_sync_to_async(conversation.save)()
    sources = of_type(await ask(tiny_engine, alice, conversation, "Warranty months?"), "sources")
    assert sources and sources[0]["sources"][0]["filename"] == "library.md"


async def test_passages_share_the_window_with_a_long_history(
    tiny_engine, tiny_model_dir, alice, conversation, upload
):
    """A history longer than the window keeps its newest turns and the passages both."""
    await database_sync_to_async(upload)(alice, "kettle.md", MANUAL * 3, conversation=conversation)
    parent = None
    for turn in range(6):
        user = await database_sync_to_async(chat_services.user_message_create)(
            conversation=conversation,
            content=f"Turn {turn}: " + "tell me more " * 30,
            parent=parent,
        )
        parent = await database_sync_to_async(_finished_reply)(conversation, user, "ok " * 30)
    frames = await ask(tiny_engine, alice, conversation, parent=parent.pk)
    done = of_type(frames, "reply_done")[0]["message"]
    reply = await database_sync_to_async(Message.objects.get)(pk=done["id"])
    measure = prompt_measure(str(tiny_model_dir), "")
    assert reply.prompt_tokens + conversation.max_new_tokens <= measure.context_window
    assert reply.sources, "the passages kept their share of the window"
    assert QUESTION in reply.prompt_messages[-1]["content"]


def _finished_reply(conversation, user_message, text):
    reply = chat_services.reply_create(conversation=conversation, parent=user_message)
    return chat_services.reply_finish(reply=reply, content=text, status=Message.Status.COMPLETE)


def test_the_retriever_never_returns_another_owners_passages(alice, bob, conversation, upload):
    document = upload(alice, "kettle.md", MANUAL, conversation=conversation)
    assert selectors.passages_for(owner=alice, query="warranty", scope={document.pk}, k=5)
    # A crafted request naming alice's document: bob's index has none of it.
    assert selectors.passages_for(owner=bob, query="warranty", scope={document.pk}, k=5) == []
    bobs = chat_services.conversation_create(owner=bob)
    with pytest.raises(Refusal) as refused:
        selectors.search_scope(owner=bob, conversation=bobs, document_ids=[document.pk])
    assert refused.value.code == "not_found"
    with pytest.raises(Refusal):
        selectors.passage_get(owner=bob, chunk_id=Chunk.objects.first().pk)


def test_retrieval_turns_hybrid_with_a_local_embedding_model(
    settings, alice, conversation, upload, tiny_model_dir, model_cache_dir
):
    from tests.support.embedding import build_tiny_embedding_model

    model = build_tiny_embedding_model(model_cache_dir / "tiny-random-embedding", tiny_model_dir)
    settings.DOCUMENTS_EMBEDDING_MODEL = str(model)
    document = upload(alice, "kettle.md", MANUAL, conversation=conversation)
    assert document.status == "ready" and document.embedding_model == str(model)
    assert not Chunk.objects.filter(document=document, embedding__isnull=True).exists()
    index = owner_index(alice.pk)
    assert index.vectors is not None
    passages = selectors.passages_for(owner=alice, query="warranty", scope={document.pk}, k=3)
    assert passages and {p.document_id for p in passages} == {document.pk}


def test_a_question_naming_the_file_finds_a_passage_that_does_not(alice, conversation, upload):
    """Chunks are indexed under their file's name and heading; the passage shown is
    the chunk's own text."""
    ids = {
        upload(
            alice, name, "## Box contents\n\nCharger: " + code + ".\n", conversation=conversation
        ).pk
        for name, code in [("trelvo-e-city-3.md", "TC-36"), ("norda-trail-9.md", "XR-9")]
    }
    question = "Which charger comes with the Trelvo E-City 3?"
    [best, *_] = selectors.passages_for(owner=alice, query=question, scope=ids, k=2)
    assert best.filename == "trelvo-e-city-3.md"
    assert "TC-36" in best.text and "Trelvo" not in best.text
