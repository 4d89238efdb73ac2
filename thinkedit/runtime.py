"""Where models live: device, dtype, and the process-wide model cache.

Backends never pick a device or call `.to("cuda")` themselves; they ask `load(...)` for their model,
which builds it once per process and hands the same object to every later request and session.
"""

from __future__ import annotations

import gc
import importlib.util
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backend import is_local
from .config import Settings
from .errors import ThinkEditError

MEMORY_HEADROOM = 0.15  # share of the GPU's memory the default budget leaves free for activations
GROUP_SHARE = 0.15  # share of a model group offload needs free: the layers in flight and their activations


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
    """CUDA and MPS → bfloat16 (FLUX and Qwen-Image overflow to NaN, black images, in float16), CPU → float32,
    unless the user said otherwise."""
    import torch

    if settings.dtype:
        dtype = getattr(torch, settings.dtype, None)
        if not isinstance(dtype, torch.dtype):
            from .errors import BadInput

            raise BadInput(f"Unknown dtype '{settings.dtype}'; use bfloat16, float16 or float32.")
        return dtype
    device = device or pick_device(settings)
    return torch.bfloat16 if device.startswith(("cuda", "mps")) else torch.float32


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
                _empty_cuda_cache()
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
            _empty_cuda_cache()

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
        _empty_cuda_cache()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        gc.collect()
        _empty_cuda_cache()


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


def memory_budget_gb(settings: Settings) -> float | None:
    """The user's budget (THINKEDIT_MEMORY_BUDGET_GB), else the chosen GPU's memory less `MEMORY_HEADROOM`
    (room for activations: CFG at ~8k image tokens needs several GB), else no limit (CPU)."""
    if settings.memory_budget_gb is not None:
        return float(settings.memory_budget_gb)
    device = pick_device(settings)
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_properties(device).total_memory * (1 - MEMORY_HEADROOM) / 1e9
    return None


def resident_gb(model: Any, device: str | None = None) -> float | None:
    """GB of weights `model` keeps on `device` (any device of its type), None when it holds no torch modules.

    Offloaded models wait in CPU memory, so they hold nothing on the GPU between uses. Without a device: all
    the weights it holds anywhere.
    """
    modules = _modules(model)
    if not modules:
        return None
    import torch

    kind = torch.device(device).type if device else None
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
    held = [t for t in tensors if t.device.type == kind] if kind else [t for t in tensors if t.device.type != "meta"]
    return sum(t.numel() * t.element_size() for t in held) / 1e9


def _modules(model: Any) -> list:
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


def choose_offload(settings: Settings, size_gb: float | None, device: str | None = None) -> str:
    """`settings.offload`, or when "auto": none if the model fits in free memory with headroom, model offload if
    its largest part will (about 70% of a diffusion pipeline), group offload (layers streamed in ahead of use) if
    `GROUP_SHARE` of it will, else sequential."""
    device = device or pick_device(settings)
    if not device.startswith("cuda"):
        return "none"  # offload moves weights between the CPU and an accelerator; without one it means nothing
    if settings.offload != "auto":
        return settings.offload
    if not size_gb:
        return "none"
    free = free_memory_gb(settings)
    if size_gb * 1.2 <= free:
        return "none"
    if size_gb * 0.7 <= free:
        return "model"
    return "group" if size_gb * GROUP_SHARE <= free else "sequential"


def compiles(settings: Settings) -> bool:
    """Whether `torch.compile` pays here: a CUDA device in a process that lives on. Not on the CPU (tests never
    compile) and not on ZeroGPU, where every call runs in a fresh forked worker that would compile again."""
    from .zerogpu import on_zero_gpu

    return pick_device(settings).startswith("cuda") and not on_zero_gpu()


def free_memory_gb(settings: Settings) -> float:
    """Free accelerator memory plus what releasable cached models hold, capped by the budget."""
    import torch

    free = torch.cuda.mem_get_info(pick_device(settings))[0] / 1e9
    releasable = CACHE.releasable_gb()
    budget = memory_budget_gb(settings)
    held = sum(entry.size_gb for _, entry in CACHE.entries())
    room = free + releasable
    return min(room, budget - held + releasable) if budget is not None else room


