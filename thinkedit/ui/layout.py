"""The page: a Studio tab (one run, live), a Compare tab (two runs side by side), a History tab and a Benchmarks
tab (eval folders), plus the MCP tools for agents (`agent.py`) when `--mcp` is on.

One function per tab builds its components and wires its events beside them, as Gradio's own demos do;
what the buttons do lives in `actions` (Studio, Compare, History), `benchmarks` and `session`. A run handler's
inputs are its tab's controls by field name (`controls`), lined up by the handler's table of fields
(`actions.EDIT_FIELDS`, `actions.COMPARE_FIELDS`; see `form.py`); its outputs are named components
(`actions.Viewer`, `actions.Comparison`). A new Studio control is made in `studio_tab`, added to `controls` and
to `EDIT_FIELDS`, and read by the handler as `form.<name>`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from ..config import (
    DEFAULTS,
    FIRST_TURN_STRATEGIES,
    MAX_INSTRUCTION_CHARS,
    MAX_TURNS_RANGE,
    SEED_PER_TURN,
    SPEEDS,
    THRESHOLD_RANGE,
    Settings,
)
from ..registry import backend_rows
from ..steer import VERDICTS
from . import actions, agent, benchmarks, form, session
from .choices import CHOICES, backend_choices, backends_note, shown_rows
from .messages import refused
from .view import IDLE_PROGRESS, SUMMARY_HEADERS, TABLE_HEADERS

ASSETS = Path(__file__).resolve().parents[2] / "assets"
# Gradio's copies of the files the page was sent: checked hourly, removed after a day unused, all at shutdown.
GRADIO_CACHE_CLEANUP = (3600, 86400)

CSS = """
.te-progress { position: relative; height: 22px; border-radius: 6px; background: var(--neutral-200); overflow: hidden; }
.te-progress > div { height: 100%; background: var(--color-accent); opacity: .55; transition: width .15s; }
.te-progress > span { position: absolute; inset: 0; text-align: center; font-size: 13px; line-height: 22px; }
.te-busy > div { animation: te-pulse 1.2s ease-in-out infinite; }
.te-done > div { opacity: .25; }
@keyframes te-pulse { 50% { opacity: .2; } }
#te-header h1 { margin-bottom: 0; }
/* Gallery captions under each image, always readable (Gradio overlays them on a square tile's corner). */
.te-gallery .grid-container { padding-top: 26px; }
.te-gallery .thumbnail-item.thumbnail-lg { aspect-ratio: auto; height: 100%; display: flex; flex-direction: column; }
.te-gallery .thumbnail-item.thumbnail-lg > img { height: var(--te-thumb, 150px); flex: none; }
.te-gallery .thumbnail-item .caption-label { position: static; flex: 1; max-width: none; opacity: 1 !important;
  white-space: normal; text-align: center; border: 0; border-top: 1px solid var(--border-color-primary);
  border-radius: 0; font-size: var(--text-sm); color: var(--body-text-color); }
#te-c-gallery-a, #te-c-gallery-b { --te-thumb: 120px; }
#te-steer .te-steer-buttons button { min-width: 0; }
#te-history { --te-thumb: 110px; }
/* A refusal leaves the page as it was: its sentence is the toast, and Gradio's "Error" cover (drawn over every output
   of the refused event, hiding what it showed) is not drawn. */
