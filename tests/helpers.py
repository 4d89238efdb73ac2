"""The tests' helpers in one place: pictures, stand-in backends, real HTTP servers on 127.0.0.1, and ways to
drive the web app (gradio_client, Gradio's plain HTTP API, raw sockets).

A stand-in backend joins the registry as a copy of the `classic` row whose `target` points here and whose
`options` say how it misbehaves (`register`), so one class serves many faults and the app builds it like any
other. Servers answer each (method, path) with a function of the request (`FakeServer`) and keep what they saw.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import socket
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageChops, ImageOps

from thinkedit.bench import scene
from thinkedit.config import Settings
from thinkedit.critique import format_critique, load_template, parse_critique, render
from thinkedit.editors import EDITORS
from thinkedit.editors.classic import ClassicEditor
from thinkedit.errors import ThinkEditError
from thinkedit.images import png_bytes
from thinkedit.thinkers import THINKERS


class RecordingEditor:
    """Brightens the image by 10 per turn it is called and remembers every input image and prompt."""

    model = "recording-editor"

    def __init__(
        self,
        steps=3,
        fail_on_call=None,
        returns=None,
        hang: threading.Event | None = None,
        step_seconds=0.0,
        silent_seconds=0.0,
    ):
        self.steps = steps
        self.fail_on_call = fail_on_call
        self.returns = returns
        self.hang = hang
        self.step_seconds = step_seconds
        self.silent_seconds = silent_seconds
        self.steps_done = 0
        self.inputs: list[Image.Image] = []
        self.prompts: list[str] = []
        self.seeds: list[int] = []

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        self.inputs.append(image.copy())
        self.prompts.append(prompt)
        self.seeds.append(seed)
        if self.fail_on_call == len(self.inputs):
            raise RuntimeError("the editor broke")
        if self.hang is not None:
            self.hang.wait(30)
        time.sleep(self.silent_seconds)  # loading a model, decoding a VAE: no callbacks for a while
        for step in range(1, self.steps + 1):
            time.sleep(self.step_seconds)
            if on_step:
                on_step(step, self.steps)
            self.steps_done += 1
        if self.returns is not None:
            return self.returns(image)
        return Image.eval(image, lambda v: min(255, v + 10 * len(self.inputs)))


class ScriptedThinker:
    """Answers turn n with script[n-1] = (semantic, quality, refined prompt or None), streamed in chunks."""

    model = "scripted-thinker"

    def __init__(self, script, polished: str | None = None, chunk: int = 7, chunk_seconds: float = 0.0):
        self.script = list(script)
        self.chunk_seconds = chunk_seconds
        self.polished = polished
        self.chunk = chunk
        self.calls: list[dict] = []

    def critique(self, source, edited, instruction, prompt, *, on_token=None):
        self.calls.append({"source": source, "edited": edited, "instruction": instruction, "prompt": prompt})
        semantic, quality, answer = self.script[min(len(self.calls), len(self.script)) - 1]
        text = format_critique(semantic, quality, f"call {len(self.calls)}", answer if answer is not None else "")
        if answer is None:
            text = text.split("<answer>")[0]
        self._stream(text, on_token)
        return parse_critique(text)

    def polish(self, source, instruction, *, on_token=None):
        self._stream(f"<think>polishing</think><answer>{self.polished}</answer>", on_token)
        return self.polished

    def _stream(self, text, on_token):
        for start in range(0, len(text), self.chunk):
            time.sleep(self.chunk_seconds)
            if on_token:
                on_token(text[start : start + self.chunk])


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None


EVIL = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
OUTPUTS = [
    "gallery",
    "progress",
    "reasoning",
    "refined",
    "table",
    "slider",
    "status",
    "download",
    "trajectory",
    "history",
]


def register(monkeypatch, role: str, name: str, target: str, **options) -> str:
    """Add a test backend `name` (a copy of the classic row) to EDITORS or THINKERS for this test."""
    table = EDITORS if role == "editor" else THINKERS
    monkeypatch.setitem(table, name, replace(table["classic"], name=name, target=f"helpers:{target}", options=options))
    return name


class FaultEditor(ClassicEditor):
    """The classic editor, until call number `on_call` of a run: then it does `fault`.

    fault: "raise" (RuntimeError(`message`)) | "none" (returns None) | "resize" (half size, RGBA) | "hang"
    (silent for `hang_s`). With `note`, every image it returns carries that editor note.
    """

    def __init__(self, spec, settings):
        super().__init__(spec, settings)
        self.calls = 0

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        self.calls += 1
        fault = self.spec.options["fault"] if self.calls >= self.spec.options.get("on_call", 1) else None
        if fault == "raise":
            raise RuntimeError(self.spec.options.get("message", "the test editor broke on purpose"))
        if fault == "none":
            return None
        if fault == "hang":
            time.sleep(self.spec.options["hang_s"])
        edited = super().edit(image, prompt, seed=seed, on_step=on_step)
        if fault == "resize":
            return edited.resize((max(1, image.width // 2), max(1, image.height // 2))).convert("RGBA")
        if "note" in self.spec.options:
            edited.info["editor_note"] = self.spec.options["note"]
        return edited


class FaultThinker:
    """Answers every critique with `output` ({prompt} is replaced by the prompt used), or raises
    `ThinkEditError(raise_message)` from call number `raise_on_call` of a run."""

    model = "fault-thinker"

    def __init__(self, spec, settings):
        self.spec = spec
        self.calls = 0

    def critique(self, source, edited, instruction, prompt, *, on_token=None):
        self.calls += 1
        options = self.spec.options
        if self.calls >= options.get("raise_on_call", 10**9):
            raise ThinkEditError(options["raise_message"])
        text = options["output"].replace("{prompt}", prompt)
        if on_token and text:
            on_token(text)
        return parse_critique(text)


class EchoThinker:
    """A naive model that parrots the prompt it was given (the rendered critique template) and adds nothing."""

    model = "echo-thinker"

    def __init__(self, spec, settings):
        self.spec = spec

    def critique(self, source, edited, instruction, prompt, *, on_token=None):
        text = render(load_template("critique"), instruction, prompt)
        if on_token:
            on_token(text)
        return parse_critique(text)


def steady(reasoning: str = "not there yet") -> str:
    """A thinker output that is never satisfied and always asks for a little more."""
    return format_critique(3, 3, reasoning, "{prompt}, a bit more")


class CountingEditor(ClassicEditor):
    """The classic editor, slowed to `seconds` per edit, counting how many edits run at once (all instances)."""

    lock = threading.Lock()
    running = 0
    peak = 0

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        cls = CountingEditor
        with cls.lock:
            cls.running += 1
            cls.peak = max(cls.peak, cls.running)
        try:
            seconds = self.spec.options.get("seconds", 0.3)
            for step in range(1, 5):
                time.sleep(seconds / 4)
                if on_step:
                    on_step(step, 4)
            return super().edit(image, prompt, seed=seed)
        finally:
            with cls.lock:
                cls.running -= 1

    @classmethod
    def reset(cls) -> None:
        cls.running = cls.peak = 0


class GatedEditor(ClassicEditor):
    """The classic editor that waits at its first step until the test opens `gate`; `entered` says one is waiting,
    `calls` counts the edits that began (all instances)."""

    gate = threading.Event()
    entered = threading.Event()
    calls = 0

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        cls = GatedEditor
        cls.calls += 1
        cls.entered.set()
        while not cls.gate.wait(0.05):
            if on_step:
                on_step(0, 1)  # a heartbeat: Stop reaches it here
        return super().edit(image, prompt, seed=seed, on_step=on_step)

    @classmethod
    def reset(cls) -> None:
        cls.gate, cls.entered, cls.calls = threading.Event(), threading.Event(), 0


# -- driving the app ---------------------------------------------------------------------------------


def run_edit(client, image: Any, instruction: str, **options) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Run /edit to the end: (final update as a dict of named outputs, [(toast text, level)] sent on the way)."""
    job = client.submit(image, instruction, api_name="/edit", **options)
    final = dict(zip(OUTPUTS, job.result(), strict=True))
    return final, toasts(job)


