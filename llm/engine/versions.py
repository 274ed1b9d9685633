"""Model versions served by one engine: the base model plus LoRA adapters.

A version is a LoRA adapter loaded next to the others on the same base
weights, so switching needs no restart. On transformers it is a PEFT adapter
and rows of one batch can be served by different versions (``adapter_names``);
llama.cpp's registry (llm.engine.llamacpp) gives each version a context of its
own. Only the engine thread touches this (through the engine's ``call``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from peft import PeftModel

from llm.engine.base import EngineError
from llm.loading import LoadedModel


@dataclass(frozen=True)
class ServedVersion:
    label: str  # recorded on every reply it writes
    adapter: str | None  # PEFT adapter name; None serves the base weights


class AdapterRegistry(ABC):
    """Versions by name, loaded on first use and dropped least recently used first.

    A backend says how an adapter is attached to and detached from its model.
    """

    def __init__(self, base_label: str, stop_ids: set[int], max_loaded: int = 4):
        self.base_label = base_label
        self.max_loaded = max_loaded
        self.adapters: dict[str, str] = {}  # name -> adapter folder, least recently used first
        self.stop_ids = stop_ids

    @abstractmethod
    def _attach(self, name: str, path: str) -> None:
        """Load the adapter at ``path`` into the model as ``name``."""

    @abstractmethod
    def _detach(self, name: str) -> None:
        """Free adapter ``name`` (already gone from ``adapters``)."""

    @property
    def base(self) -> ServedVersion:
        return ServedVersion(label=self.base_label, adapter=None)

    def require(self, name: str | None) -> ServedVersion:
        if name is None or name == self.base_label:
            return self.base
        if name not in self.adapters:
            raise EngineError(f"model version {name!r} is not loaded in this engine")
        return ServedVersion(label=name, adapter=name)

    def serve(self, name: str | None, path: str | None, in_use: set[str]) -> ServedVersion:
        """The version for a new request, loading its adapter on first use.

        This is how a promoted version reaches every process without a restart:
        the first request naming it loads it (~0.4 s); versions no running row
        uses are dropped, least recently used first, past ``max_loaded``.
        """
        if name and name != self.base_label and name not in self.adapters and path:
            self.load(name, path)
        version = self.require(name)
        if version.adapter is not None:
            self.adapters[name] = self.adapters.pop(name)  # most recently used last
            self._evict(in_use | {name})
        return version

    def _evict(self, keep: set[str]) -> None:
        for name in list(self.adapters):
            if len(self.adapters) <= self.max_loaded:
                return
            if name not in keep:
                self.unload(name)

    def load(self, name: str, path: str) -> None:
        """Load the adapter at ``path`` as version ``name`` (idempotent)."""
        if name in self.adapters:
            return
        self._attach(name, path)
        self.adapters[name] = path

    def unload(self, name: str) -> None:
        """Free an adapter; requests naming it are refused afterwards."""
        if self.adapters.pop(name, None) is not None:
            self._detach(name)


class VersionRegistry(AdapterRegistry):
    """PEFT adapters on a transformers model."""

    def __init__(self, loaded: LoadedModel, max_loaded: int = 4):
        super().__init__(loaded.name, _stop_token_ids(loaded), max_loaded)
        self.loaded = loaded

    def _attach(self, name: str, path: str) -> None:
        model = self.loaded.model
        if isinstance(model, PeftModel):
            model.load_adapter(path, adapter_name=name, is_trainable=False)
        else:
            self.loaded.model = PeftModel.from_pretrained(
                model, path, adapter_name=name, is_trainable=False
            )
        self.loaded.model.eval()

    def _detach(self, name: str) -> None:
        if self.adapters:
            self.loaded.model.delete_adapter(name)
        else:
            # A PeftModel left with no adapter fails every forward pass (KeyError on
            # the deleted active adapter): go back to the plain base model instead.
            self.loaded.model = self.loaded.model.unload()


def _stop_token_ids(loaded: LoadedModel) -> set[int]:
    ids: set[int] = set()
    configured = loaded.model.generation_config.eos_token_id
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if loaded.tokenizer.eos_token_id is not None:
        ids.add(loaded.tokenizer.eos_token_id)
    return ids
