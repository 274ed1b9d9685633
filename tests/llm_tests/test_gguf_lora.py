"""PEFT LoRA adapters written as GGUF LoRA adapters for llama.cpp.

The fast tests check the file against llama.cpp's conventions on hand-made
adapters. The slow ones put a random LoRA on the real SmolLM2 and compare
llama.cpp (Q4_1 base + GGUF LoRA) with transformers (fp32 base + PEFT).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np
import pytest
from safetensors.numpy import save_file

from llm.engine.gguf_lora import (
    GgufBase,
    GgufLoraError,
    adapter_to_gguf,
    base_gguf_for,
    ensure_gguf_lora,
    gguf_lora_path,
    gguf_lora_tensors,
    permute_rows,
)
from llm.loading import embedded_gguf_path

# PEFT still calls a transformers method that is deprecated in favour of another name.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing`:FutureWarning")

PREFIX = "base_model.model.model.layers"
# SmolLM2-135M: hidden 576, 9 heads, 3 KV heads of 64, MLP 1536.
SHAPES = {
    "self_attn.q_proj": (576, 576),
    "self_attn.k_proj": (192, 576),
    "self_attn.v_proj": (192, 576),
    "self_attn.o_proj": (576, 576),
    "mlp.gate_proj": (1536, 576),
    "mlp.up_proj": (1536, 576),
    "mlp.down_proj": (576, 1536),
}


def peft_tensors(rank: int = 4, layers: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """PEFT's saved names and shapes for all-linear LoRA on the first ``layers`` blocks."""
    generator = np.random.default_rng(seed)
    tensors = {}
    for layer in range(layers):
        for module, (outputs, inputs) in SHAPES.items():
            key = f"{PREFIX}.{layer}.{module}"
            tensors[f"{key}.lora_A.weight"] = generator.normal(size=(rank, inputs))
            tensors[f"{key}.lora_B.weight"] = generator.normal(size=(outputs, rank))
    return {name: array.astype(np.float32) for name, array in tensors.items()}


def save_adapter(folder: Path, tensors: dict[str, np.ndarray], **config) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, **config}
    (folder / "adapter_config.json").write_text(json.dumps(settings))
    save_file(tensors, folder / "adapter_model.safetensors")
    return folder


@pytest.fixture(scope="module")
def smollm2_base() -> GgufBase:
    return GgufBase.read(embedded_gguf_path())