def estimate_gb(checkpoint: str | None, default_gb: float | None) -> float | None:
    """Weights size of a local folder, else the table's size of the default checkpoint."""
    if checkpoint and Path(checkpoint).expanduser().is_dir():
        folder = Path(checkpoint).expanduser()
        weights = [p for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin", ".pt", ".gguf")]
        return sum(p.stat().st_size for p in weights) / 1e9
    return default_gb


# -- hub behaviour and errors a person can act on ----------------------------------------------------


def offline() -> bool:
    """Whether huggingface_hub refuses to reach the hub: HF_HUB_OFFLINE as it read it when imported."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def missing_weights(
    checkpoint: str,
    size_gb: float | None,
    flag: str = "--editor-model",
    *,
    gated: bool = False,
    file: str | None = None,
    instead: str | None = None,
) -> ThinkEditError:
    """The weights of `checkpoint` (or only its `file`) are not here: how to get them, or what to do `instead`."""
    about = ", ".join(([file] if file else []) + ([f"about {size_gb:g} GB"] if size_gb else []))
    why = " and HF_HUB_OFFLINE=1 forbids downloading them" if offline() else ""
    licence = (
        f"It is gated: first accept its licence at https://huggingface.co/{checkpoint} and set HF_TOKEN. "
        if gated
        else ""
    )
    download = f"hf download {checkpoint}" + (f" {file}" if file else "")
    return ThinkEditError(
        f"The weights of {checkpoint}{f' ({about})' if about else ''} are not on this machine{why}. {licence}"
        f"Download them once with `{download}` (on a machine with internet), or "
        f"{instead or f'point {flag} at a local folder'}."
    )


def gated_checkpoint(checkpoint: str) -> ThinkEditError:
    return ThinkEditError(
        f"{checkpoint} is gated: accept its licence at https://huggingface.co/{checkpoint} while logged in, "
        "then set HF_TOKEN to a token of that account (or download it once and point at the folder)."
    )


def out_of_memory(what: str, offload: str) -> ThinkEditError:
    hint = {"none": "--offload model (or group)", "model": "--offload group", "group": "--offload sequential"}.get(
        offload
    )
    tip = f"try {hint}, " if hint else ""
    return ThinkEditError(
        f"The GPU ran out of memory while {what} (offload {offload}). To fit, {tip}use a smaller image or "
        "fewer models at once (THINKEDIT_MEMORY_BUDGET_GB), or a smaller checkpoint."
    )


@contextmanager
def friendly_errors(
    what: str,
    checkpoint: str | None = None,
    size_gb: float | None = None,
    *,
    offload: str = "none",
    flag: str = "--editor-model",
    gated: bool = False,
) -> Iterator[None]:
    """Turn hub and CUDA out-of-memory failures inside the block into `ThinkEditError`s saying what to do."""
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        yield
    except ThinkEditError:
        raise
    except GatedRepoError:
        raise gated_checkpoint(checkpoint or "This checkpoint") from None
    except (LocalEntryNotFoundError, RepositoryNotFoundError):
        raise missing_weights(checkpoint or "the checkpoint", size_gb, flag, gated=gated) from None
    except Exception as exc:
        if _is_oom(exc):
            gc.collect()
            _empty_cuda_cache()
            raise out_of_memory(what, offload) from None
        if checkpoint and _is_missing(exc, checkpoint):
            raise missing_weights(checkpoint, size_gb, flag, gated=gated) from None
        raise


def _is_oom(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "CUDA out of memory" in str(exc)


def _is_missing(exc: BaseException, checkpoint: str) -> bool:
    """diffusers and transformers wrap hub misses in OSError / EnvironmentError with these phrases."""
    text = str(exc)
    phrases = ("Cannot find", "couldn't connect", "offline mode", "does not appear to have", "not a local folder")
    return isinstance(exc, OSError) and (checkpoint in text or any(p in text for p in phrases))


_GPU_LOCK = threading.Lock()
GPU_WAIT_POLL_S = 0.1  # while another run holds the GPU, how often the waiting run asks whether to give up


def takes_gpu_turn(*backends) -> bool:
    """Whether a run of these backends waits for the one local accelerator (a local model not in its own slices)."""
    return any(is_local(backend) and getattr(backend, "takes_turns", True) for backend in backends)


@contextmanager
def gpu_turn(*backends, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the one local accelerator while a run uses a local model; offline/remote runs go concurrently.

    While another run holds it, `waiting()` is called every `GPU_WAIT_POLL_S` seconds; it may raise (Stop) to
    give up waiting. Backends that get a GPU of their own for every call (ZeroGPU slices) need no turn.
    """
    if not takes_gpu_turn(*backends):
        yield
        return
    while not _GPU_LOCK.acquire(timeout=GPU_WAIT_POLL_S):
        if waiting is not None:
            waiting()
    try:
        yield
    finally:
        _GPU_LOCK.release()


def _empty_cuda_cache() -> None:
    if has_torch():
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def describe(settings: Settings) -> str:
    """One line for `thinkedit backends`: device, dtype, offload mode, speed, budget, what is loaded."""
    device = pick_device(settings)
    dtype = str(pick_dtype(settings, device)).replace("torch.", "") if has_torch() else "n/a (torch missing)"
    offload = settings.offload
    if offload == "auto":
        offload = "auto (from free memory at load)" if device.startswith("cuda") else "auto → none (no GPU)"
    budget = memory_budget_gb(settings) if has_torch() else settings.memory_budget_gb
    budget_text = f"{budget:.1f} GB" if budget is not None else "unlimited"
    loaded = ", ".join(
        f"{key[0] if isinstance(key, tuple) else key} ({entry.size_gb:.1f} GB, offload {entry.offload})"
        for key, entry in CACHE.entries()
    )
    return (
        f"device {device}, dtype {dtype}, offload {offload}, speed {settings.speed}, memory budget {budget_text}, "
        f"loaded: {loaded or 'nothing'}"
    )