[data-testid="status-tracker"]:has(> .error) { display: none !important; }
#te-status, #te-c-status-a { scroll-margin-top: 12px; }
.te-note { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
/* Gradio's container clips with overflow hidden, which would hold a sticky element (the phone's Run row) to it
   rather than to the window; clip cuts the same without that. */
.gradio-container { overflow: clip !important; }
/* A phone: every tab in the tab bar (none behind "…"), two turns a row, each gallery as tall as its captions. */
@media (max-width: 640px) {
  #te-tabs .tab-container { width: 100%; }
  #te-tabs .tab-container > button { padding: 0 var(--size-2); }
  .te-gallery, .te-gallery .grid-wrap { height: auto !important; max-height: none !important; }
  .te-gallery .grid-container { --grid-cols: 2 !important; }
  /* Run and Stop stay on screen while the Studio's inputs scroll by (the form is taller than a phone) */
  #te-run-row { position: sticky; bottom: 0; z-index: 20; padding: var(--size-2) 0; flex-wrap: nowrap;
                background: var(--background-fill-primary); }
  #te-run-row > button { min-width: 0 !important; flex: 1 1 0; }
}
"""

# Scrolls the element with id ID to the top of the window unless it is well in view already.
REVEAL = """() => {
    const element = document.getElementById("ID");
    const top = element ? element.getBoundingClientRect().top : 0;
    if (element && (top < 0 || top > window.innerHeight * 0.6)) element.scrollIntoView({block: "start"});
}"""

INTRO = (
    "# ThinkEdit\n"
    "An image editor edits, a *thinker* critiques the edit with a semantic and a quality score and a refined "
    "instruction, and the loop repeats until the edit is good enough "
    "([Think-while-Edit](https://arxiv.org/abs/2512.05965))."
)


def examples() -> list[list[str]]:
    """[[image path, instruction]] from assets/examples.json, when the assets are there."""
    file = ASSETS / "examples.json"
    if not file.is_file():
        return []
    entries = json.loads(file.read_text(encoding="utf-8"))
    return [[str(ASSETS / e["image"]), e["instruction"]] for e in entries if (ASSETS / e["image"]).is_file()]


def build_app(settings: Settings) -> gr.Blocks:
    """The whole app for these server settings (public mode hides every model and URL box)."""
    rows = shown_rows(backend_rows(settings), settings.public)
    # analytics off here too, not only through app.py's environment: importing thinkedit.ui must not turn them on
    with gr.Blocks(
        title="ThinkEdit — Think-while-Edit studio", delete_cache=GRADIO_CACHE_CLEANUP, analytics_enabled=False
    ) as demo:
        # Gradio calls actions.new_session on each page load and end_session once that tab has been closed for a while.
        state = gr.State(session.new_session, delete_callback=session.end_session)
        # Every run adds to History, so its gallery is made first and shown in its own tab.
        history = gr.Gallery(
            label="Runs",
            columns=6,
            height=380,
            allow_preview=False,
            object_fit="contain",
            fit_columns=False,
            elem_id="te-history",
            elem_classes="te-gallery",
            render=False,
        )
        kept = history_keeper(settings)  # outside the tabs: a tab's components are only there once it is opened
        gr.Markdown(INTRO, elem_id="te-header")
        with gr.Tabs(elem_id="te-tabs") as tabs:
            with gr.Tab("Studio", id="studio"):
                studio = studio_tab(settings, rows, state, history, tabs)
            with gr.Tab("Compare", id="compare"):
                compare_tab(settings, rows, state, history, studio)
            with gr.Tab("History", id="history") as history_tab_item:
                history_tab(settings, state, history, history_tab_item, studio, kept)
            with gr.Tab("Benchmarks", id="benchmarks") as benchmarks_tab_item:
                benchmarks_tab(settings, state, benchmarks_tab_item)
        if settings.mcp:
            agent.add_tools(settings, rows, run_options(settings))
    return demo


def run_options(settings: Settings) -> dict:
    """How a run is queued: at most `ui_concurrency` runs at once (Studio and Compare together); the raw upload
    is passed on, so that a broken or huge file gets our message rather than a decoder's."""
    return dict(concurrency_limit=settings.ui_concurrency, concurrency_id="runs", preprocess=False)


@dataclass
class Studio:
    """The Studio as the other tabs open runs into it: its viewer, the steering panel's turn box (set to the run's
    newest turn), "what changed" (its best turn shown), its image, instruction and mask boxes (filled from the run),
    and the tabs (switched to the Studio)."""

    viewer: actions.Viewer
    turn: gr.Number
    changes: actions.Changes
    inputs: list
    tabs: gr.Tabs

    def opened(self, event: Any, state: gr.State) -> None:
        """When `event` has opened a run into the viewer, the Studio shows it, ready to go on from."""
        event.success(lambda: gr.Tabs(selected="studio"), outputs=self.tabs, api_visibility="private").then(
            **newest_turn(self.viewer, self.turn)
        ).then(actions.studio_inputs, state, self.inputs, api_visibility="private").then(
            **self.changes.show_best(state)
        )


def studio_tab(
    settings: Settings, rows: list[dict[str, Any]], state: gr.State, history: gr.Gallery, tabs: gr.Tabs
) -> Studio:
    """One image, one run, live, and going on from any of its turns; returns what History and Compare open runs
    into."""
    controls = {}  # field name (actions.EDIT_FIELDS) → the component that gives it
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            image = controls["image"] = gr.Image(
                label="Image", sources=["upload", "clipboard", "webcam"], height=260, elem_id="te-image"
            )
            instruction = controls["instruction"] = instruction_box(
                elem_id="te-instruction", placeholder="e.g. make the sky a warm sunset orange"
            )
            controls |= backend_pickers(
                settings, rows, [[("editor", "Editor", "te-editor"), ("thinker", "Thinker", "te-thinker")]]
            )
            with gr.Accordion("Mask (optional): where the edit may change", open=False, elem_id="te-mask-panel"):
                controls["mask"], controls["painted"] = mask_controls(image, "te")
            steps_box, guidance_box, speed = advanced_panel(settings, controls)
            step = controls["step"] = gr.Checkbox(
                False,
                label="Pause after each turn",
                info="step mode: after every critique, edit the refined prompt, give feedback, build on it or accept",
                elem_id="te-step",
            )
            with gr.Row(elem_id="te-run-row"):
                run = gr.Button("Run", variant="primary", elem_id="te-run")
                stop = gr.Button("Stop", variant="stop", elem_id="te-stop")
            if example_rows := examples():
                gr.Examples(example_rows, [image, instruction], label="Examples", examples_per_page=4)
        with gr.Column(scale=3, min_width=420, elem_id="te-view"):
            panel: dict[str, Any] = {}
            viewer, changes = run_viewer(state, settings.public, below_prompt=lambda: panel.update(steering_panel()))

    reveal(run, "te-status")
    run.click(
        actions.make_edit(settings, viewer, history, controls["painted"]),
        [*form.inputs(actions.EDIT_FIELDS, controls), state],
        [*form.outputs(viewer), history],
        api_name="edit",
        show_progress_on=viewer.status,
        **run_options(settings),
    ).then(**newest_turn(viewer, panel["turn"])).then(**changes.show_best(state))
    stop.click(partial(session.stop, which="studio"), state, None, queue=False, api_visibility="private")
    steering_events(settings, viewer, history, state, panel, step)
    for choice in (controls["editor"], speed):
        choice.change(
            actions.editor_defaults, [controls["editor"], speed], [steps_box, guidance_box], api_visibility="private"
        )
    return Studio(viewer, panel["turn"], changes, [image, instruction, controls["mask"]], tabs)


