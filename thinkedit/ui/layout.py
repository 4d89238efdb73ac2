"""The page: a Studio tab (one run, live), a Compare tab (two runs side by side) and a History tab."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import gradio as gr

from ..config import FIRST_TURN_STRATEGIES, MAX_TURNS_RANGE, Settings
from ..registry import backend_rows
from . import actions
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
#te-history { --te-thumb: 110px; }
"""

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
    rows = backend_rows(settings)
    editors, thinkers = actions.backend_choices(rows, "editor"), actions.backend_choices(rows, "thinker")
    steps, guidance = actions.editor_defaults(settings.editor)
    run_options = dict(concurrency_limit=settings.ui_concurrency, concurrency_id="runs", preprocess=False)

    # analytics off here too, not only through app.py's environment: importing thinkedit.ui must not turn them on
    with gr.Blocks(title="ThinkEdit — Think-while-Edit studio", delete_cache=GRADIO_CACHE_CLEANUP,
                   analytics_enabled=False) as demo:  # fmt: skip
        # Gradio calls new_session on each page load and end_session once that tab has been closed for a while.
        session = gr.State(actions.new_session, delete_callback=actions.end_session)
        gr.Markdown(INTRO, elem_id="te-header")
        with gr.Tabs() as tabs:
            with gr.Tab("Studio", id="studio"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=320):
                        image = gr.Image(label="Image", sources=["upload", "clipboard", "webcam"],
                                         height=280, elem_id="te-image")  # fmt: skip
                        instruction = gr.Textbox(label="Instruction", lines=2, max_length=2000, elem_id="te-instruction",
                                                 placeholder="e.g. make the sky a warm sunset orange")  # fmt: skip
                        with gr.Row():
                            editor = gr.Dropdown(editors, value=settings.editor, label="Editor", elem_id="te-editor")
                            thinker = gr.Dropdown(
                                thinkers, value=settings.thinker, label="Thinker", elem_id="te-thinker"
                            )
                        with gr.Accordion("Advanced", open=False, elem_id="te-advanced"):
                            with gr.Row():
                                max_turns = gr.Slider(*MAX_TURNS_RANGE, value=settings.max_turns, step=1,
                                                      label="Max turns", elem_id="te-max-turns")  # fmt: skip
                                threshold = gr.Slider(0, 10, value=settings.threshold, step=0.5, label="Stop threshold",
                                                      info="stop when both scores reach it", elem_id="te-threshold")  # fmt: skip
                            first_turn = gr.Radio(list(FIRST_TURN_STRATEGIES), value=settings.first_turn,
                                                  label="First turn")  # fmt: skip
                            with gr.Row():
                                seed = gr.Number(0, precision=0, label="Seed")
                                randomize = gr.Checkbox(False, label="Random seed")
                            with gr.Row():
                                steps_box = gr.Number(
                                    steps, precision=0, label="Steps", info="empty: the editor's default"
                                )
                                guidance_box = gr.Number(guidance, label="Guidance", info="empty: the editor's default")
                            if settings.public:
                                model_boxes = [gr.State(None) for _ in range(4)]
                            else:
                                with gr.Row():
                                    model_boxes = [
                                        gr.Textbox(settings.editor_model, label="Editor model", placeholder="default"),
                                        gr.Textbox(settings.editor_url, label="Editor URL", placeholder="http://…"),
                                    ]
                                with gr.Row():
                                    model_boxes += [
                                        gr.Textbox(
                                            settings.thinker_model, label="Thinker model", placeholder="default"
                                        ),
                                        gr.Textbox(
                                            settings.thinker_url, label="Thinker URL", placeholder="http://…/v1"
                                        ),
                                    ]
                        with gr.Row():
                            run = gr.Button("Run", variant="primary", elem_id="te-run")
                            stop = gr.Button("Stop", variant="stop", elem_id="te-stop")
                        if examples():
                            gr.Examples(examples(), [image, instruction], label="Examples", examples_per_page=4)
                    with gr.Column(scale=3, min_width=420):
                        status = gr.Textbox(label="Status", interactive=False, elem_id="te-status")
                        progress = gr.HTML(IDLE_PROGRESS, elem_id="te-progress")
                        gallery = gr.Gallery(label="Turns", columns=3, height=236, object_fit="contain",
                                             fit_columns=False, elem_id="te-gallery", elem_classes="te-gallery")  # fmt: skip
                        with gr.Row(equal_height=False):
                            slider = gr.ImageSlider(label="Source ↔ best turn", type="pil", max_height=300,
                                                    elem_id="te-slider")  # fmt: skip
                            with gr.Column():
                                reasoning = gr.Textbox(label="Thinker's reasoning", lines=7, max_lines=7,
                                                       interactive=False, elem_id="te-reasoning")  # fmt: skip
                                refined = gr.Textbox(label="Refined prompt", lines=2, interactive=False,
                                                     elem_id="te-refined")  # fmt: skip
                        table = gr.Dataframe(headers=TABLE_HEADERS, datatype="str", label="Turn by turn",
                                             interactive=False, wrap=True, elem_id="te-table",
                                             column_widths=["8%", "40%", "14%", "13%", "12%", "13%"])  # fmt: skip
                        download = gr.File(label="Download this run (.zip: PNGs + trajectory.json)",
                                           elem_id="te-download")  # fmt: skip
                        with gr.Accordion("trajectory.json", open=False):
                            trajectory = gr.JSON(label="Trajectory")

            with gr.Tab("Compare", id="compare"):
                gr.Markdown("One image and instruction, two ways at once, same seed.")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=320):
                        c_image = gr.Image(label="Image", sources=["upload", "clipboard"], height=220,
                                           elem_id="te-c-image")  # fmt: skip
                        c_instruction = gr.Textbox(label="Instruction", lines=2, max_length=2000,
                                                   elem_id="te-c-instruction")  # fmt: skip
                        mode = gr.Radio(list(actions.COMPARE_MODES), value=actions.COMPARE_MODES[0], label="Compare")
                        with gr.Row():
                            editor_a = gr.Dropdown(editors, value=settings.editor, label="Editor A")
                            editor_b = gr.Dropdown(editors, value=settings.editor, label="Editor B")
                        with gr.Row():
                            thinker_a = gr.Dropdown(thinkers, value=settings.thinker, label="Thinker A")
                            thinker_b = gr.Dropdown(thinkers, value=settings.thinker, label="Thinker B")
                        with gr.Row():
                            c_turns = gr.Slider(*MAX_TURNS_RANGE, value=settings.max_turns, step=1, label="Max turns")
                            c_threshold = gr.Slider(0, 10, value=settings.threshold, step=0.5, label="Stop threshold")
                            c_seed = gr.Number(0, precision=0, label="Seed")
                        with gr.Row():
                            c_run = gr.Button("Compare", variant="primary", elem_id="te-c-run")
                            c_stop = gr.Button("Stop", variant="stop")
                    with gr.Column(scale=3, min_width=420):
                        with gr.Row(equal_height=False):
                            with gr.Column():
                                status_a = gr.Textbox(label="A", interactive=False, lines=3, max_lines=3,
                                                      elem_id="te-c-status-a")  # fmt: skip
                                gallery_a = gr.Gallery(label="A", columns=2, height=220, object_fit="contain",
                                                       fit_columns=False, elem_id="te-c-gallery-a",
                                                       elem_classes="te-gallery")  # fmt: skip
                            with gr.Column():
                                status_b = gr.Textbox(label="B", interactive=False, lines=3, max_lines=3,
                                                      elem_id="te-c-status-b")  # fmt: skip
                                gallery_b = gr.Gallery(label="B", columns=2, height=220, object_fit="contain",
                                                       fit_columns=False, elem_id="te-c-gallery-b",
                                                       elem_classes="te-gallery")  # fmt: skip
                        c_slider = gr.ImageSlider(label="Best of A ↔ best of B", type="pil", max_height=300,
                                                  elem_id="te-c-slider")  # fmt: skip
                        summary = gr.Dataframe(headers=SUMMARY_HEADERS, datatype="str", interactive=False, wrap=True,
                                               column_widths=["44%", "15%", "15%", "11%", "15%"], label="Summary",
                                               elem_id="te-c-summary")  # fmt: skip
                        with gr.Accordion("Trajectories (JSON)", open=False):
                            c_trajectories = gr.JSON(label="Trajectories")

            with gr.Tab("History", id="history") as history_tab:
                gr.Markdown("This session's runs, newest first. Click one to open it in the Studio.")
                history = gr.Gallery(label="Runs", columns=6, height=380, allow_preview=False, object_fit="contain",
                                     fit_columns=False, elem_id="te-history", elem_classes="te-gallery")  # fmt: skip
                history_index = gr.Number(visible=False, precision=0)
                with gr.Accordion("Open a saved run", open=False):
                    with gr.Row():
                        upload = gr.File(label="Run zip", file_types=[".zip"], type="filepath")
                        folder = gr.Textbox(label="Run folder on the server", visible=not settings.public)
                    open_button = gr.Button("Open")

        viewer = [gallery, progress, reasoning, refined, table, slider, status, download, trajectory]
        edit_inputs = [image, instruction, editor, thinker, max_turns, threshold, first_turn, seed, randomize,
                       steps_box, guidance_box, *model_boxes, session]  # fmt: skip
        run.click(actions.make_edit(settings), edit_inputs, [*viewer, history], api_name="edit", **run_options)
        stop.click(partial(actions.stop, which="studio"), session, None, queue=False, api_visibility="private")
        editor.change(actions.editor_defaults, editor, [steps_box, guidance_box], api_visibility="private")

        compare_inputs = [c_image, c_instruction, mode, editor_a, editor_b, thinker_a, thinker_b, c_turns,
                          c_threshold, c_seed, session]  # fmt: skip
        compare_outputs = [gallery_a, gallery_b, status_a, status_b, c_slider, summary, c_trajectories, history]
        c_run.click(actions.make_compare(settings), compare_inputs, compare_outputs, api_name="compare", **run_options)
        c_stop.click(partial(actions.stop, which="compare"), session, None, queue=False, api_visibility="private")

        to_studio = dict(fn=lambda: gr.Tabs(selected="studio"), outputs=tabs, api_visibility="private")
        history_tab.select(actions.history_gallery, session, history, api_name="history")
        history.select(select_history, session, viewer, api_visibility="private").then(**to_studio)
        history_index.change(actions.open_history, [history_index, session], viewer, api_name="history_open")
        open_button.click(partial(actions.open_saved, public=settings.public), [upload, folder, session],
                          [*viewer, history], api_name="open_run").success(**to_studio)  # fmt: skip
    return demo


def select_history(session: dict, event: gr.SelectData) -> tuple:
    return actions.open_history(event.index, session)
