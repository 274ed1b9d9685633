"""The prompt chain: system prompt + conversation history + the new message."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable, RunnableLambda

from chat.models import Conversation, Message
from llm.chat_model import EngineChatModel
from llm.engine.base import Engine
from training.services import BASE, Serving

_WITH_SYSTEM = ChatPromptTemplate.from_messages(
    [("system", "{system_prompt}"), MessagesPlaceholder("history"), ("human", "{input}")]
)
_WITHOUT_SYSTEM = ChatPromptTemplate.from_messages(
    [MessagesPlaceholder("history"), ("human", "{input}")]
)


def reply_chain(
    *, engine: Engine, conversation: Conversation, serving: Serving = BASE, seed: int | None = None
) -> Runnable:
    """A runnable taking ``{"system_prompt", "history", "input"}`` and streaming a reply
    (``seed``: the same one repeats a sampled reply, where the engine honours it).

    Its inputs come from ``chain_inputs``, grounded on the conversation's
    documents by ``live.grounding.grounding_step`` first.
    """
    model = EngineChatModel(
        engine=engine,
        version=serving.version,
        adapter_path=serving.adapter_path,
        temperature=conversation.temperature,
        top_p=conversation.top_p,
        max_new_tokens=conversation.max_new_tokens,
        seed=seed,
    )
    return RunnableLambda(_prompt_for, name="prompt") | model


def _prompt_for(inputs: dict) -> Runnable:
    """The template for these inputs (a runnable returned here is run on them)."""
    return _WITH_SYSTEM if inputs["system_prompt"].strip() else _WITHOUT_SYSTEM


def chain_inputs(*, conversation: Conversation, path: list[Message]) -> dict:
    """Inputs for ``reply_chain`` from the branch ending in the user's message."""
    *earlier, newest = path
    return {
        "system_prompt": conversation.system_prompt,
        "history": [message for message in map(_as_langchain, earlier) if message is not None],
        "input": newest.content,
    }


def _as_langchain(message: Message) -> BaseMessage | None:
    if message.role == Message.Role.USER:
        return HumanMessage(content=message.content)
    # Failed or empty replies were never seen by the user: leave them out.
    if message.status == Message.Status.FAILED or not message.content:
        return None
    return AIMessage(content=message.content)
