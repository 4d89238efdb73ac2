"""What the buttons do: validate, build backends from the registry, run the loop, stream views.

Each handler that runs edits hands its runs to `thinkedit.loop.stream` (one worker thread per run) and turns
the events into page updates through `RunView`; the Benchmarks tab's handlers read eval folders. No model
logic lives here. Errors a person can act on become
`gr.Error` (refused) or `gr.Warning` (the run goes on).
"""

from __future__ import annotations

import dataclasses
import html
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from .. import loop, runtime
from ..config import Settings
from ..critique import score_text as score
from ..editors import EDITORS
from ..errors import BadInput, ThinkEditError
from ..evaluate.report import eval_folders, plot, read_eval
from ..evaluate.report import who as who_ran
from ..images import base64_bytes, load_image
from ..registry import build_backend
from ..store import SavedRun, holds_run, load_run, new_run_dir, zip_run
from .view import (
    RunView,
    display_file,
    history_item,
    new_folder,
    remove_folder,
    session_folder,
    thumbnail_file,
    without_paths,
)

REFRESH_S = 0.15  # at most this often a step or token event updates the page
COMPARE_MODES = ("single-shot vs Think-while-Edit", "editor A vs editor B", "thinker A vs thinker B")
SINGLE_SHOT = "single-shot (turn 1, scored by the thinker)"
HISTORY_SIZE = 48  # a session's History lists this many runs, newest first; older ones drop off the list
KEEP_VIEWS = 16  # a session keeps this many views' temp folders; Gradio copied older ones to its cache when shown
WAITING = "Waiting for the GPU (one run at a time)…"


@dataclass
class Session:
    """One browser session's own state: its runs (folders, newest last) and their History items, the Stop
    switches of its runs, and its temp folder (display copies, zips, thumbnails, unpacked run zips) with one
    subfolder per view. Only paths and short text: images live in the temp folder."""

    runs: list[str] = field(default_factory=list)
    history: dict[str, tuple[str, str]] = field(default_factory=dict)  # run folder → (thumbnail, caption)
    cancel: dict[str, threading.Event] = field(default_factory=dict)  # "studio" / "compare" → its Stop switch
    folder: str = field(default_factory=session_folder)
    views: list[Path] = field(default_factory=list)

    def view_folder(self) -> Path:
        """A new temp folder for one view; only the KEEP_VIEWS newest are kept."""
        folder = new_folder(self.folder)
        self.views.append(folder)
        while len(self.views) > KEEP_VIEWS:
            remove_folder(self.views.pop(0))
        return folder

    def remember(self, view: RunView) -> None:
        """Add a finished, saved run to History. Its item (thumbnail, caption) is made once, from the record in
        hand: a long session does not read its runs' trajectory.json files again at each run's end."""
        if view.run_dir is None:
            return
        path = str(view.run_dir)
        try:
            saved = SavedRun(view.run_dir, view.record)
            if view.record.get("warnings"):  # a save that failed part way: History lists what is on disk
                saved = load_run(view.run_dir)
            item = history_item(saved, self.folder)
        except (BadInput, OSError):
            return  # nothing on disk to reopen
        self.runs.append(path)
        self.history[path] = item
        while len(self.runs) > HISTORY_SIZE:
            dropped = self.runs.pop(0)
            if dropped not in self.runs:
                thumbnail, _ = self.history.pop(dropped)
                Path(thumbnail).unlink(missing_ok=True)

    def gallery(self) -> list[tuple[str, str]]:
        return [self.history[path] for path in reversed(self.runs)]


def new_session() -> Session:
    """A browser session's state, made when its page loads (a function: Gradio would copy a dataclass's fields)."""
    return Session()


def end_session(session: Session) -> None:
    """Gradio drops a closed session's state (an hour after the tab closed): stop its runs, remove its temp files."""
    for cancel in session.cancel.values():
        cancel.set()
    remove_folder(session.folder)


def backend_choices(rows: list[dict[str, Any]], role: str) -> list[tuple[str, str]]:
    """Dropdown (label, value) pairs; a backend that cannot run here says why in its label."""
    choices = []
    for row in rows:
        if row["role"] == role:
            label = row["name"] if row["available"] else f"{row['name']} (unavailable: {row['reason']})"
            choices.append((label, row["name"]))
    return choices


