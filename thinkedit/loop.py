"""The Think-while-Edit loop: edit, critique, refine, repeat — as a stream of events.

`run_jobs(jobs)` yields the events of one or more runs as they happen (`run(editor, thinker, request)`: of one);
the web app, the CLI, `bench`, `eval` and the tests all consume these events. It knows nothing of Gradio, diffusers or HTTP.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from . import compute, runtime
from .backend import is_local, name_of
from .config import DEFAULTS, Settings
from .critique import Critique, score_text
from .errors import Cancelled, ThinkEditError
from .images import editor_output
from .requests import EditRequest, make_request  # noqa: F401 - `loop.make_request`: how callers have built requests
from .store import NOT_SAVED, NotSaved, save_run

CANCEL_GRACE_S = 10.0  # after Stop or a timeout, how long a backend may take to reach its next step or token
WATCH_S = 0.1  # how often the watcher looks at the clock while no event arrives


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
    thinker_note: str | None = None  # what the loop made of a reply it could not follow (no refined prompt)
    tokens: compute.Tokens = field(default_factory=compute.Tokens)  # its critique's; (0, 0) without one
    gpu_seconds: float | None = None  # device time held during the turn; None where no GPU was used
    slices: list[compute.Slice] = field(default_factory=list)  # its ZeroGPU calls

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
    first_turn_compute: dict[str, Any] | None = None  # what the first-turn rewrite spent (`_first_step`)
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


@dataclass
class Job:
    """One run to do: `thinker=None` runs the editor once with no critique (the single-shot baseline);
    with `run_dir` the run is saved there after every turn."""

    editor: Any
    thinker: Any
    request: EditRequest
    run_dir: Path | None = None


def run(
    editor,
    thinker,
    request: EditRequest,
    *,
    cancel: threading.Event | None = None,
    run_dir: Path | None = None,
    edit_timeout: float = DEFAULTS.edit_timeout,
    think_timeout: float = DEFAULTS.thinker_timeout,
) -> Iterator[Event]:
    """Run Think-while-Edit on a worker thread and yield its events live; the last one is always `RunFinished`."""
    for _, event in run_jobs(
        [Job(editor, thinker, request, run_dir)], cancel=cancel, edit_timeout=edit_timeout, think_timeout=think_timeout
    ):
        yield event


def run_jobs(
    jobs: list[Job],
    *,
    cancel: threading.Event | None = None,
    edit_timeout: float = DEFAULTS.edit_timeout,
    think_timeout: float = DEFAULTS.thinker_timeout,
) -> Iterator[tuple[int, Event]]:
    """Run every job at once, one worker thread each, and yield (job number, event) as they happen.

    Jobs that use the one local GPU take turns (`runtime.gpu_turn`); offline and remote ones run together.
    Stop (`cancel`) and a backend silent for longer than its timeout (no step, token or heartbeat) make the
    backend's next callback raise, so it stops at its next step or token. A backend that does not get there
    within `CANCEL_GRACE_S` is reported as stopped and left to finish on its own: its thread keeps the GPU
    until the backend really returns. Leaving early (the page was closed) stops every job; finishing leaves
    `cancel` as it was.
    """
    cancel = cancel or threading.Event()
    events: queue.SimpleQueue = queue.SimpleQueue()
    runs = [_Run(number, job, cancel, events.put, edit_timeout, think_timeout) for number, job in enumerate(jobs)]
    for each in runs:
        each.thread.start()
    going = set(range(len(runs)))
    try:
        while going:
            try:
                number, event = events.get(timeout=WATCH_S)
            except queue.Empty:
                number, event = None, None
            for each in [runs[n] for n in going]:
                given_up = each.watch(time.monotonic())
                if given_up is not None:
                    going.discard(each.number)
                    yield each.number, given_up
            if number not in going:
                continue  # nothing arrived, or a late event of a run already reported as stopped
            if isinstance(event, RunFinished):
                going.discard(number)
            elif cancel.is_set():
                continue  # nothing more is shown once Stop is pressed
            yield number, event
    finally:
        if going:  # left early (the page was closed): stop what still runs
            cancel.set()


class _Run:
    """One job on its worker thread, and what the watcher knows of it.

    Every callback from the backends is a sign of life; `watch` halts a run that Stop or a timeout ended,
    so that its next callback raises, and gives up on it once it has ignored that for `CANCEL_GRACE_S`.
    """

    def __init__(
        self, number: int, job: Job, cancel: threading.Event, put: Callable, edit_timeout: float, think_timeout: float
    ) -> None:
        self.number, self.job, self.cancel, self.put = number, job, cancel, put
        self.timeouts = {"editor": edit_timeout, "thinker": think_timeout}
        self.role: str | None = None  # the backend at work; None while waiting for the GPU
        self.last_sign = time.monotonic()
        self.halted: tuple[type[BaseException], str] | None = None
        self.halted_at = 0.0
        self.given_up = False
        self.trajectory = new_trajectory(job.editor, job.thinker, job.request, job.run_dir)
        # contextvars go along: ZeroGPU's per-call GPU slices read the request that Gradio set for this handler
        self.thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self.work,), daemon=True, name=f"thinkedit-run-{number}"
        )

    def work(self) -> None:
        job = self.job
        try:
            execute(job.editor, job.thinker, job.request, self.trajectory, emit=self.emit, alive=self.alive)
        except BaseException as exc:  # noqa: BLE001 - execute ends on every Exception; this is a SystemExit or the like
            self.trajectory.stop_reason, self.trajectory.error = "error", f"The run was interrupted ({exc!r})."
            self.emit(RunFinished(self.trajectory))  # the watcher waits for it: a run always finishes

    def alive(self) -> None:
        """Raise when the run must end (Stop, or a timeout the watcher saw); otherwise note a sign of life."""
        if self.halted is not None:
            kind, message = self.halted
            raise kind(message)
        if self.cancel.is_set():
            raise Cancelled
        self.last_sign = time.monotonic()

    def emit(self, event: Event) -> None:
        if isinstance(event, (TurnStarted, ThinkingStarted)):
            self.role = "editor" if isinstance(event, TurnStarted) else "thinker"
        self.last_sign = time.monotonic()
        if not self.given_up:
            self.put((self.number, event))

    def watch(self, now: float) -> RunFinished | None:
        """Halt the run on Stop or a timeout; after `CANCEL_GRACE_S` more without a callback, report it as over."""
        if self.given_up or not self.thread.is_alive() and self.halted is None:
            return None
        if self.halted is None:
            timeout = self.timeouts.get(self.role, float("inf"))
            if self.cancel.is_set():
                self.halted, self.halted_at = (Cancelled, ""), now
            elif now - self.last_sign > timeout:
                message = (
                    f"The {self.role} did not answer within {timeout:g} s; the run was stopped. "
                    "Try fewer steps or a smaller image, or check the backend."
                )
                self.halted, self.halted_at = (ThinkEditError, message), now
            return None
        if now - self.halted_at < CANCEL_GRACE_S or not self.thread.is_alive():
            return None
        self.given_up = True
        kind, message = self.halted
        trajectory = self.trajectory
        trajectory.stop_reason, trajectory.error = ("cancelled", None) if kind is Cancelled else ("error", message)
        trajectory.seconds = time.time() - trajectory.started
        return RunFinished(trajectory)


def new_trajectory(editor, thinker, request: EditRequest, run_dir: Path | None = None) -> Trajectory:
    return Trajectory(
        request=request,
        editor=name_of(editor),
        thinker=name_of(thinker) if thinker is not None else "none",
        settings=_settings_record(editor, thinker, request),
        run_dir=run_dir,
    )


def execute(
    editor,
    thinker,
    request: EditRequest,
    trajectory: Trajectory,
    *,
    emit: Callable[[Event], None],
    alive: Callable[[], None],
) -> None:
    """The loop itself, in the calling thread: edit, critique, refine, repeat, reporting each event to `emit`.

    `alive()` is called at every step and token the backends report and after every backend call; it raises
    `Cancelled` (or an error) to end the run there. Finished turns are saved as they finish; the last event is
    always `RunFinished`. A baseline request (`request.baseline`) runs what the loop is measured against.
    """
    try:
        with runtime.gpu_turn(editor, thinker, waiting=alive), compute.metering() as meter:
            held = holds_gpu(editor, thinker)
            alive()
            prompt = request.instruction
            if thinker is not None and first_turn_strategy(request) != "none":
                prompt = _first_step(thinker, request, trajectory, meter, held, emit, alive)
            max_turns = turn_limit(thinker, request)
            critic = thinker if request.baseline != "rewrite" else None  # the rewrite baseline's edit is not critiqued
            for index in range(1, max_turns + 1):
                alive()
                mark = meter.mark()
                turn = _edit_and_critique(editor, critic, request, index, prompt, emit, alive)
                _measure(turn, *meter.since(mark), held=held, critiqued=critic is not None)
                if critic is not None and turn.critique.refined_prompt is None and request.baseline is None:
                    turn.thinker_note = _no_answer_note(request, index, max_turns)
                    emit(Notice(f"Turn {index}: {turn.thinker_note}"))
                trajectory.turns.append(turn)
                _save(trajectory, emit)
                emit(TurnFinished(turn))
                trajectory.stop_reason = _stop_reason(trajectory, thinker is None, max_turns) or _early_stop(
                    trajectory, emit
                )
                if trajectory.stop_reason is not None:
                    break
                if request.baseline is None:  # best-of-N edits the same prompt every time
                    prompt = turn.critique.refined_prompt or prompt
    except Cancelled:
        trajectory.stop_reason = "cancelled"
    except Exception as exc:  # noqa: BLE001 - any failure ends the run; finished turns are kept
        trajectory.stop_reason = "error"
        trajectory.error = _message(exc)
    trajectory.seconds = time.time() - trajectory.started
    for role, backend in (("editor", editor), ("thinker", thinker)):
        if getattr(backend, "model", None):  # a served model name is only known after the first call
            trajectory.settings[f"{role}_model"] = backend.model
    _save(trajectory, emit)
    emit(RunFinished(trajectory))


def _edit_and_critique(editor, critic, request: EditRequest, index: int, prompt: str, emit, alive) -> Turn:
    """Turn `index`: the edit of the source with `prompt`, then (with a `critic`) its critique."""
    source = request.image
    seed = turn_seed(request, index)
    emit(TurnStarted(index, prompt))
    started = time.perf_counter()
    edited = editor.edit(
        source,
        prompt,
        seed=seed,
        steps=request.steps,
        guidance=request.guidance,
        on_step=_step_callback(index, emit, alive),
    )
    alive()
    edit_seconds = time.perf_counter() - started
    edited, note = _check_edit(edited)
    if note:
        emit(Notice(f"Turn {index}: {note}"))
    critique, think_seconds = Critique(None, None, "", None, ""), 0.0
    if critic is not None:
        emit(ThinkingStarted(index))
        started = time.perf_counter()
        critique = critic.critique(
            source, edited, request.instruction, prompt, on_token=_token_callback(index, emit, alive)
        )
        alive()
        think_seconds = time.perf_counter() - started
    return Turn(index, prompt, edited, critique, seed, edit_seconds, think_seconds, note)


def holds_gpu(editor, thinker) -> bool:
    """Whether a run of these backends holds a local accelerator (CUDA, MPS) from start to end: it takes the GPU turn
    and a local backend's device is not the CPU. ZeroGPU slices are counted per call instead (`compute.Slice`)."""
    if not runtime.takes_gpu_turn(editor, thinker):
        return False
    local = [b for b in (editor, thinker) if b is not None and is_local(b) and getattr(b, "takes_turns", True)]
    devices = [runtime.pick_device(getattr(backend, "settings", None) or Settings()) for backend in local]
    return any(not device.startswith("cpu") for device in devices)


