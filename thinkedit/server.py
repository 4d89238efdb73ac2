"""`python -m thinkedit serve-editor`: any of our editors behind EditThinker's editing-server protocol.

    POST /edit   {image: base64 PNG, prompt, num_inference_step(s), guidance_scale, width, height, seed}
              -> {success, edited_image: base64 PNG, error, seed, processing_time}
    GET  /health -> {status, editor, model, in_flight, max_queue}

So a GPU box can serve a laptop's UI (`--editor http --editor-url http://gpu-box:8005`), and the paper's
own clients can use our servers. Bad requests get a 4xx and a reason. One edit at a time per GPU
(`runtime.gpu_turn`); up to `max_queue` more wait, beyond that the answer is 503 with Retry-After. The
output has the editor's size: the input's for the diffusion editors, which map back to it themselves, and
the asked shape for a rotation or a crop (width/height are accepted and checked, not used);
`enhance_prompt` is accepted and ignored: prompts are refined by the thinker, not here. An edit
whose client hangs up is stopped at its next step. There is no authentication: bind to 127.0.0.1 or a
private network.
"""

import argparse
import asyncio
import base64
import binascii
import json
import threading
import time
from typing import Any

from PIL import Image

from . import runtime
from .backend import name_of
from .config import MAX_INSTRUCTION_CHARS, add_backend_arguments, settings_from_args
from .errors import BadInput, Cancelled, ThinkEditError
from .images import check_size, editor_output, load_image, png_bytes
from .registry import build_backend

MAX_QUEUE = 8
MAX_BODY_MB = 64.0
BUSY_RETRY_SECONDS = 5
DISCONNECT_POLL_SECONDS = 0.5


class Refused(Exception):
    """A request answered with `status` and `reason` instead of an edit."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def parse_edit_request(body: bytes) -> dict[str, Any]:
    """The /edit JSON checked field by field; `Refused` (400/413/422) with the reason otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"The body is not JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise Refused(400, "The body must be a JSON object.")
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise Refused(422, "prompt is missing or empty: say what to change in the image.")
    if len(prompt) > MAX_INSTRUCTION_CHARS:
        raise Refused(422, f"prompt is {len(prompt)} characters long; the limit is {MAX_INSTRUCTION_CHARS}.")
    steps = data.get("num_inference_steps", data.get("num_inference_step"))
    request = {
        "image": _image(data.get("image")),
        "prompt": prompt.strip(),
        "steps": _number(steps, "num_inference_steps", int, 1, 500),
        "guidance": _number(data.get("guidance_scale"), "guidance_scale", float, 0.0, 100.0),
        "seed": _number(data.get("seed"), "seed", int, 0, 2**63 - 1),
    }
    width = _number(data.get("width"), "width", int, 1, 1 << 16)
    height = _number(data.get("height"), "height", int, 1, 1 << 16)
    if width and height:
        try:
            check_size(width, height)
        except BadInput as exc:
            raise Refused(413, str(exc)) from None
    return request


def _image(value: Any) -> Image.Image:
    if not isinstance(value, str) or not value:
        raise Refused(422, "image is missing: send the source image as a base64-encoded PNG or JPEG.")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(400, "image is not valid base64.") from None
    try:
        return load_image(data)
    except BadInput as exc:
        status = 413 if "megapixels" in str(exc) else 400
        raise Refused(status, f"image: {exc}") from None


def _number(value: Any, name: str, kind: type, low: float, high: float):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise Refused(422, f"{name} must be a {'whole ' if kind is int else ''}number, not {value!r}.")
    if not low <= value <= high:
        raise Refused(422, f"{name} must be from {low:g} to {high:g}, not {value}.")
    return kind(value)


