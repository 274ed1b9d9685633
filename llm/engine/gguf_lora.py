"""PEFT LoRA adapters written as GGUF LoRA adapters, for llama.cpp to hot-load.

llama.cpp loads an adapter at run time with ``llama_adapter_lora_init(model,
path)``; the file is what llama.cpp's own ``convert_lora_to_gguf.py`` writes,
and this module writes the same thing with the ``gguf`` package, without
torch:

- one ``blk.N.<tensor>.weight.lora_a`` (PEFT ``lora_A``, rank × in) and
  ``.lora_b`` (PEFT ``lora_B``, out × rank) pair per adapted linear layer, f32;
- ``general.type = adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``
  and the base's ``general.architecture``.

llama.cpp scales each pair by ``alpha / rank`` (rank read from the tensor), as
PEFT does; rsLoRA (``alpha / sqrt(rank)``) is folded into ``lora_b``. The Llama
GGUF converter permutes the rows of the q and k projections for llama.cpp's
rotary layout; ``W = B·A``, so only ``lora_b`` of q and k is permuted.

Refused, with ``GgufLoraError``: what llama.cpp would apply differently from
PEFT (DoRA, LoRA biases, per-module alphas, ``modules_to_save``, adapters on
the embeddings or the output head, whose weight SmolLM2 ties to the
embeddings) and bases other than Llama-architecture GGUF files.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

logger = logging.getLogger(__name__)

GGUF_ADAPTER_NAME = "adapter_model.gguf"
PEFT_WEIGHTS_NAME = "adapter_model.safetensors"
PEFT_CONFIG_NAME = "adapter_config.json"
# Architectures whose GGUF converter is known, with whether it permutes q/k rows.
_PERMUTES_QK = {"llama": True}


class GgufLoraError(ValueError):
    """The adapter cannot be written as a GGUF LoRA that llama.cpp applies as PEFT does."""


@dataclass(frozen=True)
class GgufBase:
    """What the conversion needs from the base model's GGUF file."""

    architecture: str
    head_count: int
    head_count_kv: int
    block_count: int
    tensor_shapes: dict[str, tuple[int, ...]]  # ggml order: (in, out) for a matrix

    @classmethod
    def read(cls, path: str | Path) -> GgufBase:
        path = Path(path)
        return _read_base(path, path.stat().st_mtime_ns)

    @classmethod
    def _from_file(cls, path: Path) -> GgufBase:
        reader = gguf.GGUFReader(path)
        architecture = reader.fields["general.architecture"].contents()

        def field(name: str) -> int:
            return int(reader.fields[f"{architecture}.{name}"].contents())

        return cls(
            architecture=architecture,
            head_count=field("attention.head_count"),
            head_count_kv=field("attention.head_count_kv"),
            block_count=field("block_count"),
            tensor_shapes={t.name: tuple(int(n) for n in t.shape) for t in reader.tensors},
        )


@functools.lru_cache(maxsize=4)
def _read_base(path: Path, modified_ns: int) -> GgufBase:
    return GgufBase._from_file(path)  # one read per file version: a few seconds on a busy machine


def gguf_lora_path(adapter_dir: str | Path) -> Path:
    """Where a PEFT adapter folder's GGUF LoRA lives (whether or not it was written)."""
    return Path(adapter_dir) / GGUF_ADAPTER_NAME


def base_gguf_for(base_model: str | Path) -> Path | None:
    """The GGUF file a base model is served from by llama.cpp, or None if it has none.

    A ``.gguf`` path is itself; the embedded model (``smollm2`` or the folder it
    was converted into) is the GGUF it ships as. Other folders and hub ids have none.
    """
    from llm.loading import EMBEDDED_FOLDER_NAME, EMBEDDED_MODEL, ModelNotFound, gguf_file_for

    base = str(base_model)
    if Path(base).name == EMBEDDED_FOLDER_NAME:
        base = EMBEDDED_MODEL
    try:
        return gguf_file_for(base)
    except ModelNotFound:
        return None


def ensure_gguf_lora(adapter_dir: str | Path, base_gguf: str | Path | None = None) -> Path:
    """The adapter's GGUF LoRA, converted now unless one newer than its weights exists."""
    target = gguf_lora_path(adapter_dir)
    weights = Path(adapter_dir) / PEFT_WEIGHTS_NAME
    if target.is_file() and target.stat().st_mtime >= weights.stat().st_mtime:
        return target
    return adapter_to_gguf(adapter_dir, base_gguf=base_gguf)


def adapter_to_gguf(
    adapter_dir: str | Path,
    out_path: str | Path | None = None,
    *,
    base_gguf: str | Path | None = None,
) -> Path:
    """Write a PEFT LoRA folder as a GGUF LoRA for ``base_gguf`` (default: the embedded model).

    Written to a temporary file beside ``out_path`` (default
    ``<adapter_dir>/adapter_model.gguf``) and renamed into place, so a reader
    never sees half a file. Raises ``GgufLoraError`` for adapters it refuses.
    """
    adapter_dir = Path(adapter_dir)
    target = Path(out_path) if out_path else gguf_lora_path(adapter_dir)
    config = _lora_config(adapter_dir)
    base = GgufBase.read(base_gguf or _default_base_gguf())
    tensors = gguf_lora_tensors(load_file(adapter_dir / PEFT_WEIGHTS_NAME), config, base)
    _write_atomically(target, base.architecture, float(config["lora_alpha"]), tensors)
    return target


