"""A tiny, randomly initialised sentence-transformers model for retrieval tests.

Random weights embed nothing meaningfully, but the plumbing is real: the same
folder layout, loading path and pooling as a downloaded embedding model, in
milliseconds. Identical texts still get identical vectors.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
from transformers import AutoTokenizer, BertConfig, BertModel

DIMENSION = 32
MAX_TOKENS = 256


def build_tiny_embedding_model(target: Path, tokenizer_dir: Path) -> Path:
    """Save a tiny BERT encoder with mean pooling at ``target`` (once) and return it.

    ``tokenizer_dir`` lends its tokenizer (any transformers tokenizer folder).
    The folder is built beside ``target`` and renamed into place, so a test run
    sharing the cache never loads a half-written model.
    """
    if (target / "modules.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as staging:
        encoder, model = Path(staging) / "encoder", Path(staging) / "model"
        _save_encoder(encoder, tokenizer_dir)
        transformer = Transformer(str(encoder), max_seq_length=MAX_TOKENS)
        SentenceTransformer(modules=[transformer, Pooling(DIMENSION, "mean")], device="cpu").save(
            str(model)
        )
        try:
            os.rename(model, target)
        except OSError:
            # Another run finished first; its model is as good as ours.
            if not (target / "modules.json").exists():
                raise
    return target


def _save_encoder(folder: Path, tokenizer_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # batches of texts need padding
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=DIMENSION,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_TOKENS,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
