"""The retrieval step of the reply chain: a conversation's documents → numbered
passages in the prompt.

``grounding_step`` is a LangChain runnable between the chain's inputs
(``system_prompt``, ``history``, ``input``) and the prompt template: it
retrieves the best passages of the documents the conversation searches, and
``llm.retrieval.grounding.ground`` keeps as many as the context window allows
beside the history and rewrites the system prompt and the human message
around them. Its output adds ``passages``, which the reply stores with its
exact prompt. A conversation with no ready document passes through
unchanged, with no passages. One whose documents hold nothing on the message
is told so in its system prompt (the model may say it does not know), and the
output says ``unmatched`` so the user is told too.
"""

from __future__ import annotations

from django.conf import settings
from langchain_core.runnables import Runnable, RunnableLambda

from chat.models import Conversation
from documents import selectors
from live.pooled import in_pool
from llm.loading import prompt_measure
from llm.retrieval.grounding import ground, unmatched_system_prompt
from llm.retrieval.passages import Passage


def grounding_step(*, conversation: Conversation) -> Runnable:
    """A runnable: chain inputs → the same inputs grounded, plus ``passages``."""

    async def ground_inputs(inputs: dict) -> dict:
        # Searching (embedding the question too, with a vector model) and counting
        # tokens is model work: off the event loop and the consumers' shared sync
        # thread, so no other socket waits on it.
        return await in_pool(_ground)(conversation, inputs)

    return RunnableLambda(ground_inputs, name="grounding")


def _ground(conversation: Conversation, inputs: dict) -> dict:
    earlier = [message.text for message in inputs["history"] if message.type == "human"]
    passages = _retrieve(conversation, inputs["input"], earlier=earlier[-1] if earlier else "")
    if passages is None:  # no document to search
        return {**inputs, "passages": []}
    if not passages:
        system_prompt = unmatched_system_prompt(inputs["system_prompt"])
        return {**inputs, "system_prompt": system_prompt, "passages": [], "unmatched": True}
    measure = prompt_measure(settings.CHAT_MODEL, str(settings.MODEL_CACHE_DIR))
    prompt = ground(
        system_prompt=inputs["system_prompt"],
        question=inputs["input"],
        history=[message.text for message in inputs["history"]],
        passages=passages,
        context_window=measure.context_window,
        max_new_tokens=conversation.max_new_tokens,
        share=settings.DOCUMENTS_CONTEXT_SHARE,
        count_tokens=measure.count,
    )
    return {
        **inputs,
        "system_prompt": prompt.system_prompt,
        "input": prompt.input,
        "passages": prompt.passages,
    }


def _retrieve(conversation: Conversation, question: str, *, earlier: str) -> list[Passage] | None:
    """The passages for ``question``, a follow-up to ``earlier`` (the user's
    previous message: "and its warranty?" searches with the product it named);
    None when the conversation has no document to search."""
    scope = selectors.search_scope(owner=conversation.owner, conversation=conversation)
    if not scope:
        return None
    return selectors.passages_for(
        owner=conversation.owner,
        query=question,
        earlier=earlier,
        scope=scope,
        k=settings.DOCUMENTS_TOP_K,
    )