def gguf_lora_tensors(
    peft_tensors: dict[str, np.ndarray], config: dict, base: GgufBase
) -> dict[str, np.ndarray]:
    """GGUF tensor name → f32 array, for PEFT's saved tensors under ``config``."""
    if base.architecture not in _PERMUTES_QK:
        raise GgufLoraError(f"GGUF LoRA for a {base.architecture!r} base is not supported")
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[base.architecture.upper()], base.block_count)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in peft_tensors.items():
        module, part = _split_peft_key(key)
        pairs.setdefault(module, {})[part] = value.astype(np.float32)
    out = {}
    for module, pair in sorted(pairs.items()):
        if set(pair) != {"lora_A", "lora_B"}:
            raise GgufLoraError(f"{module}: lora_A and lora_B must both be saved")
        name = _gguf_weight_name(names, module, base)
        lora_a, lora_b = pair["lora_A"], pair["lora_B"] * _fold_scale(config, len(pair["lora_A"]))
        _check_shapes(name, lora_a, lora_b, base)
        if _PERMUTES_QK[base.architecture] and name.endswith(("attn_q.weight", "attn_k.weight")):
            heads = base.head_count if "attn_q" in name else base.head_count_kv
            lora_b = permute_rows(lora_b, heads)
        out[f"{name}.lora_a"] = np.ascontiguousarray(lora_a)
        out[f"{name}.lora_b"] = np.ascontiguousarray(lora_b)
    if not out:
        raise GgufLoraError("the adapter holds no LoRA tensors")
    return out


def permute_rows(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's q/k row order: per head, the two rotary halves interleaved.

    The same permutation as ``LlamaModel.permute`` in ``convert_hf_to_gguf.py``.
    """
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def _default_base_gguf() -> Path:
    from llm.loading import embedded_gguf_path

    return embedded_gguf_path()


def _lora_config(adapter_dir: Path) -> dict:
    path = adapter_dir / PEFT_CONFIG_NAME
    if not path.is_file() or not (adapter_dir / PEFT_WEIGHTS_NAME).is_file():
        raise GgufLoraError(
            f"no PEFT adapter ({PEFT_CONFIG_NAME}, {PEFT_WEIGHTS_NAME}) in {adapter_dir}"
        )
    config = json.loads(path.read_text())
    refusals = {
        "not a LoRA adapter": config.get("peft_type", "LORA") != "LORA",
        "DoRA adapters are not supported by llama.cpp": config.get("use_dora"),
        "LoRA biases are not supported by llama.cpp": config.get("lora_bias"),
        "per-module alphas (alpha_pattern) are not supported": config.get("alpha_pattern"),
        "modules_to_save (fully trained layers) cannot be a LoRA": config.get("modules_to_save"),
    }
    for reason, present in refusals.items():
        if present:
            raise GgufLoraError(f"{adapter_dir}: {reason}")
    return config


def _split_peft_key(key: str) -> tuple[str, str]:
    """``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`` → (module, part)."""
    for part in ("lora_A", "lora_B"):
        marker = f".{part}.weight"
        if key.endswith(marker):
            return key.removeprefix("base_model.model.").removesuffix(marker), part
    raise GgufLoraError(
        f"{key}: not a LoRA matrix of a linear layer (embedding adapters, biases and "
        "fully trained modules cannot be converted)"
    )


def _gguf_weight_name(names: gguf.TensorNameMap, module: str, base: GgufBase) -> str:
    name = names.get_name(module)
    if name in ("token_embd", "output"):
        # SmolLM2 ties them: llama.cpp would apply an embedding adapter to the head too.
        raise GgufLoraError(f"{module}: LoRA on the embeddings or output head is not supported")
    if name is None or f"{name}.weight" not in base.tensor_shapes:
        raise GgufLoraError(f"{module}: the base GGUF has no tensor for it (another base model?)")
    return f"{name}.weight"


def _fold_scale(config: dict, rank: int) -> float:
    """What lora_b is multiplied by so that llama.cpp's alpha / rank gives PEFT's scale."""
    if config.get("use_rslora"):
        return math.sqrt(rank)  # PEFT: alpha / sqrt(rank) = (alpha / rank) · sqrt(rank)
    return 1.0


def _check_shapes(name: str, lora_a: np.ndarray, lora_b: np.ndarray, base: GgufBase) -> None:
    inputs, outputs = base.tensor_shapes[name]
    if lora_a.shape[1] != inputs or lora_b.shape[0] != outputs or lora_b.shape[1] != len(lora_a):
        raise GgufLoraError(
            f"{name}: LoRA A {lora_a.shape} / B {lora_b.shape} do not fit the base "
            f"({outputs} × {inputs}): an adapter for another base model?"
        )


def _write_atomically(
    target: Path, architecture: str, alpha: float, tensors: dict[str, np.ndarray]
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    os.close(handle)
    try:
        writer = gguf.GGUFWriter(temporary, arch=architecture)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for name, array in tensors.items():
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the web process reads it
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    logger.info("wrote GGUF LoRA %s (%d tensors)", target, len(tensors))
