"""Loading what the trainers train: a policy (base or parent adapter) or a reward backbone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from llm.training.config import model_dtype, training_device
from llm.training.datasets import Message
from llm.training.versions import resolve_reward_model


def load_tokenizer(model_path: str | Path) -> PreTrainedTokenizerBase:
    """The model's tokenizer, with a pad token (the EOS token when it has none)."""
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_policy(base_model: str | Path, parent_adapter: Path | None = None):
    """The chat model to update: the base alone, or base plus a trainable parent adapter.

    With a parent the trainers get a ``PeftModel`` and no ``peft_config``: TRL then
    keeps a frozen copy of the parent adapter as the reference policy.
    """
    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=model_dtype())
    if parent_adapter is None:
        return model
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(parent_adapter), is_trainable=True)


def load_reward_backbone(
    base_model: str | Path, tokenizer: PreTrainedTokenizerBase
) -> PreTrainedModel:
    """The chat model's body under a fresh one-logit scoring head."""
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base_model), num_labels=1, dtype=model_dtype()
    )
    # Sequence classification reads the score at the last non-pad token.
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def load_reward_model(
    reward_dir: str | Path,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A saved (merged) reward model and its tokenizer, ready for scoring."""
    tokenizer = load_tokenizer(reward_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(reward_dir), num_labels=1, dtype=model_dtype()
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


class RewardScorer:
    """A reward model loaded once, scoring whole conversations (prompt + reply)."""

    def __init__(self, reward_dir: str | Path, *, batch_size: int = 8):
        self.model, self.tokenizer = load_reward_model(resolve_reward_model(reward_dir)[0])
        self.device = torch.device(training_device())
        self.model.to(self.device).eval()
        self.batch_size = batch_size

    @torch.no_grad()
    def scores(self, conversations: Sequence[Sequence[Message]]) -> list[float]:
        """One score per conversation, tokenized as TRL's RewardTrainer does."""
        sequences = [
            list(
                self.tokenizer.apply_chat_template(
                    list(conversation), tokenize=True, return_dict=True
                )["input_ids"]
            )
            for conversation in conversations
        ]
        scores: list[float] = []
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(sequences), self.batch_size):
            batch = sequences[start : start + self.batch_size]
            width = max(len(ids) for ids in batch)
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in batch])
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in batch])
            logits = self.model(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
            ).logits
            scores.extend(logits[:, 0].float().tolist())
        return scores