def toasts(job) -> list[tuple[str, str]]:
    """The gr.Warning / gr.Info messages a finished job received (gradio_client keeps them as status logs)."""
    updates, found = job.communicator.updates, []
    while not updates.empty():
        log = getattr(updates.get_nowait(), "log", None)
        if log:
            found.append(log)
    return found


def solid(path, color: tuple[int, int, int], size=(64, 48)) -> str:
    Image.new("RGB", size, color).save(path)
    return str(path)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes] = ()  # sent one by one, flushed, `pause` apart (an endless one: until the client leaves)
    pause: float = 0.0
    hang: float = 0.0  # seconds of silence before answering: a server that does not answer


def json_reply(data, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})


def sse_reply(events: list[dict], pause: float = 0.0) -> Reply:
    chunks = [f"data: {json.dumps(event)}\n\n".encode() for event in events] + [b"data: [DONE]\n\n"]
    return Reply(headers={"Content-Type": "text/event-stream"}, chunks=chunks, pause=pause)


def drip(body: bytes, pause: float, headers: dict[str, str] | None = None) -> Reply:
    """`body` one byte every `pause` seconds: each byte is progress to a read timeout."""
    return Reply(
        headers={"Content-Type": "application/json", **(headers or {})}, chunks=[bytes([b]) for b in body], pause=pause
    )


