"""The Think-while-Edit loop: edit, critique, refine, repeat — as a stream of events.

`run_jobs(jobs)` yields the events of one or more runs as they happen (`run(editor, thinker, request)`: of one);
the web app, the CLI, `bench`, `eval` and the tests all consume these events. It knows nothing of Gradio, diffusers or HTTP.

A run is a tree of turns: a job with a `Continuation` goes on from a turn of a saved run (`steer.py` plans it),
with the thinker's refined prompt, a prompt the person wrote, the thinker's answer to the person's feedback, or as a
new stage built on that turn's image. Its turns are added to the same run folder.
"""

from __future__ import annotations

import contextlib
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
from .backend import accepts, is_local, name_of
from .config import DEFAULTS, Settings
from .critique import Critique, score_text
from .drift import Drift, measure
from .errors import Cancelled, ThinkEditError
from .images import editor_output
from .masks import composite, in_words
from .requests import EditRequest, make_request  # noqa: F401 - `loop.make_request`: how callers have built requests
from .schema import merged_record, thinkers_best, trajectory_record
from .store import NOT_SAVED, NotSaved, running, save_run

CANCEL_GRACE_S = 10.0  # after Stop or a timeout, how long a backend may take to reach its next step or token
WATCH_S = 0.1  # how often the watcher looks at the clock while no event arrives


@dataclass
class Feedback:
    """The person's words on a turn, and the thinker's answer: that turn critiqued again with the words, whose refined
    prompt is the next turn's."""

    text: str
    critique: Critique
    seconds: float = 0.0  # what the thinker took to answer it (counted in the think seconds of the turn it opened)


@dataclass
class Turn:
    index: int  # 1-based, unique in the run (its tree and stages together)
    prompt: str
    image: Image.Image
    critique: Critique
    seed: int
    edit_seconds: float
    think_seconds: float
    editor_note: str | None = None
    thinker_note: str | None = None  # what the loop made of a reply it could not follow (no refined prompt)
    parent: int | None = None  # the turn whose prompt or critique this one continues; None for turn 1
    by: str = "instruction"  # who wrote its prompt: "instruction", "thinker" or "person" (schema.BY)
    stage: int = 1  # the stage it belongs to: the source it edited and the instruction it followed
    feedback: Feedback | None = None  # the person's feedback on the parent turn that gave this turn its prompt
    drift: Drift | None = None  # how much changed, and outside the region; None for a turn of another shape
    tokens: compute.Tokens = field(default_factory=compute.Tokens)  # its critique's; (0, 0) without one
    gpu_seconds: float | None = None  # device time held during the turn; None where no GPU was used
    slices: list[compute.Slice] = field(default_factory=list)  # its ZeroGPU calls

    @property
    def rank(self) -> float:
        overall = self.critique.overall
        return -1.0 if overall is None else overall


@dataclass
class Stage:
    """A stage of a run: stage 1 edits the run's source with its instruction; building on a turn starts a stage whose
    source is that turn's image (stacked edits), with an instruction of its own."""

    number: int
    instruction: str
    source_turn: int | None = None  # None: the run's source.png


