"""ThinkEdit as MCP tools for agents: `think_edit` runs the loop and returns the best image and a summary;
`continue_edit` goes on from a turn of one of its runs, so an agent can steer too.

With MCP on (`python app.py --mcp`, THINKEDIT_MCP=1) Gradio serves the tools at /gradio_api/mcp/. They are marked
with `gr.mcp.tool`, and `fix_gradio_mcp` makes Gradio serve only marked endpoints: agents never see the page's own
endpoints, which stay public for gradio_client and the API page.

A run's id (the `run` of a summary) is all `continue_edit` needs: 64 random bits, given only to whoever made the run.
On a public server that id is the only way to a run (no folder is named); elsewhere a folder in the runs folder works.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import unquote, urlparse

import gradio as gr
from gradio_client.utils import is_http_url_like

from .. import admission, loop, steer
from ..compute import Prices, Tokens, cost
from ..config import DEFAULTS, Settings
from ..errors import BadInput, ThinkEditError
from ..registry import backend_rows, build_backend
from ..requests import make_request
from ..schema import shown_best
from ..store import SavedRun, holds_run
from . import actions
from .choices import shown_rows, user_settings
from .messages import refused
from .paths import confined
from .received import fetched_image, received_file
from .view import without_paths

UPLOADED = "/gradio_api/file="  # how Gradio names a file uploaded to this app (POST /gradio_api/upload)
SEND_IMAGE_AS = "Send the image as a data URL (data:image/png;base64,…) or the URL of a file uploaded here."


def add_tools(settings: Settings, rows: list[dict[str, Any]], run_options: dict) -> None:
    """Add `think_edit`, `continue_edit` and `list_backends` to the Blocks being built: API-only endpoints on hidden
    components; the runs are queued like the page's (`run_options`: how many at once, the raw input passed on) and
    `think_edit` offers the backends of `rows` (the page's `backend_rows`)."""
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
            gr.Textbox(label="Mask (data URL or upload URL)"),
            gr.Number(None, precision=0, label="Patience"),
            gr.Number(None, label="Budget (seconds)"),
            gr.Number(None, precision=0, label="Budget (tokens)"),
        ]
        outputs = [gr.Image(type="pil", format="png", label="Best turn"), gr.Textbox(label="Summary (JSON)")]
        backends = gr.Textbox(label="Backends (JSON)")
        going_on = [
            gr.Textbox(label="Run id"),
            gr.Number(label="From turn", precision=0),
            gr.Textbox(label="Prompt"),
            gr.Textbox(label="Feedback"),
            gr.Checkbox(label="Build on"),
            gr.Textbox(label="Instruction of the new stage"),
            gr.Number(1, precision=0, label="New turns"),
            gr.Checkbox(label="Step mode"),
        ]
    gr.on([], make_think_edit(settings), inputs, outputs, api_name="think_edit", **run_options)
    gr.on([], make_continue_edit(settings), going_on, outputs, api_name="continue_edit", **run_options)
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


