"""ThinkEdit as MCP tools for agents: `think_edit` runs the loop and returns the best image and a summary.

With MCP on (`python app.py --mcp`, THINKEDIT_MCP=1) Gradio serves the tools at /gradio_api/mcp/. Both are marked
with `gr.mcp.tool`, and `fix_gradio_mcp` makes Gradio serve only marked endpoints: agents never see the page's own
endpoints, which stay public for gradio_client and the API page.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import unquote, urlparse

import gradio as gr
from gradio import processing_utils
from gradio.utils import get_upload_folder
from gradio_client.utils import is_http_url_like

from .. import loop
from ..compute import Prices, Tokens, cost
from ..config import DEFAULTS, Settings
from ..errors import BadInput, ThinkEditError
from ..registry import backend_rows
from ..requests import make_request
from ..schema import trajectory_record
from ..store import holds_run
from . import actions
from .choices import user_settings
from .messages import refused
from .received import received_file
from .view import without_paths

UPLOADED = "/gradio_api/file="  # how Gradio names a file uploaded to this app (POST /gradio_api/upload)
SEND_IMAGE_AS = "Send the image as a data URL (data:image/png;base64,…) or the URL of a file uploaded here."


def add_tools(settings: Settings, rows: list[dict[str, Any]], run_options: dict) -> None:
    """Add `think_edit` and `list_backends` to the Blocks being built: API-only endpoints on hidden components;
    `think_edit` is queued like the page's runs (`run_options`: how many at once, the raw input passed on) and
    offers the backends of `rows` (the page's `backend_rows`)."""
    fix_gradio_mcp()
    names = {role: [row["name"] for row in rows if row["role"] == role] for role in ("editor", "thinker")}
    with gr.Group(visible=False):
        inputs = [
            gr.Textbox(label="Image (data URL or upload URL)"),
            gr.Textbox(label="Instruction"),
            gr.Dropdown(names["editor"], value=settings.editor, label="Editor"),
            gr.Dropdown(names["thinker"], value=settings.thinker, label="Thinker"),
            gr.Number(settings.max_turns, precision=0, label="Max turns"),
            gr.Number(settings.threshold, label="Stop threshold"),
            gr.Number(0, precision=0, label="Seed"),
            gr.Number(None, precision=0, label="Patience"),
            gr.Number(None, label="Budget (seconds)"),
            gr.Number(None, precision=0, label="Budget (tokens)"),
        ]
        outputs = [gr.Image(type="pil", format="png", label="Best turn"), gr.Textbox(label="Summary (JSON)")]
        backends = gr.Textbox(label="Backends (JSON)")
    gr.on([], make_think_edit(settings), inputs, outputs, api_name="think_edit", **run_options)
    gr.on([], make_list_backends(settings), None, backends, api_name="list_backends", queue=False)


def fix_gradio_mcp() -> None:
    """Two changes to Gradio 6.31's MCP server (`GradioMCPServer`), made once per process.

    1. It makes a tool of every public endpoint, the page's /edit, /compare, /history… too (their only other
       visibility, "undocumented", would cost gradio_client its keyword arguments). Where an app marks endpoints
       with `gr.mcp.tool` (or as resources or prompts), only the marked ones are served.
    2. When a client asks for no progress, it wraps `job.result()` in a list, and a result with several outputs is
       already a tuple of them: the agent got one text of the tuple instead of the image and the summary.
    """
    from gradio.mcp import GradioMCPServer

    if getattr(GradioMCPServer, "fixed_by_thinkedit", False):
        return
    all_tools, execute = GradioMCPServer.get_tool_to_endpoint, GradioMCPServer._execute_tool_without_progress

    def marked_tools(self) -> dict[str, str]:
        tools = all_tools(self)
        marked = {
            name: endpoint
            for name, endpoint in tools.items()
            if hasattr(self.get_block_fn_from_endpoint_name(endpoint).fn, "_mcp_type")
        }
        return marked or tools

    async def unwrapped(self, job) -> list:
        data = await execute(self, job)
        return list(data[0]) if len(data) == 1 and isinstance(data[0], tuple) else data

    GradioMCPServer.get_tool_to_endpoint = marked_tools
    GradioMCPServer._execute_tool_without_progress = unwrapped
    GradioMCPServer.fixed_by_thinkedit = True


def tool_image(value: str | None, public: bool) -> bytes | str | None:
    """The tool's `image` argument as something `load_image` reads.

    A data URL is decoded; the URL of a file uploaded to this app is read from Gradio's upload folder. Any
    other http(s) URL is fetched with Gradio's own SSRF-protected download (public addresses only), except in
    public mode, where the tool never fetches a URL the caller names.
    """
    if not isinstance(value, str | None):
        raise BadInput(SEND_IMAGE_AS)
    text = (value or "").strip()
    if not text:
        return None  # load_image: "No image: …"
    if text.startswith("data:"):
        return actions.data_url_bytes(text)
    if not is_http_url_like(text):
        raise BadInput(SEND_IMAGE_AS)
    path = unquote(urlparse(text).path.partition(UPLOADED)[2])
    if path:  # the URL of a file uploaded here is read from the upload folder; any other is a URL like others
        with contextlib.suppress(BadInput):
            return received_file(path)
    if public:
        raise BadInput("This public demo does not fetch images from URLs: send a data URL or upload the image here.")
    try:
        return processing_utils.ssrf_protected_download(text, get_upload_folder())
    except Exception as exc:  # noqa: BLE001 - refused address, HTTP error, timeout: one sentence
        raise BadInput(f"The image at {text} could not be downloaded ({exc}).") from None


def progress_report(event: loop.Event, max_turns: int) -> tuple[tuple[int, int], str] | None:
    """(turns done of max_turns, what is happening) for `gr.Progress`, which MCP clients get as notifications."""
    if isinstance(event, loop.EditStep):
        return (event.index - 1, max_turns), f"turn {event.index} editing, step {event.step}/{event.total}"
    if isinstance(event, loop.TurnStarted):
        return (event.index - 1, max_turns), f"turn {event.index} editing"
    if isinstance(event, loop.ThinkingStarted):  # think_edit uses the instruction as is: no thinking before turn 1
        return (event.index - 1, max_turns), f"turn {event.index} thinking"
    if isinstance(event, loop.TurnFinished):
        turn = event.turn
        scores = f"semantic {turn.critique.semantic}, quality {turn.critique.quality}"
        return (turn.index, max_turns), f"turn {turn.index} done, {scores}"
    return None


def summary(trajectory: loop.Trajectory, notices: list[str], prices: Prices | None = None) -> dict[str, Any]:
    """What an agent needs from a run: each turn's prompt, scores, refined prompt and compute, the best turn, why it
    stopped, the run's compute (and its estimated cost at the server's prices), and the run id (its folder's name
    under the runs folder)."""
    record = trajectory_record(trajectory)
    keys = ("prompt", "semantic", "quality", "refined_prompt", "edit_seconds", "think_seconds", "gpu_seconds", "tokens")
    compute = record["compute"]
    return {
        "run": trajectory.run_dir.name if holds_run(trajectory.run_dir) else None,
        "editor": record["editor"],
        "thinker": record["thinker"],
        "turns": [{"turn": turn["index"], **{key: turn[key] for key in keys}} for turn in record["turns"]],
        "best_turn": record["best_turn"],
        "stop_reason": record["stop_reason"],
        "stopped_because": loop.stop_message(record),
        "error": record["error"],
        "notices": notices,
        "seconds": record["seconds"],
        "compute": compute,
        "cost": cost(compute["gpu_seconds"], Tokens.read(compute["tokens"]).total, prices or Prices()),
    }


def make_think_edit(settings: Settings):
    """The `think_edit` tool for these server settings."""

    @gr.mcp.tool()
    def think_edit(
        image,
        instruction,
        editor=DEFAULTS.editor,
        thinker=DEFAULTS.thinker,
        max_turns=DEFAULTS.max_turns,
        threshold=DEFAULTS.threshold,
        seed=DEFAULTS.seed,
        patience=DEFAULTS.patience,
        budget_seconds=DEFAULTS.budget_seconds,
        budget_tokens=DEFAULTS.budget_tokens,
        progress=gr.Progress(),  # noqa: B008 - how Gradio asks for a progress tracker
    ):
        """Edit an image with Think-while-Edit: an image editor edits, a multimodal thinker scores the edit (semantic and quality, 0-10) and rewrites the instruction, and the loop repeats until the edit is good enough. Every turn edits the original image again; the best turn is returned, not the last.

        Args:
            image: the image to edit, as a data URL (data:image/png;base64,...) or as the URL of a file uploaded to this app (POST /gradio_api/upload, e.g. with Gradio's upload_file_to_gradio tool); outside a public demo, a public http(s) image URL also works.
            instruction: what to change in the image, in plain words (at most 2,000 characters).
            editor: the image editor (list_backends says which can run here).
            thinker: the thinker that critiques each edit and refines the instruction.
            max_turns: at most this many edits, 1 to 10.
            threshold: stop as soon as both scores reach this, 0 to 10.
            seed: the editor's seed; every turn uses it, so turns differ only by their prompt (as in the paper's loop).
            patience: optional (0 or absent: off); stop when the best score has not risen for this many turns (the best turn is kept).
            budget_seconds: optional (0 or absent: off); stop once the run's edit and think seconds reach this.
            budget_tokens: optional (0 or absent: off); stop once the thinker's prompt and completion tokens reach this.

        Returns:
            The best turn's image (PNG), and a JSON summary: for each turn its prompt, semantic and quality scores, refined prompt and compute (edit_seconds, think_seconds, gpu_seconds: null without a GPU, tokens: prompt and completion, null when not reported); the best turn; why the run stopped (stop_reason: threshold, prompt_kept, no_answer, max_turns, patience, budget_seconds, budget_tokens, error; stopped_because: the same in words); any notices; the run's compute totals and its estimated cost (null unless the server sets prices); and the run id.
        """
        try:
            options = dict(
                max_turns=max_turns,
                threshold=threshold,
                seed=seed,
                patience=patience,
                budget_seconds=budget_seconds,
                budget_tokens=budget_tokens,
                **actions.loop_rules(settings),
            )
            request = make_request(tool_image(image, settings.public), instruction, **options)
            run_settings = user_settings(settings, editor, thinker, {})
            job = actions.job(run_settings, request)
        except ThinkEditError as exc:
            raise refused(exc, settings.public) from None
        notices, trajectory = [], None
        events = loop.run_jobs(
            [job], edit_timeout=run_settings.edit_timeout, think_timeout=run_settings.thinker_timeout
        )
        for _, event in events:
            if (report := progress_report(event, request.max_turns)) is not None:
                progress(report[0], desc=report[1], unit="turns")
            elif isinstance(event, loop.Notice):
                notices.append(event.message)
            elif isinstance(event, loop.RunFinished):
                trajectory = event.trajectory
        best = trajectory.best_turn
        if best is None:  # nothing was edited: the run's error is the answer
            raise refused(trajectory.error or "The run ended before any edit was made.", settings.public)
        text = json.dumps(summary(trajectory, notices, Prices.of(settings)), ensure_ascii=False)
        return best.image, without_paths(text) if settings.public else text

    return think_edit


def make_list_backends(settings: Settings):
    """The `list_backends` tool (Gradio names a tool after its function and describes it from the docstring)."""

    @gr.mcp.tool()
    def list_backends() -> str:
        """List the editors and thinkers that think_edit can use, and whether each can run on this server.

        Returns:
            A JSON list: for each backend its role (editor or thinker), name, whether it is available here (and if not, why), and what it is.
        """
        keys = ("role", "name", "available", "reason", "description")
        return json.dumps([{key: row[key] for key in keys} for row in backend_rows(settings)], ensure_ascii=False)

    return list_backends