def backend_pickers(settings: Settings, rows: list[dict[str, Any]], lines: list[list[tuple[str, str, str]]]) -> dict:
    """Rows (`lines`) of backend dropdowns, each (field, label, elem_id) with its role first in its field's name, and
    under them a note saying why a backend picked cannot run here (on a public page also which backends are not set
    up on it, which its dropdowns do not list). Returns field name → dropdown."""
    roles = {field: field.split("_")[0] for line in lines for field, *_ in line}
    boxes = {}
    for line in lines:
        with gr.Row():
            for field, label, elem_id in line:
                chosen = getattr(settings, roles[field])
                choices = backend_choices(rows, roles[field], settings.public, chosen)
                boxes[field] = gr.Dropdown(choices, value=chosen, label=label, elem_id=elem_id)

    def note(*names: str) -> gr.Markdown:
        text = backends_note(rows, settings.public, list(zip(roles.values(), names, strict=True)))
        return gr.Markdown(text, visible=bool(text))

    first = backends_note(rows, settings.public, [(role, getattr(settings, role)) for role in roles.values()])
    shown = gr.Markdown(first, visible=bool(first), elem_classes="te-note", elem_id=f"{lines[0][0][2]}-note")
    for box in boxes.values():
        box.change(note, list(boxes.values()), shown, queue=False, api_visibility="private")
    return boxes


def reveal(button: gr.Button, elem_id: str) -> None:
    """When `button` is pressed, the page scrolls `elem_id` (where the results begin) into view if it is not: on a
    phone the results lie far below the button."""
    button.click(None, js=REVEAL.replace("ID", elem_id), api_visibility="private")


def advanced_panel(settings: Settings, controls: dict[str, Any]) -> tuple[gr.Number, gr.Number, Any]:
    """The Studio's Advanced panel: its controls go into `controls` (field name → component); returns the steps and
    guidance boxes and the speed, which the editor's defaults fill in."""
    steps, guidance = actions.editor_defaults(settings.editor, settings.speed)
    with gr.Accordion("Advanced", open=False, elem_id="te-advanced"):
        with gr.Row():
            controls["max_turns"] = turns_slider(settings, elem_id="te-max-turns")
            controls["threshold"] = threshold_slider(
                settings, info="stop when both scores reach it", elem_id="te-threshold"
            )
        controls["first_turn"] = gr.Radio(list(FIRST_TURN_STRATEGIES), value=settings.first_turn, label="First turn")
        with gr.Row():
            controls["seed"] = gr.Number(DEFAULTS.seed, precision=0, label="Seed")
            controls["randomize"] = gr.Checkbox(False, label="Random seed")
        controls["seed_per_turn"] = gr.Radio(
            list(SEED_PER_TURN),
            value=settings.seed_per_turn,
            label="Seed per turn",
            info="same: turns differ only by their prompt, as in the paper; increment: turn n uses seed + n - 1",
            elem_id="te-seed-per-turn",
        )
        with gr.Row():
            # a placeholder keeps an empty box empty: without one Gradio shows (and sends) 0
            steps_box = controls["steps"] = gr.Number(
                steps, precision=0, label="Steps", info="empty: the editor's default", placeholder=EDITORS_DEFAULT
            )
            guidance_box = controls["guidance"] = gr.Number(
                guidance, label="Guidance", info="empty: the editor's default", placeholder=EDITORS_DEFAULT
            )
        controls |= model_and_url_boxes(settings)
        speed = controls["speed"] = speed_box(settings)
        controls |= early_stop_boxes()
    return steps_box, guidance_box, speed