@dataclass
class Continuation:
    """Where a request picks a saved run up (`steer.plan` makes it): the turn it continues, the stage its turns belong
    to, and its first prompt, or the person's feedback the thinker answers with it."""

    from_turn: int
    stage: Stage
    by: str  # who wrote the first prompt
    prompt: str | None = None  # None: the thinker's answer to `feedback`
    feedback: str | None = None
    turn_prompt: str = ""  # the continued turn's prompt and image: what the thinker critiques again with the feedback
    turn_image: Image.Image | None = None
    first_index: int = 1  # the run's next free turn number when the request began
    new_stage: bool = False  # building on the turn: `stage` is this request's own


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
    region: str | None = None  # the mask in words, as the thinker is told it (`masks.in_words`)
    first_turn_compute: dict[str, Any] | None = None  # what the first-turn rewrite spent (`_first_step`)
    warnings: list[str] = field(default_factory=list)
    run_dir: Path | None = None
    started: float = field(default_factory=time.time)
    seconds: float = 0.0
    save_seconds: float = 0.0  # time spent writing the run folder
    continues: Continuation | None = None  # a continuation of a saved run; None for a run's first request
    stages: list[Stage] = field(default_factory=list)  # the stages this request makes turns in (schema.STAGE)
    picked_turn: int | None = None  # the person's pick and ratings: a record on disk keeps those `/rate` wrote
    ratings: dict[str, str] = field(default_factory=dict)
    claimed: set[int] = field(default_factory=set)  # the turn numbers this request wrote in the run folder
    on_disk: dict[str, Any] | None = None  # the record the folder held at the last save, before this request's turns

    def __post_init__(self) -> None:
        if self.continues is None and not self.stages:  # a run's first request begins stage 1
            self.stages = [Stage(1, self.request.instruction)]

    @property
    def best_turn(self) -> Turn | None:
        """The thinker's best turn (`schema.thinkers_best`): highest geometric mean of semantic and quality in the
        stage of the newest turn; unreadable scores rank lowest; ties go later."""
        rows = [
            {"index": t.index, "stage": t.stage, "semantic": t.critique.semantic, "quality": t.critique.quality}
            for t in self.turns
        ]
        best = thinkers_best(rows)
        return next((turn for turn in self.turns if turn.index == best), None)

    def record(self) -> dict[str, Any]:
        """The run's record: this request's turns merged into what the run folder held (a continuation's run holds
        more turns than its own), or this request's alone when nothing was saved."""
        return merged_record(self.on_disk, trajectory_record(self), self.continues is None)


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
    continues: Continuation | None = None  # go on from a turn of the run saved in `run_dir`


def run(
    editor,
    thinker,
    request: EditRequest,
    *,
    cancel: threading.Event | None = None,
    run_dir: Path | None = None,
    continues: Continuation | None = None,
    edit_timeout: float = DEFAULTS.edit_timeout,
    think_timeout: float = DEFAULTS.thinker_timeout,
) -> Iterator[Event]:
    """Run Think-while-Edit on a worker thread and yield its events live; the last one is always `RunFinished`."""
    jobs = [Job(editor, thinker, request, run_dir, continues)]
    for _, event in run_jobs(jobs, cancel=cancel, edit_timeout=edit_timeout, think_timeout=think_timeout):
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
        self.trajectory = new_trajectory(job.editor, job.thinker, job.request, job.run_dir, job.continues)
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