def editor_defaults(name: str, speed: str | None = None) -> tuple[int | None, float | None]:
    spec = EDITORS.get(name)
    return spec.defaults(speed or "default") if spec else (None, None)


# -- building a run ----------------------------------------------------------------------------------


def image_input(payload: Any) -> Any:
    """The uploaded image as something `load_image` reads (the event skips Gradio's preprocessing so
    that a non-image file or a huge image gets our message rather than a decoder traceback)."""
    if not isinstance(payload, dict):
        return payload
    url = payload.get("url") or ""
    if not payload.get("path") and isinstance(url, str) and url.startswith("data:"):
        return base64_bytes(url)
    return payload.get("path")


def user_settings(settings: Settings, editor: str, thinker: str | None, overrides: dict[str, Any]) -> Settings:
    """The server's settings with the person's choices: backends, and (outside public mode) models, URLs, keys and
    the speed.

    A URL other than the one the server configured is the caller's: its role is marked so that no key of the
    server's goes there (`remote.credential`); the caller's own key, if they typed one, goes instead.
    """
    if settings.public:
        return settings.replace(editor=editor, thinker=thinker or settings.thinker)
    changes = {key: value.strip() for key, value in overrides.items() if isinstance(value, str) and value.strip()}
    callers = tuple(
        role
        for role in ("editor", "thinker")
        if f"{role}_url" in changes and not _same_url(changes[f"{role}_url"], getattr(settings, f"{role}_url"))
    )
    return settings.replace(editor=editor, thinker=thinker or settings.thinker, caller_endpoints=callers, **changes)


def _same_url(given: str, configured: str | None) -> bool:
    def normal(urls: str) -> list[str]:
        return [url.strip().rstrip("/") for url in urls.split(",") if url.strip()]

    return configured is not None and normal(given) == normal(configured)


def job(settings: Settings, request: loop.EditRequest) -> loop.Job:
    """The run of `request` with the backends `settings` chose, saved in a new folder under the runs folder."""
    editor, thinker = build_backend("editor", settings), build_backend("thinker", settings)
    return loop.Job(editor, thinker, request, new_run_dir(settings.runs_dir))


def follow(
    session: Session, which: str, jobs: list[loop.Job], views: list[RunView], labels: list[str], settings: Settings
) -> Iterator[None]:
    """Run `jobs` (one per view) and feed each view its events; yield whenever the page should be updated.

    Runs on the one local GPU take turns; offline and remote runs go at the same time. Stop (`which`'s
    switch) and leaving early (the page closed) end them between steps. Finished runs go into History.
    """
    cancel = session.cancel[which] = threading.Event()
    for view, each in zip(views, jobs, strict=True):
        if runtime.takes_gpu_turn(each.editor, each.thinker):
            view.phase = WAITING
    last = 0.0
    for number, event in loop.stream(
        jobs, cancel=cancel, edit_timeout=settings.edit_timeout, think_timeout=settings.thinker_timeout
    ):
        views[number].apply(event)
        if isinstance(event, loop.Notice):
            warn(labels[number] + views[number].for_visitor(event.message))
        if isinstance(event, (loop.EditStep, loop.Reasoning)) and time.monotonic() - last < REFRESH_S:
            continue  # steps and tokens arrive fast: show them at most every REFRESH_S
        last = time.monotonic()
        yield
    for view, label in zip(views, labels, strict=True):
        if view.record and view.record.get("error"):
            warn(label + view.shown_record["error"])
        session.remember(view)


def zipped(view: RunView) -> str | None:
    """The run as a zip in a temp folder (Gradio serves temp files; the runs folder itself stays private)."""
    run_dir = view.run_dir
    if not holds_run(run_dir):
        return None
    return str(zip_run(run_dir, view.folder / f"{run_dir.name}.zip"))


def viewer_update(view: RunView, final: bool, turns_changed: bool = True) -> tuple:
    """The Studio viewer's outputs: gallery, progress, reasoning, refined prompt, table, slider, status, zip, JSON.

    Images are sent again only when a turn was added (re-sending rewrites Gradio's cached files).
    """
    return (
        view.gallery() if turns_changed or final else gr.skip(),
        view.progress_html(),
        view.reasoning,
        view.refined,
        view.table() if turns_changed or final else gr.skip(),
        view.slider() if final else gr.skip(),
        view.status(),
        zipped(view) if final else gr.skip(),
        view.shown_record if final else gr.skip(),
    )


