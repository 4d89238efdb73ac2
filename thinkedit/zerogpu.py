"""ZeroGPU: every edit and every critique of a local model runs in its own short `spaces.GPU` slice.

On a ZeroGPU Space (`SPACES_ZERO_GPU` true and the `spaces` package installed):
- `preload(backends)` builds the local models at start, in the main process. ZeroGPU runs each
  `spaces.GPU` call in a forked worker, so a model first loaded inside a call would be loaded again on
  every request; loaded before, it is inherited, and ZeroGPU defers its `.to("cuda")` until a GPU is attached.
- `sliced(backend)` wraps a local backend so that each `edit` / `critique` / `polish` call is one
  `spaces.GPU` generator call, budgeted from the backend's table row (seconds per step, tokens per second):
  a visitor with a few minutes of quota is asked only for what one call needs, never for a whole run.
  The run itself (the loop, the session, Stop, History) stays in the main process; the slice streams its
  steps and tokens back, and Stop closes the slice at the next one (ZeroGPU then stops the worker). Each slice's
  requested seconds and the seconds it took to answer go to the run's meter (`compute.report_slice`), with the
  tokens a polish spent in the worker.
`preload` is for ZeroGPU only (`app.py` asks `on_zero_gpu()` first); anywhere else `sliced` returns the backend
as it is and `spaces` is never imported.
"""

from __future__ import annotations

import importlib.util
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

from . import compute
from .backend import is_local, name_of
from .errors import Cancelled, ThinkEditError

MAX_DURATION_S = 300  # the most one ZeroGPU call may ask for
MARGIN_S = 10  # attaching the GPU, moving preloaded weights onto it, VAE decode
HEADROOM = 1.2  # estimates are from an H200 slice; leave room for slower calls
THINKER_PREFILL_S = 1.5  # two images at 1024² through the vision tower


def on_zero_gpu() -> bool:
    """True on a ZeroGPU Space: `SPACES_ZERO_GPU` true (as `spaces` reads it) and `spaces` installed."""
    flag = os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")
    return flag and importlib.util.find_spec("spaces") is not None


def edit_seconds(editor: Any, steps: int | None) -> int:
    """GPU seconds one edit may need: its steps × the row's seconds per step, with headroom and a margin.

    `--speed fast` asks less only through its steps (a few-step LoRA): a cache's savings depend on the image.
    """
    spec = editor.spec
    return _seconds((steps or getattr(editor, "default_steps", None) or spec.steps or 0) * spec.seconds_per_step)


def think_seconds(thinker: Any) -> int:
    """GPU seconds one critique may need: the prefill plus every token it may write at the row's speed."""
    tokens = getattr(thinker, "generation", {}).get("max_new_tokens") or thinker.settings.thinker_max_new_tokens
    return _seconds(THINKER_PREFILL_S + tokens / thinker.spec.tokens_per_second)


def _seconds(work: float) -> int:
    return min(MAX_DURATION_S, math.ceil(MARGIN_S + HEADROOM * work))


def preload(backends: list[Any]) -> list[str]:
    """On ZeroGPU, load the local backends' models now; the names of those loaded.

    Call it once at app start, before the first request, with backends built from the settings requests
    will use. Local backends build their model through `runtime.load` (thinkers in `load()`, diffusers
    editors in `pipeline()`), so later calls find it in the process-wide cache under the same key.
    """
    import spaces  # noqa: F401 - patches torch before any model is placed on cuda

    loaded = []
    for backend in backends:
        if not is_local(backend):
            continue
        load = getattr(backend, "load", None) or getattr(backend, "pipeline", None)
        if load is None:
            raise ThinkEditError(f"The {name_of(backend)} backend has no load() to preload its model with.")
        load()
        loaded.append(name_of(backend))
    return loaded


def sliced(backend: Any) -> Any:
    """On ZeroGPU, a local backend whose every call is its own `spaces.GPU` slice; anything else as it is."""
    if not on_zero_gpu() or not is_local(backend):
        return backend
    return Sliced(backend)


class Sliced:
    """A local backend on ZeroGPU: the same protocol, each call run by `spaces.GPU` in a forked worker.

    Runs of sliced backends need not take turns in this process (`takes_turns`): every call gets a GPU.
    """

    takes_turns = False

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.spec = backend.spec

    def __getattr__(self, name: str) -> Any:  # model, settings, load, pipeline, cache_key, …
        return getattr(self.backend, name)

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        return _follow("edit", (self.backend, image, prompt, seed, steps, guidance), on_step)

    def critique(self, source, edited, instruction, prompt, *, on_token=None):
        return _follow("critique", (self.backend, source, edited, instruction, prompt), on_token)

    def polish(self, source, instruction, *, on_token=None):
        return _follow("polish", (self.backend, source, instruction), on_token)