class Admission:
    """Counts edits running or waiting; refuses a new one once `1 + max_queue` are in."""

    def __init__(self, max_queue: int):
        self.limit = 1 + max(0, max_queue)
        self.in_flight = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.in_flight >= self.limit:
                return False
            self.in_flight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def create_app(editor, *, max_queue: int = MAX_QUEUE, max_body_mb: float = MAX_BODY_MB):
    """The FastAPI app serving `editor` (any object with the editor protocol)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    # No `from __future__ import annotations` in this module: FastAPI reads `request: Request` at runtime.
    app = FastAPI(title="ThinkEdit editing server", docs_url=None, redoc_url=None)
    admission = Admission(max_queue)
    max_body = int(max_body_mb * 1024 * 1024)
    name = name_of(editor)

    def refusal(status: int, reason: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"success": False, "edited_image": None, "error": reason}, status, headers=headers)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "editor": name, "model": getattr(editor, "model", None),
                "in_flight": admission.in_flight, "max_queue": admission.limit - 1}  # fmt: skip

    @app.post("/edit")
    async def edit(request: Request):
        try:
            body = await _read_body(request, max_body)
            job = parse_edit_request(body)
        except Refused as exc:
            return refusal(exc.status, exc.reason)
        if not admission.enter():
            return refusal(503, f"The server is busy: {admission.limit} edits are running or queued; try again "
                           "shortly.", {"Retry-After": str(BUSY_RETRY_SECONDS)})  # fmt: skip
        stop = threading.Event()
        seed = job["seed"] % 2**32 if job["seed"] is not None else time.time_ns() % 2**32

        def on_step(step: int, total: int) -> None:
            if stop.is_set():
                raise Cancelled

        def work() -> Image.Image:
            with runtime.gpu_turn(editor):
                on_step(0, 0)
                return editor.edit(job["image"], job["prompt"], seed=seed, steps=job["steps"],
                                   guidance=job["guidance"], on_step=on_step)  # fmt: skip

        started = time.perf_counter()
        try:
            task = asyncio.ensure_future(run_in_threadpool(work))
            while not task.done():
                await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
                if not task.done() and await request.is_disconnected():
                    stop.set()
            edited = task.result()
        except Cancelled:
            return refusal(499, "The client went away; the edit was stopped.")
        except BadInput as exc:
            return refusal(400, str(exc))
        except ThinkEditError as exc:
            return refusal(500, str(exc))
        except Exception as exc:  # noqa: BLE001 - the client gets the reason, the server stays up
            return refusal(500, f"The editor failed: {type(exc).__name__}: {exc}")
        finally:
            admission.leave()
        try:
            edited = editor_output(edited)  # the editor's own size: a rotation or a crop changes the shape
        except ThinkEditError as exc:
            return refusal(500, str(exc))
        return {
            "success": True,
            "edited_image": base64.b64encode(png_bytes(edited)).decode("ascii"),
            "error": None,
            "seed": seed,
            "processing_time": round(time.perf_counter() - started, 3),
        }

    return app


async def _read_body(request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"The request is {int(declared) / 2**20:.1f} MB; the limit is {limit / 2**20:g} MB.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"The request is larger than the {limit / 2**20:g} MB limit.")
        chunks.append(chunk)
    return b"".join(chunks)


# -- the subcommand ----------------------------------------------------------------------------------


def register(commands) -> None:
    parser = commands.add_parser("serve-editor", help="serve an editor over EditThinker's editing-server protocol")
    add_backend_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; no auth)")
    parser.add_argument("--port", type=int, default=8005, help="port (default 8005)")
    parser.add_argument("--max-queue", type=int, default=MAX_QUEUE, help=f"edits that may wait (default {MAX_QUEUE})")
    parser.add_argument("--max-body-mb", type=float, default=MAX_BODY_MB, help="largest request accepted, in MB")
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = settings_from_args(args)
    editor = build_backend("editor", settings)
    app = create_app(editor, max_queue=args.max_queue, max_body_mb=args.max_body_mb)
    print(f"Serving the {settings.editor} editor on http://{args.host}:{args.port} (POST /edit, GET /health)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