def read_back(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    reader = gguf.GGUFReader(path)
    fields = {name: field.contents() for name, field in reader.fields.items()}
    # The reader lists ggml's (in, out) order; numpy's is the reverse.
    tensors = {t.name: np.array(t.data).reshape(tuple(reversed(t.shape))) for t in reader.tensors}
    return fields, tensors


def test_it_writes_llama_cpps_names_metadata_and_shapes(tmp_path, smollm2_base):
    """Every linear layer becomes a lora_a (rank × in) and lora_b (out × rank) pair."""
    tensors = peft_tensors()
    adapter = save_adapter(tmp_path / "adapter", tensors)
    path = adapter_to_gguf(adapter)
    assert path == gguf_lora_path(adapter) == adapter / "adapter_model.gguf"

    fields, written = read_back(path)
    assert fields["general.type"] == "adapter"
    assert fields["general.architecture"] == "llama"
    assert fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == 8.0
    assert len(written) == len(tensors) == 2 * 2 * 7
    for name in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
        assert f"blk.1.{name}.weight.lora_a" in written
    v_proj = f"{PREFIX}.1.self_attn.v_proj"
    np.testing.assert_array_equal(
        written["blk.1.attn_v.weight.lora_a"], tensors[f"{v_proj}.lora_A.weight"]
    )
    np.testing.assert_array_equal(
        written["blk.1.attn_v.weight.lora_b"], tensors[f"{v_proj}.lora_B.weight"]
    )
    assert written["blk.0.ffn_down.weight.lora_a"].shape == (4, 1536)
    assert written["blk.0.ffn_down.weight.lora_b"].shape == (576, 4)
    assert written["blk.0.ffn_down.weight.lora_a"].dtype == np.float32
    assert not list(tmp_path.glob("adapter/.*tmp"))  # the temporary file was renamed away


def test_it_permutes_only_lora_b_of_q_and_k(tmp_path, smollm2_base):
    """W = B·A and the converter permutes W's rows for q and k: so B's rows, never A."""
    tensors = peft_tensors()
    written = gguf_lora_tensors(tensors, {"lora_alpha": 8}, smollm2_base)
    for module, name, heads in (("q_proj", "attn_q", 9), ("k_proj", "attn_k", 3)):
        key = f"{PREFIX}.0.self_attn.{module}"
        lora_a, lora_b = tensors[f"{key}.lora_A.weight"], tensors[f"{key}.lora_B.weight"]
        np.testing.assert_array_equal(written[f"blk.0.{name}.weight.lora_a"], lora_a)
        np.testing.assert_array_equal(
            written[f"blk.0.{name}.weight.lora_b"], permute_rows(lora_b, heads)
        )
        assert not np.array_equal(written[f"blk.0.{name}.weight.lora_b"], lora_b)


@pytest.mark.slow
def test_the_permutation_is_the_one_between_the_base_weights(smollm2_base, smollm2_dir):
    """The HF folder was converted from the GGUF: permuting its q/k rows gives the GGUF's."""
    from gguf.quants import dequantize
    from safetensors import safe_open

    reader = {t.name: t for t in gguf.GGUFReader(embedded_gguf_path()).tensors}
    with safe_open(smollm2_dir / "model.safetensors", "numpy") as weights:
        for module, name, heads in (("q_proj", "attn_q", 9), ("k_proj", "attn_k", 3)):
            tensor = reader[f"blk.5.{name}.weight"]
            quantised = dequantize(tensor.data, tensor.tensor_type).reshape(tensor.shape[::-1])
            hf_weight = weights.get_tensor(f"model.layers.5.self_attn.{module}.weight")
            np.testing.assert_array_equal(quantised, permute_rows(hf_weight, heads))


def test_it_folds_rslora_scaling_into_lora_b(smollm2_base):
    """llama.cpp scales by alpha / rank; rsLoRA's alpha / sqrt(rank) is made up in B."""
    tensors = peft_tensors(rank=4, layers=1)
    plain = gguf_lora_tensors(tensors, {"lora_alpha": 8}, smollm2_base)
    rs = gguf_lora_tensors(tensors, {"lora_alpha": 8, "use_rslora": True}, smollm2_base)
    name = "blk.0.ffn_up.weight"
    np.testing.assert_allclose(rs[f"{name}.lora_b"], plain[f"{name}.lora_b"] * 2.0)
    np.testing.assert_array_equal(rs[f"{name}.lora_a"], plain[f"{name}.lora_a"])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"use_dora": True}, "DoRA"),
        ({"lora_bias": True}, "biases"),
        ({"alpha_pattern": {"q_proj": 4}}, "alpha_pattern"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"peft_type": "IA3"}, "not a LoRA"),
    ],
)
def test_it_refuses_what_llama_cpp_would_apply_differently(tmp_path, config, message):
    adapter = save_adapter(tmp_path / "adapter", peft_tensors(layers=1), **config)
    with pytest.raises(GgufLoraError, match=message):
        adapter_to_gguf(adapter)
    assert not gguf_lora_path(adapter).exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"base_model.model.model.embed_tokens.lora_embedding_A": (4, 49152)}, "embedding"),
        ({"base_model.model.lm_head.lora_A.weight": (4, 576)}, "lm_head"),
        ({f"{PREFIX}.0.self_attn.q_proj.lora_magnitude_vector": (576,)}, "not a LoRA matrix"),
    ],
)
def test_it_refuses_embedding_head_and_non_lora_tensors(smollm2_base, extra, message):
    """Embeddings are tied to the output head in SmolLM2: llama.cpp would adapt both."""
    tensors = peft_tensors(layers=1)
    tensors.update({name: np.zeros(shape, np.float32) for name, shape in extra.items()})
    if "lm_head" in message:
        tensors["base_model.model.lm_head.lora_B.weight"] = np.zeros((49152, 4), np.float32)
    with pytest.raises(GgufLoraError, match=message):
        gguf_lora_tensors(tensors, {"lora_alpha": 8}, smollm2_base)


