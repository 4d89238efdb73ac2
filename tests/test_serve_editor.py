"""`serve-editor`: our editors behind the editing-server protocol, driven by the `http` editor, and the loop
end to end with a remote thinker and a remote editor."""

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time

import httpx2
import pytest
from helpers import (
    b64_png,
    chat_chunks,
    closed_by_server,
    decode_b64_image,
    free_port,
    in_order,
    openai_server,
    raw_request,
    read_response,
    serve_app,
    sse_reply,
)
from PIL import Image, ImageOps, PngImagePlugin

from thinkedit import loop
from thinkedit.backend import BackendSpec
from thinkedit.config import Settings
from thinkedit.errors import Cancelled
from thinkedit.images import png_bytes
from thinkedit.registry import build_backend
from thinkedit.server import create_app, server_settings

KEY = "sk-planted-e2e-secret-777"


class InvertEditor:
    """A small editor for these tests: inverts the image in `steps` steps, `pause` seconds each."""

    def __init__(self, kind: str = "offline", pause: float = 0.0):
        self.spec = BackendSpec("invert", "tests:InvertEditor", kind, "inverts", steps=4)
        self.model = "invert-v1"
        self.pause = pause
        self.calls: list[dict] = []
        self.running = 0
        self.most_at_once = 0
        self.stopped = threading.Event()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        self.calls.append({"prompt": prompt, "seed": seed, "steps": steps, "guidance": guidance})
        self.entered.set()
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            self.release.wait(10)
            for step in range(1, (steps or self.spec.steps) + 1):
                time.sleep(self.pause)
                on_step(step, steps or self.spec.steps)
        except Cancelled:
            self.stopped.set()
            raise
        finally:
            self.running -= 1
        return ImageOps.invert(image)


def http_editor(url: str, **changes):
    settings = Settings(editor="http", editor_url=url, edit_timeout=10.0, request_retries=1, retry_backoff=0.05)
    return build_backend("editor", settings.replace(**changes))


def test_round_trip_through_our_own_server(scene):
    editor = InvertEditor()
    with serve_app(create_app(editor)) as url:
        edited = http_editor(url).edit(scene, "invert the colours", seed=11, steps=3, guidance=1.5)
        health = httpx2.get(f"{url}/health").json()
    assert edited.tobytes() == ImageOps.invert(scene).tobytes()
    assert editor.calls == [{"prompt": "invert the colours", "seed": 11, "steps": 3, "guidance": 1.5}]
    assert health == {"status": "ok", "editor": "invert", "model": "invert-v1", "in_flight": 0, "max_queue": 8}


@pytest.mark.parametrize(
    "prompt", ["rotate 90 degrees clockwise", "crop the left half", "crop the bottom half", "resize to 50%"]
)
def test_an_edit_that_changes_the_shape_keeps_it_over_http(scene, prompt):
    """The server sends the editor's result as it is and the `http` editor hands it on as it came."""
    classic = build_backend("editor", Settings(editor="classic"))
    direct = classic.edit(scene, prompt, seed=0)
    with serve_app(create_app(classic)) as url:
        remote = http_editor(url).edit(scene, prompt, seed=0)
    assert remote.size == direct.size != scene.size
    assert remote.tobytes() == direct.tobytes()


def test_an_editor_result_of_no_pixels_is_refused_with_the_reason(scene):
    editor = InvertEditor()
    editor.edit = lambda image, prompt, **options: Image.new("RGB", (0, 4))
    with serve_app(create_app(editor)) as url:
        response = httpx2.post(f"{url}/edit", json={"image": b64_png(scene), "prompt": "x"}, timeout=10)
    assert response.status_code == 500
    assert response.json()["error"] == "The editor's result has no pixels (0×4)."