def new_trajectory(
    editor, thinker, request: EditRequest, run_dir: Path | None = None, continues: Continuation | None = None
) -> Trajectory:
    stages = [continues.stage] if continues is not None and continues.new_stage else []
    return Trajectory(
        request=request,
        editor=name_of(editor),
        thinker=name_of(thinker) if thinker is not None else "none",
        settings=_settings_record(editor, thinker, request),
        region=in_words(request.mask) if request.mask is not None else None,
        run_dir=run_dir,
        continues=continues,
        stages=stages,
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
    always `RunFinished`. A run's first request marks its folder as running (`store.running`) until it ends. A
    baseline request (`request.baseline`) runs what the loop is measured against.
    """
    first = trajectory.run_dir is not None and trajectory.continues is None
    with running(trajectory.run_dir) if first else contextlib.nullcontext():
        try:
            with runtime.gpu_turn(editor, thinker, waiting=alive), compute.metering() as meter:
                spending = Spending(meter, holds_gpu(editor, thinker))
                alive()
                told = _start(request, thinker, trajectory, emit)
                opening = _opening(thinker, request, trajectory, spending, told, emit, alive)
                if opening is not None:
                    _turns(editor, thinker, request, trajectory, opening, spending, told, emit=emit, alive=alive)
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


@dataclass
class _Opening:
    """How a request's first turn begins: its prompt, who wrote it, the turn it continues and the feedback behind it."""

    prompt: str
    by: str
    parent: int | None = None
    feedback: Feedback | None = None
    since: tuple[int, int] | None = None  # the meter's mark turn 1's compute counts from (the feedback's answer)


@dataclass
class Spending:
    """What a request's compute is measured with: the run's meter, and whether the run holds a local GPU."""

    meter: compute.Meter
    held: bool


def _opening(
    thinker,
    request: EditRequest,
    trajectory: Trajectory,
    spending: Spending,
    told: dict[str, Any],
    emit: Callable,
    alive: Callable,
) -> _Opening | None:
    """The first turn's prompt: the instruction (or what polish / critique-source made of it), or where a continuation
    picks up; None when the thinker's answer to the person's feedback held no prompt to go on with. `told`: what the
    thinker is told of the masked region (`_start`)."""
    continues = trajectory.continues
    if continues is not None:
        if continues.feedback is None:
            return _Opening(continues.prompt, continues.by, continues.from_turn)
        return _answer_feedback(thinker, request, trajectory, spending.meter.mark(), told, emit, alive)
    if thinker is None or first_turn_strategy(request) == "none":
        return _Opening(request.instruction, "instruction")
    prompt = _first_step(thinker, request, trajectory, spending, told, emit, alive)
    return _Opening(prompt, "thinker" if prompt != request.instruction else "instruction")


def _first_step(
    thinker, request: EditRequest, trajectory: Trajectory, spending: Spending, told: dict[str, Any], emit, alive
) -> str:
    """The first-turn rewrite (polish or critique-source): turn 1's prompt, its reasoning and its compute recorded."""
    emit(ThinkingStarted(0))
    mark, started = spending.meter.mark(), time.perf_counter()
    prompt, reasoning = _first_turn_prompt(thinker, request, emit, alive, told)
    seconds = time.perf_counter() - started
    slices, tokens = spending.meter.since(mark)
    trajectory.first_turn_prompt, trajectory.first_turn_reasoning = prompt, reasoning
    gpu = seconds if spending.held else sum(s.used for s in slices) if slices else None
    trajectory.first_turn_compute = {
        "think_seconds": round(seconds, 4),
        "gpu_seconds": None if gpu is None else round(gpu, 4),
        "tokens": (tokens or compute.Tokens()).record(),
        "zerogpu": compute.zerogpu_record(slices),
    }
    return prompt


def _answer_feedback(
    thinker,
    request: EditRequest,
    trajectory: Trajectory,
    mark: tuple[int, int],
    told: dict[str, Any],
    emit: Callable,
    alive: Callable,
) -> _Opening | None:
    """The thinker critiques the continued turn again with the person's feedback; its refined prompt opens the
    request (recorded with the feedback on the new turn, whose compute counts what it took: from `mark` on)."""
    continues = trajectory.continues
    emit(ThinkingStarted(continues.from_turn))
    started = time.perf_counter()
    critique = thinker.critique(
        request.image,
        continues.turn_image,
        request.instruction,
        continues.turn_prompt,
        on_token=_token_callback(continues.from_turn, emit, alive),
        feedback=continues.feedback,
        **told,
    )
    alive()
    compute.report_tokens(critique.tokens)
    if critique.refined_prompt is None:
        trajectory.stop_reason = "no_answer"
        emit(
            Notice(f"The thinker's answer to your feedback on turn {continues.from_turn} held no prompt to go on with.")
        )
        return None
    answer = Feedback(continues.feedback, critique, time.perf_counter() - started)
    return _Opening(critique.refined_prompt, "thinker", continues.from_turn, answer, mark)


def _turns(
    editor,
    thinker,
    request: EditRequest,
    trajectory: Trajectory,
    opening: _Opening,
    spending: Spending,
    told: dict[str, Any],
    *,
    emit: Callable[[Event], None],
    alive: Callable[[], None],
) -> None:
    """Edit, critique and refine, one turn after another, until a stop rule says so (`_stop_reason`, `_early_stop`);
    each turn measured (`_measure`). With a mask the thinker is `told` the region (`_start`)."""
    prompt, by, parent, feedback = opening.prompt, opening.by, opening.parent, opening.feedback
    stage = trajectory.continues.stage if trajectory.continues else trajectory.stages[0]
    max_turns = turn_limit(thinker, request)
    critic = thinker if request.baseline != "rewrite" else None  # the rewrite baseline's edit is not critiqued
    mark = opening.since or spending.meter.mark()
    for _ in range(max_turns):
        alive()
        index = max([t.index for t in trajectory.turns] or [_first_index(trajectory) - 1]) + 1  # the save may renumber
        turn = _edit_and_critique(editor, critic, request, index, prompt, told, emit, alive)
        turn.parent, turn.by, turn.stage, turn.feedback = parent, by, stage.number, feedback
        if feedback is not None:  # the thinker's answer to the feedback was thought for this turn
            turn.think_seconds += feedback.seconds
        _measure(turn, *spending.meter.since(mark), held=spending.held, critiqued=critic is not None)
        mark = spending.meter.mark()
        if critic is not None and turn.critique.refined_prompt is None and request.baseline is None:
            turn.thinker_note = _no_answer_note(request, index, len(trajectory.turns) + 1 == max_turns)
            emit(Notice(f"Turn {index}: {turn.thinker_note}"))
        trajectory.turns.append(turn)
        _save(trajectory, emit)  # gives the turn its number in the run folder
        emit(TurnFinished(turn))
        trajectory.stop_reason = _stop_reason(trajectory, thinker is None, max_turns) or _early_stop(trajectory, emit)
        if trajectory.stop_reason is not None:
            break
        parent, feedback = turn.index, None
        if turn.critique.refined_prompt and request.baseline is None:  # best-of-N edits the same prompt every time
            prompt, by = turn.critique.refined_prompt, "thinker"


def _edit_and_critique(
    editor, critic, request: EditRequest, index: int, prompt: str, told: dict[str, Any], emit, alive
) -> Turn:
    """Turn `index`: the edit of the source with `prompt` (fenced in by the mask, `fence`), then (with a `critic`) its
    critique, and how much it changed (its drift)."""
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
        **_mask_for(editor, request),
    )
    alive()
    edit_seconds = time.perf_counter() - started
    edited, note = _check_edit(edited)
    edited, region = fence(source, edited, request.mask)
    if note:
        emit(Notice(f"Turn {index}: {note}"))
    critique, think_seconds = Critique(None, None, "", None, ""), 0.0
    if critic is not None:
        emit(ThinkingStarted(index))
        started = time.perf_counter()
        tokens = _token_callback(index, emit, alive)
        critique = critic.critique(source, edited, request.instruction, prompt, on_token=tokens, **told)
        alive()
        think_seconds = time.perf_counter() - started
    turn = Turn(index, prompt, edited, critique, seed, edit_seconds, think_seconds, note)
    turn.drift = measure(source, edited, region)
    return turn


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
    else None) and tokens (its critique's, and any a backend reported apart during the turn; none spent without a
    critique)."""
    turn.slices = slices
    if held:
        turn.gpu_seconds = turn.edit_seconds + turn.think_seconds
    elif slices:
        turn.gpu_seconds = sum(s.used for s in slices)
    turn.tokens = turn.critique.tokens if critiqued else compute.NO_TOKENS
    if reported is not None:
        turn.tokens = turn.tokens + reported


def first_turn_strategy(request: EditRequest) -> str:
    """How turn 1's prompt is made: the request's strategy; the rewrite baseline always polishes."""
    return "polish" if request.baseline == "rewrite" else request.first_turn


def turn_limit(thinker, request: EditRequest) -> int:
    """How many edits the run may make: one without a thinker or for the rewrite baseline, else `max_turns`."""
    return 1 if thinker is None or request.baseline == "rewrite" else request.max_turns


def _first_index(trajectory: Trajectory) -> int:
    return trajectory.continues.first_index if trajectory.continues else 1


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
        return "best_of_n" if len(trajectory.turns) == max_turns else None
    if critique.satisfied(trajectory.request.threshold):
        return "threshold"
    if critique.refined_prompt is None and trajectory.request.no_answer == "stop":
        return "no_answer"
    if critique.refined_prompt is not None and _same(critique.refined_prompt, turn.prompt):
        return "prompt_kept"
    if trajectory.request.step:
        return "step"
    return "max_turns" if len(trajectory.turns) == max_turns else None


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
    """How many of this request's turns have passed since the best score last rose (0: the newest turn raised it)."""
    best, since = None, 0
    for turn in turns:
        if best is None or turn.rank > best:
            best, since = turn.rank, 0
        else:
            since += 1
    return since


