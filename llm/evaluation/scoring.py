"""Teacher-forced scoring of replies under a base model and its LoRA adapters.

One base model carries every adapter being compared (``parent``,
``candidate``); ``use(None)`` switches adapters off to score the base itself.
Sequences are (prompt ids, completion ids) pairs, tokenized the way TRL does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from llm.training.config import model_dtype, training_device
from llm.training.datasets import Message
from llm.training.models import load_tokenizer

Sequences = Sequence[tuple[list[int], list[int]]]


@dataclass
class ScoringModel:
    model: PreTrainedModel  # a PeftModel when adapters are loaded
    tokenizer: PreTrainedTokenizerBase
    device: torch.device

    @contextmanager
    def use(self, adapter: str | None) -> Iterator[None]:
        """Run the block with ``adapter`` active; ``None`` means the bare base model."""
        if adapter is None:
            disable = getattr(self.model, "disable_adapter", None)
            with disable() if disable else nullcontext():
                yield
        else:
            self.model.set_adapter(adapter)
            yield


def load_scoring_model(base_model: str | Path, adapters: dict[str, Path]) -> ScoringModel:
    """The base model in eval mode with each adapter loaded under its key."""
    device = torch.device(training_device())
    tokenizer = load_tokenizer(base_model)
    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=model_dtype())
    for name, path in adapters.items():
        from peft import PeftModel

        if isinstance(model, PeftModel):
            model.load_adapter(str(path), adapter_name=name, is_trainable=False)
        else:
            model = PeftModel.from_pretrained(model, str(path), adapter_name=name)
    model.to(device).eval()
    return ScoringModel(model=model, tokenizer=tokenizer, device=device)


def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: Sequence[Message]) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        list(prompt), add_generation_prompt=True, tokenize=True, return_dict=True
    )
    return list(encoded["input_ids"])


def completion_sequence(
    tokenizer: PreTrainedTokenizerBase, prompt: Sequence[Message], completion: Sequence[Message]
) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids) split where the two renderings diverge, as TRL does."""
    head = prompt_ids(tokenizer, prompt)
    full = tokenizer.apply_chat_template(
        list(prompt) + list(completion), tokenize=True, return_dict=True
    )["input_ids"]
    shared = 0
    while shared < min(len(head), len(full)) and head[shared] == full[shared]:
        shared += 1
    return list(full[:shared]), list(full[shared:])


@torch.no_grad()
def completion_log_probs(
    scoring: ScoringModel, adapter: str | None, batch: Sequences
) -> list[torch.Tensor]:
    """Per sequence, the log-softmax rows (completion length x vocab) that predict its completion."""
    with scoring.use(adapter):
        logits = _forward(scoring, [head + tail for head, tail in batch])
    rows = []
    for index, (head, tail) in enumerate(batch):
        window = logits[index, len(head) - 1 : len(head) + len(tail) - 1]
        rows.append(torch.log_softmax(window.float(), dim=-1).cpu())
    return rows


def summed_log_probs(
    scoring: ScoringModel, adapter: str | None, sequences: Sequences, batch_size: int = 8
) -> list[float]:
    """log p(completion | prompt), summed over the completion's tokens."""
    sums: list[float] = []
    for batch in _batches(sequences, batch_size):
        rows = completion_log_probs(scoring, adapter, batch)
        sums.extend(
            _picked(row, tail).sum().item() for row, (_, tail) in zip(rows, batch, strict=True)
        )
    return sums


def drift(
    scoring: ScoringModel,
    parent: str | None,
    candidate: str,
    sequences: Sequences,
    batch_size: int = 8,
) -> dict[str, float]:
    """Mean per-token KL(parent || candidate) and both per-token NLLs on ``sequences``."""
    kl = parent_nll = candidate_nll = 0.0
    tokens = 0
    for batch in _batches(sequences, batch_size):
        parent_rows = completion_log_probs(scoring, parent, batch)
        candidate_rows = completion_log_probs(scoring, candidate, batch)
        for p, q, (_, tail) in zip(parent_rows, candidate_rows, batch, strict=True):
            kl += (p.exp() * (p - q)).sum().item()
            parent_nll -= _picked(p, tail).sum().item()
            candidate_nll -= _picked(q, tail).sum().item()
            tokens += len(tail)
    count = max(tokens, 1)
    return {
        "kl_per_token": kl / count,
        "parent_nll_per_token": parent_nll / count,
        "candidate_nll_per_token": candidate_nll / count,
        "tokens": tokens,
    }


def _batches(sequences: Sequences, size: int) -> Iterator[Sequences]:
    for start in range(0, len(sequences), size):
        yield sequences[start : start + size]


def _picked(rows: torch.Tensor, tokens: list[int]) -> torch.Tensor:
    return rows.gather(1, torch.tensor(tokens, dtype=torch.long).unsqueeze(1)).squeeze(1)


def _forward(scoring: ScoringModel, sequences: list[list[int]]) -> torch.Tensor:
    """Logits for right-padded sequences."""
    width = max(len(ids) for ids in sequences)
    pad = scoring.tokenizer.pad_token_id
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in sequences])
    mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in sequences])
    output = scoring.model(
        input_ids=input_ids.to(scoring.device), attention_mask=mask.to(scoring.device)
    )
    return output.logits