def _measure(turn: Turn, slices: list[compute.Slice], reported, *, held: bool, critiqued: bool) -> None:
    """A finished turn's GPU seconds (the whole turn when the run holds a GPU, else its ZeroGPU slices' used seconds,
    else None) and tokens (its critique's; none spent without one)."""
    turn.slices = slices
    if held:
        turn.gpu_seconds = turn.edit_seconds + turn.think_seconds
    elif slices:
        turn.gpu_seconds = sum(s.used for s in slices)
    turn.tokens = turn.critique.tokens if critiqued else compute.NO_TOKENS
    if reported is not None:  # tokens a backend reported apart from its answer during this turn
        turn.tokens = turn.tokens + reported


def _first_step(thinker, request: EditRequest, trajectory: Trajectory, meter, held: bool, emit, alive) -> str:
    """The first-turn rewrite (polish or critique-source): turn 1's prompt, its reasoning and its compute recorded."""
    emit(ThinkingStarted(0))
    mark, started = meter.mark(), time.perf_counter()
    prompt, reasoning = _first_turn_prompt(thinker, request, emit, alive)
    seconds = time.perf_counter() - started
    slices, tokens = meter.since(mark)
    trajectory.first_turn_prompt, trajectory.first_turn_reasoning = prompt, reasoning
    gpu = seconds if held else sum(s.used for s in slices) if slices else None
    trajectory.first_turn_compute = {
        "think_seconds": round(seconds, 4),
        "gpu_seconds": None if gpu is None else round(gpu, 4),
        "tokens": (tokens or compute.Tokens()).record(),
        "zerogpu": compute.zerogpu_record(slices),
    }
    return prompt


