"""The inference worker's OpenAI-protocol face, in-process over the tiny model: what
the OpenAIEngine (and any OpenAI client) relies on, and clear errors for bad input."""

from __future__ import annotations

import json

import httpx
import pytest

from llm.engine.local import LocalEngine
from llm.engine.openai_server import OpenAIServer
from llm.loading import load_model
from tests.support.tiny_model import build_tiny_adapter


@pytest.fixture
async def server(tiny_model_dir):
    engine = LocalEngine(lambda: load_model(str(tiny_model_dir), tiny_model_dir.parent, "cpu"))
    engine.start()
    await engine.wait_ready()
    yield OpenAIServer(engine, model="tiny")
    engine.close()


def client(server) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url="http://worker")


def ask(**overrides) -> dict:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}
    return body | {"temperature": 0} | overrides


async def events(response: httpx.Response) -> list[dict]:
    lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines[:-1]]


async def test_it_streams_chunks_with_the_prompt_seen_and_usage(server):
    async with client(server) as http:
        assert (await http.get("/health")).status_code == 200
        async with http.stream("POST", "/v1/chat/completions", json=ask(stream=True)) as response:
            assert response.headers["content-type"] == "text/event-stream"
            chunks = await events(response)
    first, last = chunks[0], chunks[-1]
    assert first["prompt_messages"][-1] == {"role": "user", "content": "Hi"}
    assert first["usage"]["prompt_tokens"] > 0
    texts = [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]]
    assert len(texts) == 5 and all(texts)
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert last["usage"]["completion_tokens"] == 5


async def test_greedy_is_deterministic_and_a_whole_answer_works_too(server):
    async with client(server) as http:
        one = (await http.post("/v1/chat/completions", json=ask())).json()
        two = (await http.post("/v1/chat/completions", json=ask())).json()
    assert one["choices"][0]["message"] == two["choices"][0]["message"]
    assert one["usage"]["completion_tokens"] == 5


async def test_a_registered_version_is_served_by_name(server, tiny_model_dir, tmp_path):
    adapter = build_tiny_adapter(tiny_model_dir, tmp_path / "v1")
    async with client(server) as http:
        base = (await http.post("/v1/chat/completions", json=ask())).json()
        missing = await http.post("/v1/chat/completions", json=ask(model="v1"))
        assert missing.status_code == 404 and "does not exist" in missing.json()["error"]["message"]
        loaded = await http.post(
            "/v1/load_lora_adapter", json={"lora_name": "v1", "lora_path": str(adapter)}
        )
        assert loaded.status_code == 200
        tuned = (await http.post("/v1/chat/completions", json=ask(model="v1"))).json()
        assert tuned["choices"][0]["message"] != base["choices"][0]["message"]
        models = {m["id"] for m in (await http.get("/v1/models")).json()["data"]}
        assert models == {"tiny", "v1"}
        assert (
            await http.post("/v1/unload_lora_adapter", json={"lora_name": "v1"})
        ).status_code == 200
        assert (
            await http.post("/v1/unload_lora_adapter", json={"lora_name": "v1"})
        ).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[]", 400, "JSON object"),
        (json.dumps(ask(messages="Hi")).encode(), 400, "messages"),
        (json.dumps(ask(temperature=9)).encode(), 400, "Temperature must be between"),
        (json.dumps(ask(model="nope")).encode(), 404, "does not exist"),
    ],
)
async def test_bad_requests_get_a_clear_openai_style_error(server, body, status, says):
    async with client(server) as http:
        response = await http.post("/v1/chat/completions", content=body)
    assert response.status_code == status
    assert says in response.json()["error"]["message"]


async def test_unknown_routes_and_bad_adapters_are_refused(server, tmp_path):
    async with client(server) as http:
        assert (await http.get("/v1/nothing")).status_code == 404
        bad = await http.post(
            "/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": str(tmp_path / "no")}
        )
        assert bad.status_code == 404 and "No adapter found" in bad.json()["error"]["message"]
        assert (await http.post("/v1/load_lora_adapter", json={})).status_code == 400
