"""`python -m thinkedit serve-editor`: any of our editors behind EditThinker's editing-server protocol.

    POST /edit   {image: base64 PNG, prompt, num_inference_step(s), guidance_scale, width, height, seed}
              -> {success, edited_image: base64 PNG, error, seed, processing_time}
    GET  /health -> {status, editor, model, in_flight, max_queue}

So a GPU box can serve a laptop's UI (`--editor http --editor-url http://gpu-box:8005`), and the paper's
own clients can use our servers. Bad requests get a 4xx and a reason, checked by `make_request` as on
every surface. One edit at a time per GPU (`runtime.gpu_turn`); up to `max_queue` more wait, beyond that the
answer is 503 with Retry-After, sent from the headers before the body is read. A waiting request holds only
its body; decoding, the edit and encoding run in worker threads, so the event loop (and /health) never
waits on an image. A connection slow to send its headers, or an admitted body slow to arrive, is closed or
refused after `--header-timeout` / `--body-timeout` seconds. The output has the editor's size: the input's
for the diffusion editors, which map back to it themselves, and the asked shape for a rotation or a crop
(width/height are accepted and checked, not used); `enhance_prompt` is accepted and ignored: prompts are
refined by the thinker, not here. An edit whose client hangs up is stopped at its next step. There is no
authentication: bind to 127.0.0.1 or a private network.
"""

import argparse
import asyncio
import base64
import json
import threading
import time
from typing import Any

from . import runtime
from .backend import name_of
from .config import add_backend_arguments, number_flag, settings_from_args
from .errors import BadInput, Cancelled, ThinkEditError
from .images import base64_bytes, check_size, editor_output, png_bytes
from .registry import build_backend
from .requests import EditRequest, make_request, number

MAX_QUEUE = 8
MAX_BODY_MB = 64.0
BODY_TIMEOUT_S = 60.0  # an admitted request holds its place while its body arrives: not forever
HEADER_TIMEOUT_S = 5.0  # uvicorn's keep-alive timeout, stretched over the wait for a request's headers
BUSY_RETRY_SECONDS = 5
DISCONNECT_POLL_SECONDS = 0.5


class Refused(Exception):
    """A request answered with `status` and `reason` instead of an edit."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def parse_edit_request(body: bytes | bytearray, seed: int) -> EditRequest:
    """The /edit JSON as an `EditRequest`, checked by `make_request`; `BadInput` (a 400) with the reason otherwise.

    `seed` is used when the request names none.
    """
    try:
        data = json.loads(body)
    except RecursionError:
        raise BadInput("The body is not JSON this server reads: it is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"The body is not JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise BadInput("The body must be a JSON object.")
    width = number(data.get("width"), "width", 1, 1 << 16, whole=True, optional=True)
    height = number(data.get("height"), "height", 1, 1 << 16, whole=True, optional=True)
    if width and height:
        check_size(width, height)
    return make_request(
        base64_bytes(data.get("image")),
        data.get("prompt"),
        seed=seed if data.get("seed") is None else data["seed"],
        steps=data.get("num_inference_steps", data.get("num_inference_step")),
        guidance=data.get("guidance_scale"),
    )


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


def create_app(
    editor, *, max_queue: int = MAX_QUEUE, max_body_mb: float = MAX_BODY_MB, body_timeout: float = BODY_TIMEOUT_S
):
    """The FastAPI app serving `editor` (any object with the editor protocol).

    A request is admitted or refused from its headers alone, before its body is read; an admitted one holds
    only its body (at most `max_body_mb`, arriving within `body_timeout` seconds) until its turn, and all
    image work (decoding, the edit, encoding the answer) runs in a worker thread, never on the event loop.
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import Response
    from starlette.concurrency import run_in_threadpool

    # No `from __future__ import annotations` in this module: FastAPI reads `request: Request` at runtime.
    app = FastAPI(title="ThinkEdit editing server", docs_url=None, redoc_url=None)
    admission = Admission(max_queue)
    max_body = int(max_body_mb * 1024 * 1024)
    name = name_of(editor)

    @app.get("/health")
    async def health() -> dict:  # on the event loop: worker threads may all be waiting for the GPU
        return {
            "status": "ok",
            "editor": name,
            "model": getattr(editor, "model", None),
            "in_flight": admission.in_flight,
            "max_queue": admission.limit - 1,
        }

    @app.post("/edit")
    async def edit(request: Request):
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body:
            return _refusal(413, f"The request is {int(declared) / 2**20:.1f} MB; the limit is {max_body_mb:g} MB.")
        if not admission.enter():
            return _refusal(
                503,
                f"The server is busy: {admission.limit} edits are running or queued; try again shortly.",
                {"Retry-After": str(BUSY_RETRY_SECONDS)},
            )
        stop = threading.Event()
        try:
            body = await _read_body(request, max_body, body_timeout)
            task = asyncio.ensure_future(run_in_threadpool(_edit, editor, body, stop))
            while not task.done():
                await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
                if not task.done() and await request.is_disconnected():
                    stop.set()
            return Response(task.result(), media_type="application/json")
        except Exception as exc:  # noqa: BLE001 - the client gets the reason, the server stays up
            return _refusal_for(exc)
        finally:
            admission.leave()

    return app