def first_turn_strategy(request: EditRequest) -> str:
    """How turn 1's prompt is made: the request's strategy; the rewrite baseline always polishes."""
    return "polish" if request.baseline == "rewrite" else request.first_turn


def turn_limit(thinker, request: EditRequest) -> int:
    """How many edits the run may make: one without a thinker or for the rewrite baseline, else `max_turns`."""
    return 1 if thinker is None or request.baseline == "rewrite" else request.max_turns


def _step_callback(index: int, emit: Callable, alive: Callable) -> Callable[[int, int], None]:
    """The editor's `on_step(i, n)` for turn `index`: a sign of life, and an event for every real step."""

    def on_step(step: int, total: int) -> None:
        alive()
        if step > 0:  # step 0: a heartbeat that only asks whether to stop
            emit(EditStep(index, step, total))

    return on_step


def _token_callback(
    index: int, emit: Callable, alive: Callable, chunks: list[str] | None = None
) -> Callable[[str], None]:
    """The thinker's `on_token(text)`: a sign of life, and an event for every piece of text (kept in `chunks`)."""

    def on_token(text: str) -> None:
        alive()
        if text:  # "": a heartbeat
            if chunks is not None:
                chunks.append(text)
            emit(Reasoning(index, text))

    return on_token


def turn_seed(request: EditRequest, index: int) -> int:
    """The seed turn `index` edits with: the run's own on every turn (the reference's rule), or seed + index - 1
    (always for best-of-N: its edits differ only by their seed)."""
    return request.seed if seeds_of(request) == "same" else (request.seed + index - 1) % (2**32)