def spent(trajectory: Trajectory) -> tuple[float, compute.Tokens]:
    """What this request has spent so far: edit and think seconds, and the thinker's tokens (the first-turn rewrite's
    included)."""
    first = trajectory.first_turn_compute or {}
    seconds = first.get("think_seconds", 0.0) + sum(t.edit_seconds + t.think_seconds for t in trajectory.turns)
    tokens = compute.Tokens.read(first.get("tokens")) if first else compute.NO_TOKENS
    for turn in trajectory.turns:
        tokens = tokens + turn.tokens
    return seconds, tokens


def _no_answer_note(request: EditRequest, index: int, last: bool) -> str:
    """What happened when the thinker's reply to turn `index` (the request's `last` one) held no refined prompt
    (no `<answer>`, or an empty one)."""
    note = "the thinker's reply held no refined prompt (no <answer>)"
    if request.no_answer == "stop":
        return note + "; the run stops here, as the reference's loop does"
    if not last:
        return note + f"; turn {index + 1} edits with the same prompt again (no-answer rule: repeat)"
    return note


# Why a run ended, in words: the status line, `edit`'s last line and the MCP summary all say it from this table.
# A new stop rule adds its row. Fields: the settings {threshold}, {max_turns}, {patience}, {budget_seconds},
# {budget_tokens}, and {turn}, {semantic} and {quality} of the last turn.
STOP_REASONS = {
    "threshold": "both scores reached the threshold {threshold} (semantic {semantic}, quality {quality})",
    "prompt_kept": (
        "the thinker handed the prompt back unchanged although its scores are below the threshold {threshold} "
        "(semantic {semantic}, quality {quality}): it had no better prompt to offer"
    ),
    "no_answer": "the thinker's reply held no refined prompt (no <answer>), so the run stopped, as the reference's does",
    "max_turns": "reached the turn limit of {max_turns}",
    "step": (
        "paused after the critique of turn {turn}, as step mode asks: continue it (the refined prompt or yours), "
        "give feedback, build on it, or accept it"
    ),
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
        turn=last.get("index"),
        semantic=score_text(last.get("semantic")),
        quality=score_text(last.get("quality")),
    )