def inert(message: Any) -> str:
    """Toast text as Gradio needs it: it renders toasts as HTML, so `& < >` are escaped (no markup from model or
    user text can form); quotes are left as written, so API callers read the message as it was meant."""
    return html.escape(str(message), quote=False)


def refused(message: Any, public: bool) -> gr.Error:
    """A refusal as the page shows it; a public page's names no folder of the server's."""
    text = without_paths(str(message)) if public else str(message)
    return gr.Error(inert(text), print_exception=False)


def warn(message: str) -> None:
    gr.Warning(inert(message))


# -- the handlers ------------------------------------------------------------------------------------


def loop_rules(settings: Settings, seed_per_turn: str | None = None) -> dict[str, str]:
    """The loop's rules a request takes from the server's settings; the Studio may choose its seeds."""
    return {"seed_per_turn": seed_per_turn or settings.seed_per_turn, "no_answer": settings.no_answer}


def make_edit(settings: Settings):
    """The Studio's run handler for these server settings."""

    def edit(
        image,
        instruction,
        editor="classic",
        thinker="classic",
        max_turns=3,
        threshold=8.0,
        first_turn="none",
        seed=0,
        randomize=False,
        steps=None,
        guidance=None,
        editor_model=None,
        editor_url=None,
        thinker_model=None,
        thinker_url=None,
        editor_key=None,
        thinker_key=None,
        speed=None,
        seed_per_turn=None,
        session=None,
    ):
        """Edit the image with Think-while-Edit and stream the page's updates; the last carries the trajectory."""
        session = session if session is not None else Session()
        try:
            request = loop.make_request(
                image_input(image),
                instruction,
                max_turns=max_turns,
                threshold=threshold,
                first_turn=first_turn,
                seed=random.randrange(2**31) if randomize is True else seed,
                steps=steps,
                guidance=guidance,
                **loop_rules(settings, seed_per_turn),
            )
            overrides = dict(
                editor_model=editor_model,
                editor_url=editor_url,
                thinker_model=thinker_model,
                thinker_url=thinker_url,
                editor_key=editor_key,
                thinker_key=thinker_key,
                speed=speed,
            )
            run_settings = user_settings(settings, editor, thinker, overrides)
            jobs = [job(run_settings, request)]
        except ThinkEditError as exc:
            raise refused(exc, settings.public) from None
        (view,) = run_views(jobs, session, settings.public)
        yield (*viewer_update(view, final=False), gr.skip())
        for _ in follow(session, "studio", jobs, [view], [""], run_settings):
            yield (*viewer_update(view, final=False, turns_changed=view.turns_to_send()), gr.skip())
        yield (*viewer_update(view, final=True), session.gallery())

    return edit


def stop(session: Session | None, which: str) -> None:
    """Stop the session's running `which` run between steps; what is finished stays on screen and on disk."""
    cancel = session.cancel.get(which) if session is not None else None
    if cancel is not None:
        cancel.set()


def compare_sides(mode: str, editor_a: str, editor_b: str, thinker_a: str, thinker_b: str) -> list[tuple]:
    """[(label, editor, thinker, single_shot)] for the two sides of a comparison. A single-shot side runs
    turn 1 only, still scored by the same thinker, so the summary compares like with like."""
    if mode == COMPARE_MODES[0]:
        return [(f"A · {SINGLE_SHOT}", editor_a, thinker_a, True), ("B · Think-while-Edit", editor_a, thinker_a, False)]
    if mode == COMPARE_MODES[1]:
        return [
            (f"A · {editor_a} + {thinker_a}", editor_a, thinker_a, False),
            (f"B · {editor_b} + {thinker_a}", editor_b, thinker_a, False),
        ]
    if mode == COMPARE_MODES[2]:
        return [
            (f"A · {editor_a} + {thinker_a}", editor_a, thinker_a, False),
            (f"B · {editor_a} + {thinker_b}", editor_a, thinker_b, False),
        ]
    raise BadInput(f"Unknown comparison '{mode}'; use one of: {', '.join(COMPARE_MODES)}.")