def mask_controls(image: gr.Image, prefix: str) -> tuple[gr.Image, gr.ImageEditor]:
    """(a mask image to upload, Gradio's image editor over the uploaded image to paint the region in): white in the
    mask and whatever is painted may change, the rest is kept exactly. A new image clears the painting."""
    painter = gr.ImageEditor(
        label="Mask (optional): paint where the edit may change",
        type="pil",
        image_mode="RGBA",
        sources=(),
        transforms=(),
        layers=False,
        brush=gr.Brush(colors=[("#ff2d95", 0.6)], color_mode="fixed"),
        eraser=gr.Eraser(),
        format="png",
        height=280,
        placeholder="Upload the image above; then paint here where it may change",
        elem_id=f"{prefix}-painter",
    )
    with gr.Accordion("…or upload a mask image (white may change, black is kept)", open=False):
        upload = gr.Image(show_label=False, sources=["upload", "clipboard"], height=140, elem_id=f"{prefix}-mask")
    image.change(actions.mask_canvas, image, painter, api_visibility="private", preprocess=False)
    return upload, painter


def run_viewer(
    state: gr.State, public: bool, below_prompt: Callable[[], None] | None = None
) -> tuple[actions.Viewer, actions.Changes]:
    """One run as the Studio shows it: status, progress, turns, slider, what changed, reasoning, table, zip and
    JSON; `below_prompt` adds components under the refined prompt (the Studio's steering panel)."""
    status = gr.Textbox(label="Status", interactive=False, elem_id="te-status")
    progress = gr.HTML(IDLE_PROGRESS, elem_id="te-progress")
    gallery = turn_gallery(
        "Turns (click one to go on from it and see what changed)", columns=3, height=236, elem_id="te-gallery"
    )
    with gr.Row(equal_height=False):
        slider = gr.ImageSlider(label="Source ↔ best turn", type="pil", max_height=300, elem_id="te-slider")
        changes = changes_view(gallery, state, public)
    with gr.Row(equal_height=False):
        reasoning = gr.Textbox(
            label="Thinker's reasoning", lines=7, max_lines=7, interactive=False, elem_id="te-reasoning", scale=2
        )
        refined = gr.Textbox(
            label="Refined prompt (edit it, then Continue)",
            lines=7,
            max_lines=7,
            interactive=True,
            elem_id="te-refined",
        )
    if below_prompt is not None:
        below_prompt()
    table = gr.Dataframe(
        headers=TABLE_HEADERS,
        datatype="str",
        label="Turn by turn",
        interactive=False,
        wrap=True,
        elem_id="te-table",
        # widths in pixels: on a narrow screen the table scrolls sideways instead of breaking its words letter by letter
        column_widths=TURN_COLUMN_WIDTHS,
    )
    download = gr.File(label="Download this run (.zip: PNGs + trajectory.json)", elem_id="te-download")
    with gr.Accordion("trajectory.json", open=False):
        trajectory = gr.JSON(label="Trajectory")
    viewer = actions.Viewer(
        gallery=gallery,
        progress=progress,
        reasoning=reasoning,
        refined=refined,
        table=table,
        slider=slider,
        status=status,
        download=download,
        trajectory=trajectory,
    )
    return viewer, changes


def changes_view(gallery: gr.Gallery, state: gr.State, public: bool) -> actions.Changes:
    """ "What changed": the difference between the source and a turn, drawn over the source (lossless PNG), for the
    turn clicked in `gallery` (after a run: its best turn), with a line saying what it shows. `/changes` (the
    turn's place in the gallery, 0 first) asks for it by API."""
    with gr.Column():
        picture = gr.Image(
            label="What changed", type="filepath", format="png", interactive=False, height=300, elem_id="te-changes"
        )
        note = gr.Textbox(show_label=False, lines=2, interactive=False, elem_id="te-changes-note")
        index = gr.Number(visible=False, precision=0)

    def select_turn(current: session.Session, event: gr.SelectData) -> tuple:
        return actions.show_changes(event.index, current, public)

    def changes(index: int, current: session.Session) -> tuple:
        """What changed in turn `index` (its place in the turn gallery, 0 first) of the run the Studio shows: the
        picture (PNG) and a line saying what it shows."""
        return actions.show_changes(index, current, public)

    gallery.select(select_turn, state, [picture, note], api_visibility="private")
    index.change(changes, [index, state], [picture, note], api_name="changes", preprocess=False)
    return actions.Changes(picture=picture, note=note)


