"""Real HTTP servers on 127.0.0.1 for the remote-backend tests: scripted fakes, and our own app under uvicorn.

A `FakeServer` answers each (method, path) with a function of the request that returns a `Reply`;
every request it receives is kept in `seen` for the test to inspect.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


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
    chunks: list[bytes] = field(default_factory=list)  # sent one by one, flushed, `pause` apart
    pause: float = 0.0
    hang: float = 0.0  # seconds of silence before answering: a server that does not answer


def json_reply(data, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})


def sse_reply(events: list[dict], pause: float = 0.0) -> Reply:
    chunks = [f"data: {json.dumps(event)}\n\n".encode() for event in events] + [b"data: [DONE]\n\n"]
    return Reply(headers={"Content-Type": "text/event-stream"}, chunks=chunks, pause=pause)


def chat_chunks(content: list[str], reasoning: list[str] = (), reasoning_field: str = "reasoning_content") -> list:
    """OpenAI `chat.completion.chunk` events: the reasoning pieces first, then the content pieces."""
    deltas = [{reasoning_field: piece} for piece in reasoning] + [{"content": piece} for piece in content]
    return [
        {"id": "chat-1", "object": "chat.completion.chunk", "created": 0, "model": "served",
         "choices": [{"index": 0, "delta": {"role": "assistant", **delta}, "finish_reason": None}]}
        for delta in deltas
    ]  # fmt: skip


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
                        time.sleep(reply.pause)
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


def b64_png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def decode_b64_image(data: str) -> Image.Image:
    if data.startswith("data:"):
        assert data.startswith("data:image/png;base64,"), data[:40]
        data = data.partition(",")[2]
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        return image.convert("RGB")
