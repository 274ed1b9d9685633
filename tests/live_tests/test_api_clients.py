"""Clients that are not LoopChat's own against a real Uvicorn server: OpenAI's Python
client (whole and streamed), LangChain's ChatOpenAI, and the README's curl examples
and LangChain snippet run as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from django.db import connection
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from chat import keys
from chat.models import Conversation, Message
from feedback.models import PreferencePair, Rating
from tests.feedback_tests.conftest import live_server_url  # noqa: F401  (the server)

pytestmark = pytest.mark.django_db(transaction=True)

README = Path(__file__).resolve().parents[2] / "README.md"
QUESTION = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture
def alice_key(alice) -> str:
    return keys.api_key_create(owner=alice, name="tests").secret


@pytest.fixture
def client(live_server_url, alice_key) -> openai.OpenAI:  # noqa: F811
    return openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=alice_key, max_retries=0)


def stored(completion_id: str) -> Message:
    return Message.objects.select_related("conversation").get(
        pk=int(completion_id.removeprefix("chatcmpl-"))
    )


def test_openais_client_gets_a_whole_completion(client, alice):
    raw = client.chat.completions.with_raw_response.create(
        model="loopchat", messages=QUESTION, max_tokens=6, seed=1
    )
    completion = raw.parse()
    reply = stored(completion.id)
    assert raw.headers["X-LoopChat-Version"] == completion.model == reply.model_version
    assert completion.choices[0].message.content == reply.content
    assert completion.usage.completion_tokens == reply.completion_tokens
    assert completion.usage.prompt_tokens == reply.prompt_tokens
    assert reply.conversation.source == "api" and reply.conversation.owner == alice
    assert completion.model_extra["conversation"] == reply.conversation_id


def test_openais_client_streams_a_completion(client):
    stream = client.chat.completions.create(
        model="loopchat",
        messages=QUESTION,
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    reply = stored(chunks[0].id)
    assert text == reply.content and reply.status == "complete"
    assert chunks[-1].usage.completion_tokens == reply.completion_tokens
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finishes[-1] in ("stop", "length")


def ended_sessions() -> int:
    """PostgreSQL's count of this database's sessions that have ended (counted as
    each one's backend exits)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_completions_use_the_servers_kept_database_connections(client):
    """A completion's database work runs on threads that keep their connections.
    On Django's thread for each request, every completion connected anew before its
    first token and dropped the connection after its last (sessions that end)."""
    if connection.vendor != "postgresql":
        pytest.skip("counts PostgreSQL's sessions")
    for _ in range(3):  # the shared pool's threads connect once each
        client.chat.completions.create(model="loopchat", messages=QUESTION, max_tokens=4)
    before = ended_sessions()
    for stream in (False, True, False, True):
        answer = client.chat.completions.create(
            model="loopchat", messages=QUESTION, max_tokens=4, stream=stream
        )
        if stream:
            list(answer)  # read to its end
    time.sleep(1)  # a connection dropped at a request's end is gone well within this
    assert ended_sessions() == before


def test_openais_client_raises_openais_errors_and_nothing_is_written(client, live_server_url):  # noqa: F811
    wrong = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key="lc-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="loopchat", messages=QUESTION)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as several:
        client.chat.completions.create(model="loopchat", messages=QUESTION, n=2)
    assert several.value.param == "n"
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_feedback_on_a_completion_from_openais_client(client, live_server_url, alice_key):  # noqa: F811
    completion = client.chat.completions.create(model="loopchat", messages=QUESTION, max_tokens=4)
    response = httpx.post(
        f"{live_server_url}/v1/feedback",
        headers={"Authorization": f"Bearer {alice_key}"},
        json={"completion": completion.id, "kind": "thumb", "value": "up", "comment": "Good."},
    )
    assert response.status_code == 200, response.text
    rating = Rating.objects.get()
    assert rating.message_id == stored(completion.id).pk and rating.comment == "Good."


def test_langchains_chat_openai_keeps_one_conversation(live_server_url, alice_key):  # noqa: F811
    chat = ChatOpenAI(
        model="loopchat",
        base_url=f"{live_server_url}/v1",
        api_key=alice_key,
        max_tokens=6,
        max_retries=0,
    )
    history = [HumanMessage("Name a colour.")]
    answer = chat.invoke(history)
    first = stored(answer.response_metadata["id"])
    assert answer.content == first.content
    history += [answer, HumanMessage("And another?")]
    chunks = list(chat.stream(history, extra_body={"conversation": answer.response_metadata["id"]}))
    text = "".join(chunk.content for chunk in chunks)
    second = Message.objects.filter(role="assistant").exclude(pk=first.pk).get()
    assert text == second.content
    assert second.conversation_id == first.conversation_id
    assert Conversation.objects.count() == 1
    assert second.prompt_messages[-3:] == [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": "And another?"},
    ]


def readme_blocks(language: str) -> list[str]:
    """The code blocks of the README's "Other apps" section in ``language``."""
    section = README.read_text().split("## Other apps", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def test_the_readmes_curl_examples_work_as_written(live_server_url, alice_key):  # noqa: F811
    env = {**os.environ, "LOOPCHAT_URL": live_server_url, "LOOPCHAT_KEY": alice_key}
    examples = [block for block in readme_blocks("sh") if "export " not in block]
    assert len(examples) == 4
    outputs = []
    for example in examples:
        done = subprocess.run(
            ["bash", "-e", "-c", example], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (example, done.stderr)
        outputs.append(done.stdout)
    models, whole, streamed, feedback = outputs
    assert json.loads(models)["data"][0]["id"] == "loopchat"
    assert json.loads(whole)["object"] == "chat.completion"
    assert streamed.rstrip().endswith("data: [DONE]")
    # Two answers one after the other (curl adds no newline).
    rating, end = json.JSONDecoder().raw_decode(feedback)
    written = json.loads(feedback[end:])
    assert rating["rating"]["value"] == "down" and rating["rating"]["reasons"] == ["wrong"]
    assert written["reply"]["content"] == "Blue."
    assert PreferencePair.objects.get().source == "written"


def test_the_readmes_langchain_snippet_works_as_written(live_server_url, alice_key):  # noqa: F811
    (snippet,) = readme_blocks("python")
    env = {**os.environ, "LOOPCHAT_URL": live_server_url, "LOOPCHAT_KEY": alice_key}
    done = subprocess.run(
        [sys.executable, "-c", snippet], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert Conversation.objects.get().messages.filter(role="assistant").count() == 2
