"""What the Studio, Compare and History do: validate, build backends from the registry, run the loop, stream views.

A run handler hands its runs to `loop.run_jobs` (one worker thread per run) and turns the events into page
updates through `RunView`. Its parameters and the page's inputs are made from one table of fields (`EDIT_FIELDS`,
`COMPARE_FIELDS`; `form.py` says how), and it answers with `{component: value}` updates of the components it was
given (`Viewer`, `Comparison`). No model logic lives here; refusals and warnings go through `messages`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
from gradio.components.image_editor import EditorData
from PIL import Image

from .. import admission, loop, runtime, steer
from ..compute import Prices
from ..config import DEFAULTS, Settings
from ..editors import EDITORS
from ..errors import BadInput, ThinkEditError
from ..images import base64_bytes, fit_within, load_image
from ..masks import BLACK, from_layers, joined
from ..registry import build_backend
from ..requests import EditRequest, make_request, number
from ..store import SavedRun, holds_run, import_run, load_run, new_run_dir, zip_run
from .choices import CHOICES, user_settings
from .form import REQUIRED, handler
from .messages import refused, warn
from .paths import confined
from .received import MAX_UPLOAD_BYTES, received_file
from .session import Session, stopped_while_queued
from .view import RunView, remove_folder

REFRESH_S = 0.15  # at most this often a step or token event updates the page
COMPARE_MODES = (
    "single-shot vs Think-while-Edit",
    "editor A vs editor B",
    "thinker A vs thinker B",
    "rewrite once vs Think-while-Edit",
    "best-of-N vs Think-while-Edit",
)
SINGLE_SHOT = "single-shot (turn 1, scored by the thinker)"
REWRITE_ONCE = "rewrite once (the thinker's polish, then turn 1, scored by the thinker)"
WAITING = "Waiting for the GPU (one run at a time)…"

# /edit's parameters and their defaults, in the order gradio_client callers pass them: a new one goes last.
EDIT_FIELDS = {
    "image": REQUIRED,
    "instruction": REQUIRED,
    "editor": DEFAULTS.editor,
    "thinker": DEFAULTS.thinker,
    "max_turns": DEFAULTS.max_turns,
    "threshold": DEFAULTS.threshold,
    "first_turn": DEFAULTS.first_turn,
    "seed": DEFAULTS.seed,
    "randomize": False,
    "steps": None,  # the editor's default
    "guidance": None,
    "editor_model": None,  # None: the server's (and in public mode always)
    "editor_url": None,
    "thinker_model": None,
    "thinker_url": None,
    "editor_key": None,
    "thinker_key": None,
    "speed": None,
    "seed_per_turn": None,  # None: the server's (THINKEDIT_SEED_PER_TURN)
    "step": False,  # step mode: pause after every critique
    "mask": None,  # a mask image: white where the edit may change (None: no mask)
    "painted": None,  # what a person painted in the page's painter (API callers send `mask` instead)
    "patience": DEFAULTS.patience,  # None: no early stop
    "budget_seconds": DEFAULTS.budget_seconds,  # None: no budget
    "budget_tokens": DEFAULTS.budget_tokens,
}
# /continue's: go on from a turn of one of the caller's runs (`steer.plan` says how each field is used).
CONTINUE_FIELDS = {
    "run": REQUIRED,  # the run's id (its folder's name, the trajectory's run_dir), or outside public mode its folder
    "from_turn": REQUIRED,
    "prompt": None,  # the next prompt in the person's words; none of prompt, feedback, build_on: the refined prompt
    "feedback": None,  # the person's words on the turn: the thinker answers them with the next prompt
    "build_on": False,  # the turn's image becomes the source of a new stage, with `instruction`
    "instruction": None,
    "max_turns": 1,  # new turns
    "step": False,
}
# /rate's: the person's verdict on a turn of one of their runs.
RATE_FIELDS = {"run": REQUIRED, "turn": REQUIRED, "verdict": REQUIRED}  # verdict: pick, up, down or clear
# /compare's, the same way.
COMPARE_FIELDS = {
    "image": REQUIRED,
    "instruction": REQUIRED,
    "mode": COMPARE_MODES[0],
    "editor_a": DEFAULTS.editor,
    "editor_b": DEFAULTS.editor,
    "thinker_a": DEFAULTS.thinker,
    "thinker_b": DEFAULTS.thinker,
    "max_turns": DEFAULTS.max_turns,
    "threshold": DEFAULTS.threshold,
    "seed": DEFAULTS.seed,
    "mask": None,
    "painted": None,
}
PAINT_SIDE = 1024  # the painter shows the image at most this large; the mask is stretched back to the image's size
NOTHING_SHOWN = "Run an edit (or open a run from History) to see what changed in its turns."


@dataclass
class Viewer:
    """The Studio's components that show one run (History reopens runs into them). The fields' order is the order
    of the outputs of /edit, /history_open and /open_run (the last two add History's gallery after them)."""

    gallery: gr.Gallery
    progress: gr.HTML
    reasoning: gr.Textbox
    refined: gr.Textbox
    table: gr.Dataframe
    slider: gr.ImageSlider
    status: gr.Textbox
    download: gr.File
    trajectory: gr.JSON


@dataclass
class Changes:
    """The Studio's "what changed" view. Not an output of /edit, whose outputs are documented: it follows a run
    (`show_best`), a click on a turn, and `/changes`."""

    picture: gr.Image
    note: gr.Textbox

    def show_best(self, state: gr.State) -> dict:
        """The event that shows what changed in the best turn of the run the Studio shows (after a run, a reopen)."""
        return dict(fn=best_changes, inputs=state, outputs=[self.picture, self.note], api_visibility="private")


@dataclass
class Comparison:
    """Compare's components, in the order of /compare's outputs (History's gallery comes after them)."""

    gallery_a: gr.Gallery
    gallery_b: gr.Gallery
    status_a: gr.Textbox
    status_b: gr.Textbox
    slider: gr.ImageSlider
    summary: gr.Dataframe
    trajectories: gr.JSON


def editor_defaults(name: str, speed: str | None = None) -> tuple[int | None, float | None]:
    spec = EDITORS.get(name)
    return spec.defaults(speed or "default") if spec else (None, None)


# -- building a run ----------------------------------------------------------------------------------


def image_input(payload: Any, what: str = "image") -> Any:
    """The uploaded image as something `load_image` reads (the event skips Gradio's preprocessing so
    that a non-image file or a huge image gets our message rather than a decoder traceback).

    A request names its image as Gradio's file payload, a path or a data URL; a path is opened only when it is a
    file Gradio received for this app (`received_file`), never any other file on the server. A PIL image comes
    only from Python callers in this process, bytes from a data URL read before."""
    if payload is None or isinstance(payload, (Image.Image, bytes)):
        return payload
    if isinstance(payload, dict):
        url, path = payload.get("url"), payload.get("path")
        if not path and isinstance(url, str) and url.startswith("data:"):
            return data_url_bytes(url, what)
        return received_file(path, what) if path else None
    if isinstance(payload, str) and payload.startswith("data:"):
        return data_url_bytes(payload, what)
    if isinstance(payload, (str, Path)):
        return received_file(payload, what)
    raise BadInput(f"The {what} must be an uploaded file or a data URL, not {type(payload).__name__}.")


def mask_input(mask: Any, painted: Any, painter: gr.ImageEditor | None = None) -> Any:
    """The mask of a request, as something `make_request` reads, or None for none: the mask image sent (like the
    image: a file payload, a path Gradio received, a data URL), what was painted in the page's painter, or both
    together (either may change)."""
    given, strokes = image_input(mask, "mask"), painted_mask(painted, painter)
    if given is None or strokes is None:
        return strokes if given is None else given
    return joined(given, strokes)


def painted_mask(payload: Any, painter: gr.ImageEditor | None) -> Image.Image | None:
    """What a person painted in the page's painter (`gr.ImageEditor`): its layers, which the component keeps until
    they are read (`painter`), or layers sent as files; painted pixels may change. Nothing painted: None."""
    if not isinstance(payload, dict):
        return None
    if payload.get("id"):
        layers = (painter.preprocess(EditorData(id=payload["id"])) or {}).get("layers") if painter else None
        return from_layers(layers or [])
    files = [image_input(layer, "mask") for layer in payload.get("layers") or [] if layer]
    return from_layers([load_image(file, background=BLACK) for file in files])


def mask_canvas(payload: Any) -> dict | None:
    """What the painter shows when the image changes: the image (at most `PAINT_SIDE` a side) with nothing painted
    on it; nothing when the image is cleared or cannot be read (the run says why)."""
    try:
        image = load_image(image_input(payload)) if payload else None
    except BadInput:
        image = None
    return None if image is None else {"background": fit_within(image, PAINT_SIDE), "layers": [], "composite": None}


def data_url_bytes(url: str, what: str = "image") -> bytes:
    """A data URL's bytes, refused unread when it is larger than an upload may be."""
    if len(url) > MAX_UPLOAD_BYTES * 4 // 3 + 1024:  # base64 takes 4 characters for 3 bytes
        raise BadInput(
            f"The {what} sent as a data URL is about {len(url) * 3 // 4 / 2**20:.0f} MB; "
            f"an upload may be at most {MAX_UPLOAD_BYTES // 2**20} MB."
        )
    return base64_bytes(url)


def job(settings: Settings, request: EditRequest) -> loop.Job:
    """The run of `request` with the backends `settings` chose, saved in a new folder under the runs folder."""
    editor, thinker = build_backend("editor", settings), build_backend("thinker", settings)
    return loop.Job(editor, thinker, request, new_run_dir(settings.runs_dir))


def follow(
    session: Session,
    which: str,
    jobs: list[loop.Job],
    views: list[RunView],
    labels: list[str],
    settings: Settings,
    queued_at: float | None = None,
) -> Iterator[None]:
    """Run `jobs` (one per view) and feed each view its events; yield whenever the page should be updated.

    Runs on the one local GPU take turns; offline and remote runs go at the same time. Stop (`which`'s
    switch) and leaving early (the page closed) end them between steps; Stop pressed while these runs waited in the
    queue (since `queued_at`) ends them before their first step. Finished runs go into History.
    """
    cancel = session.cancel[which] = threading.Event()
    if stopped_while_queued(session, which, queued_at):
        cancel.set()
    for view, each in zip(views, jobs, strict=True):
        if runtime.takes_gpu_turn(each.editor, each.thinker):
            view.phase = WAITING
    last = 0.0
    session.running += 1  # its temp files are in use while it runs, however long
    try:
        for side, event in loop.run_jobs(
            jobs, cancel=cancel, edit_timeout=settings.edit_timeout, think_timeout=settings.thinker_timeout
        ):
            views[side].apply(event)
            if isinstance(event, loop.Notice):
                warn(labels[side] + views[side].for_visitor(event.message))
            if isinstance(event, (loop.EditStep, loop.Reasoning)) and time.monotonic() - last < REFRESH_S:
                continue  # steps and tokens arrive fast: show them at most every REFRESH_S
            last = time.monotonic()
            yield
    finally:
        session.running -= 1
    for position, (view, label) in enumerate(zip(views, labels, strict=True)):
        if view.record and view.record.get("error"):
            warn(label + view.shown_record["error"])
        session.remember(view, side="AB"[position] if which == "compare" else None)


def zipped(view: RunView) -> str | None:
    """The run as a zip in a temp folder (Gradio serves temp files; the runs folder itself stays private)."""
    run_dir = view.run_dir
    if not holds_run(run_dir):
        return None
    return str(zip_run(run_dir, view.folder / f"{run_dir.name}.zip"))


def viewer_update(viewer: Viewer, view: RunView, final: bool, turns_changed: bool = True) -> dict:
    """What `viewer` shows of `view` now. Images are sent again only when a turn was added (re-sending rewrites
    Gradio's cached files); the slider, the zip and the record only when the run is over."""
    update = {
        viewer.progress: view.progress_html(),
        viewer.reasoning: view.reasoning,
        viewer.refined: view.refined,
        viewer.status: view.status(),
    }
    if turns_changed or final:
        update |= {viewer.gallery: view.gallery(), viewer.table: view.table()}
    if final:
        update |= {viewer.slider: view.slider(), viewer.download: zipped(view), viewer.trajectory: view.shown_record}
    return update


# -- the handlers ------------------------------------------------------------------------------------


def loop_rules(settings: Settings, seed_per_turn: str | None = None) -> dict[str, str]:
    """The loop's rules a request takes from the server's settings; the Studio may choose its seeds."""
    return {"seed_per_turn": seed_per_turn or settings.seed_per_turn, "no_answer": settings.no_answer}


def admitting(settings: Settings, run: Callable, runs: int) -> Callable:
    """A handler's body `run`, admitted by the memory budget (`admission`): the image is found and its size read
    from its header, never decoded, and `runs` runs of it hold their memory until the last update; when they do
    not fit the person is told to wait or to send a smaller image, and nobody else is affected."""

    def admitted_run(form: SimpleNamespace, session: Session | None) -> Iterator[dict]:
        with contextlib.ExitStack() as holding:
            try:
                form.image = image_input(form.image)
                holding.enter_context(admission.admitted(settings, form.image, runs))
            except ThinkEditError as exc:
                raise refused(exc, settings.public) from None
            yield from run(form, session)

    admitted_run.__name__ = run.__name__
    return admitted_run


def make_edit(
    settings: Settings, viewer: Viewer, history: gr.Gallery, painter: gr.ImageEditor | None = None
) -> Callable:
    """The Studio's run handler for these server settings: it fills `viewer`, and at the end `history`; `painter`
    holds the mask a person painted on the page."""

    def edit(form: SimpleNamespace, session: Session | None) -> Iterator[dict]:
        session = session if session is not None else Session()
        try:
            mask = mask_input(form.mask, form.painted, painter)
            request = make_request(
                form.image,  # found by `admitting`
                form.instruction,
                max_turns=form.max_turns,
                threshold=form.threshold,
                first_turn=form.first_turn,
                seed=random.randrange(2**31) if form.randomize is True else form.seed,
                steps=form.steps,
                guidance=form.guidance,
                step=form.step,
                mask=mask,
                patience=form.patience,
                budget_seconds=form.budget_seconds,
                budget_tokens=form.budget_tokens,
                **loop_rules(settings, form.seed_per_turn),
            )
            choices = {name: getattr(form, name) for name in (*CHOICES, "speed")}
            run_settings = user_settings(settings, form.editor, form.thinker, choices)
            jobs = [job(run_settings, request)]
        except ThinkEditError as exc:
            raise refused(exc, settings.public) from None
        (view,) = run_views(jobs, session, settings)
        session.showing = view
        yield viewer_update(viewer, view, final=False)
        for _ in follow(session, "studio", jobs, [view], [""], run_settings, form.queued_at):
            yield viewer_update(viewer, view, final=False, turns_changed=view.turns_to_send())
        yield viewer_update(viewer, view, final=True) | {history: session.gallery()}

    doc = "Edit the image with Think-while-Edit and stream the page's updates; the last carries the trajectory."
    return handler(EDIT_FIELDS, admitting(settings, edit, runs=1), doc)


def own_run(run: Any, session: Session, settings: Settings) -> Path:
    """The folder of the run a request names: one of the session's runs (by id or folder), or, outside public mode,
    any run in the runs folder. A visitor of a public page goes on from their own runs only."""
    if not isinstance(run, str) or not run.strip():
        raise refused("Name the run to go on from: its id, the run_dir of its trajectory.", settings.public)
    run = run.strip()
    owned = session.owns(run) if not settings.public or Path(run).name == run else None  # a public page: ids only
    if owned is not None:
        return owned
    if settings.public:
        raise refused("That run is not one of this session's runs; here you go on from your own runs only.", True)
    return confined(run, settings)


def in_runs_folder(saved, settings: Settings) -> Path:
    """Where a continuation of `saved` writes: its own folder in the runs folder, or for a run opened from a zip
    (unpacked in the session's temp folder), a copy of it made there."""
    runs = Path(settings.runs_dir).resolve()
    return saved.path if saved.path.resolve().is_relative_to(runs) else import_run(saved, runs)


def make_continue(settings: Settings, viewer: Viewer, history: gr.Gallery) -> Callable:
    """The handler of /continue and the Studio's steering buttons: new turns from a turn of one of the caller's runs,
    streamed into `viewer` like a run's (the run's earlier turns shown with them)."""

    def go_on(form: SimpleNamespace, session: Session | None) -> Iterator[dict]:
        session = session if session is not None else Session()
        with contextlib.ExitStack() as holding:
            try:
                saved = steer.open_run(own_run(form.run, session, settings), unpack_to=session.folder)
                run_settings = steer.run_settings(settings, saved)
                editor, thinker = build_backend("editor", run_settings), build_backend("thinker", run_settings)
                options = {key: getattr(form, key) for key in ("prompt", "feedback", "build_on", "instruction", "step")}
                request, continuation = steer.plan(
                    saved, form.from_turn, max_turns=form.max_turns, thinker=thinker, **options
                )
                holding.enter_context(admission.admitted(settings, request.image))  # the memory budget, as /edit's
                run_dir = in_runs_folder(saved, settings)
                saved = saved if run_dir == saved.path else load_run(run_dir)
            except ThinkEditError as exc:
                raise refused(exc, settings.public) from None
            jobs = [loop.Job(editor, thinker, request, saved.path, continuation)]
            view = RunView.continuing(
                saved, continuation.from_turn, session.view_folder(), settings.public, Prices.of(settings)
            )
            session.showing = view
            yield viewer_update(viewer, view, final=False)
            for _ in follow(session, "studio", jobs, [view], [""], run_settings, form.queued_at):
                yield viewer_update(viewer, view, final=False, turns_changed=view.turns_to_send())
            yield viewer_update(viewer, view, final=True) | {history: session.gallery()}

    doc = "Go on from a turn of one of your runs (a prompt, feedback, or a new stage on its image); streams like /edit."
    return handler(CONTINUE_FIELDS, go_on, doc)


def make_rate(settings: Settings, viewer: Viewer, history: gr.Gallery) -> Callable:
    """The handler of /rate and the Studio's Accept and 👍 / 👎: the person's verdict on a turn of one of their runs;
    the run is shown again with it (★ and the slider on their pick, the zip with it)."""

    def rate(form: SimpleNamespace, session: Session | None) -> Iterator[dict]:
        session = session if session is not None else Session()
        try:
            path = own_run(form.run, session, settings)
            steer.rate(path, form.turn, form.verdict)
        except ThinkEditError as exc:
            raise refused(exc, settings.public) from None
        view = saved_view(path, session, settings)
        session.remember(view)
        session.showing = view
        yield viewer_update(viewer, view, final=True) | {history: session.gallery()}

    doc = "Record your verdict on a turn of one of your runs: pick (your best), up, down, or clear."
    return handler(RATE_FIELDS, rate, doc)


def open_side(trajectories: Any, session: Session | None, *, side: str, settings: Settings, viewer: Viewer) -> dict:
    """One side of a comparison opened in the Studio's viewer, to go on from its turns there."""
    session = session or Session()
    record = trajectories.get(side) if isinstance(trajectories, dict) else None
    if not isinstance(record, dict) or not record.get("run_dir"):
        raise refused(f"Side {side.upper()} has no saved run yet: compare first.", settings.public)
    view = saved_view(own_run(record["run_dir"], session, settings), session, settings)
    session.showing = view
    return viewer_update(viewer, view, final=True)


def compare_sides(
    mode: str, editor_a: str, editor_b: str, thinker_a: str, thinker_b: str, max_turns: int = DEFAULTS.max_turns
) -> list[tuple]:
    """[(label, editor, thinker, side)] for the two sides of a comparison; `side` says how a side's request differs
    from the loop's (`side_request`). A baseline side is still scored by the same thinker, so the summary compares
    like with like; best-of-N makes as many edits as the loop may (N = max turns), so their compute is equal."""
    loop_side = ("B · Think-while-Edit", editor_a, thinker_a, None)
    baselines = {
        COMPARE_MODES[0]: (f"A · {SINGLE_SHOT}", "single"),
        COMPARE_MODES[3]: (f"A · {REWRITE_ONCE}", "rewrite"),
        COMPARE_MODES[4]: (f"A · best-of-{max_turns} (seeds differ, the thinker picks)", "best-of-n"),
    }
    if mode in baselines:
        label, side = baselines[mode]
        return [(label, editor_a, thinker_a, side), loop_side]
    if mode == COMPARE_MODES[1]:
        return [
            (f"A · {editor_a} + {thinker_a}", editor_a, thinker_a, None),
            (f"B · {editor_b} + {thinker_a}", editor_b, thinker_a, None),
        ]
    if mode == COMPARE_MODES[2]:
        return [
            (f"A · {editor_a} + {thinker_a}", editor_a, thinker_a, None),
            (f"B · {editor_a} + {thinker_b}", editor_a, thinker_b, None),
        ]
    raise BadInput(f"Unknown comparison '{mode}'; use one of: {', '.join(COMPARE_MODES)}.")


def side_request(request: EditRequest, side: str | None) -> EditRequest:
    """One side's request: the loop's (None); turn 1 only ("single"); the thinker's polish, then turn 1 ("rewrite");
    or the same prompt with max-turns seeds ("best-of-n")."""
    if side == "single":
        return dataclasses.replace(request, max_turns=1)
    if side == "rewrite":
        return dataclasses.replace(request, max_turns=1, first_turn="polish")
    if side == "best-of-n":
        return dataclasses.replace(request, baseline="best-of-n")
    return request


def make_compare(
    settings: Settings, comparison: Comparison, history: gr.Gallery, painter: gr.ImageEditor | None = None
) -> Callable:
    """The Compare tab's handler for these server settings: it fills `comparison`, and at the end `history`."""

    def compare(form: SimpleNamespace, session: Session | None) -> Iterator[dict]:
        session = session if session is not None else Session()
        try:
            mask = mask_input(form.mask, form.painted, painter)
            request = make_request(
                form.image,  # found by `admitting`
                form.instruction,
                max_turns=form.max_turns,
                threshold=form.threshold,
                seed=form.seed,
                mask=mask,
                **loop_rules(settings),
            )
            sides = compare_sides(
                form.mode, form.editor_a, form.editor_b, form.thinker_a, form.thinker_b, request.max_turns
            )
            jobs = [
                job(user_settings(settings, editor, thinker, {}), side_request(request, side))
                for _, editor, thinker, side in sides
            ]
        except ThinkEditError as exc:
            raise refused(exc, settings.public) from None
        labels = [label for label, *_ in sides]
        views = run_views(jobs, session, settings)
        yield compare_update(comparison, views, labels, final=False)
        prefixes = [f"{label}: " for label in labels]
        for _ in follow(session, "compare", jobs, views, prefixes, settings, form.queued_at):
            yield compare_update(comparison, views, labels, final=False)
        yield compare_update(comparison, views, labels, final=True) | {history: session.gallery()}

    doc = "Run one image and instruction two ways at once, same seed; the last update carries both trajectories."
    return handler(COMPARE_FIELDS, admitting(settings, compare, runs=2), doc)


def compare_update(comparison: Comparison, views: list[RunView], labels: list[str], final: bool) -> dict:
    """What `comparison` shows of the two runs now; each side's turns are sent again only when one was added."""
    update = {comparison.summary: [view.summary_row(label) for view, label in zip(views, labels, strict=True)]}
    galleries, statuses = (comparison.gallery_a, comparison.gallery_b), (comparison.status_a, comparison.status_b)
    for view, label, gallery, status in zip(views, labels, galleries, statuses, strict=True):
        if final or view.turns_to_send():
            update[gallery] = view.gallery()
        update[status] = gr.Textbox(view.status(), label=label)
    if final:
        update[comparison.slider] = views[0].versus(views[1])
        update[comparison.trajectories] = {"a": views[0].shown_record, "b": views[1].shown_record}
    return update


def open_history(index: Any, session: Session | None, viewer: Viewer, settings: Settings) -> dict:
    """Reload the session's run number `index` (0 = newest, as History lists them) from disk into `viewer`."""
    session = session or Session()
    runs = list(reversed(session.runs))
    try:
        position = number(index, "The run number", 0, len(runs) - 1, whole=True)
    except BadInput:
        raise refused("That run is not in this session's history.", settings.public) from None
    session.showing = saved_view(runs[position], session, settings)
    return viewer_update(viewer, session.showing, final=True)


def open_saved(
    upload: Any, folder: str | None, session: Session, settings: Settings, viewer: Viewer, history: gr.Gallery
) -> dict:
    """Open a run from an uploaded zip, or (outside public mode) from a folder in the runs folder."""
    folder = (folder or "").strip() if isinstance(folder, str) else folder
    if folder and settings.public:
        raise refused("Opening folders on the server is turned off here; upload the run's zip.", True)
    if not upload and not folder:
        raise refused("Upload a run's zip or give its folder to open it.", settings.public)
    if upload and folder:
        raise refused("Give either a run's zip or its folder, not both: clear one of them, then Open.", False)
    if upload:
        try:
            upload = received_file(upload, "run's zip")
        except BadInput as exc:
            raise refused(exc, settings.public) from None
    view = saved_view(upload or confined(folder, settings), session, settings)
    session.remember(view)
    session.showing = view
    return viewer_update(viewer, view, final=True) | {history: session.gallery()}


def studio_inputs(session: Session | None) -> tuple[str | None, str, str | None]:
    """The Studio's image, instruction and mask boxes for the run it now shows (opened from History, a zip or a
    Compare side): the run's source and mask as saved (copied into the session's temp folder, which the page may be
    sent), so that Run, or a continuation, goes on from there."""
    view = session.showing if session is not None else None
    if view is None or view.record is None or view.run_dir is None:
        return gr.skip(), gr.skip(), gr.skip()
    saved, copies = SavedRun(view.run_dir, view.record), session.view_folder()
    names = (saved.record.get("source", "source.png"), saved.record.get("mask"))
    try:
        shown = [shutil.copy(saved.file(name), copies / name) if name else None for name in names]
    except (BadInput, OSError):  # the run's folder went away meanwhile: the boxes keep what they hold
        return gr.skip(), gr.skip(), gr.skip()
    return shown[0], saved.record["instruction"], shown[1]


def run_views(jobs: list[loop.Job], session: Session, settings: Settings) -> list[RunView]:
    """One view per job, filled as its run streams; a public page's views name no server folder."""
    return [
        RunView(
            source=j.request.image,
            max_turns=loop.turn_limit(j.thinker, j.request),
            folder=session.view_folder(),
            public=settings.public,
            prices=Prices.of(settings),
            mask=j.request.mask,
        )
        for j in jobs
    ]


def show_changes(index: Any, session: Session | None, public: bool = False) -> tuple[str | None, str]:
    """(the "what changed" picture, what it shows in words) of the turn at `index` (0 first, as the turn gallery
    lists them) of the run the Studio shows."""
    view = session.showing if session is not None else None
    if view is None or not view.turns:
        return None, NOTHING_SHOWN
    try:
        position = number(index, "The turn", 0, len(view.turns) - 1, whole=True)
    except BadInput:
        raise refused(f"That turn is not in the run shown: give 0 to {len(view.turns) - 1}.", public) from None
    return view.changes(view.turns[position])


def best_changes(session: Session | None) -> tuple[str | None, str]:
    """What changed in the best turn (else the last) of the run the Studio shows."""
    view = session.showing if session is not None else None
    if view is None or not view.turns:
        return None, NOTHING_SHOWN
    return view.changes(view.best_turn or view.turns[-1])


def saved_view(path: str | Path, session: Session, settings: Settings) -> RunView:
    """A saved run (folder or zip) as a view; a zip is unpacked into the session's temp folder, removed with it."""
    public = settings.public
    saved = None
    try:
        saved = load_run(path, unpack_to=session.folder)
        return RunView.from_saved(saved, folder=session.view_folder(), public=public, prices=Prices.of(settings))
    except (BadInput, OSError) as exc:
        if saved is not None and saved.path != Path(path):
            remove_folder(saved.path)  # what was unpacked from a zip whose images cannot be read
        message = str(exc) if isinstance(exc, BadInput) else f"This run could not be read ({exc})."
        raise refused(message, public) from None
