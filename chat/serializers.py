"""The JSON shapes of conversations and messages, shared by HTTP and websocket."""

from __future__ import annotations

from chat.models import Conversation, Message


def conversation_data(conversation: Conversation) -> dict:
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "system_prompt": conversation.system_prompt,
        "temperature": conversation.temperature,
        "top_p": conversation.top_p,
        "max_new_tokens": conversation.max_new_tokens,
        "use_library": conversation.use_library,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
    }


def message_data(message: Message) -> dict:
    return {
        "id": message.pk,
        "conversation": message.conversation_id,
        "parent": message.parent_id,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "model_version": message.model_version,
        # Who wrote it: "model", or "user" for the user's own turns and for a reply
        # they wrote themselves under a thumbs-down ("Write a better reply").
        "written_by": "user"
        if message.role == Message.Role.USER or message.written_by_user
        else "model",
        "finish_reason": message.finish_reason,
        "error": message.error,
        "sources": message.sources,
        "created_at": message.created_at.isoformat(),
        "stats": {
            "prompt_tokens": message.prompt_tokens,
            "completion_tokens": message.completion_tokens,
            "time_to_first_token_ms": message.time_to_first_token_ms,
            "duration_ms": message.duration_ms,
            "tokens_per_second": message.tokens_per_second,
        },
    }