def seeds_of(request: EditRequest) -> str:
    """The seed rule a run follows: the request's; best-of-N's is always "increment"."""
    return "increment" if request.baseline == "best-of-n" else request.seed_per_turn


def seed_rule(settings: dict[str, Any]) -> str:
    """How a recorded run's seeds went, in words (runs saved before `seed_per_turn` existed incremented)."""
    return "the same on every turn" if settings.get("seed_per_turn") == "same" else "one more each turn"


def _stop_reason(trajectory: Trajectory, single_shot: bool, max_turns: int) -> str | None:
    """Why the run ends after its newest turn, or None to go on (`STOP_REASONS` says each in words)."""
    turn = trajectory.turns[-1]
    critique = turn.critique
    if single_shot:
        return "single_shot"
    if trajectory.request.baseline == "rewrite":
        return "rewrite"
    if trajectory.request.baseline == "best-of-n":  # exactly max_turns edits: compute equal to the loop's budget
        return "best_of_n" if turn.index == max_turns else None
    if critique.satisfied(trajectory.request.threshold):
        return "threshold"
    if critique.refined_prompt is None and trajectory.request.no_answer == "stop":
        return "no_answer"
    if critique.refined_prompt is not None and _same(critique.refined_prompt, turn.prompt):
        return "prompt_kept"
    return "max_turns" if turn.index == max_turns else None


