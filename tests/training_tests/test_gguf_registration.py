"""A registered version's adapter is also written as a GGUF LoRA when llama.cpp can serve it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from llm.engine.gguf_lora import gguf_lora_path
from llm.evaluation import Check, GateReport
from llm.training.versions import VersionManifest, write_manifest
from tests.llm_tests.test_gguf_lora import peft_tensors, save_adapter
from training import pipeline, runs
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def candidate(versions_dir: Path, name: str, **adapter_config) -> pipeline.Candidate:
    """A version folder holding a LoRA of SmolLM2's shapes, judged and failed by the gate."""
    version_dir = versions_dir / name
    save_adapter(version_dir / "adapter", peft_tensors(layers=2), **adapter_config)
    manifest = VersionManifest(
        name=name,
        parent=None,
        method="dpo",
        artifact="adapter",
        base_model="",
        base_model_name="SmolLM2-135M-Instruct",
        config={},
        dataset={},
        metrics={},
        timings={},
        device="cpu",
    )
    write_manifest(version_dir, manifest)
    report = GateReport.from_checks([Check("heldout_margin", False, None, None)], {})
    return pipeline.Candidate("dpo", version_dir, report)


def register(settings, chat_model: str, **adapter_config) -> ModelVersion:
    settings.CHAT_MODEL = chat_model
    run = runs.training_run_create(trigger="manual")
    pipeline._register(
        run, candidate(settings.MODEL_VERSIONS_DIR, f"run-{run.pk}-dpo", **adapter_config), ["dpo"]
    )
    return ModelVersion.objects.get(name=f"run-{run.pk}-dpo")


@pytest.fixture
def versions(settings, tmp_path, model_cache_dir):
    settings.MODEL_VERSIONS_DIR = tmp_path / "versions"
    settings.MODEL_CACHE_DIR = model_cache_dir
    return settings


def test_it_writes_the_gguf_lora_beside_the_adapter_of_the_embedded_model(versions):
    version = register(versions, "smollm2")
    assert version.status == ModelVersion.Status.REJECTED  # registered as before
    written = gguf_lora_path(version.adapter_path)
    assert written == Path(version.adapter_path, "adapter_model.gguf")
    assert written.stat().st_size > 0


def test_a_base_without_a_gguf_gets_none(versions, tiny_model_dir):
    """The tests' tiny model is a plain Hugging Face folder: nothing for llama.cpp to load."""
    version = register(versions, str(tiny_model_dir))
    assert Path(version.adapter_path, "adapter_config.json").is_file()
    assert not gguf_lora_path(version.adapter_path).exists()


def test_a_refused_conversion_is_logged_and_the_version_still_registers(versions, caplog):
    with caplog.at_level(logging.ERROR, logger="training.pipeline"):
        version = register(versions, "smollm2", use_dora=True)
    assert version.status == ModelVersion.Status.REJECTED
    assert not gguf_lora_path(version.adapter_path).exists()
    assert "no GGUF LoRA written" in caplog.text and "DoRA" in caplog.text


def test_a_gguf_path_base_gets_its_gguf_lora_too(versions, tmp_path):
    """CHAT_MODEL naming a .gguf file: the adapter is written for that file."""
    from llm.loading import embedded_gguf_path

    model = tmp_path / "mine.gguf"
    model.symlink_to(embedded_gguf_path())
    version = register(versions, str(model))
    assert gguf_lora_path(version.adapter_path).stat().st_size > 0


def test_a_gguf_lora_the_gate_already_wrote_is_kept(versions):
    """The gate's llama.cpp replies converted the candidate first: registration keeps
    that file instead of writing it again (a rewrite is a new file, renamed in)."""
    from llm.engine.gguf_lora import ensure_gguf_lora

    run = runs.training_run_create(trigger="manual")
    versions.CHAT_MODEL = "smollm2"
    judged = candidate(versions.MODEL_VERSIONS_DIR, f"run-{run.pk}-dpo")
    written = ensure_gguf_lora(judged.path / "adapter").stat()  # as the gate's engine does
    pipeline._register(run, judged, ["dpo"])
    kept = gguf_lora_path(judged.path / "adapter").stat()
    assert (kept.st_ino, kept.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