def make_compare(settings: Settings):
    """The Compare tab's handler for these server settings."""

    def compare(
        image,
        instruction,
        mode=COMPARE_MODES[0],
        editor_a="classic",
        editor_b="classic",
        thinker_a="classic",
        thinker_b="classic",
        max_turns=3,
        threshold=8.0,
        seed=0,
        session=None,
    ):
        """Run one image and instruction two ways at once, same seed; the last update carries both trajectories."""
        session = session if session is not None else Session()
        try:
            options = dict(max_turns=max_turns, threshold=threshold, seed=seed, **loop_rules(settings))
            request = loop.make_request(image_input(image), instruction, **options)
            sides = compare_sides(mode, editor_a, editor_b, thinker_a, thinker_b)
            jobs = [
                job(
                    user_settings(settings, editor, thinker, {}),
                    dataclasses.replace(request, max_turns=1) if single_shot else request,
                )
                for _, editor, thinker, single_shot in sides
            ]
        except ThinkEditError as exc:
            raise refused(exc, settings.public) from None
        labels = [label for label, *_ in sides]
        views = run_views(jobs, session, settings.public)

        def update(final: bool) -> tuple:
            return (
                *(view.gallery() if final or view.turns_to_send() else gr.skip() for view in views),
                *(gr.Textbox(view.status(), label=label) for view, label in zip(views, labels, strict=True)),
                views[0].versus(views[1]) if final else gr.skip(),
                [view.summary_row(label) for view, label in zip(views, labels, strict=True)],
                {"a": views[0].shown_record, "b": views[1].shown_record} if final else gr.skip(),
                session.gallery() if final else gr.skip(),
            )

        yield update(final=False)
        for _ in follow(session, "compare", jobs, views, [f"{label}: " for label in labels], settings):
            yield update(final=False)
        yield update(final=True)

    return compare


def open_history(index: Any, session: Session | None, public: bool = False) -> tuple:
    """Reload the session's run number `index` (0 = newest, as History lists them) from disk."""
    session = session or Session()
    runs = list(reversed(session.runs))
    try:
        number = loop.number(index, "The run number", 0, len(runs) - 1, whole=True)
    except BadInput:
        raise refused("That run is not in this session's history.", public) from None
    return viewer_update(saved_view(runs[number], session, public), final=True)


def open_saved(upload: Any, folder: str | None, session: Session, settings: Settings) -> tuple:
    """Open a run from an uploaded zip, or (outside public mode) from a folder in the runs folder."""
    folder = (folder or "").strip()
    if folder and settings.public:
        raise refused("Opening folders on the server is turned off here; upload the run's zip.", True)
    if not upload and not folder:
        raise refused("Upload a run's zip or give its folder to open it.", settings.public)
    view = saved_view(upload or confined(folder, settings), session, settings.public)
    session.remember(view)
    return (*viewer_update(view, final=True), session.gallery())


def confined(folder: str, settings: Settings) -> Path:
    """A run folder (or zip) named on the server: it must lie in the runs folder once symlinks are resolved."""
    return inside(
        folder,
        settings.runs_dir,
        f"Only runs in the runs folder ({settings.runs_dir}) can be opened by name; upload its zip.",
        settings.public,
    )


def inside(name: str, root: str | Path, refusal: str, public: bool) -> Path:
    """`name` (a bare name is looked up in `root`) as a path that lies in `root` once symlinks are resolved."""
    root = Path(root).resolve()
    path = (root / name).resolve()  # an absolute `name` stays itself
    if not path.is_relative_to(root):
        raise refused(refusal, public)
    return path


def run_views(jobs: list[loop.Job], session: Session, public: bool) -> list[RunView]:
    """One view per job, filled as its run streams; a public page's views name no server folder."""
    return [
        RunView(source=j.request.image, max_turns=j.request.max_turns, folder=session.view_folder(), public=public)
        for j in jobs
    ]


def saved_view(path: str | Path, session: Session, public: bool = False) -> RunView:
    """A saved run (folder or zip) as a view; a zip is unpacked into the session's temp folder, removed with it."""
    saved = None
    try:
        saved = load_run(path, unpack_to=session.folder)
        return RunView.from_saved(saved, folder=session.view_folder(), public=public)
    except (BadInput, OSError) as exc:
        if saved is not None and saved.path != Path(path):
            remove_folder(saved.path)  # what was unpacked from a zip whose images cannot be read
        message = str(exc) if isinstance(exc, BadInput) else f"This run could not be read ({exc})."
        raise refused(message, public) from None


