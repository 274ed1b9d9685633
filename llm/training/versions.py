"""Version directories on disk: an artifact folder plus a manifest that explains it.

::

    <version>/adapter/        PEFT save_pretrained (policy versions), or
    <version>/reward_model/   a merged, plain save_pretrained folder
    <version>/manifest.json   parent, method, config, data hash, metrics, timings

A version is assembled in a hidden staging folder next to its final place and
renamed into place last, so a directory under its final name is always whole.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
ADAPTER_DIR = "adapter"
REWARD_MODEL_DIR = "reward_model"
MANIFEST_FORMAT = 1


@dataclass
class VersionManifest:
    name: str
    parent: str | None  # the parent version's name; None when trained from the base
    method: str  # "reward", "dpo", "kto", "rloo", "grpo"
    artifact: str  # ADAPTER_DIR or REWARD_MODEL_DIR
    base_model: str  # the base model folder the adapter applies to
    base_model_name: str
    config: dict[str, Any]
    dataset: dict[str, Any]  # hash, train_size, heldout_hash, heldout_size
    metrics: dict[str, Any]
    timings: dict[str, float]  # seconds, train_seconds, examples_per_second
    device: str
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    reward_model: str | None = None  # the reward model an online RL run optimised against
    libraries: dict[str, str] = field(default_factory=dict)
    format: int = MANIFEST_FORMAT

    def artifact_path(self, version_dir: str | Path) -> Path:
        return Path(version_dir) / self.artifact


@dataclass(frozen=True)
class TrainedVersion:
    path: Path
    manifest: VersionManifest

    @property
    def artifact_path(self) -> Path:
        return self.manifest.artifact_path(self.path)


def write_manifest(version_dir: str | Path, manifest: VersionManifest) -> Path:
    path = Path(version_dir) / MANIFEST_NAME
    path.write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(version_dir: str | Path) -> VersionManifest:
    """The manifest of a version directory (unknown keys from newer writers are ignored)."""
    data = json.loads((Path(version_dir) / MANIFEST_NAME).read_text())
    known = {item.name for item in fields(VersionManifest)}
    return VersionManifest(**{key: value for key, value in data.items() if key in known})


def is_complete_version(version_dir: str | Path) -> bool:
    return (Path(version_dir) / MANIFEST_NAME).is_file()


def resolve_adapter(path: str | Path) -> tuple[Path, str]:
    """(adapter folder, version name) for a version directory or a bare adapter folder."""
    path = Path(path)
    if (path / ADAPTER_DIR / "adapter_config.json").is_file():
        name = read_manifest(path).name if is_complete_version(path) else path.name
        return path / ADAPTER_DIR, name
    if (path / "adapter_config.json").is_file():
        parent = path.parent
        if path.name == ADAPTER_DIR and is_complete_version(parent):
            return path, read_manifest(parent).name
        return path, path.name
    raise FileNotFoundError(f"no PEFT adapter at {path}")


def resolve_reward_model(path: str | Path) -> tuple[Path, str]:
    """(model folder, version name) for a reward version directory or a plain model folder."""
    path = Path(path)
    if (path / REWARD_MODEL_DIR / "config.json").is_file():
        name = read_manifest(path).name if is_complete_version(path) else path.name
        return path / REWARD_MODEL_DIR, name
    if (path / "config.json").is_file():
        return path, path.name
    raise FileNotFoundError(f"no reward model at {path}")


@contextmanager
def staged_version_dir(target: str | Path) -> Iterator[Path]:
    """Yield a staging folder that becomes ``target`` only if the block succeeds."""
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"version directory {target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))
    try:
        yield staging
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def library_versions() -> dict[str, str]:
    import importlib.metadata

    names = ("torch", "transformers", "trl", "peft", "datasets")
    return {name: importlib.metadata.version(name) for name in names}
