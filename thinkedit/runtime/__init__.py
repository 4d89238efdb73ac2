"""Where models live: device and dtype, the process-wide model cache, offload, hub errors, the GPU turn.

Backends never pick a device or call `.to("cuda")` themselves; they ask `load(...)` for their model, which
builds it once per process and hands the same object to every later request and session, and `place(...)`
puts what they loaded where the offload mode says. One module per concern:

- `device`: the device, the compute dtype, the storage dtype, whether compiling pays;
- `memory`: the memory budget, checkpoint sizes, and the one rule for "out of memory";
- `cache`: the model cache (`CACHE`, `load`) and what a loaded model holds;
- `offload`: choosing an offload mode and placing a loaded model;
- `hub`: hub and out-of-memory failures as sentences a person can act on;
- `gpu_lock`: runs of local models take turns on the one accelerator.
"""

from __future__ import annotations

from ..config import Settings
from .cache import CACHE, Entry, ModelCache, load, modules_of, resident_gb
from .device import (
    STORAGE_DTYPES,
    compiles,
    empty_cuda_cache,
    has_torch,
    pick_device,
    pick_dtype,
    pick_storage_dtype,
)
from .gpu_lock import GPU_LOCK, GPU_WAIT_POLL_S, gpu_turn, takes_gpu_turn
from .hub import friendly_errors, gated_checkpoint, missing_weights, offline
from .memory import MEMORY_HEADROOM, estimate_gb, is_out_of_memory, memory_budget_gb, out_of_memory
from .offload import GROUP_SHARE, choose_offload, free_memory_gb, place

_GPU_LOCK = GPU_LOCK  # the name the loop's tests know it by

__all__ = [
    "CACHE",
    "GPU_LOCK",
    "GPU_WAIT_POLL_S",
    "GROUP_SHARE",
    "MEMORY_HEADROOM",
    "STORAGE_DTYPES",
    "Entry",
    "ModelCache",
    "choose_offload",
    "compiles",
    "device_summary",
    "empty_cuda_cache",
    "estimate_gb",
    "free_memory_gb",
    "friendly_errors",
    "gated_checkpoint",
    "gpu_turn",
    "has_torch",
    "is_out_of_memory",
    "load",
    "memory_budget_gb",
    "missing_weights",
    "modules_of",
    "offline",
    "out_of_memory",
    "pick_device",
    "pick_dtype",
    "pick_storage_dtype",
    "place",
    "resident_gb",
    "takes_gpu_turn",
]


def device_summary(settings: Settings) -> str:
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