def keep_alive(times: int, pause: float, then: list[dict] = ()) -> Reply:
    """Server-sent `: keep-alive` comments, `times` of them `pause` apart, then the events `then`."""
    comments = [b": keep-alive\n\n"] * times
    events = [f"data: {json.dumps(event)}\n\n".encode() for event in then] + [b"data: [DONE]\n\n"]
    return Reply(headers={"Content-Type": "text/event-stream"}, chunks=comments + events, pause=pause)


def flood(head: bytes, piece: bytes, times: int, content_type: str = "application/json") -> Reply:
    """`head`, then `piece` `times` times (the same bytes object: the server holds one copy), no Content-Length."""
    return Reply(headers={"Content-Type": content_type}, chunks=itertools.chain([head], itertools.repeat(piece, times)))


def chat_chunks(content: list[str], reasoning: list[str] = (), reasoning_field: str = "reasoning_content") -> list:
    """OpenAI `chat.completion.chunk` events: the reasoning pieces first, then the content pieces."""
    deltas = [{reasoning_field: piece} for piece in reasoning] + [{"content": piece} for piece in content]
    return [
        {
            "id": "chat-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "served",
            "choices": [{"index": 0, "delta": {"role": "assistant", **delta}, "finish_reason": None}],
        }
        for delta in deltas
    ]


def in_order(*replies: Reply) -> Callable[[Seen], Reply]:
    """Answer with each reply in turn; the last one repeats."""
    queue = list(replies)

    def answer(_: Seen) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