def steering_panel() -> dict[str, Any]:
    """Go on from a turn: which turn (a click in the gallery chooses it), how many new turns, the person's feedback
    or a new stage's instruction, and the buttons. The refined prompt box above is the prompt Continue uses."""
    panel: dict[str, Any] = {}
    with gr.Group(elem_id="te-steer"):
        with gr.Row(equal_height=True):
            panel["turn"] = gr.Number(
                label="Go on from turn",
                precision=0,
                minimum=1,
                elem_id="te-turn",
                info="click a turn to choose it",
                placeholder="run first",
            )
            panel["new_turns"] = gr.Slider(*MAX_TURNS_RANGE, value=1, step=1, label="New turns", elem_id="te-new-turns")
        panel["feedback"] = gr.Textbox(
            label="Your feedback on this turn", placeholder="e.g. less sepia, keep the vignette", elem_id="te-feedback"
        )
        panel["stage"] = gr.Textbox(
            label="Instruction for a new stage on this turn's image (Build on this)",
            placeholder="e.g. now add a thin white border",
            elem_id="te-stage-instruction",
        )
        with gr.Row(elem_classes="te-steer-buttons"):
            panel["continue"] = gr.Button("Continue", variant="primary", elem_id="te-continue")
            panel["send_feedback"] = gr.Button("Send feedback", elem_id="te-send-feedback")
            panel["build_on"] = gr.Button("Build on this", elem_id="te-build-on")
        with gr.Row(elem_classes="te-steer-buttons"):
            panel["accept"] = gr.Button("Accept (my pick)", elem_id="te-accept")
            panel["up"] = gr.Button("Rate up", elem_id="te-up")
            panel["down"] = gr.Button("Rate down", elem_id="te-down")
    return panel


def steering_events(
    settings: Settings, viewer: actions.Viewer, history: gr.Gallery, state: gr.State, panel: dict, step: gr.Checkbox
) -> None:
    """The steering panel's buttons, and /continue and /rate for API callers (hidden components, like the MCP tools)."""
    go_on, rate = actions.make_continue(settings, viewer, history), actions.make_rate(settings, viewer, history)
    outputs, private = [*form.outputs(viewer), history], dict(api_visibility="private", **run_options(settings))
    pick = dict(fn=selected_turn, inputs=viewer.trajectory, outputs=[panel["turn"], viewer.refined, viewer.reasoning])
    viewer.gallery.select(**pick, api_visibility="private")

    def run_of(record: Any) -> str:
        if not isinstance(record, dict) or not record.get("run_dir"):
            raise refused("Run an edit first, or open a saved run, to go on from one of its turns.", settings.public)
        return record["run_dir"]

    def go(way: str) -> Callable:
        def steer(record, turn, text, turns, paused, current) -> Iterator[dict]:
            asked = {"build_on": True, "instruction": text} if way == "build_on" else {way: text}
            yield from go_on(run_of(record), turn, max_turns=turns, step=paused, session=current, **asked)

        return steer

    for button, way, text in (("continue", "prompt", viewer.refined), ("send_feedback", "feedback", panel["feedback"])):
        inputs = [viewer.trajectory, panel["turn"], text, panel["new_turns"], step, state]
        panel[button].click(go(way), inputs, outputs, **private).then(**newest_turn(viewer, panel["turn"]))
    inputs = [viewer.trajectory, panel["turn"], panel["stage"], panel["new_turns"], step, state]
    panel["build_on"].click(go("build_on"), inputs, outputs, **private).then(**newest_turn(viewer, panel["turn"]))
    for button, verdict in (("accept", "pick"), ("up", "up"), ("down", "down")):

        def judge(record, turn, current, verdict=verdict) -> Iterator[dict]:
            yield from rate(run_of(record), turn, verdict, session=current)

        panel[button].click(judge, [viewer.trajectory, panel["turn"], state], outputs, api_visibility="private")

    with gr.Group(visible=False):
        asked = {
            "run": gr.Textbox(label="Run id"),
            "from_turn": gr.Number(label="From turn", precision=0),
            "prompt": gr.Textbox(label="Prompt"),
            "feedback": gr.Textbox(label="Feedback"),
            "build_on": gr.Checkbox(label="Build on"),
            "instruction": gr.Textbox(label="Instruction of the new stage"),
            "max_turns": gr.Number(actions.CONTINUE_FIELDS["max_turns"], label="New turns", precision=0),
            "step": gr.Checkbox(label="Step mode"),
        }
        verdict = {
            "run": gr.Textbox(label="Run id"),
            "turn": gr.Number(label="Turn", precision=0),
            "verdict": gr.Dropdown(list(VERDICTS), value=None, label="Verdict"),
        }
    continue_inputs = [*form.inputs(actions.CONTINUE_FIELDS, asked), state]
    gr.on([], go_on, continue_inputs, outputs, api_name="continue", **run_options(settings))
    gr.on([], rate, [*form.inputs(actions.RATE_FIELDS, verdict), state], outputs, api_name="rate", preprocess=False)


def selected_turn(record: Any, event: gr.SelectData) -> tuple:
    """The turn a click in the gallery chose (read from its caption: "Turn 4 …"), its refined prompt and reasoning."""
    caption = event.value.get("caption") if isinstance(event.value, dict) else None
    found = re.match(r"Turn (\d+)", caption or "")
    index = int(found.group(1)) if found else None
    turns = record.get("turns", []) if isinstance(record, dict) else []
    turn = next((t for t in turns if t.get("index") == index), None)
    if turn is None:  # a turn of a run still going: its prompt arrives with the run's end
        return index, gr.skip(), gr.skip()
    return index, turn.get("refined_prompt") or "", turn.get("reasoning") or ""


