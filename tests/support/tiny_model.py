"""A tiny, randomly initialised Llama with SmolLM2's real tokenizer and chat format.

Fast tests run the real engine code on it: same tokenizer, same template,
same architecture family, milliseconds per step instead of ~70.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

from llm.loading import prepare_embedded_model


def build_tiny_model(target: Path, cache_dir: Path, context_window: int = 512) -> Path:
    """Save a tiny model folder at ``target`` (once) and return it."""
    if (target / "config.json").exists():
        return target
    tokenizer = AutoTokenizer.from_pretrained(prepare_embedded_model(cache_dir))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context_window,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def build_tiny_adapter(model_dir: Path, target: Path, seed: int = 1) -> Path:
    """A random (non-zero) LoRA adapter on the tiny model: it changes the outputs."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = LlamaForCausalLM.from_pretrained(model_dir)
    config = LoraConfig(
        r=4, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM"
    )
    get_peft_model(model, config).save_pretrained(target)
    return target
