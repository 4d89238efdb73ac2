"""The one local accelerator: runs that use a local model take turns on it; offline and remote runs do not wait."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..backend import is_local

GPU_LOCK = threading.Lock()
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
    while not GPU_LOCK.acquire(timeout=GPU_WAIT_POLL_S):
        if waiting is not None:
            waiting()
    try:
        yield
    finally:
        GPU_LOCK.release()
