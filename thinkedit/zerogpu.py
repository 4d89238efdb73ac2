"""ZeroGPU: every edit and every critique of a local model runs in its own short `spaces.GPU` slice.

On a ZeroGPU Space (`SPACES_ZERO_GPU` true and the `spaces` package installed), `app.py` before launch:
- `decorate_slices()` imports `spaces` (which patches torch with its CUDA emulation) and makes the `spaces.GPU`
  functions. `spaces` reports them to ZeroGPU when the app launches, and reports nothing when there are none
  (the Space then never gets a GPU), so they exist before launch, not at the first request.
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
from .backend import BackendSpec, is_local, name_of
from .config import Settings
from .errors import Cancelled, ThinkEditError

MAX_DURATION_S = 300  # the most one ZeroGPU call may ask for
MARGIN_S = 10  # attaching the GPU, moving preloaded weights onto it, VAE decode
HEADROOM = 1.2  # estimates are from an H200 slice; leave room for slower calls
THINKER_PREFILL_S = 1.5  # two images at 1024² through the vision tower
# What ZeroGPU does with a request, on its current cards (RTX Pro 6000 Blackwell; spaces 0.51.3 zero/configs.json
# and the hub's ZeroGPU page): a "large" call (half a card, 48 GB) is scheduled for 1.5× the seconds it asks, which
# must fit in what is left of the visitor's quota; a Space whose preloaded weights pass 45.1 GB runs every call
# "xlarge" (a whole card), which counts twice. A free account's daily quota is 5 minutes.
DURATION_FACTOR = 1.5
LARGE_LIMIT_GB = 45.097156608
FREE_DAILY_S = 300


def on_zero_gpu() -> bool:
    """True on a ZeroGPU Space: `SPACES_ZERO_GPU` true (as `spaces` reads it) and `spaces` installed."""
    flag = os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")
    return flag and importlib.util.find_spec("spaces") is not None


def edit_seconds(editor: Any, steps: int | None) -> int:
    """GPU seconds one edit may need: its steps × the row's seconds per step, with headroom and a margin.

    `--speed fast` asks less only through its steps (a few-step LoRA): a cache's savings depend on the image.
    """
    spec = editor.spec
    return edit_estimate(spec, steps or getattr(editor, "default_steps", None) or spec.steps or 0)


def think_seconds(thinker: Any) -> int:
    """GPU seconds one critique may need: the prefill plus every token it may write at the row's speed."""
    tokens = getattr(thinker, "generation", {}).get("max_new_tokens") or thinker.settings.thinker_max_new_tokens
    return think_estimate(thinker.spec, tokens)


def edit_estimate(spec: BackendSpec, steps: int) -> int:
    return _seconds(steps * spec.seconds_per_step)


def think_estimate(spec: BackendSpec, tokens: int) -> int:
    return _seconds(THINKER_PREFILL_S + tokens / spec.tokens_per_second)


def _seconds(work: float) -> int:
    return min(MAX_DURATION_S, math.ceil(MARGIN_S + HEADROOM * work))


def budget(editor: BackendSpec, thinker: BackendSpec, settings: Settings) -> dict[str, int]:
    """What a default request of these rows and settings asks ZeroGPU for: seconds per edit and per critique, as
    asked and as ZeroGPU counts them (`DURATION_FACTOR`), and for a whole run of `max_turns` turns as counted."""
    steps, tokens = editor.defaults(settings.speed)[0] or 0, settings.thinker_max_new_tokens
    edit = edit_estimate(editor, steps)
    think = think_estimate(thinker, tokens) if thinker.kind == "local" else 0
    return {
        "steps": steps,
        "tokens": tokens,
        "edit_s": edit,
        "critique_s": think,
        "counted_edit_s": math.ceil(edit * DURATION_FACTOR),
        "counted_critique_s": math.ceil(think * DURATION_FACTOR),
        "turns": settings.max_turns,
        "counted_run_s": settings.max_turns * (math.ceil(edit * DURATION_FACTOR) + math.ceil(think * DURATION_FACTOR)),
    }


def preload(backends: list[Any]) -> list[str]:
    """On ZeroGPU, load the local backends' models now; the names of those loaded.

    Call it once at app start, before the first request, with backends built from the settings requests
    will use. Local backends build their model through `runtime.load` (thinkers in `load()`, diffusers
    editors in `pipeline()`), so later calls find it in the process-wide cache under the same key.
    """
    decorate_slices()  # spaces first: it patches torch before any model is placed on cuda
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

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None, mask=None):
        return _follow("edit", (self.backend, image, prompt, seed, steps, guidance, mask), on_step)

    def critique(self, source, edited, instruction, prompt, *, on_token=None, feedback=None, region=None):
        arguments = (self.backend, source, edited, instruction, prompt, feedback, region)
        return _follow("critique", arguments, on_token)

    def polish(self, source, instruction, *, on_token=None):
        return _follow("polish", (self.backend, source, instruction), on_token)


def edit_duration(editor, image, prompt, seed, steps, guidance, mask=None) -> int:
    return edit_seconds(editor, steps)


def critique_duration(thinker, *args) -> int:
    return think_seconds(thinker)


polish_duration = critique_duration


def _run_edit(editor, image, prompt, seed, steps, guidance, mask=None) -> Iterator[tuple[str, Any]]:
    """In the GPU worker: the edit, its steps as ("call", (i, n)) while it runs, then ("done", image)."""
    masked = {"mask": mask} if mask is not None else {}
    return _in_thread(
        lambda report: editor.edit(image, prompt, seed=seed, steps=steps, guidance=guidance, on_step=report, **masked)
    )


def _run_critique(
    thinker, source, edited, instruction, prompt, feedback=None, region=None
) -> Iterator[tuple[str, Any]]:
    asked = {key: value for key, value in (("feedback", feedback), ("region", region)) if value is not None}  # as set
    return _in_thread(lambda report: thinker.critique(source, edited, instruction, prompt, on_token=report, **asked))


def _run_polish(thinker, source, instruction) -> Iterator[tuple[str, Any]]:
    return _in_thread(lambda report: thinker.polish(source, instruction, on_token=report))


_TASKS = {
    "edit": (_run_edit, edit_duration),
    "critique": (_run_critique, critique_duration),
    "polish": (_run_polish, polish_duration),
}
_SLICES: dict[str, Callable] = {}


def decorate_slices() -> dict[str, Callable]:
    """`spaces.GPU(duration=...)` of the generator of each kind of call, made once (spaces is imported only here)."""
    if not _SLICES:
        import spaces

        for kind, (task, duration) in _TASKS.items():
            _SLICES[kind] = spaces.GPU(duration=duration)(_generator(kind, task))
    return _SLICES


def _generator(kind: str, task: Callable[..., Iterator]) -> Callable[..., Iterator]:
    def run_slice(*args):  # a generator function: spaces streams what it yields back to this process
        yield from task(*args)

    run_slice.__name__ = f"thinkedit_{kind}"
    return run_slice


def _follow(kind: str, args: tuple, callback: Callable | None) -> Any:
    """Call the slice for `kind` and hand its steps or tokens to `callback` in this process; its result, or its
    error raised. The slice's requested and used seconds go to the run's meter, however it ends.

    When `callback` raises (Stop), the slice's generator is closed, which stops the worker's call.
    """
    gpu_call, duration = decorate_slices()[kind], _TASKS[kind][1]
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
        compute.report_slice(kind, duration(*args), time.perf_counter() - started)
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