def newest_turn(viewer: actions.Viewer, turn: gr.Number) -> dict:
    """After a run, a continuation or opening a run: the steering panel goes on from the run's newest turn."""

    def newest(record: Any) -> Any:
        turns = record.get("turns", []) if isinstance(record, dict) else []
        return max((t["index"] for t in turns), default=None) if turns else gr.skip()

    return dict(fn=newest, inputs=viewer.trajectory, outputs=turn, api_visibility="private")


def compare_tab(
    settings: Settings, rows: list[dict[str, Any]], state: gr.State, history: gr.Gallery, studio: Studio
) -> None:
    """One image and instruction, two ways at once, same seed; either side opens in the Studio to go on from it."""
    gr.Markdown("One image and instruction, two ways at once, same seed.")
    controls = {}  # field name (actions.COMPARE_FIELDS) → the component that gives it
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            image = controls["image"] = gr.Image(
                label="Image", sources=["upload", "clipboard"], height=220, elem_id="te-c-image"
            )
            with gr.Accordion("Mask (optional)", open=False):
                controls["mask"], painter = mask_controls(image, "te-c")
            controls["painted"] = painter
            controls["instruction"] = instruction_box(elem_id="te-c-instruction")
            controls["mode"] = gr.Radio(list(actions.COMPARE_MODES), value=actions.COMPARE_MODES[0], label="Compare")
            sides = [
                [(f"{role}_{side}", f"{role.capitalize()} {side.upper()}", f"te-c-{role}-{side}") for side in "ab"]
                for role in ("editor", "thinker")
            ]
            controls |= backend_pickers(settings, rows, sides)
            with gr.Row():
                controls["max_turns"], controls["threshold"] = turns_slider(settings), threshold_slider(settings)
                controls["seed"] = gr.Number(DEFAULTS.seed, precision=0, label="Seed")
            with gr.Row():
                run = gr.Button("Compare", variant="primary", elem_id="te-c-run")
                stop = gr.Button("Stop", variant="stop")
            with gr.Row():
                go_on = {
                    side: gr.Button(f"Go on from {side.upper()} in the Studio", elem_id=f"te-c-continue-{side}")
                    for side in ("a", "b")
                }
        with gr.Column(scale=3, min_width=420):
            with gr.Row(equal_height=False):
                status_a, gallery_a = side_column("a")
                status_b, gallery_b = side_column("b")
            slider = gr.ImageSlider(label="Best of A ↔ best of B", type="pil", max_height=300, elem_id="te-c-slider")
            summary = gr.Dataframe(
                headers=SUMMARY_HEADERS,
                datatype="str",
                interactive=False,
                wrap=True,
                column_widths=["44%", "15%", "15%", "11%", "15%"],
                label="Summary",
                elem_id="te-c-summary",
            )
            with gr.Accordion("Trajectories (JSON)", open=False):
                trajectories = gr.JSON(label="Trajectories")

    comparison = actions.Comparison(
        gallery_a=gallery_a,
        gallery_b=gallery_b,
        status_a=status_a,
        status_b=status_b,
        slider=slider,
        summary=summary,
        trajectories=trajectories,
    )
    reveal(run, "te-c-status-a")
    run.click(
        actions.make_compare(settings, comparison, history, painter),
        [*form.inputs(actions.COMPARE_FIELDS, controls), state],
        [*form.outputs(comparison), history],
        api_name="compare",
        show_progress_on=[status_a, status_b],
        **run_options(settings),
    )
    stop.click(partial(session.stop, which="compare"), state, None, queue=False, api_visibility="private")
    go_on_in_studio(settings, go_on, trajectories, state, studio)


def go_on_in_studio(settings: Settings, buttons: dict, trajectories: gr.JSON, state: gr.State, studio: Studio) -> None:
    """Each side's button opens its run in the Studio, to go on from there."""
    for side, button in buttons.items():
        opening = button.click(
            partial(actions.open_side, side=side, settings=settings, viewer=studio.viewer),
            [trajectories, state],
            form.outputs(studio.viewer),
            api_visibility="private",
            show_progress_on=studio.viewer.status,
        )
        studio.opened(opening, state)


def side_column(side: str) -> tuple[gr.Textbox, gr.Gallery]:
    """One side of a comparison: its status above its turns."""
    with gr.Column():
        status = gr.Textbox(label=side.upper(), interactive=False, lines=4, max_lines=8, elem_id=f"te-c-status-{side}")
        gallery = turn_gallery(side.upper(), columns=2, height=220, elem_id=f"te-c-gallery-{side}")
    return status, gallery


