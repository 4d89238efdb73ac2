"""The process-wide model cache: each model is built once and handed to every later request and session.

With a memory budget, loading a model first releases the least recently used others until it fits; a model that
a request is using right now is never released.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from .device import empty_cuda_cache, has_torch, pick_device
from .memory import memory_budget_gb


@dataclass
class Entry:
    model: Any
    size_gb: float  # what it holds in the budgeted memory (GPU memory by default)
    offload: str = "none"


class ModelCache:
    """Loaded models by key, least recently used first. One lock per key: a model loads exactly once.

    With a memory budget, loading a model first releases the least recently used others until the
    new one fits; a model that a request is using right now (`in_use`) is never released.
    """

    def __init__(self) -> None:
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._users: Counter[Hashable] = Counter()
        self.loads = 0  # how many times a loader actually ran (tests and the benchmark read it)
        self.load_seconds = 0.0  # wall seconds spent inside loaders, all together (the benchmark reads it)

    def get(
        self,
        key: Hashable,
        loader: Callable[[], Any],
        *,
        size_gb: float | None = None,
        budget_gb: float | None = None,
        offload: str = "none",
        device: str | None = None,
    ) -> Any:
        """The model for `key`, loaded once. It is budgeted at what it keeps on `device` between uses."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key].model
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._entries:
                    return self._entries[key].model
            resident_estimate = (size_gb or 0.0) if offload == "none" else 0.0  # offloaded: it waits in CPU memory
            self._make_room(resident_estimate, budget_gb, keep=key)
            started = time.perf_counter()
            try:
                model = loader()
            except BaseException:
                gc.collect()  # a half-built model (e.g. after CUDA OOM) must not keep its memory
                empty_cuda_cache()
                raise
            measured = resident_gb(model, device)
            with self._lock:
                self._entries[key] = Entry(model, measured if measured is not None else resident_estimate, offload)
                self.loads += 1
                self.load_seconds += time.perf_counter() - started
            self._make_room(0.0, budget_gb, keep=key)
            return model

    def _make_room(self, need_gb: float, budget_gb: float | None, keep: Hashable) -> None:
        """Release least recently used models (never `keep`, never one in use) until `need_gb` fits."""
        if budget_gb is None:
            return
        released = False
        with self._lock:
            for key in list(self._entries):
                held = sum(entry.size_gb for entry in self._entries.values())
                if held + need_gb <= budget_gb:
                    break
                if key != keep and not self._users[key]:
                    del self._entries[key]
                    released = True
        if released:
            gc.collect()
            empty_cuda_cache()

    @contextmanager
    def in_use(self, key: Hashable) -> Iterator[None]:
        """Mark `key` as being used by a request: no budget decision releases it meanwhile."""
        with self._lock:
            self._users[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._users[key] -= 1

    def offload_of(self, key: Hashable) -> str:
        """The offload mode the model under `key` was loaded with ("none" when it is not loaded)."""
        with self._lock:
            entry = self._entries.get(key)
            return entry.offload if entry is not None else "none"

    def releasable_gb(self) -> float:
        with self._lock:
            return sum(entry.size_gb for key, entry in self._entries.items() if not self._users[key])

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def entries(self) -> list[tuple[Hashable, Entry]]:
        with self._lock:
            return list(self._entries.items())

    def release(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)
        gc.collect()
        empty_cuda_cache()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        gc.collect()
        empty_cuda_cache()


CACHE = ModelCache()


def load(
    key: Hashable,
    loader: Callable[[], Any],
    *,
    size_gb: float | None = None,
    settings: Settings | None = None,
    offload: str = "none",
) -> Any:
    """The model for `key`, built by `loader()` the first time it is asked for in this process.

    `size_gb` (an estimate) and `settings` (for the memory budget) let the cache release least
    recently used models first when the new one would not fit.
    """
    budget = memory_budget_gb(settings) if settings is not None else None
    device = pick_device(settings) if settings is not None else None
    return CACHE.get(key, loader, size_gb=size_gb, budget_gb=budget, offload=offload, device=device)


def resident_gb(model: Any, device: str | None = None) -> float | None:
    """GB of weights `model` keeps on `device` (any device of its type), None when it holds no torch modules.

    Offloaded models wait in CPU memory, so they hold nothing on the GPU between uses. Without a device: all
    the weights it holds anywhere.
    """
    modules = modules_of(model)
    if not modules:
        return None
    import torch

    kind = torch.device(device).type if device else None
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
    held = [t for t in tensors if t.device.type == kind] if kind else [t for t in tensors if t.device.type != "meta"]
    return sum(t.numel() * t.element_size() for t in held) / 1e9


def modules_of(model: Any) -> list:
    """The torch modules in a cached entry: a module, a diffusers pipeline's components, or a tuple of those."""
    if not has_torch():
        return []
    import torch

    parts = model if isinstance(model, (tuple, list)) else [model]
    found = []
    for part in parts:
        if isinstance(part, torch.nn.Module):
            found.append(part)
        elif isinstance(getattr(part, "components", None), dict):  # a diffusers pipeline
            found += [c for c in part.components.values() if isinstance(c, torch.nn.Module)]
    return found