def test_it_refuses_an_adapter_for_another_base(smollm2_base):
    tensors = peft_tensors(layers=1)
    tensors[f"{PREFIX}.0.mlp.up_proj.lora_A.weight"] = np.zeros((4, 1024), np.float32)
    with pytest.raises(GgufLoraError, match="another base model"):
        gguf_lora_tensors(tensors, {"lora_alpha": 8}, smollm2_base)
    with pytest.raises(GgufLoraError, match="has no tensor for it"):
        gguf_lora_tensors(
            {
                f"{PREFIX}.31.mlp.up_proj.lora_{p}.weight": np.zeros((1, 1), np.float32)
                for p in "AB"
            },
            {"lora_alpha": 8},
            smollm2_base,
        )


def test_it_refuses_a_folder_without_an_adapter(tmp_path):
    with pytest.raises(GgufLoraError, match="no PEFT adapter"):
        adapter_to_gguf(tmp_path)


def test_it_finds_a_gguf_only_for_the_embedded_model_or_a_gguf_file(tmp_path, tiny_model_dir):
    embedded = embedded_gguf_path()
    assert base_gguf_for("smollm2") == embedded
    assert base_gguf_for(tmp_path / "SmolLM2-135M-Instruct") == embedded
    assert base_gguf_for(embedded) == embedded
    assert base_gguf_for(tiny_model_dir) is None
    assert base_gguf_for(tmp_path / "missing.gguf") is None
    assert base_gguf_for("HuggingFaceTB/SmolLM2-360M-Instruct") is None


def test_it_converts_on_demand_only_when_the_file_is_missing_or_stale(tmp_path):
    adapter = save_adapter(tmp_path / "adapter", peft_tensors(layers=1))
    first = ensure_gguf_lora(adapter)
    written = first.stat().st_mtime_ns
    assert ensure_gguf_lora(adapter).stat().st_mtime_ns == written  # fresh: kept

    weights = adapter / "adapter_model.safetensors"
    later = written / 1e9 + 10

    os.utime(weights, (later, later))
    assert ensure_gguf_lora(adapter).stat().st_mtime_ns > written  # stale: rewritten


# --- The real model: llama.cpp (Q4_1 + GGUF LoRA) against transformers (fp32 + PEFT) ---

# One conversation, so that every position is a different context (a shared system
# prompt would count its tokens once per prompt).
CONVERSATION = [
    ("What is the capital of Greece?", "The capital of Greece is Athens."),
    ("List three colours, one per line.", "Red\nGreen\nBlue"),
    (
        "Describe the moon in two sentences.",
        "The moon is Earth's only natural satellite. "
        "It shines by reflecting sunlight and shapes the tides.",
    ),
    (
        "Explain gravity in one short paragraph.",
        "Gravity is the force that pulls masses "
        "towards each other: it keeps us on the ground and the planets around the sun.",
    ),
]
# Standard deviation of the random lora_B entries (PEFT starts them at zero): enough
# to change the top token at ~1 position in 5, about what a trained version does.
LORA_B_STD = 0.06


@dataclass(frozen=True)
class Logits:
    """Per-position logits of one token sequence, from each engine, with and without."""

    hf_base: np.ndarray
    hf_adapted: np.ndarray
    llama_base: np.ndarray
    llama_adapted: np.ndarray
    llama_wrongly_permuted: np.ndarray  # the adapter converted without the q/k permutation