# -- the Benchmarks tab ------------------------------------------------------------------------------------


def eval_choices(settings: Settings) -> list[str]:
    """The eval folders under the evals folder (THINKEDIT_EVALS_DIR), by their path inside it, newest first."""
    root = Path(settings.evals_dir)
    return [str(folder.relative_to(root)) for folder in eval_folders(root)]


def open_eval(name: Any, session: Session, settings: Settings) -> tuple:
    """(summary text, table, chart, gallery, samples) of one eval folder in the evals folder.

    The gallery shows each sample's loop result, sorted by how much the loop gained over single-shot;
    the samples (plain data) go to the page's state for `show_sample`.
    """
    if not isinstance(name, str) or not name.strip():
        raise refused("Choose an eval folder (made by `thinkedit eval --out …` in the evals folder).", settings.public)
    folder = inside(
        name.strip(),
        settings.evals_dir,
        f"Only evals in the evals folder ({settings.evals_dir}) open here.",
        settings.public,
    )
    try:
        found = read_eval(folder)
    except (BadInput, OSError, ValueError, KeyError) as exc:
        raise refused(f"{name} could not be read as an eval folder ({exc}).", settings.public) from None
    view = session.view_folder()
    samples = found["samples"]
    gallery = []
    for number, sample in enumerate(samples):
        shown = sample.get("loop") or sample.get("single") or {}
        if shown.get("image"):
            preview = thumbnail_file(view / f"sample-{number}.webp", lambda path=shown["image"]: load_image(path))
            gallery.append((preview, sample_caption(sample)))
    chart = view / "chart.png"  # drawn from the summary, as `thinkedit eval` draws its report.png
    plot(found["summary"], chart)
    table = pd.DataFrame(found["table"], columns=found["headers"])
    return eval_summary(found["summary"]), table, str(chart), gallery, samples


def eval_summary(summary: dict[str, Any]) -> str:
    """One paragraph: which benchmark, which backends, the overall O of each mode, and any warning."""
    who = ", ".join(f"{role} {who_ran(summary[role])}" for role in ("editor", "thinker", "judge") if summary.get(role))
    modes = "; ".join(
        f"{mode}: O {score(block.get('o'))} over {block.get('samples')} samples ({block.get('failed', 0)} failed)"
        for mode, block in summary["modes"].items()
    )
    language = f" ({summary['headline_language']})" if summary.get("headline_language") else ""
    return " ".join([f"**{summary.get('bench')}**{language} · {who}. {modes}.", *summary.get("warnings", [])])


def sample_caption(sample: dict[str, Any]) -> str:
    single, loop_ = sample.get("single") or {}, sample.get("loop") or {}
    gain = sample.get("gain")
    change = f"gain {gain:+.2f}" if gain is not None else "gain –"
    return f"{sample['key']} · {change} · single O {score(single.get('o'))} → loop O {score(loop_.get('o'))}"


def show_sample(samples: list[dict[str, Any]] | None, index: Any, session: Session) -> tuple:
    """(source, single-shot, loop result, what was asked and how the loop refined it) of one sample."""
    try:
        sample = (samples or [])[loop.number(index, "The sample", 0, len(samples or []) - 1, whole=True)]
    except BadInput:
        raise refused("That sample is not in this eval.", True) from None
    view = session.view_folder()
    images = [sample.get("source"), (sample.get("single") or {}).get("image"), (sample.get("loop") or {}).get("image")]
    shown = [display_file(path, view, f"pick-{n}") if path else None for n, path in enumerate(images)]
    lines = [f"{sample['key']} ({sample['category']}): {sample['instruction']}"]
    for mode in ("single", "loop"):
        result = sample.get(mode)
        if result:
            lines.append(
                f"{mode}: SC {score(result.get('sc'))}, PQ {score(result.get('pq'))}, O {score(result.get('o'))}"
                + (f", error: {result['error']}" if result.get("error") else "")
            )
    prompts = (sample.get("loop") or {}).get("prompts") or []
    lines += [f"turn {number} prompt: {prompt}" for number, prompt in enumerate(prompts, 1)]
    return (*shown, "\n".join(lines))
