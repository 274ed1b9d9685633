"""Version directories: manifests round-trip, staging never looks complete."""

from __future__ import annotations

import pytest

from llm.training.versions import (
    VersionManifest,
    is_complete_version,
    read_manifest,
    resolve_adapter,
    staged_version_dir,
    write_manifest,
)


def a_manifest(**overrides) -> VersionManifest:
    values = {
        "name": "v2",
        "parent": "v1",
        "method": "dpo",
        "artifact": "adapter",
        "base_model": "/models/base",
        "base_model_name": "base",
        "config": {"beta": 0.1},
        "dataset": {"hash": "abc", "train_size": 3, "heldout_size": 1},
        "metrics": {"final_loss": 0.4},
        "timings": {"seconds": 1.0},
        "device": "cpu",
    }
    return VersionManifest(**(values | overrides))


def test_it_reads_back_the_manifest_it_wrote(tmp_path):
    """Every field survives the trip through manifest.json."""
    manifest = a_manifest()
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    assert is_complete_version(tmp_path)


def test_it_moves_a_staged_version_into_place_only_on_success(tmp_path):
    """The target appears whole on success; on failure neither it nor the staging remains."""
    with staged_version_dir(tmp_path / "good") as staging:
        (staging / "file").write_text("x")
        assert not (tmp_path / "good").exists()
    assert (tmp_path / "good" / "file").read_text() == "x"
    with pytest.raises(RuntimeError), staged_version_dir(tmp_path / "bad") as staging:
        (staging / "file").write_text("x")
        raise RuntimeError("boom")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["good"]


def test_it_finds_the_adapter_of_a_version_or_a_bare_folder(tmp_path):
    """Parents may be named by version directory or by adapter folder."""
    version = tmp_path / "v3"
    (version / "adapter").mkdir(parents=True)
    (version / "adapter" / "adapter_config.json").write_text("{}")
    write_manifest(version, a_manifest(name="v3"))
    assert resolve_adapter(version) == (version / "adapter", "v3")
    assert resolve_adapter(version / "adapter") == (version / "adapter", "v3")
    with pytest.raises(FileNotFoundError):
        resolve_adapter(tmp_path)
