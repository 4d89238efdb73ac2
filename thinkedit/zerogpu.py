"""ZeroGPU: run a request's GPU work inside `spaces.GPU`, for as long as that request needs.

Outside a ZeroGPU Space (no `SPACES_ZERO_GPU`, or no `spaces` package) `gpu(...)` changes nothing.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

MAX_DURATION_S = 300  # what a ZeroGPU Space may ask for one call
SECONDS_PER_STEP = {  # H200-class, 1024², bf16; the offline/remote backends need no GPU
    "flux-kontext": 0.45,
    "qwen-image-edit": 0.9,
    "longcat-image-edit": 0.8,
    "instruct-pix2pix": 0.06,
    "flux2-klein": 0.35,
    "omnigen2": 0.9,
}
THINKER_SECONDS = {"editthinker": 25.0, "qwen-vl": 12.0}  # one critique of ~1k tokens


def on_zero_gpu() -> bool:
    return bool(os.environ.get("SPACES_ZERO_GPU")) and importlib.util.find_spec("spaces") is not None


def estimate_duration(editor: str, thinker: str, max_turns: int, steps: int | None, default_steps: int = 28) -> int:
    """Seconds of GPU a request may need: turns × (steps × s/step + a critique), plus a margin, capped."""
    per_turn = (steps or default_steps) * SECONDS_PER_STEP.get(editor, 0.0) + THINKER_SECONDS.get(thinker, 0.0)
    return int(min(MAX_DURATION_S, 10 + max_turns * per_turn * 1.2))


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
