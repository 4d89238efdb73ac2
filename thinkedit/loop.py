"""The Think-while-Edit loop: edit, critique, refine, repeat — as a stream of events.

`run(editor, thinker, request)` yields events as they happen; the web app, the CLI and the tests all
consume this one stream. It knows nothing of Gradio, diffusers or HTTP.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .config import FIRST_TURN_STRATEGIES, MAX_INSTRUCTION_CHARS, MAX_TURNS_RANGE, THRESHOLD_RANGE
from .critique import Critique
from .errors import BadInput, Cancelled, ThinkEditError
from .images import editor_output, load_image

STOP_REASONS = ("threshold", "prompt_kept", "max_turns", "cancelled", "error")
CANCEL_GRACE_S = 10.0  # after Stop, how long a backend may take to reach its next step or token
STOP_WAIT_S = 5.0  # how long an abandoned backend is given to stop before the loop goes on


@dataclass
class EditRequest:
    """What the person asked for. Build it with `make_request`, which validates every field."""

    image: Image.Image
    instruction: str
    max_turns: int = 3
    threshold: float = 8.0
    first_turn: str = "none"
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None


def make_request(
    image: Any,
    instruction: str | None,
    *,
    max_turns: int = 3,
    threshold: float = 8.0,
    first_turn: str = "none",
    seed: int = 0,
    steps: int | None = None,
    guidance: float | None = None,
) -> EditRequest:
    """Validate everything before any model runs; raise `BadInput` with the reason."""
    text = (instruction or "").strip()
    if not text:
        raise BadInput("The instruction is empty: say what to change in the image.")
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise BadInput(f"The instruction is {len(text)} characters long; the limit is {MAX_INSTRUCTION_CHARS}.")
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text).strip()
    if not text:
        raise BadInput("The instruction has no readable characters.")
    low, high = MAX_TURNS_RANGE
    if not isinstance(max_turns, int) or isinstance(max_turns, bool):
        if isinstance(max_turns, float) and max_turns.is_integer():
            max_turns = int(max_turns)
        else:
            raise BadInput(f"max_turns must be a whole number from {low} to {high}.")
    if not low <= max_turns <= high:
        raise BadInput(f"max_turns must be from {low} to {high}, not {max_turns}.")
    if threshold is None or not THRESHOLD_RANGE[0] <= float(threshold) <= THRESHOLD_RANGE[1]:
        raise BadInput(f"The stop threshold must be from 0 to 10, not {threshold}.")
    if first_turn not in FIRST_TURN_STRATEGIES:
        raise BadInput(f"Unknown first-turn strategy '{first_turn}'; use one of {', '.join(FIRST_TURN_STRATEGIES)}.")
    if steps is not None and not 1 <= int(steps) <= 500:
        raise BadInput(f"steps must be from 1 to 500, not {steps}.")
    return EditRequest(
        image=load_image(image),
        instruction=text,
        max_turns=max_turns,
        threshold=float(threshold),
        first_turn=first_turn,
        seed=int(seed) % (2**32),
        steps=int(steps) if steps is not None else None,
        guidance=float(guidance) if guidance is not None else None,
    )


@dataclass
class Turn:
    index: int  # 1-based
    prompt: str
    image: Image.Image
    critique: Critique
    seed: int
    edit_seconds: float
    think_seconds: float
    editor_note: str | None = None

    @property
    def rank(self) -> float:
        overall = self.critique.overall
        return -1.0 if overall is None else overall


@dataclass
class Trajectory:
    request: EditRequest
    editor: str
    thinker: str
    settings: dict[str, Any]
    turns: list[Turn] = field(default_factory=list)
    stop_reason: str | None = None
    error: str | None = None
    first_turn_prompt: str | None = None  # what polish / critique-source turned the instruction into
    first_turn_reasoning: str | None = None
    warnings: list[str] = field(default_factory=list)
    run_dir: Path | None = None
    started: float = field(default_factory=time.time)
    seconds: float = 0.0
    save_seconds: float = 0.0  # time spent writing the run folder

    @property
    def best_turn(self) -> Turn | None:
        """Highest geometric mean of semantic and quality; unreadable scores rank lowest; ties go later."""
        best = None
        for turn in self.turns:
            if best is None or turn.rank >= best.rank:
                best = turn
        return best


# -- events ------------------------------------------------------------------------------------------


@dataclass
class TurnStarted:
    index: int
    prompt: str


@dataclass
class EditStep:
    index: int
    step: int
    total: int


@dataclass
class ThinkingStarted:
    index: int  # 0 = before turn 1 (polish / critique-source)


@dataclass
class Reasoning:
    index: int
    text: str  # a chunk of the thinker's output as it is generated


@dataclass
class TurnFinished:
    turn: Turn


@dataclass
class Notice:
    message: str  # something the person should know that does not stop the run


@dataclass
class RunFinished:
    trajectory: Trajectory


Event = TurnStarted | EditStep | ThinkingStarted | Reasoning | TurnFinished | Notice | RunFinished


# -- the loop ----------------------------------------------------------------------------------------


def run(
    editor,
    thinker,
    request: EditRequest,
    *,
    cancel: threading.Event | None = None,
    run_dir: Path | None = None,
    edit_timeout: float = 600.0,
    think_timeout: float = 600.0,
    settings: dict[str, Any] | None = None,
) -> Iterator[Event]:
    """Run Think-while-Edit and yield events; the last one is always `RunFinished`.

    `thinker=None` runs the editor once with no critique (the single-shot baseline). When
    `run_dir` is given, the run is saved there after every turn.
    """
    cancel = cancel or threading.Event()
    trajectory = Trajectory(
        request=request,
        editor=getattr(getattr(editor, "spec", None), "name", type(editor).__name__),
        thinker=getattr(getattr(thinker, "spec", None), "name", type(thinker).__name__) if thinker else "none",
        settings=_settings_record(editor, thinker, request, settings),
        run_dir=run_dir,
    )
    source = request.image
    try:
        prompt = request.instruction
        if thinker is not None and request.first_turn != "none":
            yield ThinkingStarted(0)
            prompt, reasoning = yield from _first_turn_prompt(thinker, request, cancel, think_timeout)
            trajectory.first_turn_prompt, trajectory.first_turn_reasoning = prompt, reasoning
        max_turns = request.max_turns if thinker is not None else 1
        for index in range(1, max_turns + 1):
            if cancel.is_set():
                raise Cancelled
            seed = (request.seed + index - 1) % (2**32)
            yield TurnStarted(index, prompt)
            started = time.perf_counter()
            edited = yield from _in_worker(
                lambda on_step, p=prompt, s=seed: editor.edit(
                    source, p, seed=s, steps=request.steps, guidance=request.guidance, on_step=on_step
                ),
                lambda i, n, idx=index: EditStep(idx, i, n) if i > 0 else None,
                cancel,
                edit_timeout,
                "editor",
            )
            edit_seconds = time.perf_counter() - started
            edited, note = _check_edit(edited)
            if note:
                yield Notice(f"Turn {index}: {note}")
            critique, think_seconds = Critique(None, None, "", None, ""), 0.0
            if thinker is not None:
                yield ThinkingStarted(index)
                started = time.perf_counter()
                critique = yield from _in_worker(
                    lambda on_token, p=prompt, e=edited: thinker.critique(
                        source, e, request.instruction, p, on_token=on_token
                    ),
                    lambda text, idx=index: Reasoning(idx, text) if text else None,
                    cancel,
                    think_timeout,
                    "thinker",
                )
                think_seconds = time.perf_counter() - started
            turn = Turn(index, prompt, edited, critique, seed, edit_seconds, think_seconds, note)
            trajectory.turns.append(turn)
            yield from _save(trajectory)
            yield TurnFinished(turn)
            if thinker is None:
                trajectory.stop_reason = "max_turns"
                break
            if critique.satisfied(request.threshold):
                trajectory.stop_reason = "threshold"
                break
            if critique.refined_prompt is not None and _same(critique.refined_prompt, prompt):
                trajectory.stop_reason = "prompt_kept"
                break
            if index == max_turns:
                trajectory.stop_reason = "max_turns"
                break
            prompt = critique.refined_prompt or prompt
    except Cancelled:
        trajectory.stop_reason = "cancelled"
    except Exception as exc:  # noqa: BLE001 - any failure ends the run; finished turns are kept
        trajectory.stop_reason = "error"
        trajectory.error = _message(exc)
    trajectory.seconds = time.time() - trajectory.started
    for role, backend in (("editor", editor), ("thinker", thinker)):
        if getattr(backend, "model", None):  # a served model name is only known after the first call
            trajectory.settings[f"{role}_model"] = backend.model
    yield from _save(trajectory)
    yield RunFinished(trajectory)


def _first_turn_prompt(thinker, request: EditRequest, cancel: threading.Event, timeout: float):
    """(prompt for turn 1, reasoning) under the `polish` or `critique-source` strategy."""
    source = request.image
    if request.first_turn == "polish":
        polish = getattr(thinker, "polish", None)
        if polish is None:
            yield Notice("This thinker cannot polish instructions; turn 1 uses the instruction as written.")
            return request.instruction, None
        chunks: list[str] = []

        def call(on_token):
            return polish(source, request.instruction, on_token=on_token)

        def event(text):
            chunks.append(text)
            return Reasoning(0, text) if text else None

        prompt = yield from _in_worker(call, event, cancel, timeout, "thinker")
        return (prompt or "").strip() or request.instruction, "".join(chunks) or None
    critique = yield from _in_worker(
        lambda on_token: thinker.critique(source, source, request.instruction, request.instruction, on_token=on_token),
        lambda text: Reasoning(0, text) if text else None,
        cancel,
        timeout,
        "thinker",
    )
    return critique.refined_prompt or request.instruction, critique.reasoning


def _in_worker(
    call: Callable[[Callable], Any],
    to_event: Callable[..., Event | None],
    cancel: threading.Event,
    timeout: float,
    role: str,
):
    """Run `call(callback)` on a worker thread and yield the events its callback reports, live.

    The callback raises `Cancelled` inside the worker once Stop is pressed or the call is abandoned,
    so the backend stops at its next step or token. A backend that neither returns nor reports within
    `timeout` seconds is abandoned with a clear error; one that does not reach a step within
    `CANCEL_GRACE_S` of Stop is abandoned too. Either way the worker is given `STOP_WAIT_S` to stop
    before the loop goes on, so a cached model is not used by two runs at once.
    """
    events: queue.SimpleQueue = queue.SimpleQueue()
    outcome: dict[str, Any] = {}
    done, abandoned = threading.Event(), threading.Event()
    last_sign_of_life = [time.monotonic()]

    def callback(*args):
        if cancel.is_set() or abandoned.is_set():
            raise Cancelled
        last_sign_of_life[0] = time.monotonic()
        event = to_event(*args)
        if event is not None:  # None: a heartbeat that only asks whether to stop
            events.put(event)

    def work():
        try:
            outcome["value"] = call(callback)
        except BaseException as exc:  # noqa: BLE001 - handed to the loop's thread below
            outcome["error"] = exc
        finally:
            done.set()
            events.put(None)

    threading.Thread(target=work, daemon=True, name=f"thinkedit-{role}").start()
    stop_pressed = None
    try:
        while not done.is_set() or not events.empty():
            try:
                item = events.get(timeout=0.05)
            except queue.Empty:
                item = None
            now = time.monotonic()
            if cancel.is_set():
                stop_pressed = stop_pressed or now
                if now - stop_pressed > CANCEL_GRACE_S:
                    raise Cancelled
                continue  # nothing more is shown once Stop is pressed
            if now - last_sign_of_life[0] > timeout:
                raise ThinkEditError(
                    f"The {role} did not answer within {timeout:g} s; the run was stopped. "
                    "Try fewer steps or a smaller image, or check the backend."
                )
            if item is not None:
                yield item
    finally:
        abandoned.set()
        done.wait(STOP_WAIT_S)
    if "error" in outcome:
        raise outcome["error"]
    if cancel.is_set():
        raise Cancelled
    return outcome.get("value")


def _check_edit(edited: Any) -> tuple[Image.Image, str | None]:
    """An editor's output as an RGB image of its own size (a rotation or a crop changes the shape), plus the
    editor's note if any."""
    image = editor_output(edited)
    return image, edited.info.get("editor_note")


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()).strip(" .") == " ".join(b.lower().split()).strip(" .")


def _save(trajectory: Trajectory):
    if trajectory.run_dir is None:
        return
    from .store import save_run

    started = time.perf_counter()
    try:
        save_run(trajectory, trajectory.run_dir)
    except OSError as exc:
        message = f"The run could not be saved to {trajectory.run_dir}: {exc.strerror or exc}. It is shown, not kept."
        if message not in trajectory.warnings:
            trajectory.warnings.append(message)
            yield Notice(message)
    finally:
        trajectory.save_seconds += time.perf_counter() - started


def _message(exc: BaseException) -> str:
    if isinstance(exc, ThinkEditError):
        return str(exc)
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return "The GPU ran out of memory. Try a smaller image, fewer steps, or --offload model / sequential."
    return f"{type(exc).__name__}: {exc}"


def _settings_record(editor, thinker, request: EditRequest, extra: dict[str, Any] | None) -> dict[str, Any]:
    record = {
        "max_turns": request.max_turns,
        "threshold": request.threshold,
        "first_turn": request.first_turn,
        "seed": request.seed,
        "steps": request.steps,
        "guidance": request.guidance,
        "editor_model": getattr(editor, "model", None),
        "thinker_model": getattr(thinker, "model", None) if thinker else None,
    }
    record.update(extra or {})
    return record
