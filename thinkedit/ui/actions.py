"""What the buttons do: validate, build backends from the registry, run the loop, stream views.

Each handler consumes `thinkedit.loop.run`'s events through `RunView`; no model logic lives here.
Errors a person can act on become `gr.Error` (refused) or `gr.Warning` (the run goes on).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import html
import queue
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from .. import loop, runtime, zerogpu
from ..config import Settings
from ..editors import EDITORS
from ..errors import BadInput, ThinkEditError
from ..registry import availability, find_spec, make_editor, make_thinker
from ..store import SavedRun, load_run, new_run_dir, zip_run
from ..thinkers import THINKERS
from .view import RunView, history_item, remove_folder, session_folder, view_folder

REFRESH_S = 0.15  # at most this often a step or token event updates the page
COMPARE_MODES = ("single-shot vs Think-while-Edit", "editor A vs editor B", "thinker A vs thinker B")
SINGLE_SHOT = "single-shot (turn 1, scored by the thinker)"
HISTORY_SIZE = 48  # a session's History lists this many runs, newest first; older ones drop off the list


def new_session() -> dict[str, Any]:
    """One browser session's own state: its runs (folders, newest last) and their History items, the Stop
    switches of its runs, and its temp folder (display copies, zips, thumbnails, unpacked run zips) with the
    views' subfolders in it. Only paths and short text: images live in the temp folder."""
    return {"runs": [], "history": {}, "cancel": {}, "folder": session_folder(), "views": []}


def end_session(session: dict[str, Any]) -> None:
    """Gradio drops a closed session's state (an hour after the tab closed): stop its runs, remove its temp files."""
    for cancel in session["cancel"].values():
        cancel.set()
    remove_folder(session["folder"])


def backend_choices(rows: list[dict[str, Any]], role: str) -> list[tuple[str, str]]:
    """Dropdown (label, value) pairs; a backend that cannot run here says why in its label."""
    choices = []
    for row in rows:
        if row["role"] == role:
            label = row["name"] if row["available"] else f"{row['name']} (unavailable: {row['reason']})"
            choices.append((label, row["name"]))
    return choices


def editor_defaults(name: str) -> tuple[int | None, float | None]:
    spec = EDITORS.get(name)
    return (spec.steps, spec.guidance) if spec else (None, None)


# -- building a run ----------------------------------------------------------------------------------


def image_input(payload: Any) -> Any:
    """The uploaded image as something `load_image` reads (the event skips Gradio's preprocessing so
    that a non-image file or a huge image gets our message rather than a decoder traceback)."""
    if not isinstance(payload, dict):
        return payload
    url = payload.get("url") or ""
    if not payload.get("path") and url.startswith("data:"):
        return base64.b64decode(url.partition(",")[2])
    return payload.get("path")


def user_settings(settings: Settings, editor: str, thinker: str | None, overrides: dict[str, str | None]) -> Settings:
    """The server's settings with the person's choices; model/URL overrides are ignored in public mode."""
    changes = {} if settings.public else {k: (v or "").strip() or None for k, v in overrides.items()}
    return settings.replace(editor=editor, thinker=thinker or settings.thinker, **changes)


def build_backends(settings: Settings, editor: str, thinker: str | None):
    """(editor, thinker or None), refusing a backend that cannot run here with the reason."""
    for table, name, role in ((EDITORS, editor, "editor"), (THINKERS, thinker, "thinker")):
        if name is None:
            continue
        spec = find_spec(table, name, role)
        ok, reason = availability(spec, model=getattr(settings, f"{role}_model"), url=getattr(settings, f"{role}_url"))
        if not ok:
            raise BadInput(f"The {role} '{name}' cannot run here: {reason}. Choose another {role}.")
    return make_editor(settings, editor), (make_thinker(settings, thinker) if thinker else None)


def run_seed(seed: Any, randomize: bool) -> int:
    if randomize:
        return random.randrange(2**31)
    try:
        return int(seed or 0)
    except (TypeError, ValueError):
        raise BadInput(f"The seed must be a whole number, not {seed!r}.") from None


