"""The running batch: one shared KV cache, rows joining and leaving between steps.

Rows are left-padded to a common cache length. Each new request is prefilled
alone (so its first token is exact), then its cache is padded and stacked onto
the running batch; finished rows are sliced out. The attention mask hides the
padding and ``position_ids`` carry each row's own positions, so a row's logits
match the ones it would get alone, within float tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from peft import PeftModel
from transformers import DynamicCache, PreTrainedModel

from llm.loading import LoadedModel

BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed batch


@dataclass
class DecodeBatch:
    # Read through on every pass: loading the first adapter wraps the model.
    loaded: LoadedModel
    cache: DynamicCache | None = None
    attention_mask: torch.Tensor | None = None  # [rows, cache length]
    next_tokens: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)  # real tokens per row
    adapters: list[str | None] = field(default_factory=list)

    @property
    def model(self) -> PreTrainedModel:
        return self.loaded.model

    @property
    def size(self) -> int:
        return len(self.next_tokens)

    @property
    def prefilling(self) -> frozenset[int]:
        """None: a prompt is decoded whole when its row is added."""
        return frozenset()

    @torch.inference_mode()
    def prefill(self, prompt_ids: list[int], adapter: str | None) -> torch.Tensor:
        """Run one prompt alone, add it as a new row, return its last logits."""
        device = self.model.device
        input_ids = torch.tensor([prompt_ids], device=device)
        cache = DynamicCache()
        output = self.model(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            past_key_values=cache,
            use_cache=True,
            **_adapter_kwargs(self.model, [adapter]),
        )
        self._append_row(output.past_key_values, len(prompt_ids), adapter)
        return output.logits[0, -1]

    @torch.inference_mode()
    def step(self) -> torch.Tensor:
        """Feed every row its pending token; return next-token logits [rows, vocab]."""
        device = self.model.device
        input_ids = torch.tensor(self.next_tokens, device=device).unsqueeze(1)
        ones = torch.ones((self.size, 1), dtype=self.attention_mask.dtype, device=device)
        self.attention_mask = torch.cat([self.attention_mask, ones], dim=1)
        position_ids = torch.tensor(self.lengths, device=device).unsqueeze(1)
        output = self.model(
            input_ids=input_ids,
            attention_mask=self.attention_mask,
            position_ids=position_ids,
            past_key_values=self.cache,
            use_cache=True,
            **_adapter_kwargs(self.model, self.adapters),
        )
        self.cache = output.past_key_values
        self.lengths = [length + 1 for length in self.lengths]
        return output.logits[:, -1]

    def set_next_token(self, row: int, token_id: int) -> None:
        self.next_tokens[row] = token_id

    def keep_rows(self, rows: list[int]) -> None:
        """Drop every row not in ``rows`` (order preserved) and trim shared padding."""
        if len(rows) == self.size:
            return
        if not rows:
            self.clear()
            return
        index = torch.tensor(rows, device=self.model.device)
        self.cache.batch_select_indices(index)
        self.attention_mask = self.attention_mask[index]
        self.next_tokens = [self.next_tokens[row] for row in rows]
        self.lengths = [self.lengths[row] for row in rows]
        self.adapters = [self.adapters[row] for row in rows]
        self._trim_padding()

    def clear(self) -> None:
        self.cache, self.attention_mask = None, None
        self.next_tokens, self.lengths, self.adapters = [], [], []

    def _append_row(self, row_cache: DynamicCache, length: int, adapter: str | None) -> None:
        device = self.model.device
        row_mask = torch.ones((1, length), dtype=torch.long, device=device)
        if self.cache is None:
            self.cache, self.attention_mask = row_cache, row_mask
        else:
            width = max(self.attention_mask.shape[1], length)
            layers = []
            for old, new in zip(self.cache.layers, row_cache.layers, strict=True):
                keys = torch.cat([_pad_left(old.keys, width), _pad_left(new.keys, width)])
                values = torch.cat([_pad_left(old.values, width), _pad_left(new.values, width)])
                layers.append((keys, values))
            self.cache = DynamicCache(layers)
            self.attention_mask = torch.cat(
                [_pad_left(self.attention_mask, width), _pad_left(row_mask, width)]
            )
        self.next_tokens.append(-1)  # set by the caller once it samples
        self.lengths.append(length)
        self.adapters.append(adapter)

    def _trim_padding(self) -> None:
        """Remove leading columns that are padding in every row."""
        used = self.attention_mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0
        if start == 0:
            return
        self.attention_mask = self.attention_mask[:, start:]
        for layer in self.cache.layers:
            layer.keys = layer.keys[:, :, start:]
            layer.values = layer.values[:, :, start:]


def _pad_left(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Left-pad the sequence dimension (-2 for K/V, -1 for masks) with zeros."""
    dim = -2 if tensor.dim() == 4 else -1
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def _adapter_kwargs(model: PreTrainedModel, adapters: list[str | None]) -> dict:
    """PEFT serves a different adapter per row when given ``adapter_names``."""
    if not isinstance(model, PeftModel):
        return {}
    return {"adapter_names": [adapter or BASE_ADAPTER for adapter in adapters]}
