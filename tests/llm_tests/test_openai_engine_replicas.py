"""OpenAIEngine over several replicas, against real inference worker processes (and a
port nothing listens on): a replica that comes back is found by its own probe, not
only when every other one has failed; equally idle replicas take turns; close() ends
the probes."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing

import pytest

from llm.engine.base import Failure, Finished, FinishReason, GenerationRequest
from llm.engine.openai_compat import OpenAIEngine
from llm.loading import model_label
from llm.sampling import SamplingParams
from tests.support.servers import free_port, inference_worker, process_env

pytestmark = [pytest.mark.timeout(180)]

REQUEST = GenerationRequest(
    messages=[{"role": "user", "content": "Hi"}], sampling=SamplingParams(max_new_tokens=3)
)


async def finish(engine: OpenAIEngine) -> Finished:
    async with aclosing(engine.stream(REQUEST)) as events:
        async for event in events:
            if isinstance(event, Finished):
                return event
    raise AssertionError("no Finished event")


@pytest.fixture
def worker_env(tiny_model_dir):
    return process_env(CHAT_MODEL=str(tiny_model_dir))


async def test_a_replica_that_comes_back_takes_replies_while_the_others_are_fine(
    worker_env, tiny_model_dir, tmp_path
):
    port = free_port()
    late = f"http://127.0.0.1:{port}"
    with inference_worker(worker_env, tmp_path / "steady.log") as (steady, _):
        model = model_label(str(tiny_model_dir))
        engine = OpenAIEngine([late, steady], model=model, retry_seconds=1.0)
        replicas = engine.replicas
        done = await finish(engine)  # the late one refuses: the reply moves on
        assert done.finish_reason is FinishReason.LENGTH
        assert not replicas[0].healthy and replicas[1].replies == 1
        with inference_worker(worker_env, tmp_path / "late.log", port=port):
            answering = time.monotonic()
            while not replicas[0].healthy and time.monotonic() - answering < 5:
                await asyncio.sleep(0.1)  # no reply fails meanwhile: the probe finds it
            assert replicas[0].healthy, "the probe did not bring the replica back"
            for _ in range(4):
                assert (await finish(engine)).finish_reason is FinishReason.LENGTH
            assert [replica.replies for replica in replicas] == [2, 3]
        engine.close()


async def test_close_ends_the_probes(tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    engine = OpenAIEngine([nowhere], model="tiny")
    done = await finish(engine)
    assert (done.finish_reason, done.failure) == (FinishReason.ERROR, Failure.UNREACHABLE)
    assert nowhere in done.error
    probe = engine.replicas[0].probe
    assert probe is not None and not probe.done()
    engine.close()
    await asyncio.sleep(0)
    assert probe.cancelled()
