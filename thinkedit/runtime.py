"""Where models live: device, dtype, and the process-wide model cache.

Backends never pick a device or call `.to("cuda")` themselves; they ask `load(...)` for their model,
which builds it once per process and hands the same object to every later request and session.
"""

from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from .config import Settings


def has_torch() -> bool:
    return importlib.util.find_spec("torch") is not None


def pick_device(settings: Settings) -> str:
    """The user's choice, else CUDA, else Apple MPS, else the CPU."""
    if settings.device:
        return settings.device
    if not has_torch():
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(settings: Settings, device: str | None = None):
    """CUDA → bfloat16, MPS → float16, CPU → float32, unless the user said otherwise."""
    import torch

    if settings.dtype:
        try:
            return getattr(torch, settings.dtype)
        except AttributeError:
            from .errors import BadInput

            raise BadInput(f"Unknown dtype '{settings.dtype}'; use bfloat16, float16 or float32.") from None
    device = device or pick_device(settings)
    if device.startswith("cuda"):
        return torch.bfloat16
    if device.startswith("mps"):
        return torch.float16
    return torch.float32


class ModelCache:
    """Loaded models by key, least recently used first. One lock per key: a model loads exactly once."""

    def __init__(self) -> None:
        self._models: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self.loads = 0  # how many times a loader actually ran (tests and the benchmark read it)

    def get(self, key: Hashable, loader: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            model = loader()
            with self._lock:
                self._models[key] = model
                self.loads += 1
            return model

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._models)

    def release(self, key: Hashable) -> None:
        with self._lock:
            self._models.pop(key, None)
        _empty_cuda_cache()

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
        _empty_cuda_cache()


CACHE = ModelCache()


def load(key: Hashable, loader: Callable[[], Any]) -> Any:
    """The model for `key`, built by `loader()` the first time it is asked for in this process."""
    return CACHE.get(key, loader)


_GPU_LOCK = threading.Lock()


@contextmanager
def gpu_turn(*backends) -> Iterator[None]:
    """Hold the one local accelerator while a run uses a local model; offline/remote runs go concurrently."""
    if any(getattr(getattr(b, "spec", None), "kind", None) == "local" for b in backends):
        with _GPU_LOCK:
            yield
    else:
        yield


def _empty_cuda_cache() -> None:
    if has_torch():
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def describe(settings: Settings) -> str:
    """One line for `thinkedit backends`: device, dtype, offload mode, what is loaded."""
    device = pick_device(settings)
    dtype = str(pick_dtype(settings, device)).replace("torch.", "") if has_torch() else "n/a (torch missing)"
    loaded = ", ".join(str(key[0]) if isinstance(key, tuple) else str(key) for key in CACHE.keys()) or "nothing"
    return f"device {device}, dtype {dtype}, offload {settings.offload}, loaded: {loaded}"
