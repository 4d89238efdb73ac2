"""`serve-editor`: our editors behind the editing-server protocol, driven by the `http` editor, and the loop
end to end with a remote thinker and a remote editor."""

import base64
import json
import logging
import os
import subprocess
import sys
import threading
import time

import httpx2
import pytest
from fake_servers import (
    FakeServer,
    chat_chunks,
    decode_b64_image,
    free_port,
    in_order,
    json_reply,
    serve_app,
    sse_reply,
)
from PIL import Image, ImageOps

from thinkedit import loop
from thinkedit.backend import BackendSpec
from thinkedit.config import Settings
from thinkedit.errors import Cancelled
from thinkedit.registry import build_backend
from thinkedit.server import create_app

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
        self.release = threading.Event()
        self.release.set()

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        self.calls.append({"prompt": prompt, "seed": seed, "steps": steps, "guidance": guidance})
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


def b64(image: Image.Image) -> str:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


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
        response = httpx2.post(f"{url}/edit", json={"image": b64(scene), "prompt": "x"}, timeout=10)
    assert response.status_code == 500
    assert response.json()["error"] == "The editor's result has no pixels (0×4)."


def test_the_reference_clients_request_is_understood(scene):
    """The paper's client sends num_inference_step (singular), width/height 1024 and enhance_prompt."""
    editor = InvertEditor()
    body = {"image": b64(scene), "prompt": "invert", "num_inference_step": 2, "guidance_scale": 2.5,
            "width": 1024, "height": 1024, "enhance_prompt": False, "seed": 0}  # fmt: skip
    with serve_app(create_app(editor)) as url:
        answer = httpx2.post(f"{url}/edit", json=body, timeout=10).json()
    assert answer["success"] is True and answer["error"] is None
    assert decode_b64_image(answer["edited_image"]).tobytes() == ImageOps.invert(scene).tobytes()
    assert editor.calls[0]["steps"] == 2


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (json.dumps({"image": "aGVsbG8=", "prompt": " "}).encode(), 422, "prompt is missing"),
        (json.dumps({"prompt": "x"}).encode(), 422, "image is missing"),
        (json.dumps({"image": "%%%not-base64", "prompt": "x"}).encode(), 400, "not valid base64"),
        (json.dumps({"image": "aGVsbG8=", "prompt": "x"}).encode(), 400, "not an image"),
        (json.dumps({"image": "IMAGE", "prompt": "x", "num_inference_steps": 0}).encode(), 422, "from 1 to 500"),
        (json.dumps({"image": "IMAGE", "prompt": "x", "seed": "7"}).encode(), 422, "whole number"),
        (json.dumps({"image": "IMAGE", "prompt": "x", "width": 20000, "height": 20000}).encode(), 413, "megapixels"),
        (json.dumps({"image": "IMAGE", "prompt": "x" * 3000}).encode(), 422, "limit is 2000"),
        (b"x" * 40_000, 413, "limit"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_reason(scene, body, status, reason):
    editor = InvertEditor()
    body = body.replace(b"IMAGE", b64(scene).encode())
    with serve_app(create_app(editor, max_body_mb=0.03)) as url:
        response = httpx2.post(f"{url}/edit", content=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == status
    answer = response.json()
    assert answer["success"] is False and reason in answer["error"]
    assert editor.calls == []


def test_one_edit_at_a_time_on_a_gpu_and_a_bounded_queue(scene):
    editor = InvertEditor(kind="local")  # a local model: edits take turns on the one GPU
    editor.release.clear()
    body = {"image": b64(scene), "prompt": "x", "num_inference_steps": 1}
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


def test_a_client_that_hangs_up_stops_the_edit(scene):
    editor = InvertEditor(pause=0.05)
    body = {"image": b64(scene), "prompt": "x", "num_inference_steps": 200}  # ten seconds of steps
    with serve_app(create_app(editor)) as url:
        with pytest.raises(httpx2.ReadTimeout):
            httpx2.post(f"{url}/edit", json=body, timeout=httpx2.Timeout(0.3, connect=2))
        assert editor.stopped.wait(5)
        assert httpx2.get(f"{url}/health").json()["in_flight"] == 0


# -- the loop end to end: remote thinker + remote editor, saved to disk --------------------------------


def test_the_loop_runs_two_turns_with_remote_backends_and_keeps_no_key(scene, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("THINKEDIT_THINKER_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    turn_1 = ["<think>Inverted, but the sky also changed.</think>", '<score>{"semantic": 4, "quality": 6}</score>',
              "<answer>Invert only the red square</answer>"]  # fmt: skip
    turn_2 = ["<think>Better.</think>", '<score>{"semantic": 7, "quality": 7,}</score>',
              "<answer>Invert only the red square, keep the sky</answer>"]  # fmt: skip
    chat = FakeServer({("POST", "/v1/chat/completions"): in_order(sse_reply(chat_chunks(turn_1)),
                                                                   sse_reply(chat_chunks(turn_2))),
                       ("GET", "/v1/models"): lambda _: json_reply({"data": [{"id": "et-8b", "object": "model"}]})})  # fmt: skip
    editor_backend = InvertEditor()
    with chat, serve_app(create_app(editor_backend)) as editor_url:
        settings = Settings(editor="http", editor_url=editor_url, thinker="openai", thinker_url=chat.url + "/v1",
                            thinker_image_side=64, request_retries=0)  # fmt: skip
        request = loop.make_request(scene, "invert the red square", max_turns=2, seed=3)
        run_dir = tmp_path / "run"
        events = list(
            loop.run(build_backend("editor", settings), build_backend("thinker", settings), request, run_dir=run_dir)
        )
    trajectory = events[-1].trajectory
    assert trajectory.stop_reason == "max_turns", trajectory.error
    assert [t.prompt for t in trajectory.turns] == ["invert the red square", "Invert only the red square"]
    assert [p["prompt"] for p in editor_backend.calls] == ["invert the red square", "Invert only the red square"]
    assert [c["seed"] for c in editor_backend.calls] == [3, 4]
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
    command = [sys.executable, "-m", "thinkedit", "serve-editor", "--editor", "classic", "--port", str(port)]
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
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
    assert "Serving the classic editor" in output
    assert remote.size == scene.size
    assert remote.tobytes() == direct.tobytes()
    assert remote.tobytes() != scene.tobytes()