def history_tab(
    settings: Settings,
    state: gr.State,
    history: gr.Gallery,
    tab: gr.Tab,
    studio: Studio,
    kept: gr.BrowserState | None,
) -> None:
    """This session's runs (outside public mode this browser's, kept across reloads); a click reopens one in the
    Studio. Saved runs open from their zip (or folder)."""
    viewer = studio.viewer
    gr.Markdown(HISTORY_KEPT if kept else HISTORY_NOT_KEPT[settings.public], elem_id="te-h-note")
    history.render()
    index = gr.Number(visible=False, precision=0)
    with gr.Accordion("Open a saved run", open=False):
        with gr.Row():
            upload = gr.File(label="Run zip", file_types=[".zip"], type="filepath", elem_id="te-h-zip")
            folder = gr.Textbox(
                label="Run folder on the server",
                visible=not settings.public,
                info="or a zip, not both",
                elem_id="te-h-folder",
            )
        open_button = gr.Button("Open", elem_id="te-h-open")

    listed = tab.select(lambda current: current.gallery(), state, history, api_name="history")

    def select_history(current: session.Session, event: gr.SelectData) -> dict:
        return actions.open_history(event.index, current, viewer, settings)

    opening = history.select(
        select_history, state, form.outputs(viewer), api_visibility="private", show_progress_on=viewer.status
    )
    studio.opened(opening, state)
    # raw input: a wrong type gets our sentence
    open_history = partial(actions.open_history, viewer=viewer, settings=settings)
    index.change(open_history, [index, state], form.outputs(viewer), api_name="history_open", preprocess=False)
    opening = open_button.click(
        partial(actions.open_saved, settings=settings, viewer=viewer, history=history),
        [upload, folder, state],
        [*form.outputs(viewer), history],
        api_name="open_run",
    )
    studio.opened(opening, state)
    if kept is not None:
        keep_history(settings, state, history, kept, listed)


HISTORY_KEPT = (
    "This browser's runs, newest first, kept across reloads (the page keeps their ids in the browser; the runs "
    "themselves stay in the runs folder). Click one to open it in the Studio."
)
HISTORY_NOT_KEPT = {  # public page → what History says
    False: "This session's runs, newest first. Click one to open it in the Studio. Reloading the page empties this "
    "list (--no-keep-history or THINKEDIT_KEEP_HISTORY=0 is set); the runs stay in the runs folder.",
    True: "This visit's runs, newest first. Click one to open it in the Studio. This page keeps no list of your runs: "
    "reloading it empties History, so download a run's zip to keep it (and open it again below).",
}


def history_keeper(settings: Settings) -> gr.BrowserState | None:
    """Where the browser keeps History (Gradio's BrowserState, in its local storage: the ids of its runs), or None
    where History does not outlive a reload (public mode, or the operator turned it off)."""
    if settings.public or not settings.keep_history:
        return None
    # Gradio encrypts what it keeps with this key. Outside public mode the page opens any run by its folder, so the
    # ids are no secret; the key is the runs folder's own, so that History outlives a restart of the app.
    key = hashlib.sha256(str(Path(settings.runs_dir).resolve()).encode()).hexdigest()
    return gr.BrowserState([], storage_key=HISTORY_KEY, secret=key)


def keep_history(settings: Settings, state: gr.State, history: gr.Gallery, kept: gr.BrowserState, listed: Any) -> None:
    """History kept in the browser: the runs it kept come back into the session (once, `Session.restore`) when History
    is opened (`listed`: the tab's select) and before History is written back, each time it changes. The runs stay in
    the runs folder; an id that names no run there is passed over."""

    # Not on page load: an event then may run before Gradio's own page-load event has made the session's state,
    # which would make a second one (and restore into that).
    def restore(entries: Any, current: session.Session) -> list:
        current.restore(entries, settings.runs_dir)
        return current.gallery()

    def write(current: session.Session, entries: Any) -> list:
        current.restore(entries, settings.runs_dir)  # what the browser kept stays kept
        return current.kept()

    listed.then(restore, [kept, state], history, api_visibility="private")
    history.change(write, [state, kept], kept, api_visibility="private", queue=False)


HISTORY_KEY = "thinkedit-history"