def tool_image(value: str | None, public: bool, deadline: float = 60.0) -> bytes | str | None:
    """The tool's `image` argument as something `load_image` reads.

    A data URL is decoded; the URL of a file uploaded to this app is read from Gradio's upload folder. Any
    other http(s) URL is fetched as Gradio fetches file URLs (public addresses only, every redirect checked), at
    most an upload's size within `deadline` seconds (`received.fetched_image`), except in public mode, where the
    tool never fetches a URL the caller names.
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
    return fetched_image(text, deadline)


def progress_report(event: loop.Event, max_turns: int, before: int = 0) -> tuple[tuple[int, int], str] | None:
    """(turns done of max_turns, what is happening) for `gr.Progress`, which MCP clients get as notifications;
    `before`: the turns a run held before this request (a continuation's turns are numbered after them)."""
    if isinstance(event, loop.TurnFinished):
        turn = event.turn
        scores = f"semantic {turn.critique.semantic}, quality {turn.critique.quality}"
        return (turn.index - before, max_turns), f"turn {turn.index} done, {scores}"
    if isinstance(event, loop.EditStep):
        doing = f"turn {event.index} editing, step {event.step}/{event.total}"
    elif isinstance(event, loop.TurnStarted):
        doing = f"turn {event.index} editing"
    elif isinstance(event, loop.ThinkingStarted):  # think_edit uses the instruction as is: no thinking before turn 1
        doing = f"turn {event.index} thinking"
    else:
        return None
    return (max(0, event.index - 1 - before), max_turns), doing


def summary(trajectory: loop.Trajectory, notices: list[str], prices: Prices | None = None) -> dict[str, Any]:
    """What an agent needs from a run: each turn's prompt, scores, refined prompt, drift, compute, the turn it
    continues and who wrote its prompt; the best turn (the person's pick when there is one), why it stopped, the
    masked region, the run's compute (and its estimated cost at the server's prices), and the run id (its folder's
    name under the runs folder)."""
    record = trajectory.record()
    keys = ("prompt", "semantic", "quality", "refined_prompt", "drift", "parent", "by")
    keys += ("edit_seconds", "think_seconds", "gpu_seconds", "tokens")
    compute = record["compute"]
    best = shown_best(record)
    return {
        "run": trajectory.run_dir.name if holds_run(trajectory.run_dir) else None,
        "editor": record["editor"],
        "thinker": record["thinker"],
        "turns": [{"turn": turn["index"], **{key: turn[key] for key in keys}} for turn in record["turns"]],
        "best_turn": best,
        "best_by": "person" if record["picked_turn"] is not None else "thinker",
        "thinker_best_turn": record["best_turn"],
        "stages": record["stages"],
        "region": record["region"],
        "stop_reason": record["stop_reason"],
        "stopped_because": loop.stop_message(record),
        "error": record["error"],
        "notices": notices,
        "seconds": record["seconds"],
        "compute": compute,
        "cost": cost(compute["gpu_seconds"], Tokens.read(compute["tokens"]).total, prices or Prices()),
    }


def answer(job: loop.Job, settings: Settings, progress: gr.Progress) -> tuple:
    """Run a tool's job, reporting progress; (the best turn's image, the run's summary as JSON)."""
    notices, trajectory, started = [], None, job.continues.first_index - 1 if job.continues else 0
    events = loop.run_jobs([job], edit_timeout=settings.edit_timeout, think_timeout=settings.thinker_timeout)
    for _, event in events:
        if (report := progress_report(event, job.request.max_turns, started)) is not None:
            progress(report[0], desc=report[1], unit="turns")
        elif isinstance(event, loop.Notice):
            notices.append(event.message)
        elif isinstance(event, loop.RunFinished):
            trajectory = event.trajectory
    text = summary(trajectory, notices, Prices.of(settings))
    best = next((turn for turn in trajectory.turns if turn.index == text["best_turn"]), None)
    if best is not None:
        image = best.image
    elif text["best_turn"] is not None and holds_run(trajectory.run_dir):  # a turn an earlier request made
        image = SavedRun(trajectory.run_dir, trajectory.record()).image(text["best_turn"])
    else:  # nothing was edited: the run's error is the answer
        raise refused(trajectory.error or "The run ended before any edit was made.", settings.public)
    text = json.dumps(text, ensure_ascii=False)
    return image, without_paths(text) if settings.public else text


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
        mask=None,
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
            mask: optional, the region the edit may change, as an image the size of the image (white may change, black is kept exactly), sent like the image; empty for no mask.
            patience: optional (0 or absent: off); stop when the best score has not risen for this many turns (the best turn is kept).
            budget_seconds: optional (0 or absent: off); stop once the run's edit and think seconds reach this.
            budget_tokens: optional (0 or absent: off); stop once the thinker's prompt and completion tokens reach this.

        Returns:
            The best turn's image (PNG), and a JSON summary: for each turn its prompt, semantic and quality scores, refined prompt, drift (changed: share of the image that changed noticeably; outside: share changed outside the mask, or null) and compute (edit_seconds, think_seconds, gpu_seconds: null without a GPU, tokens: prompt and completion, null when not reported); the best turn; the mask in words (region); why the run stopped (stop_reason: threshold, prompt_kept, no_answer, max_turns, patience, budget_seconds, budget_tokens, error; stopped_because: the same in words); any notices; the run's compute totals and its estimated cost (null unless the server sets prices); and the run id.
        """
        with contextlib.ExitStack() as holding:
            try:
                source = tool_image(image, settings.public, settings.request_timeout)
                holding.enter_context(admission.admitted(settings, source))  # the page's memory budget
                fence = tool_image(mask, settings.public, settings.request_timeout) if mask else None
                rules = actions.loop_rules(settings)
                options = dict(max_turns=max_turns, threshold=threshold, seed=seed, mask=fence, **rules)
                options |= dict(patience=patience, budget_seconds=budget_seconds, budget_tokens=budget_tokens)
                request = make_request(source, instruction, **options)
                run_settings = user_settings(settings, editor, thinker, {})
                job = actions.job(run_settings, request)
            except ThinkEditError as exc:
                raise refused(exc, settings.public) from None
            return answer(job, run_settings, progress)

    return think_edit


def make_continue_edit(settings: Settings):
    """The `continue_edit` tool for these server settings."""

    @gr.mcp.tool()
    def continue_edit(
        run,
        from_turn,
        prompt=None,
        feedback=None,
        build_on=False,
        instruction=None,
        max_turns=1,
        step=False,
        progress=gr.Progress(),  # noqa: B008 - how Gradio asks for a progress tracker
    ):
        """Go on from a turn of a run that think_edit (or continue_edit) made: edit again with your own prompt, let the thinker answer your feedback on the turn first, or build on the turn's image as a new stage with a new instruction. With none of prompt, feedback and build_on, it goes on with the thinker's refined prompt of that turn. The new turns are added to the same run, as children of that turn.

        Args:
            run: the run id, as think_edit's summary gives it ("run").
            from_turn: the turn to go on from (its number in the summary's turns).
            prompt: the next prompt in your words, instead of the thinker's refined prompt (at most 2,000 characters).
            feedback: what you think of the turn, e.g. "less sepia, keep the vignette"; the thinker critiques the turn again with it, and its refined prompt makes the next edit.
            build_on: true to edit the turn's image further (a new stage), with instruction.
            instruction: the new stage's instruction (with build_on only).
            max_turns: how many new turns, 1 to 10 (default 1).
            step: true to pause after every critique.

        Returns:
            The best turn's image (PNG), and the run's JSON summary: every turn (its prompt, scores, refined prompt, parent: the turn it continues, and by: who wrote its prompt, instruction, thinker or person), the best turn, why it stopped, and the run id.
        """
        try:
            saved = steer.open_run(tool_run(run, settings))
            run_settings = steer.run_settings(settings, saved)
            editor, thinker = build_backend("editor", run_settings), build_backend("thinker", run_settings)
            asked = dict(prompt=prompt or None, feedback=feedback or None, instruction=instruction or None)
            request, continuation = steer.plan(
                saved, from_turn, build_on=build_on, max_turns=max_turns, step=step, thinker=thinker, **asked
            )
        except ThinkEditError as exc:
            raise refused(exc, settings.public) from None
        return answer(loop.Job(editor, thinker, request, saved.path, continuation), run_settings, progress)

    return continue_edit


def tool_run(run: Any, settings: Settings):
    """The folder of the run a tool names: its id in the runs folder, or (outside public mode) a folder there."""
    text = run.strip() if isinstance(run, str) else ""
    if not text:
        raise BadInput("Name the run to go on from: the run id of think_edit's summary.")
    if settings.public and not text.replace("-", "").isalnum():
        raise BadInput("Name the run by its id (the summary's run); this server opens no folder by name.")
    return confined(text, settings)


def make_list_backends(settings: Settings):
    """The `list_backends` tool (Gradio names a tool after its function and describes it from the docstring)."""

    @gr.mcp.tool()
    def list_backends() -> str:
        """List the editors and thinkers that think_edit can use, and whether each can run on this server.

        Returns:
            A JSON list: for each backend its role (editor or thinker), name, whether it is available here (and if not, why), and what it is.
        """
        keys = ("role", "name", "available", "reason", "description")
        rows = shown_rows(backend_rows(settings), settings.public)
        return json.dumps([{key: row[key] for key in keys} for row in rows], ensure_ascii=False)

    return list_backends
