"""Which device and dtypes a model runs in: the user's choice, else the best the machine has."""

from __future__ import annotations

import importlib.util

from ..config import Settings
from ..errors import BadInput

STORAGE_DTYPES = ("float8_e4m3fn", "float8_e5m2")  # what diffusers' layerwise casting stores weights in


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
            raise BadInput(f"Unknown dtype '{settings.dtype}'; use bfloat16, float16 or float32.")
        return dtype
    device = device or pick_device(settings)
    return torch.bfloat16 if device.startswith(("cuda", "mps")) else torch.float32


def pick_storage_dtype(settings: Settings):
    """The dtype a diffusers editor keeps its denoiser's weights in between uses (`editor_storage_dtype`), or None
    to keep them in the compute dtype. Float8 halves the denoiser's memory; each layer is cast back to the compute
    dtype just before it runs (diffusers' layerwise casting), so the arithmetic is unchanged."""
    name = settings.editor_storage_dtype
    if not name:
        return None
    if name not in STORAGE_DTYPES:
        raise BadInput(f"Unknown editor storage dtype '{name}'; use {' or '.join(STORAGE_DTYPES)}, or leave it unset.")
    import torch

    return getattr(torch, name)


def compiles(settings: Settings) -> bool:
    """Whether `torch.compile` pays here: a CUDA device in a process that lives on. Not on the CPU (tests never
    compile) and not on ZeroGPU, where every call runs in a fresh forked worker that would compile again."""
    from ..zerogpu import on_zero_gpu

    return pick_device(settings).startswith("cuda") and not on_zero_gpu()


def empty_cuda_cache() -> None:
    """Give the CUDA caching allocator's free blocks back (nothing when CUDA was never started)."""
    if has_torch():
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
