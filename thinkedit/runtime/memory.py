"""How much accelerator memory models may hold, what a checkpoint weighs, and the one rule for out-of-memory."""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from ..errors import ThinkEditError
from .device import pick_device

MEMORY_HEADROOM = 0.15  # share of the GPU's memory the default budget leaves free for activations
OFFLOAD_TIPS = {"none": "--offload model (or group)", "model": "--offload group", "group": "--offload sequential"}


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


def estimate_gb(checkpoint: str | None, default_gb: float | None) -> float | None:
    """Weights size of a local folder, else the table's size of the default checkpoint."""
    if checkpoint and Path(checkpoint).expanduser().is_dir():
        folder = Path(checkpoint).expanduser()
        weights = [p for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin", ".pt", ".gguf")]
        return sum(p.stat().st_size for p in weights) / 1e9
    return default_gb


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` says the accelerator ran out of memory: torch's `OutOfMemoryError` (CUDA, XPU), or the plain
    RuntimeError other backends raise ("MPS backend out of memory", HIP's "out of memory")."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def out_of_memory(what: str = "it ran", offload: str | None = None) -> ThinkEditError:
    """What to do when the accelerator ran out of memory while `what`, with a model loaded with `offload`."""
    if offload is None:
        tip = "try --offload model, group or sequential, "
    else:
        tip = f"try {OFFLOAD_TIPS[offload]}, " if offload in OFFLOAD_TIPS else ""
    loaded = f" (offload {offload})" if offload else ""
    return ThinkEditError(
        f"The GPU ran out of memory while {what}{loaded}. To fit, {tip}use a smaller image or fewer steps, "
        "fewer models at once (THINKEDIT_MEMORY_BUDGET_GB), or a smaller checkpoint."
    )