def _early_stop(trajectory: Trajectory, emit: Callable[[Event], None]) -> str | None:
    """The optional early stops, after a turn that no other rule ended the loop at (`STOP_REASONS` says each)."""
    request = trajectory.request
    if request.baseline is not None:
        return None
    if request.patience is not None and turns_without_gain(trajectory.turns) >= request.patience:
        return "patience"
    seconds, tokens = spent(trajectory)
    if request.budget_seconds is not None and seconds >= request.budget_seconds:
        return "budget_seconds"
    if request.budget_tokens is not None and not tokens.known:
        if len(trajectory.turns) == 1:
            emit(Notice("The thinker does not report its tokens, so the tokens budget cannot end this run."))
    elif request.budget_tokens is not None and tokens.total >= request.budget_tokens:
        return "budget_tokens"
    return None


def turns_without_gain(turns: list[Turn]) -> int:
    """How many turns have passed since the best score last rose (0: the newest turn raised it)."""
    best, since = None, 0
    for turn in turns:
        if best is None or turn.rank > best:
            best, since = turn.rank, 0
        else:
            since += 1
    return since


def spent(trajectory: Trajectory) -> tuple[float, compute.Tokens]:
    """What the run has spent so far: edit and think seconds, and the thinker's tokens (the first-turn rewrite's
    included)."""
    first = trajectory.first_turn_compute or {}
    seconds = first.get("think_seconds", 0.0) + sum(t.edit_seconds + t.think_seconds for t in trajectory.turns)
    tokens = compute.Tokens.read(first.get("tokens")) if first else compute.NO_TOKENS
    for turn in trajectory.turns:
        tokens = tokens + turn.tokens
    return seconds, tokens


def _no_answer_note(request: EditRequest, index: int, max_turns: int) -> str:
    """What happened when the thinker's reply held no refined prompt (no `<answer>`, or an empty one)."""
    note = "the thinker's reply held no refined prompt (no <answer>)"
    if request.no_answer == "stop":
        return note + "; the run stops here, as the reference's loop does"
    if index < max_turns:
        return note + f"; turn {index + 1} edits with the same prompt again (no-answer rule: repeat)"
    return note


# Why a run ended, in words: the status line, `edit`'s last line and the MCP summary all say it from this table.
# A new stop rule adds its row. Fields: the settings {threshold}, {max_turns}, {patience}, {budget_seconds},
# {budget_tokens}, and {semantic} and {quality} of the last turn.
STOP_REASONS = {
    "threshold": "both scores reached the threshold {threshold} (semantic {semantic}, quality {quality})",
    "prompt_kept": (
        "the thinker handed the prompt back unchanged although its scores are below the threshold {threshold} "
        "(semantic {semantic}, quality {quality}): it had no better prompt to offer"
    ),
    "no_answer": "the thinker's reply held no refined prompt (no <answer>), so the run stopped, as the reference's does",
    "max_turns": "reached the turn limit of {max_turns}",
    "single_shot": "a single edit, not critiqued (the single-shot baseline)",
    "rewrite": "the thinker rewrote the instruction once from the source image, then one edit, not critiqued (the rewrite baseline)",
    "best_of_n": (
        "{max_turns} edits of the same prompt with different seeds, the best picked by the thinker's scores "
        "(the best-of-{max_turns} baseline)"
    ),
    "patience": "the best score had not risen for {patience} turn(s) (patience {patience}); the best turn so far is kept",
    "budget_seconds": (
        "the run's edit and think seconds reached the budget of {budget_seconds} s; the best turn so far is kept"
    ),
    "budget_tokens": "the thinker's tokens reached the budget of {budget_tokens}; the best turn so far is kept",
    "cancelled": "stopped by you; finished turns are kept",
    "error": "stopped by an error",
}


