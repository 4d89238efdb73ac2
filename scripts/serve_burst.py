"""Burst: many concurrent large edits against `serve-editor` with a slow editor; refusal and /health latency, RSS.

The server runs in a child process (its resident memory is measured alone, every 50 ms) with an editor that
takes `--edit-seconds` per edit and one edit at a time, as a local model does. This process sends `--requests`
edits of one `--side`² photo-like PNG at once, asks /health every 100 ms while they are in flight, and, once
the queue is full, sends one more request's headers alone and waits for the answer.

    python scripts/serve_burst.py --requests 50 --side 6000
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx2
import numpy as np
import psutil
from PIL import Image, ImageOps

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "tests")]

from helpers import free_port  # noqa: E402

from thinkedit.images import png_bytes  # noqa: E402

START_TIMEOUT_S = 60


class SlowEditor:
    """Inverts the image after `seconds`; a "local" editor, so edits take turns on the one GPU."""

    def __init__(self, seconds: float):
        from thinkedit.backend import BackendSpec

        self.spec = BackendSpec("slow", "serve_burst:SlowEditor", "local", "inverts slowly", steps=1)
        self.model, self.seconds = "slow", seconds

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        time.sleep(self.seconds)
        return ImageOps.invert(image)


def serve(port: int, edit_seconds: float, max_queue: int) -> None:
    import uvicorn

    from thinkedit.server import create_app

    uvicorn.run(create_app(SlowEditor(edit_seconds), max_queue=max_queue), port=port, log_level="error")


def photo_png(side: int) -> bytes:
    """Smooth colour fields, as compressible as a photo: 6000² is ~19 MB of PNG."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
    return png_bytes(image)


def start_server(edit_seconds: float, max_queue: int) -> tuple[multiprocessing.Process, int]:
    """`serve-editor`'s app in its own process on a free port, once it answers /health."""
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port, edit_seconds, max_queue))
    server.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while server.is_alive() and time.monotonic() < deadline:
        try:
            httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return server, port
        except httpx2.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"serve-editor did not answer /health within {START_TIMEOUT_S} s (exit code {server.exitcode}).")


def headers_only(port: int, body: bytes, max_queue: int, done: threading.Event) -> str:
    """Once the queue is full: the answer to a request that sends only its headers, as a client that waits for an
    answer before it sends its body."""
    while httpx2.get(f"http://127.0.0.1:{port}/health", timeout=120).json()["in_flight"] <= max_queue:
        if done.is_set():
            return "the queue never filled"
        time.sleep(0.05)
    head = f"POST /edit HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        started = time.perf_counter()
        sock.sendall(head)
        try:
            status = sock.recv(12).decode()
        except TimeoutError:
            return "no answer within 60 s"
        return f"{status[9:12]} after {time.perf_counter() - started:.2f} s"


def post(url: str, body: bytes) -> tuple[int, float]:
    """One edit request: its status (0: no answer) and seconds."""
    started = time.perf_counter()
    try:
        status = httpx2.post(
            f"{url}/edit", content=body, headers={"Content-Type": "application/json"}, timeout=600
        ).status_code
    except httpx2.HTTPError:
        status = 0
    return status, time.perf_counter() - started


def burst(requests: int, side: int, edit_seconds: float, max_queue: int) -> dict:
    server, port = start_server(edit_seconds, max_queue)
    url = f"http://127.0.0.1:{port}"
    body = json.dumps({"image": base64.b64encode(photo_png(side)).decode(), "prompt": "invert"}).encode()
    process = psutil.Process(server.pid)
    rss = {"before": process.memory_info().rss, "peak": 0}
    answers: list[tuple[int, float]] = []
    health: list[float] = []
    refusal = {"headers only": "the queue never filled"}
    done = threading.Event()

    def watch_memory():
        while not done.is_set():
            rss["peak"] = max(rss["peak"], process.memory_info().rss)
            time.sleep(0.05)

    def ask_health():
        while not done.is_set():
            started = time.perf_counter()
            httpx2.get(f"{url}/health", timeout=120)
            health.append(time.perf_counter() - started)
            time.sleep(0.1)

    def probe():
        refusal["headers only"] = headers_only(port, body, max_queue, done)

    watchers = [
        threading.Thread(target=watch_memory),
        threading.Thread(target=ask_health),
        threading.Thread(target=probe),
    ]
    clients = [threading.Thread(target=lambda: answers.append(post(url, body))) for _ in range(requests)]
    for thread in watchers + clients:
        thread.start()
    for client in clients:
        client.join()
    done.set()
    for watcher in watchers:
        watcher.join()
    time.sleep(1)
    rss["after"] = process.memory_info().rss
    server.terminate()
    server.join()
    refused = sorted(seconds for status, seconds in answers if status == 503)
    spread = tuple(round(s, 2) for s in (refused[0], statistics.median(refused), refused[-1])) if refused else None
    return {
        "body MB": round(len(body) / 2**20, 1),
        "statuses": {s: sum(1 for a, _ in answers if a == s) for s in sorted({a for a, _ in answers})},
        "503 seconds (min / median / max)": spread,
        "503 for a request that sent only its headers": refusal["headers only"],
        "/health seconds (max)": round(max(health), 2),
        "server RSS MB (before / peak / after)": tuple(round(rss[k] / 2**20) for k in ("before", "peak", "after")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="edits sent at once (default 50)")
    parser.add_argument("--side", type=int, default=6000, help="side of the source image (default 6000)")
    parser.add_argument("--edit-seconds", type=float, default=2.0, help="seconds per edit (default 2)")
    parser.add_argument("--max-queue", type=int, default=8, help="the server's --max-queue (default 8)")
    args = parser.parse_args()
    for name, value in burst(args.requests, args.side, args.edit_seconds, args.max_queue).items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