def optional_number(value: Any, kind: type) -> Any:
    return None if value in (None, "") else kind(value)


def stream_runs(sides: list[tuple], cancel: threading.Event, settings: Settings) -> Iterator[tuple[int, Any]]:
    """Run each side's loop on its own thread and merge their events as (side, event).

    Sides on the one local GPU take turns through `runtime.gpu_turn`; offline and remote sides run
    at the same time. Leaving early (the page closed) stops every side between steps.
    """
    events: queue.SimpleQueue = queue.SimpleQueue()

    def work(side: int, editor, thinker, request, run_dir) -> None:
        try:
            with runtime.gpu_turn(editor, thinker):
                for event in loop.run(editor, thinker, request, cancel=cancel, run_dir=run_dir,
                                      edit_timeout=settings.edit_timeout, think_timeout=settings.edit_timeout):  # fmt: skip
                    events.put((side, event))
        finally:
            events.put((side, None))

    for side, args in enumerate(sides):
        threading.Thread(target=work, args=(side, *args), daemon=True, name=f"thinkedit-run-{side}").start()
    remaining = len(sides)
    try:
        while remaining:
            side, event = events.get()
            if event is None:
                remaining -= 1
            else:
                yield side, event
    finally:
        cancel.set()


def should_refresh(event: Any, last: float) -> bool:
    """Steps and tokens arrive fast: show them at most every REFRESH_S; every other event at once."""
    return not isinstance(event, (loop.EditStep, loop.Reasoning)) or time.monotonic() - last >= REFRESH_S


def zipped(view: RunView) -> str | None:
    """The run as a zip in a temp folder (Gradio serves temp files; the runs folder itself stays private)."""
    run_dir = view.run_dir
    if run_dir is None or not (run_dir / "trajectory.json").is_file():
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
        view.record if final else gr.skip(),
    )


def remember(session: dict[str, Any], view: RunView) -> None:
    """Add a finished, saved run to the session's History. Its item (thumbnail, caption) is made here, once, from
    the record in hand: a long session does not read its runs' trajectory.json files again at each run's end."""
    if view.run_dir is None:
        return
    path = str(view.run_dir)
    try:
        item = history_item(SavedRun(view.run_dir, view.record), session["folder"])
    except OSError:
        return  # its best image is not on disk (a save that failed half way): nothing to reopen
    session["runs"].append(path)
    session["history"][path] = item
    while len(session["runs"]) > HISTORY_SIZE:
        dropped = session["runs"].pop(0)
        if dropped not in session["runs"]:
            thumbnail, _ = session["history"].pop(dropped)
            Path(thumbnail).unlink(missing_ok=True)


def history_gallery(session: dict[str, Any]) -> list[tuple[str, str]]:
    return [session["history"][path] for path in reversed(session["runs"])]


def inert(message: Any) -> str:
    """Toast text as Gradio needs it: it renders toasts as HTML, so `& < >` are escaped (no markup from model or
    user text can form); quotes are left as written, so API callers read the message as it was meant."""
    return html.escape(str(message), quote=False)


def refused(message: Any) -> gr.Error:
    return gr.Error(inert(message), print_exception=False)


def warn(message: str) -> None:
    gr.Warning(inert(message))


# -- the handlers ------------------------------------------------------------------------------------


def edit_duration(image, instruction, editor="classic", thinker="classic", max_turns=3, threshold=8.0,
                  first_turn="none", seed=0, randomize=False, steps=None, *rest, settings: Settings) -> int:  # fmt: skip
    """ZeroGPU seconds for one Studio run (same arguments as `edit`): every critique may use all its tokens."""
    return zerogpu.estimate_duration(editor, thinker, int(max_turns or 1), optional_number(steps, int),
                                     first_turn=first_turn or "none", thinker_tokens=settings.thinker_max_new_tokens)  # fmt: skip