def _edit(editor, body: bytearray, stop: threading.Event) -> bytes:
    """One admitted request, in a worker thread: wait for the GPU, parse, edit, encode; `stop` ends it early."""

    def check_stop(*_) -> None:
        if stop.is_set():
            raise Cancelled

    started = time.perf_counter()
    with runtime.gpu_turn(editor, waiting=check_stop):
        check_stop()
        job = parse_edit_request(body, seed=time.time_ns() % 2**32)
        del body[:]  # parsed: the bytes are not needed while the edit runs
        edited = editor.edit(
            job.image, job.instruction, seed=job.seed, steps=job.steps, guidance=job.guidance, on_step=check_stop
        )
    return edit_answer(edited, job.seed, time.perf_counter() - started)


def _refusal(status: int, reason: str, headers: dict | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"success": False, "edited_image": None, "error": reason}, status, headers=headers)


def _refusal_for(exc: Exception):
    """The protocol's answer to an edit that ended in `exc`: bad input is the client's (400), the rest the server's."""
    from starlette.requests import ClientDisconnect

    if isinstance(exc, Refused):
        return _refusal(exc.status, exc.reason)
    if isinstance(exc, Cancelled | ClientDisconnect):
        return _refusal(499, "The client went away; the edit was stopped.")
    if isinstance(exc, BadInput):
        return _refusal(400, str(exc))
    if isinstance(exc, ThinkEditError):
        return _refusal(500, str(exc))
    return _refusal(500, f"The editor failed: {type(exc).__name__}: {exc}")


def edit_answer(edited: Any, seed: int, seconds: float) -> bytes:
    """The protocol's JSON answer: the edit as a PNG."""
    edited = editor_output(edited)  # the editor's own size: a rotation or a crop changes the shape
    png = base64.b64encode(png_bytes(edited)).decode("ascii")
    answer = {
        "success": True,
        "edited_image": png,
        "error": None,
        "seed": seed,
        "processing_time": round(seconds, 3),
    }
    return json.dumps(answer).encode()


async def _read_body(request, limit: int, timeout: float) -> bytearray:
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise Refused(413, f"The request is larger than the {limit / 2**20:g} MB limit.")
    except TimeoutError:
        raise Refused(408, f"The request body did not arrive within {timeout:g} s.") from None
    return body


def server_settings(header_timeout: float = HEADER_TIMEOUT_S) -> dict[str, Any]:
    """uvicorn settings: connections idle, or slow to send a request's headers, are closed after `header_timeout` s."""
    from .http_protocol import HeaderTimeoutProtocol

    return {"http": HeaderTimeoutProtocol, "timeout_keep_alive": header_timeout}


# -- the subcommand ----------------------------------------------------------------------------------


SERVER_FLAGS = [  # flag, its range (anything else is refused with a sentence before the server starts), default, what
    ("--port", number_flag(1, 65535, whole=True), 8005, "port"),
    ("--max-queue", number_flag(0, 10000, whole=True), MAX_QUEUE, "edits that may wait"),
    ("--max-body-mb", number_flag(0.001, 65536), MAX_BODY_MB, "largest request accepted, in MB"),
    (
        "--body-timeout",
        number_flag(0.1, 86400),
        BODY_TIMEOUT_S,
        "seconds an admitted request's body may take to arrive",
    ),
    (
        "--header-timeout",
        number_flag(0.1, 3600),
        HEADER_TIMEOUT_S,
        "seconds a connection may be idle or sending headers",
    ),
]


def register(commands) -> None:
    parser = commands.add_parser("serve-editor", help="serve an editor over EditThinker's editing-server protocol")
    add_backend_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; no auth)")
    for flag, kind, default, what in SERVER_FLAGS:
        parser.add_argument(flag, type=kind, default=default, help=f"{what} (default {default:g})")
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = settings_from_args(args)
    editor = build_backend("editor", settings)
    app = create_app(editor, max_queue=args.max_queue, max_body_mb=args.max_body_mb, body_timeout=args.body_timeout)
    print(f"Serving the {settings.editor} editor on http://{args.host}:{args.port} (POST /edit, GET /health)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", **server_settings(args.header_timeout))
    return 0