def benchmarks_tab(settings: Settings, state: gr.State, tab: gr.Tab) -> None:
    """`thinkedit eval` results: the summary table, per-category O (single-shot vs the loop), and the samples
    sorted by the loop's gain — where the loop helps, and where it hurts."""
    where = "" if settings.public else f" (`{settings.evals_dir}`)"
    gr.Markdown(f"Eval folders made by `thinkedit eval --out …` inside the evals folder{where}.")
    with gr.Row():
        folder = gr.Dropdown(
            benchmarks.eval_choices(settings), label="Eval", allow_custom_value=True, scale=4, elem_id="te-b-eval"
        )
        refresh = gr.Button("Refresh", scale=1)
        show = gr.Button("Open", variant="primary", scale=1, elem_id="te-b-open")
    summary = gr.Markdown(elem_id="te-b-summary")
    table = gr.Dataframe(label="Category × mode", interactive=False, wrap=True, elem_id="te-b-table")
    chart = plot_image("O per category: every mode, the loop's best turn and its last turn", "te-b-chart")
    spent = plot_image(
        "Quality against compute: each mode, and the loop (and best-of-N) after each turn", "te-b-compute"
    )
    samples = gr.State([])
    gallery = turn_gallery(
        "Samples, largest gain first (the loop's result)",
        columns=6,
        height="auto",  # every row whole: a fixed height cut the second row off
        allow_preview=False,
        elem_id="te-b-gallery",
    )
    with gr.Row(equal_height=False):
        picked = [
            gr.Image(label=label, type="filepath", interactive=False, height=240, elem_id=f"te-b-{name}")
            for name, label in (("source", "Source"), ("single", "Single-shot"), ("loop", "Think-while-Edit"))
        ]
    details = gr.Textbox(label="Scores and the loop's prompts", lines=6, interactive=False, elem_id="te-b-details")
    index = gr.Number(visible=False, precision=0)

    def select_sample(shown: list, event: gr.SelectData, current: session.Session) -> tuple:
        return benchmarks.show_sample(shown, event.index, current, settings.public)

    def fresh_choices() -> gr.Dropdown:
        return gr.Dropdown(choices=benchmarks.eval_choices(settings))

    outputs = [summary, table, chart, gallery, samples, spent]
    show.click(partial(benchmarks.open_eval, settings=settings), [folder, state], outputs, api_name="benchmark")
    refresh.click(fresh_choices, None, folder, api_visibility="private")
    tab.select(fresh_choices, None, folder, api_visibility="private")
    gallery.select(select_sample, [samples, state], [*picked, details], api_visibility="private")
    index.change(
        partial(benchmarks.show_sample, public=settings.public),
        [samples, index, state],
        [*picked, details],
        api_name="benchmark_sample",
        preprocess=False,
    )


def plot_image(label: str, elem_id: str) -> gr.Image:
    """A plot the server drew (a PNG file), shown as it is."""
    return gr.Image(label=label, type="filepath", interactive=False, format="png", elem_id=elem_id)


def instruction_box(**options) -> gr.Textbox:
    return gr.Textbox(label="Instruction", lines=2, max_length=MAX_INSTRUCTION_CHARS, **options)


def turns_slider(settings: Settings, **options) -> gr.Slider:
    return gr.Slider(*MAX_TURNS_RANGE, value=settings.max_turns, step=1, label="Max turns", **options)


def threshold_slider(settings: Settings, **options) -> gr.Slider:
    return gr.Slider(*THRESHOLD_RANGE, value=settings.threshold, step=0.5, label="Stop threshold", **options)


def turn_gallery(label: str, **options) -> gr.Gallery:
    return gr.Gallery(label=label, object_fit="contain", fit_columns=False, elem_classes="te-gallery", **options)


def speed_box(settings: Settings):
    """The speed (`--speed`), or (public mode) the server's, which the page cannot change."""
    if settings.public:
        return gr.State(settings.speed)
    return gr.Dropdown(
        list(SPEEDS),
        value=settings.speed,
        label="Speed",
        elem_id="te-speed",
        info="fast: the editor's cache, compilation or few-step LoRA; a compiled thinker on CUDA",
    )


EDITORS_DEFAULT = "the editor's default"
TURN_COLUMN_WIDTHS = [f"{width}px" for width in (64, 260, 92, 84, 76, 84, 60, 116, 84, 84, 68, 76)]
EARLY_STOPS = {  # field → (label, what it does, whole number)
    "patience": ("Patience", "empty or 0: off; K: stop when the best score has not risen for K turns", True),
    "budget_seconds": ("Budget (seconds)", "empty or 0: off; stop once edit + think seconds reach it", False),
    "budget_tokens": ("Budget (tokens)", "empty or 0: off; stop once the thinker's tokens reach it", True),
}


def early_stop_boxes() -> dict:
    """Patience and the compute budgets by field name; empty (or 0): off. The best turn so far is kept when one
    ends the run."""
    with gr.Row(elem_id="te-early-stop"):
        return {
            name: gr.Number(
                None,
                precision=0 if whole else None,
                label=label,
                info=info,
                placeholder="off",
                elem_id=f"te-{name.replace('_', '-')}",
            )
            for name, (label, info, whole) in EARLY_STOPS.items()
        }


def model_and_url_boxes(settings: Settings) -> dict:
    """Editor/thinker model, URL and key boxes by field name (`choices.CHOICES`), or (public mode) placeholders
    that carry nothing.

    A URL other than the server's gets none of the server's keys; a key typed here goes with the request only
    (it is never shown again, saved or logged)."""
    if settings.public:
        return {name: gr.State(None) for name in CHOICES}
    boxes = {}
    for role, url_hint in (("editor", "http://…"), ("thinker", "http://…/v1")):
        title, configured = role.capitalize(), settings.role(role)
        with gr.Row():
            boxes[f"{role}_model"] = gr.Textbox(configured.model, label=f"{title} model", placeholder="default")
            boxes[f"{role}_url"] = gr.Textbox(configured.url, label=f"{title} URL", placeholder=url_hint)
            boxes[f"{role}_key"] = gr.Textbox(label=f"{title} API key", type="password", placeholder="for your own URL")
    return boxes