def make_edit(settings: Settings):
    """The Studio's run handler for these server settings."""

    @zerogpu.gpu(functools.partial(edit_duration, settings=settings))
    def edit(image, instruction, editor="classic", thinker="classic", max_turns=3, threshold=8.0, first_turn="none",
             seed=0, randomize=False, steps=None, guidance=None, editor_model=None, editor_url=None,
             thinker_model=None, thinker_url=None, session=None):  # fmt: skip
        """Edit the image with Think-while-Edit and stream the page's updates; the last carries the trajectory."""
        session = session if session is not None else new_session()
        try:
            request = loop.make_request(
                image_input(image), instruction, max_turns=int(max_turns), threshold=float(threshold),
                first_turn=first_turn, seed=run_seed(seed, randomize), steps=optional_number(steps, int),
                guidance=optional_number(guidance, float),
            )  # fmt: skip
            overrides = dict(editor_model=editor_model, editor_url=editor_url,
                             thinker_model=thinker_model, thinker_url=thinker_url)  # fmt: skip
            run_settings = user_settings(settings, editor, thinker, overrides)
            editor_backend, thinker_backend = build_backends(run_settings, editor, thinker)
        except ThinkEditError as exc:
            raise refused(exc) from None
        view = RunView(source=request.image, max_turns=request.max_turns, folder=view_folder(session))
        if "local" in {getattr(getattr(b, "spec", None), "kind", None) for b in (editor_backend, thinker_backend)}:
            view.phase = "Waiting for the GPU (one run at a time)…"
        cancel = session["cancel"]["studio"] = threading.Event()
        run_dir = new_run_dir(settings.runs_dir)
        yield (*viewer_update(view, final=False), gr.skip())
        last, shown_turns = 0.0, 0
        sides = [(editor_backend, thinker_backend, request, run_dir)]
        for _, event in stream_runs(sides, cancel, run_settings):
            view.apply(event)
            if isinstance(event, loop.Notice):
                warn(event.message)
            if isinstance(event, loop.RunFinished):
                break
            if should_refresh(event, last):
                last, changed, shown_turns = time.monotonic(), len(view.turns) != shown_turns, len(view.turns)
                yield (*viewer_update(view, final=False, turns_changed=changed), gr.skip())
        if view.record and view.record.get("error"):
            warn(view.record["error"])
        remember(session, view)
        yield (*viewer_update(view, final=True), history_gallery(session))

    return edit


def stop(session: dict[str, Any], which: str) -> None:
    """Stop the session's running `which` run between steps; what is finished stays on screen and on disk."""
    cancel = (session or {}).get("cancel", {}).get(which)
    if cancel is not None:
        cancel.set()


def compare_sides(mode: str, editor_a: str, editor_b: str, thinker_a: str, thinker_b: str) -> list[tuple]:
    """[(label, editor, thinker, single_shot)] for the two sides of a comparison. A single-shot side runs
    turn 1 only, still scored by the same thinker, so the summary compares like with like."""
    if mode == COMPARE_MODES[0]:
        return [(f"A · {SINGLE_SHOT}", editor_a, thinker_a, True),
                ("B · Think-while-Edit", editor_a, thinker_a, False)]  # fmt: skip
    if mode == COMPARE_MODES[1]:
        return [(f"A · {editor_a} + {thinker_a}", editor_a, thinker_a, False),
                (f"B · {editor_b} + {thinker_a}", editor_b, thinker_a, False)]  # fmt: skip
    if mode == COMPARE_MODES[2]:
        return [(f"A · {editor_a} + {thinker_a}", editor_a, thinker_a, False),
                (f"B · {editor_a} + {thinker_b}", editor_a, thinker_b, False)]  # fmt: skip
    raise BadInput(f"Unknown comparison '{mode}'; use one of: {', '.join(COMPARE_MODES)}.")


def compare_duration(image, instruction, mode=COMPARE_MODES[0], editor_a="classic", editor_b="classic",
                     thinker_a="classic", thinker_b="classic", max_turns=3, *rest) -> int:  # fmt: skip
    """ZeroGPU seconds for a comparison: both sides, one after the other."""
    sides = compare_sides(mode, editor_a, editor_b, thinker_a, thinker_b)
    seconds = sum(zerogpu.estimate_duration(e, t, 1 if one else int(max_turns or 1), None) for _, e, t, one in sides)
    return min(zerogpu.MAX_DURATION_S, seconds)