def edit_duration(editor, image, prompt, seed, steps, guidance) -> int:
    return edit_seconds(editor, steps)


def critique_duration(thinker, *args) -> int:
    return think_seconds(thinker)


polish_duration = critique_duration


def _run_edit(editor, image, prompt, seed, steps, guidance) -> Iterator[tuple[str, Any]]:
    """In the GPU worker: the edit, its steps as ("call", (i, n)) while it runs, then ("done", image)."""
    return _in_thread(
        lambda report: editor.edit(image, prompt, seed=seed, steps=steps, guidance=guidance, on_step=report)
    )


def _run_critique(thinker, source, edited, instruction, prompt) -> Iterator[tuple[str, Any]]:
    return _in_thread(lambda report: thinker.critique(source, edited, instruction, prompt, on_token=report))


def _run_polish(thinker, source, instruction) -> Iterator[tuple[str, Any]]:
    return _in_thread(lambda report: thinker.polish(source, instruction, on_token=report))


_TASKS = {"edit": _run_edit, "critique": _run_critique, "polish": _run_polish}
_DURATIONS = {"edit": edit_duration, "critique": critique_duration, "polish": polish_duration}
_SLICES: dict[str, Callable] = {}


def _slice(kind: str, duration: Callable[..., int]) -> Callable:
    """`spaces.GPU(duration=duration)` of the generator for `kind`, made once (spaces is imported only here)."""
    if kind not in _SLICES:
        import spaces

        task = _TASKS[kind]

        def run_slice(*args):  # a generator function: spaces streams what it yields back to this process
            yield from task(*args)

        run_slice.__name__ = f"thinkedit_{kind}"
        _SLICES[kind] = spaces.GPU(duration=duration)(run_slice)
    return _SLICES[kind]


def _follow(kind: str, args: tuple, callback: Callable | None) -> Any:
    """Call the slice for `kind` and hand its steps or tokens to `callback` in this process; its result, or its
    error raised. The slice's requested and used seconds go to the run's meter, however it ends.

    When `callback` raises (Stop), the slice's generator is closed, which stops the worker's call.
    """
    gpu_call = _slice(kind, _DURATIONS[kind])
    started = time.perf_counter()
    try:
        with closing(gpu_call(*args)) as messages:
            for what, value in messages:
                if what == "call":
                    if callback is not None:
                        callback(*value)
                elif what == "tokens":
                    for tokens in value:
                        compute.report_tokens(tokens)
                elif what == "error":
                    raise value
                else:
                    return value
    finally:
        compute.report_slice(kind, _DURATIONS[kind](*args), time.perf_counter() - started)
    raise ThinkEditError("The GPU worker ended without an answer.")


def _in_thread(call: Callable[[Callable], Any]) -> Iterator[tuple[str, Any]]:
    """Inside the GPU worker: run `call(report)` on a thread and yield each report as it happens.

    A generator cannot yield from inside a callback, so the backend runs beside it; when the generator is
    closed (Stop in the main process), the backend's next report raises `Cancelled` and it stops there.
    """
    reports: queue.SimpleQueue = queue.SimpleQueue()
    stopped = threading.Event()

    def report(*values) -> None:
        if stopped.is_set():
            raise Cancelled
        reports.put(("call", values))

    def work() -> None:
        try:
            with compute.metering():  # what the call reports (a polish's tokens) goes back with its answer
                result = call(report)
                reports.put(("tokens", compute.reported_tokens()))
            reports.put(("done", result))
        except Exception as exc:  # noqa: BLE001 - sent back to the main process, which raises it
            plain = (
                exc if isinstance(exc, (ThinkEditError, Cancelled)) else ThinkEditError(f"{type(exc).__name__}: {exc}")
            )
            reports.put(("error", plain))  # our own exception types always pickle

    worker = threading.Thread(target=work, daemon=True, name="thinkedit-gpu-slice")
    worker.start()
    try:
        while True:
            message = reports.get()
            yield message
            if message[0] not in ("call", "tokens"):
                return
    finally:
        stopped.set()
        worker.join()
