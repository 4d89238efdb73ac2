"""ZeroGPU: run a request's GPU work inside `spaces.GPU`, for as long as that request needs.

On a ZeroGPU Space (`SPACES_ZERO_GPU` true and the `spaces` package installed):
- `preload(settings)` builds the chosen local models at start, in the main process. ZeroGPU runs each
  `spaces.GPU` call in a forked worker, so a model first loaded inside a call would be loaded again on
  every request; loaded before, it is inherited, and its `.to("cuda")` is deferred by ZeroGPU until a GPU
  is attached.
- `gpu(duration)` wraps the GPU-bound function in `spaces.GPU(duration=duration)`, where `duration` is
  computed per request (see `estimate_duration`): short runs ask for little, long ones are not cut off.
Anywhere else both do nothing and `spaces` is never imported.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable
from typing import TypeVar

from .config import Settings
from .errors import ThinkEditError

F = TypeVar("F", bound=Callable)

MAX_DURATION_S = 300  # the most one ZeroGPU call may ask for
MARGIN_S = 10  # attaching the GPU, moving preloaded weights onto it, VAE decode
HEADROOM = 1.2  # estimates are from an H200 slice; leave room for slower calls
SECONDS_PER_STEP = {  # denoiser step at ~1024², bf16, H200-class; offline and remote backends need no GPU
    "flux-kontext": 0.45,
    "qwen-image-edit": 0.9,
    "longcat-image-edit": 0.8,
    "instruct-pix2pix": 0.06,
    "flux2-klein": 0.35,
    "omnigen2": 0.9,
}
TOKENS_PER_SECOND = {"editthinker": 30.0, "qwen-vl": 60.0}  # transformers generate, bf16, batch 1
THINKER_PREFILL_S = 1.5  # two images at 1024² through the vision tower
CRITIQUE_TOKENS = 768  # a typical EditThinker critique; pass max_new_tokens for the worst case


def on_zero_gpu() -> bool:
    """True on a ZeroGPU Space: `SPACES_ZERO_GPU` true (as `spaces` reads it) and `spaces` installed."""
    flag = os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")
    return flag and importlib.util.find_spec("spaces") is not None


def estimate_duration(
    editor: str,
    thinker: str,
    max_turns: int,
    steps: int | None = None,
    *,
    first_turn: str = "none",
    thinker_tokens: int = CRITIQUE_TOKENS,
) -> int:
    """Seconds of GPU one request may need, capped at `MAX_DURATION_S`.

    Every turn runs the editor for `steps` (the editor's default when None) and one critique of
    `thinker_tokens` tokens; a first-turn strategy other than "none" adds one thinker call.
    """
    from .editors import EDITORS

    spec = EDITORS.get(editor)
    steps = steps or (spec.steps if spec is not None else None) or 0
    edit_s = steps * SECONDS_PER_STEP.get(editor, 0.0)
    think_s = THINKER_PREFILL_S + thinker_tokens / TOKENS_PER_SECOND[thinker] if thinker in TOKENS_PER_SECOND else 0.0
    thinker_calls = max_turns + (first_turn != "none")
    seconds = MARGIN_S + HEADROOM * (max_turns * edit_s + thinker_calls * think_s)
    return min(MAX_DURATION_S, math.ceil(seconds))


def gpu(duration: Callable[..., int]) -> Callable[[F], F]:
    """Decorator: `spaces.GPU(duration=duration)` on ZeroGPU, the function unchanged elsewhere.

    `duration` receives the same arguments as the decorated function and returns seconds.
    """

    def wrap(function: F) -> F:
        if not on_zero_gpu():
            return function
        import spaces

        return spaces.GPU(duration=duration)(function)

    return wrap


def preload(settings: Settings) -> list[str]:
    """On ZeroGPU, load the chosen local editor's and thinker's models now; the names loaded, else [].

    Call it once at app start, before the first request, with the settings requests will use. Local
    backends build their model through `runtime.load` (thinkers in `load()`, diffusers editors in
    `pipeline()`), so later requests find it in the process-wide cache under the same key.
    """
    if not on_zero_gpu():
        return []
    import spaces  # noqa: F401 - patches torch before any model is placed on cuda

    from .registry import make_editor, make_thinker

    loaded = []
    for backend in (make_editor(settings), make_thinker(settings)):
        if backend.spec.kind != "local":
            continue
        load = getattr(backend, "load", None) or getattr(backend, "pipeline", None)
        if load is None:
            raise ThinkEditError(f"The {backend.spec.name} backend has no load() to preload its model with.")
        load()
        loaded.append(backend.spec.name)
    return loaded