def rms(difference: np.ndarray) -> float:
    return float(np.sqrt(np.mean(difference**2)))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def random_peft_adapter(smollm2_dir: Path, folder: Path, std: float = LORA_B_STD):
    """The project's LoRA (r16, alpha 32, all linear layers) with random lora_B."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from llm.training.config import LoraSettings

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraSettings().to_peft("CAUSAL_LM")).eval()
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, std)
    peft_model.save_pretrained(folder)
    return peft_model


def transformers_logits(peft_model, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    import torch

    with torch.no_grad():
        adapted = peft_model(torch.tensor([ids])).logits[0].numpy()
        with peft_model.disable_adapter():
            base = peft_model(torch.tensor([ids])).logits[0].numpy()
    return base, adapted


def llama_cpp_model(lora: Path | None = None, logits_all: bool = True, path: Path | None = None):
    """The embedded GGUF (or ``path``) in llama-cpp-python, one thread, with ``lora``
    applied if given."""
    import llama_cpp

    # As the engine does (llm/engine/llamacpp_model.py): AMX's repacked Q4 matmul crashes.
    default_params = llama_cpp.llama_cpp.llama_model_default_params

    def params():
        made = default_params()
        made.use_extra_bufts = False
        return made

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(llama_cpp.llama_cpp, "llama_model_default_params", params)
        return llama_cpp.Llama(
            model_path=str(path or embedded_gguf_path()),
            lora_path=str(lora) if lora else None,
            n_ctx=512,
            n_batch=512,
            n_threads=1,
            logits_all=logits_all,
            verbose=False,
        )


def llama_cpp_logits(ids: list[int], lora: Path | None = None) -> np.ndarray:
    model = llama_cpp_model(lora)
    try:
        model.eval(ids)
        return np.array(model.scores[: len(ids)])
    finally:
        model.close()


@pytest.fixture(scope="module")
def logits(smollm2_dir, tmp_path_factory) -> Logits:
    pytest.importorskip("llama_cpp")
    import torch

    from llm.engine import gguf_lora

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("smollm2-lora")
    peft_model = random_peft_adapter(smollm2_dir, folder)
    right = adapter_to_gguf(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gguf_lora, "permute_rows", lambda weight, heads: weight)
        wrong = adapter_to_gguf(folder, folder / "wrong.gguf")

    from transformers import AutoTokenizer

    messages = []
    for question, answer in CONVERSATION:
        messages += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    ids = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False))
    hf_base, hf_adapted = transformers_logits(peft_model, ids)
    return Logits(
        hf_base=hf_base,
        hf_adapted=hf_adapted,
        llama_base=llama_cpp_logits(ids),
        llama_adapted=llama_cpp_logits(ids, right),
        llama_wrongly_permuted=llama_cpp_logits(ids, wrong),
    )


def top_margin(logits: np.ndarray) -> np.ndarray:
    """Per position, how far the top logit leads the second."""
    ordered = np.sort(logits, axis=1)
    return ordered[:, -1] - ordered[:, -2]


@pytest.mark.slow
def test_with_the_adapter_the_engines_differ_by_the_same_noise_as_without(logits):
    """Q4_1 against fp32 weights is noise (RMS 0.25 logits measured); the adapter adds little.

    Measured: 0.25 without, 0.31 with; 1.41 with the q/k permutation left out.
    """
    without = rms(logits.hf_base - logits.llama_base)
    with_adapter = rms(logits.hf_adapted - logits.llama_adapted)
    assert without < 0.5
    assert with_adapter < 2 * without, (with_adapter, without)


@pytest.mark.slow
def test_the_adapters_effect_is_the_same_in_both_and_far_above_the_noise(logits):
    """Measured: effect RMS 2.18 logits (7x the noise), correlation 0.987, slope ~1."""
    transformers_effect = logits.hf_adapted - logits.hf_base
    llama_effect = logits.llama_adapted - logits.llama_base
    noise = rms(logits.hf_adapted - logits.llama_adapted)
    assert rms(transformers_effect) > 4 * noise, (rms(transformers_effect), noise)
    assert correlation(transformers_effect, llama_effect) > 0.97
    slope = float(np.sum(transformers_effect * llama_effect) / np.sum(transformers_effect**2))
    assert 0.9 < slope < 1.15, slope  # alpha / rank is applied as PEFT applies it


@pytest.mark.slow
def test_top_tokens_agree_except_on_near_ties(logits):
    """The adapter changes the top token at ~1 position in 5; llama.cpp agrees with
    transformers except where transformers' top two were within 0.2 logits."""
    assert np.mean(logits.hf_adapted.argmax(1) != logits.hf_base.argmax(1)) > 0.1
    differs = logits.hf_adapted.argmax(1) != logits.llama_adapted.argmax(1)
    assert differs.mean() < 0.05
    assert np.all(top_margin(logits.hf_adapted)[differs] < 0.5)


@pytest.mark.slow
def test_a_wrong_q_k_permutation_would_be_caught(logits):
    """Without the permutation, q and k's updates land on the wrong rotary rows.

    Measured: correlation of the effects 0.79 (0.987 right), noise 1.41 logits.
    """
    transformers_effect = logits.hf_adapted - logits.hf_base
    wrong_effect = logits.llama_wrongly_permuted - logits.llama_base
    assert correlation(transformers_effect, wrong_effect) < 0.9
    wrong_noise = rms(logits.hf_adapted - logits.llama_wrongly_permuted)
    assert wrong_noise > 3 * rms(logits.hf_adapted - logits.llama_adapted)