def _first_turn_prompt(
    thinker, request: EditRequest, emit: Callable, alive: Callable, told: dict[str, Any]
) -> tuple[str, str | None]:
    """(prompt for turn 1, reasoning) under the `polish` or `critique-source` strategy (`told`: the region, for a
    thinker that takes it)."""
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
        source, source, request.instruction, request.instruction, on_token=_token_callback(0, emit, alive), **told
    )
    alive()
    compute.report_tokens(critique.tokens)
    return critique.refined_prompt or request.instruction, critique.reasoning


def _start(request: EditRequest, thinker, trajectory: Trajectory, emit: Callable[[Event], None]) -> dict[str, Any]:
    """Tell what checking the request changed (a mask stretched or dropped); the arguments that tell the thinker the
    masked region (in words, and as the mask to one that measures pixels), for a thinker that takes them (one that
    does not is told nothing, and the person is told so)."""
    for note in request.notes:
        emit(Notice(note))
    if trajectory.region is None or thinker is None:
        return {}
    if accepts(thinker.critique, "region"):  # one that measures pixels (the offline critic) takes the mask too
        return {"region": trajectory.region} | ({"mask": request.mask} if accepts(thinker.critique, "mask") else {})
    emit(
        Notice(
            f"The thinker {trajectory.thinker} cannot be told the masked region (its critique takes no region): it "
            "scores the whole image. The mask still keeps everything outside it as it was."
        )
    )
    return {}


def _mask_for(editor, request: EditRequest) -> dict[str, Any]:
    """`mask=` for an editor that takes one (it edits inside it: the classic editor, native inpainting); every other
    editor is fenced in by `fence` alone."""
    return {"mask": request.mask} if request.mask is not None and accepts(editor.edit, "mask") else {}


def fence(source: Image.Image, edited: Image.Image, mask: Image.Image | None) -> tuple[Image.Image, Image.Image | None]:
    """(the turn's image, the region its drift is measured against). With a mask: the edit composited onto the
    source outside it, soft edge inside it; a result of another shape is refused, since a rotation, crop or resize
    cannot be fenced in. Without one: the edit as it is, and the pixels the editor selected when it reports them
    (`info["selection"]`, an L image of its size)."""
    selection = edited.info.pop("selection", None)
    if mask is None:
        return edited, selection if isinstance(selection, Image.Image) and selection.size == edited.size else None
    if edited.size != source.size:
        raise ThinkEditError(
            f"The editor returned a {edited.width}×{edited.height} image for a {source.width}×{source.height} "
            "source. With a mask the result keeps the source's frame: a rotation, crop or resize cannot be fenced "
            "in. Remove the mask to change the image's shape."
        )
    return composite(source, edited, mask), mask


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
    if runtime.is_out_of_memory(exc):
        return str(runtime.out_of_memory())
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
