"""The retrieval step of the reply chain: a conversation's documents → numbered
passages in the prompt.

``grounding_step`` is a LangChain runnable between the chain's inputs
(``system_prompt``, ``history``, ``input``) and the prompt template: it
retrieves the best passages of the documents the conversation searches,
keeps as many as the context window allows beside the history
(``llm.retrieval.budget``), and rewrites the system prompt and the human
message to cite them (``llm.retrieval.grounding``). Its output adds
``passages``, which the reply stores with its exact prompt. A conversation
with no ready document passes through unchanged, with no passages.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.conf import settings
from langchain_core.runnables import Runnable, RunnableLambda

from chat.models import Conversation
from documents import selectors
from llm.loading import PromptMeasure, prompt_measure
from llm.retrieval.budget import passage_budget
from llm.retrieval.grounding import fit_passages, grounded_prompt
from llm.retrieval.passages import Passage


def grounding_step(*, conversation: Conversation) -> Runnable:
    """A runnable: chain inputs → the same inputs grounded, plus ``passages``."""

    async def ground(inputs: dict) -> dict:
        # Searching (embedding the question too, with a vector model) and counting
        # tokens is model work: off the event loop and the consumers' shared sync
        # thread, so no other socket waits on it.
        return await database_sync_to_async(_ground, thread_sensitive=False)(conversation, inputs)

    return RunnableLambda(ground, name="grounding")


def _ground(conversation: Conversation, inputs: dict) -> dict:
    passages = _retrieve(conversation, inputs["input"])
    if not passages:
        return {**inputs, "passages": []}
    measure = prompt_measure(settings.CHAT_MODEL, str(settings.MODEL_CACHE_DIR))
    fitted = fit_passages(
        passages,
        budget_tokens=_budget(conversation, inputs, measure),
        count_tokens=measure.count,
    )
    prompt = grounded_prompt(
        system_prompt=inputs["system_prompt"], question=inputs["input"], passages=fitted
    )
    return {
        **inputs,
        "system_prompt": prompt.system_prompt,
        "input": prompt.input,
        "passages": prompt.passages,
    }


def _retrieve(conversation: Conversation, question: str) -> list[Passage]:
    scope = selectors.search_scope(owner=conversation.owner, conversation=conversation)
    if not scope:
        return []
    return selectors.passages_for(
        owner=conversation.owner, query=question, scope=scope, k=settings.DOCUMENTS_TOP_K
    )


def _budget(conversation: Conversation, inputs: dict, measure: PromptMeasure) -> int:
    history = inputs["history"]
    # The grounded layout around one empty passage: the instruction and labels it adds.
    layout = grounded_prompt(
        system_prompt=inputs["system_prompt"],
        question=inputs["input"],
        passages=[Passage(chunk_id=0, document_id=0, filename="", text="", number=1)],
    )
    return passage_budget(
        context_window=measure.context_window,
        max_new_tokens=conversation.max_new_tokens,
        fixed_tokens=measure.count(f"{layout.system_prompt}\n{layout.input}"),
        history_tokens=sum(measure.count(message.text) for message in history),
        history_messages=len(history),
        share=settings.DOCUMENTS_CONTEXT_SHARE,
    )