def make_compare(settings: Settings):
    """The Compare tab's handler for these server settings."""

    @zerogpu.gpu(compare_duration)
    def compare(image, instruction, mode=COMPARE_MODES[0], editor_a="classic", editor_b="classic",
                thinker_a="classic", thinker_b="classic", max_turns=3, threshold=8.0, seed=0, session=None):  # fmt: skip
        """Run one image and instruction two ways at once, same seed; the last update carries both trajectories."""
        session = session if session is not None else new_session()
        try:
            request = loop.make_request(image_input(image), instruction, max_turns=int(max_turns),
                                        threshold=float(threshold), seed=run_seed(seed, False))  # fmt: skip
            labels, sides = [], []
            for label, editor, thinker, single_shot in compare_sides(mode, editor_a, editor_b, thinker_a, thinker_b):
                run_settings = user_settings(settings, editor, thinker, {})
                side_request = dataclasses.replace(request, max_turns=1) if single_shot else request
                labels.append(label)
                sides.append((*build_backends(run_settings, editor, thinker), side_request,
                              new_run_dir(settings.runs_dir)))  # fmt: skip
        except ThinkEditError as exc:
            raise refused(exc) from None
        views = [RunView(source=request.image, max_turns=s[2].max_turns, folder=view_folder(session)) for s in sides]
        cancel = session["cancel"]["compare"] = threading.Event()

        shown = [0, 0]

        def update(final: bool) -> tuple:
            slider = views[0].versus(views[1]) if final else None
            galleries = [
                view.gallery() if final or len(view.turns) != n else gr.skip()
                for view, n in zip(views, shown, strict=True)
            ]
            shown[:] = [len(view.turns) for view in views]
            return (
                *galleries,
                *(gr.Textbox(view.status(), label=label) for view, label in zip(views, labels, strict=True)),
                slider if final else gr.skip(),
                [view.summary_row(label) for view, label in zip(views, labels, strict=True)],
                {"a": views[0].record, "b": views[1].record} if final else gr.skip(),
                history_gallery(session) if final else gr.skip(),
            )  # fmt: skip

        yield update(final=False)
        last = 0.0
        for side, event in stream_runs(sides, cancel, settings):
            views[side].apply(event)
            if isinstance(event, loop.Notice):
                warn(f"{labels[side]}: {event.message}")
            if should_refresh(event, last):
                last = time.monotonic()
                yield update(final=False)
        for view in views:
            remember(session, view)
        yield update(final=True)

    return compare


def open_history(index: Any, session: dict[str, Any]) -> tuple:
    """Reload the session's run number `index` (0 = newest, as History lists them) from disk."""
    runs = list(reversed((session or new_session())["runs"]))
    try:
        path = runs[int(index)]
    except (IndexError, TypeError, ValueError):
        raise refused("That run is not in this session's history.") from None
    return show_saved(path, session)


def open_saved(upload: Any, folder: str | None, session: dict[str, Any], public: bool) -> tuple:
    """Open a run from an uploaded zip, or (outside public mode) from a folder on the server."""
    folder = (folder or "").strip()
    if folder and public:
        raise refused("Opening folders on the server is turned off here; upload the run's zip.")
    source = upload if upload else folder
    if not source:
        raise refused("Upload a run's zip or give its folder to open it.")
    view = saved_view(source, session)
    remember(session, view)
    return (*viewer_update(view, final=True), history_gallery(session))


def show_saved(path: str | Path, session: dict[str, Any]) -> tuple:
    return viewer_update(saved_view(path, session), final=True)


def saved_view(path: str | Path, session: dict[str, Any]) -> RunView:
    """A saved run (folder or zip) as a view; a zip is unpacked into the session's temp folder, removed with it."""
    try:
        return RunView.from_saved(load_run(path, unpack_to=session["folder"]), folder=view_folder(session))
    except (BadInput, OSError, KeyError, StopIteration) as exc:
        message = str(exc) if isinstance(exc, BadInput) else f"This run could not be read ({exc})."
        raise refused(message) from None