def stop_message(record: dict[str, Any]) -> str:
    """Why the run in `record` (a trajectory record, or one read back from a run folder) ended, in one phrase."""
    reason = record.get("stop_reason")
    if reason not in STOP_REASONS:
        return reason or "not finished"
    settings = record.get("settings") or {}
    last = (record.get("turns") or [{}])[-1]
    return STOP_REASONS[reason].format(
        threshold=score_text(settings.get("threshold")),
        max_turns=settings.get("max_turns"),
        patience=settings.get("patience"),
        budget_seconds=f"{settings.get('budget_seconds') or 0:g}",
        budget_tokens=f"{settings.get('budget_tokens') or 0:,}",
        semantic=score_text(last.get("semantic")),
        quality=score_text(last.get("quality")),
    )


def _first_turn_prompt(thinker, request: EditRequest, emit: Callable, alive: Callable) -> tuple[str, str | None]:
    """(prompt for turn 1, reasoning) under the `polish` or `critique-source` strategy."""
    source = request.image
    if first_turn_strategy(request) == "polish":
        polish = getattr(thinker, "polish", None)
        if polish is None:
            emit(Notice("This thinker cannot polish instructions; turn 1 uses the instruction as written."))
            return request.instruction, None
        chunks: list[str] = []
        prompt = polish(source, request.instruction, on_token=_token_callback(0, emit, alive, chunks))
        alive()
        return (prompt or "").strip() or request.instruction, "".join(chunks) or None
    critique = thinker.critique(
        source, source, request.instruction, request.instruction, on_token=_token_callback(0, emit, alive)
    )
    alive()
    compute.report_tokens(critique.tokens)
    return critique.refined_prompt or request.instruction, critique.reasoning


def _check_edit(edited: Any) -> tuple[Image.Image, str | None]:
    """An editor's output as an RGB image of its own size (a rotation or a crop changes the shape), plus the
    editor's note if any."""
    image = editor_output(edited)
    return image, edited.info.get("editor_note")


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()).strip(" .") == " ".join(b.lower().split()).strip(" .")


def _save(trajectory: Trajectory, emit: Callable[[Event], None]) -> None:
    if trajectory.run_dir is None:
        return
    started = time.perf_counter()
    try:
        save_run(trajectory, trajectory.run_dir)
    except NotSaved as exc:  # one warning names what the folder keeps; a new one replaces it when that changes
        message = str(exc)
        if message not in trajectory.warnings:
            trajectory.warnings[:] = [w for w in trajectory.warnings if not w.startswith(NOT_SAVED)] + [message]
            emit(Notice(message))
    finally:
        trajectory.save_seconds += time.perf_counter() - started


def _message(exc: BaseException) -> str:
    if isinstance(exc, ThinkEditError):
        return str(exc)
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return "The GPU ran out of memory. Try a smaller image, fewer steps, or --offload model / group / sequential."
    return f"{type(exc).__name__}: {exc}"


def _settings_record(editor, thinker, request: EditRequest) -> dict[str, Any]:
    return {
        "max_turns": turn_limit(thinker, request) if request.baseline else request.max_turns,
        "threshold": request.threshold,
        "first_turn": first_turn_strategy(request) if thinker else request.first_turn,
        "seed": request.seed,
        "seed_per_turn": seeds_of(request),
        "no_answer": request.no_answer,
        "steps": request.steps,
        "guidance": request.guidance,
        "editor_model": getattr(editor, "model", None),
        "thinker_model": getattr(thinker, "model", None) if thinker else None,
        "speed": getattr(getattr(editor, "settings", None), "speed", "default"),  # a test's stand-in has no settings
        "patience": request.patience,
        "budget_seconds": request.budget_seconds,
        "budget_tokens": request.budget_tokens,
        "baseline": request.baseline,
    }