def test_the_reference_clients_request_is_understood(scene):
    """The paper's client sends num_inference_step (singular), width/height 1024 and enhance_prompt."""
    editor = InvertEditor()
    body = {
        "image": b64_png(scene),
        "prompt": "invert",
        "num_inference_step": 2,
        "guidance_scale": 2.5,
        "width": 1024,
        "height": 1024,
        "enhance_prompt": False,
        "seed": 0,
    }
    with serve_app(create_app(editor)) as url:
        answer = httpx2.post(f"{url}/edit", json=body, timeout=10).json()
    assert answer["success"] is True and answer["error"] is None
    assert decode_b64_image(answer["edited_image"]).tobytes() == ImageOps.invert(scene).tobytes()
    assert editor.calls[0]["steps"] == 2


def fields(**changes) -> bytes:
    """An /edit body: the test scene as IMAGE, prompt "x", and `changes` (NaN and Infinity written as JSON has them)."""
    return json.dumps({"image": "IMAGE", "prompt": "x", **changes}).encode()


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b"[" * 200_000, 400, "nested too deeply"),
        (fields(prompt=" "), 400, "instruction is empty"),
        (fields(prompt="\x00" * 20), 400, "no readable characters"),
        (fields(prompt=["x"]), 400, "must be text"),
        (fields(prompt="x" * 3000), 400, "limit is 2000"),
        (json.dumps({"prompt": "x"}).encode(), 400, "image is missing"),
        (fields(image="%%%not-base64"), 400, "not valid base64"),
        (fields(image="aGVsbG8="), 400, "not an image"),
        (fields(num_inference_steps=0), 400, "from 1 to 500"),
        (fields(num_inference_steps=float("nan")), 400, "finite number"),
        (fields(num_inference_step=2.5), 400, "whole number"),
        (fields(guidance_scale=float("-inf")), 400, "finite number"),
        (fields(guidance_scale="strong"), 400, "guidance must be a number"),
        (fields(seed=float("inf")), 400, "finite number"),
        (fields(seed=7.5), 400, "whole number"),
        (fields(seed=True), 400, "whole number"),
        (fields(width="WIDTH", height=1024).replace(b'"WIDTH"', b"1e400"), 400, "width must be a finite number"),
        (fields(width=20000, height=20000), 400, "megapixels"),
        (b"x" * 600_000, 413, "limit"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_reason(scene, body, status, reason):
    editor = InvertEditor()
    body = body.replace(b"IMAGE", b64_png(scene).encode())
    with serve_app(create_app(editor, max_body_mb=0.5)) as url:
        response = httpx2.post(f"{url}/edit", content=body, headers={"Content-Type": "application/json"}, timeout=10)
        assert response.status_code == status
        answer = response.json()
        assert answer["success"] is False and reason in answer["error"]
        assert (
            httpx2.post(f"{url}/edit", content=fields().replace(b"IMAGE", b64_png(scene).encode())).status_code == 200
        )
    assert [call["prompt"] for call in editor.calls] == ["x"]  # only the good request reached the editor


def test_one_edit_at_a_time_on_a_gpu_and_a_bounded_queue(scene):
    editor = InvertEditor(kind="local")  # a local model: edits take turns on the one GPU
    editor.release.clear()
    body = {"image": b64_png(scene), "prompt": "x", "num_inference_steps": 1}
    answers = []

    def post(url):
        answers.append(httpx2.post(f"{url}/edit", json=body, timeout=10))

    with serve_app(create_app(editor, max_queue=1)) as url:
        clients = [threading.Thread(target=post, args=(url,)) for _ in range(2)]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 5
        while httpx2.get(f"{url}/health").json()["in_flight"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        busy = httpx2.post(f"{url}/edit", json=body, timeout=10)  # one running, one queued: no room
        editor.release.set()
        for client in clients:
            client.join(10)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
    assert "busy" in busy.json()["error"]
    assert [a.status_code for a in answers] == [200, 200]
    assert editor.most_at_once == 1


def post_head(length: int) -> bytes:
    return f"POST /edit HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode()


def test_a_full_queue_refuses_from_the_headers_before_the_body_is_sent(scene):
    editor = InvertEditor(kind="local")
    editor.release.clear()
    body = {"image": b64_png(scene), "prompt": "x", "num_inference_steps": 1}
    with serve_app(create_app(editor, max_queue=0)) as url:
        running = threading.Thread(target=httpx2.post, args=(f"{url}/edit",), kwargs={"json": body, "timeout": 20})
        running.start()
        assert editor.entered.wait(10)
        with raw_request(url, post_head(50_000_000), b'{"image": "') as sock:  # 50 MB declared, 11 bytes sent
            refused, busy = read_response(sock)
        with raw_request(url, post_head(900_000_000)) as sock:  # over the limit
            too_large, limit = read_response(sock)
        health = httpx2.get(f"{url}/health", timeout=10).json()
        editor.release.set()
        running.join(20)
    assert refused.startswith("http/1.1 503") and "retry-after: 5" in refused and "busy" in busy["error"]
    assert too_large.startswith("http/1.1 413") and "the limit is 64 MB" in limit["error"]
    assert health["in_flight"] == 1 and len(editor.calls) == 1


def test_health_answers_while_an_image_is_being_decoded(scene):
    """The edited image comes back as a lazily decoded PNG whose decoding waits: the server meanwhile answers."""
    decoding, decoded = threading.Event(), threading.Event()

    class SlowToDecode(PngImagePlugin.PngImageFile):
        def load(self):
            decoding.set()
            decoded.wait(20)
            return super().load()

    class LazyEditor(InvertEditor):
        def edit(self, image, prompt, **options):
            return SlowToDecode(io.BytesIO(png_bytes(super().edit(image, prompt, **options))))

    editor = LazyEditor()
    answers = []
    with serve_app(create_app(editor)) as url:
        body = {"image": b64_png(scene), "prompt": "invert", "num_inference_steps": 1}
        client = threading.Thread(target=lambda: answers.append(httpx2.post(f"{url}/edit", json=body, timeout=30)))
        client.start()
        assert decoding.wait(10)
        health = httpx2.get(f"{url}/health", timeout=10).json()
        decoded.set()
        client.join(30)
    assert health["in_flight"] == 1
    assert answers[0].status_code == 200
    assert decode_b64_image(answers[0].json()["edited_image"]).tobytes() == ImageOps.invert(scene).tobytes()


def test_a_body_that_does_not_arrive_in_time_is_refused_and_frees_its_place(scene):
    with serve_app(create_app(InvertEditor(), max_queue=0, body_timeout=0.5)) as url:
        with raw_request(url, post_head(1000), b'{"prompt": ') as sock:
            head, answer = read_response(sock)
        after = httpx2.post(f"{url}/edit", json={"image": b64_png(scene), "prompt": "invert"}, timeout=10)
    assert head.startswith("http/1.1 408") and "did not arrive within 0.5 s" in answer["error"]
    assert after.status_code == 200


def test_a_connection_slow_to_send_its_headers_is_closed_after_the_header_timeout(scene):
    editor = InvertEditor(pause=0.3)  # an edit of 4 steps outlasts the header timeout: it is answered all the same
    with serve_app(create_app(editor), **server_settings(header_timeout=0.5)) as url:
        with raw_request(url, b"POST /edit HTTP/1.1\r\nHost: test\r\n") as sock:
            started = time.monotonic()
            assert closed_by_server(sock)
            assert time.monotonic() - started >= 0.4
        with raw_request(url, b"POST /edit HTTP/1.1\r\nX-Slow: ") as trickling:

            def trickle():  # a byte every 0.1 s: each one would restart a keep-alive timer
                with contextlib.suppress(OSError):
                    while True:
                        trickling.sendall(b"a")
                        time.sleep(0.1)

            threading.Thread(target=trickle, daemon=True).start()
            assert closed_by_server(trickling)
        edited = httpx2.post(f"{url}/edit", json={"image": b64_png(scene), "prompt": "invert"}, timeout=20)
    assert edited.status_code == 200 and editor.calls[0]["steps"] is None


def test_a_client_that_hangs_up_stops_the_edit(scene):
    editor = InvertEditor(pause=0.05)
    body = {"image": b64_png(scene), "prompt": "x", "num_inference_steps": 200}  # ten seconds of steps
    with serve_app(create_app(editor)) as url:
        with pytest.raises(httpx2.ReadTimeout):
            httpx2.post(f"{url}/edit", json=body, timeout=httpx2.Timeout(0.3, connect=2))
        assert editor.stopped.wait(5)
        assert httpx2.get(f"{url}/health").json()["in_flight"] == 0


# -- the loop end to end: remote thinker + remote editor, saved to disk --------------------------------


def test_the_loop_runs_two_turns_with_remote_backends_and_keeps_no_key(scene, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("THINKEDIT_THINKER_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    turn_1 = [
        "<think>Inverted, but the sky also changed.</think>",
        '<score>{"semantic": 4, "quality": 6}</score>',
        "<answer>Invert only the red square</answer>",
    ]
    turn_2 = [
        "<think>Better.</think>",
        '<score>{"semantic": 7, "quality": 7,}</score>',
        "<answer>Invert only the red square, keep the sky</answer>",
    ]
    chat = openai_server(in_order(sse_reply(chat_chunks(turn_1)), sse_reply(chat_chunks(turn_2))), model="et-8b")
    editor_backend = InvertEditor()
    with chat, serve_app(create_app(editor_backend)) as editor_url:
        settings = Settings(
            editor="http",
            editor_url=editor_url,
            thinker="openai",
            thinker_url=chat.url + "/v1",
            thinker_image_side=64,
            request_retries=0,
        )
        request = loop.make_request(scene, "invert the red square", max_turns=2, seed=3)
        run_dir = tmp_path / "run"
        events = list(
            loop.run(build_backend("editor", settings), build_backend("thinker", settings), request, run_dir=run_dir)
        )
    trajectory = events[-1].trajectory
    assert trajectory.stop_reason == "max_turns", trajectory.error
    assert [t.prompt for t in trajectory.turns] == ["invert the red square", "Invert only the red square"]
    assert [p["prompt"] for p in editor_backend.calls] == ["invert the red square", "Invert only the red square"]
    assert [c["seed"] for c in editor_backend.calls] == [3, 3]  # every turn the same seed, as the reference
    assert any(isinstance(e, loop.Reasoning) and "sky also changed" in e.text for e in events)
    record = json.loads((run_dir / "trajectory.json").read_text())
    assert (record["editor"], record["thinker"]) == ("http", "openai")
    assert record["settings"]["thinker_model"] == "et-8b", "the model the server served is recorded"
    assert [(t["semantic"], t["quality"]) for t in record["turns"]] == [(4.0, 6.0), (7.0, 7.0)]
    assert record["best_turn"] == 2
    assert {"source.png", "turn_01.png", "turn_02.png"} <= {p.name for p in run_dir.iterdir()}
    assert Image.open(run_dir / "turn_02.png").convert("RGB").tobytes() == ImageOps.invert(scene).tobytes()
    chats = chat.requests("POST", "/v1/chat/completions")
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in chats)
    saved = "".join(p.read_text(errors="ignore") for p in run_dir.iterdir() if p.suffix == ".json")
    assert KEY not in saved and KEY not in caplog.text


# -- the subcommand ------------------------------------------------------------------------------------


def test_serve_editor_command_serves_the_classic_editor(scene):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "thinkedit",
        "serve-editor",
        "--editor",
        "classic",
        "--port",
        str(port),
        "--header-timeout",
        "1",
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx2.get(f"{url}/health").json()["editor"] == "classic":
                    break
            except httpx2.HTTPError:
                time.sleep(0.1)
        direct = build_backend("editor", Settings(editor="classic")).edit(scene, "make the image grayscale", seed=0)
        remote = http_editor(url).edit(scene, "make the image grayscale", seed=0)
        with raw_request(url, b"GET /health HTTP/1.1\r\n") as slow:
            assert closed_by_server(slow)
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
    assert "Serving the classic editor" in output
    assert remote.size == scene.size
    assert remote.tobytes() == direct.tobytes()
    assert remote.tobytes() != scene.tobytes()
