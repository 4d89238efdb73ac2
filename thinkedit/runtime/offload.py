"""Where a loaded model's weights live: all on the accelerator, or waiting in CPU memory (offload modes).

Every local backend loads its weights on the CPU and then hands the model to `place`, in the loading thread.
Loading straight onto the GPU (`device_map="cuda"`) would be one copy less, but transformers loads weights in
worker threads, and ZeroGPU's CUDA emulation (which lets a Space put models on "cuda" at start, before any GPU
is attached) covers only the thread that imported `spaces`: the Space would fail at start.
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from .cache import CACHE
from .device import pick_device
from .memory import memory_budget_gb

GROUP_SHARE = 0.15  # share of a model group offload needs free: the layers in flight and their activations


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


def free_memory_gb(settings: Settings) -> float:
    """Free accelerator memory plus what releasable cached models hold, capped by the budget."""
    import torch

    free = torch.cuda.mem_get_info(pick_device(settings))[0] / 1e9
    releasable = CACHE.releasable_gb()
    budget = memory_budget_gb(settings)
    held = sum(entry.size_gb for _, entry in CACHE.entries())
    room = free + releasable
    return min(room, budget - held + releasable) if budget is not None else room


def place(model: Any, device: str, offload: str) -> Any:
    """Put a model loaded on the CPU where `offload` says, and return it.

    A diffusers pipeline: all of it on `device` ("none"), or diffusers' model, group (layer by layer, the next one
    copied in on a CUDA stream while one runs) or sequential offload. Any other module (a thinker) goes to `device`
    with "none"; offloaded, it waits in CPU memory and moves for each use (thinkers/qwen_vl.py).
    """
    if not hasattr(model, "enable_model_cpu_offload"):
        return model.to(device) if offload == "none" else model
    if offload == "model":
        model.enable_model_cpu_offload(device=device)
    elif offload == "group":
        model.enable_group_offload(device, offload_type="leaf_level", use_stream=device.startswith("cuda"))
    elif offload == "sequential":
        model.enable_sequential_cpu_offload(device=device)
    else:
        model.to(device)
    return model
