"""Loading what the trainers train: a policy (base or parent adapter) or a reward backbone."""

from __future__ import annotations

from pathlib import Path

from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from llm.training.config import model_dtype


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