class FakeServer:
    def __init__(self, routes: dict[tuple[str, str], Callable[[Seen], Reply]]):
        self.routes = routes
        self.seen: list[Seen] = []
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

            def _answer(self, method: str):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen = Seen(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                server.seen.append(seen)
                route = server.routes.get((method, self.path))
                reply = route(seen) if route else json_reply({"error": f"no route {self.path}"}, 404)
                if reply.hang:
                    server.closing.wait(reply.hang)
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    if not reply.chunks:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    for chunk in reply.chunks:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        if server.closing.wait(reply.pause):
                            break
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up: what cancellation does

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def free_port() -> int:
    """A port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_app(app, **settings) -> Iterator[str]:
    """Run an ASGI app under uvicorn (`settings` go to its Config) on a free port in a thread; yields its URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", **settings)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    """`image` as the bytes of a `fmt` file (Pillow's save options as given)."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def truncated(fmt: str, size: tuple[int, int] = (128, 128)) -> bytes:
    """The first half of a noisy `fmt` file: a damaged upload."""
    data = encode(Image.effect_noise(size, 60).convert("RGB"), fmt)
    return data[: len(data) // 2]


def png_by_hand(width: int, height: int, bit_depth: int, color_type: int, rows: bytes) -> bytes:
    """A PNG's bytes written chunk by chunk, so a 0×0 or a 20000×20000 image costs a few bytes to make."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def near(pixel, expected, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def b64_png(image: Image.Image) -> str:
    return base64.b64encode(png_bytes(image)).decode()


def decode_b64_image(data: str) -> Image.Image:
    if data.startswith("data:"):
        assert data.startswith("data:image/png;base64,"), data[:40]
        data = data.partition(",")[2]
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        return image.convert("RGB")


# -- the remote servers' routes ------------------------------------------------------------------------

CHAT, MODELS = ("POST", "/v1/chat/completions"), ("GET", "/v1/models")  # an OpenAI-compatible server
EDIT, HEALTH = ("POST", "/edit"), ("GET", "/health")  # an editing server (EditThinker's protocol)


def models_reply(model: str) -> Reply:
    return json_reply({"object": "list", "data": [{"id": model, "object": "model"}]})


def openai_server(chat: Callable[[Seen], Reply], model: str = "served") -> FakeServer:
    """An OpenAI-compatible server serving `model`, whose chat completions `chat` answers."""
    return FakeServer({MODELS: lambda _: models_reply(model), CHAT: chat})


def inverting(seen: Seen) -> Reply:
    """A well-behaved editing server's answer: the image it was sent, inverted."""
    source = decode_b64_image(seen.json()["image"])
    return json_reply({"success": True, "edited_image": b64_png(ImageOps.invert(source)), "error": None})


def editing_server(edit: Callable[[Seen], Reply] = inverting) -> FakeServer:
    """An editing server that is healthy and answers /edit with `edit`."""
    return FakeServer({HEALTH: lambda _: json_reply({"status": "ok"}), EDIT: edit})


# -- driving the web app and servers -----------------------------------------------------------------


def studio_handler(settings: Settings):
    """The Studio's run handler outside a served page: (handler, its viewer, History's gallery); each update the
    handler yields is keyed by those components."""
    import gradio as gr

    from thinkedit.ui import actions, layout

    with gr.Blocks():
        (viewer, _), history = layout.run_viewer(gr.State(), settings.public), gr.Gallery()
    return actions.make_edit(settings, viewer, history), viewer, history


def serve(settings: Settings):
    """Start the app in this process on a free port; returns (demo, url)."""
    from thinkedit.ui import build_app, launch

    demo = build_app(settings)
    _, url, _ = launch(demo, settings.replace(port=free_port()), prevent_thread_lock=True, quiet=True)
    return demo, url


def wait_until_serving(url: str, app: subprocess.Popen, seconds: float = 90, why: Callable[[], str] = str) -> None:
    """Wait for the app process `app` to answer at `url`; fail with `why()` (its log) if it exits or is too slow."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert app.poll() is None and time.monotonic() < deadline, why()
        time.sleep(0.2)


def scene_file(folder) -> str:
    """The drawn scene at 320×220 as a PNG in `folder`."""
    path = Path(folder) / "scene.png"
    scene(320, 220).save(path)
    return str(path)


def upload(url: str, path: str) -> dict:
    with open(path, "rb") as file:
        response = httpx.post(f"{url}/gradio_api/upload", files={"files": (Path(path).name, file, "image/png")})
    response.raise_for_status()
    return {"path": response.json()[0], "meta": {"_type": "gradio.FileData"}}


def call_edit(url: str, data: list, api: str = "edit") -> str:
    """/edit (or another endpoint, `api`) through Gradio's plain HTTP API with exactly these input values (NaN and
    Infinity written as Python's json writes them); returns the event stream's text."""
    body = json.dumps({"data": data})
    event = httpx.post(f"{url}/gradio_api/call/{api}", content=body, headers={"Content-Type": "application/json"})
    event = event.json()["event_id"]
    with httpx.stream("GET", f"{url}/gradio_api/call/{api}/{event}", timeout=60) as stream:
        return "".join(stream.iter_text())


def raw_request(url: str, head: bytes, body: bytes = b"") -> socket.socket:
    """A connection to `url` that has sent `head` (request line and headers, as given) and `body`, nothing more."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)  # the timeout only ends a test that fails
    sock.sendall(head + body)
    return sock


def read_response(sock: socket.socket) -> tuple[str, dict]:
    """The status line and headers (lower-cased) and the JSON body of the server's answer on `sock`."""
    received = b""
    while True:
        head, found, body = received.partition(b"\r\n\r\n")
        head = head.decode().lower()
        if found and len(body) >= int(head.partition("content-length: ")[2].split("\r\n")[0]):
            return head, json.loads(body)
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without answering: {received!r}"
        received += chunk


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
