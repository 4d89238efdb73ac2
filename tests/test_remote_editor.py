"""The remote editors against real HTTP servers on 127.0.0.1: the editing-server protocol and its failures."""

import io
import logging
import time

import huggingface_hub.constants
import pytest
from helpers import (
    EDIT,
    HEALTH,
    FakeServer,
    Reply,
    decode_b64_image,
    editing_server,
    free_port,
    in_order,
    inverting,
    json_reply,
)
from PIL import Image, ImageOps

from thinkedit.config import Caller, Settings
from thinkedit.errors import Cancelled, ThinkEditError
from thinkedit.registry import build_backend

HEALTHY = json_reply({"status": "ok"})


def editor_for(urls: str, name: str = "http", **changes):
    settings = Settings(
        editor=name, editor_url=urls, edit_timeout=5.0, connect_timeout=2.0, request_retries=2, retry_backoff=0.05
    )
    return build_backend("editor", settings.replace(**changes))


def answering(*replies: Reply) -> FakeServer:
    """An editing server that gives `replies` in order (then no answer)."""
    return editing_server(in_order(*replies))


def test_http_editor_speaks_the_editing_server_protocol(scene):
    steps = []
    with editing_server() as server:
        edited = editor_for(server.url).edit(
            scene, "invert it", seed=7, steps=12, guidance=3.5, on_step=lambda i, n: steps.append((i, n))
        )
    assert edited.tobytes() == ImageOps.invert(scene).tobytes()
    (request,) = server.requests(*EDIT)
    body = request.json()
    assert decode_b64_image(body.pop("image")).tobytes() == scene.tobytes()
    assert body == {
        "prompt": "invert it",
        "num_inference_step": 12,
        "num_inference_steps": 12,
        "guidance_scale": 3.5,
        "width": 96,
        "height": 64,
        "seed": 7,
        "enhance_prompt": False,
    }
    assert len(server.requests(*HEALTH)) == 1
    assert steps[0] == (0, 1) and steps[-1] == (1, 1)


def test_defaults_come_from_the_spec(scene):
    with editing_server() as server:
        editor_for(server.url).edit(scene, "x", seed=0)
    body = server.requests(*EDIT)[0].json()
    assert (body["num_inference_step"], body["guidance_scale"]) == (28, 2.5)


def test_500_then_success_is_retried(scene):
    answers = iter([json_reply({"detail": "CUDA error: an illegal memory access"}, 500)])
    with editing_server() as server:
        server.routes[EDIT] = lambda seen: next(answers, None) or inverting(seen)
        edited = editor_for(server.url).edit(scene, "x", seed=0)
    assert len(server.requests(*EDIT)) == 2
    assert edited.tobytes() == ImageOps.invert(scene).tobytes()


def test_the_reference_servers_error_detail_is_reported(scene):
    with (
        answering(json_reply({"detail": "FLUX edit failed: out of memory"}, 500)) as server,
        pytest.raises(ThinkEditError, match=r"HTTP 500: FLUX edit failed: out of memory \(after 3 attempts\)"),
    ):
        editor_for(server.url).edit(scene, "x", seed=0)
    assert len(server.requests(*EDIT)) == 3


def test_429_honours_retry_after(scene):
    answers = iter([json_reply({"success": False, "error": "queue full"}, 429, {"Retry-After": "1"})])
    with editing_server() as server:
        server.routes[EDIT] = lambda seen: next(answers, None) or inverting(seen)
        started = time.monotonic()
        editor_for(server.url).edit(scene, "x", seed=0)
        assert time.monotonic() - started >= 0.95
    assert len(server.requests(*EDIT)) == 2


def test_a_server_that_never_answers_times_out_and_is_not_asked_again(scene):
    with answering(Reply(hang=10)) as server:
        started = time.monotonic()
        # an editor's read timeout and its whole call's deadline are both THINKEDIT_EDIT_TIMEOUT: the call's ends first
        with pytest.raises(ThinkEditError, match=r"did not finish within 0\.3 s \(THINKEDIT_EDIT_TIMEOUT\)"):
            editor_for(server.url, edit_timeout=0.3).edit(scene, "x", seed=0)
        assert time.monotonic() - started < 3
    assert len(server.requests(*EDIT)) == 1  # it may still be editing: a second request would only queue


def test_malformed_json_is_a_clear_error_and_not_retried(scene):
    with (
        answering(Reply(200, b"<html>502 Bad Gateway</html")) as server,
        pytest.raises(ThinkEditError, match="not the editing-server JSON"),
    ):
        editor_for(server.url).edit(scene, "x", seed=0)
    assert len(server.requests(*EDIT)) == 1


def test_a_refused_edit_reports_the_servers_reason(scene):
    with (
        answering(json_reply({"success": False, "edited_image": None, "error": "prompt too long"})) as server,
        pytest.raises(ThinkEditError, match="could not edit the image: prompt too long"),
    ):
        editor_for(server.url).edit(scene, "x", seed=0)


def test_a_broken_edited_image_is_reported(scene):
    with (
        answering(json_reply({"success": True, "edited_image": "bm90IGEgcG5n"})) as server,
        pytest.raises(ThinkEditError, match="not a readable image"),
    ):
        editor_for(server.url).edit(scene, "x", seed=0)


def test_connection_refused_names_the_host(scene):
    port = free_port()
    with pytest.raises(ThinkEditError, match=rf"editing server at 127\.0\.0\.1:{port} could not be reached"):
        editor_for(f"http://127.0.0.1:{port}").edit(scene, "x", seed=0)


@pytest.mark.parametrize("first_fails", ["refused", "unhealthy", "500"])
def test_a_second_url_takes_over_when_the_first_is_down(scene, first_fails):
    broken = {
        "unhealthy": {HEALTH: lambda _: json_reply({"status": "loading", "gpu_manager_ready": False})},
        "500": {HEALTH: lambda _: HEALTHY, EDIT: lambda _: json_reply({"detail": "boom"}, 500)},
        "refused": {},
    }[first_fails]
    with FakeServer(broken) as first, editing_server() as second:
        first_url = f"http://127.0.0.1:{free_port()}" if first_fails == "refused" else first.url
        editor = editor_for(f"{first_url}, {second.url}/")
        started = time.monotonic()
        assert editor.edit(scene, "x", seed=0).tobytes() == ImageOps.invert(scene).tobytes()
        assert time.monotonic() - started < 1  # taking over needs no backoff
        tried = len(first.seen)
        for _ in range(3):
            editor.edit(scene, "x", seed=0)
    assert len(second.requests(*EDIT)) == 4
    assert len(first.seen) == tried  # skipped while it is marked down, although round-robin points at it


def test_requests_go_round_robin_over_healthy_servers(scene):
    with editing_server() as one, editing_server() as two:
        editor = editor_for(f"{one.url},{two.url}")
        for _ in range(4):
            editor.edit(scene, "x", seed=0)
    assert len(one.requests(*EDIT)) == len(two.requests(*EDIT)) == 2
    assert len(one.requests(*HEALTH)) == len(two.requests(*HEALTH)) == 1


def test_stop_aborts_the_edit_in_flight(scene):
    pressed = time.monotonic() + 0.3

    def on_step(i, n):
        if time.monotonic() > pressed:
            raise Cancelled

    with answering(Reply(hang=10)) as server:
        started = time.monotonic()
        with pytest.raises(Cancelled):
            editor_for(server.url).edit(scene, "x", seed=0, on_step=on_step)
        assert time.monotonic() - started < 2


def test_bad_urls_are_refused_before_any_request():
    with pytest.raises(ThinkEditError, match="--editor-url"):
        build_backend("editor", Settings(editor="http"))
    with pytest.raises(ThinkEditError, match="http:// or https://"):
        build_backend("editor", Settings(editor="http", editor_url="http://ok:1,gopher://old"))


# -- hf-inference: the real InferenceClient, pointed at a local endpoint --------------------------------


def test_hf_inference_editor_posts_to_the_endpoint(scene, monkeypatch, caplog):
    """huggingface_hub reads HF_HUB_OFFLINE once at import and then refuses every URL; this test alone lifts it
    so the real client code runs against a local server."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_planted_token_123")
    caplog.set_level(logging.DEBUG)

    def endpoint(seen) -> Reply:
        source = decode_b64_image(seen.json()["inputs"])
        buffer = io.BytesIO()
        ImageOps.invert(source).save(buffer, format="PNG")
        return Reply(200, buffer.getvalue(), {"Content-Type": "image/png"})

    with FakeServer({("POST", "/kontext"): endpoint}) as server:
        edited = editor_for(server.url + "/kontext", "hf-inference").edit(
            scene, "invert", seed=5, steps=9, guidance=2.0
        )
    assert edited.tobytes() == ImageOps.invert(scene).tobytes()
    (request,) = server.seen
    assert request.headers["authorization"] == "Bearer hf_planted_token_123"
    params = request.json()["parameters"]
    assert params == {"prompt": "invert", "num_inference_steps": 9, "guidance_scale": 2.0, "seed": 5}
    assert "hf_planted_token_123" not in caplog.text


def test_hf_inference_editor_sends_no_server_token_to_an_endpoint_a_caller_named(scene, monkeypatch):
    """The rule of `remote.credential`: HF_TOKEN goes only to endpoints the server configured — huggingface_hub's
    own fallback to the environment or a stored login must not send it elsewhere either."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_planted_token_123")

    def endpoint(seen) -> Reply:
        buffer = io.BytesIO()
        decode_b64_image(seen.json()["inputs"]).save(buffer, format="PNG")
        return Reply(200, buffer.getvalue(), {"Content-Type": "image/png"})

    with FakeServer({("POST", "/kontext"): endpoint}) as server:
        for caller in (
            Caller(named_urls=frozenset({"editor"})),
            Caller(named_urls=frozenset({"editor"}), keys={"editor": "hf_own"}),
            Caller(),
        ):
            editor_for(server.url + "/kontext", "hf-inference", caller=caller).edit(scene, "x", seed=0)
    sent = [seen.headers.get("authorization") for seen in server.seen]
    assert sent == ["Bearer EMPTY", "Bearer hf_own", "Bearer hf_planted_token_123"]


def test_hf_inference_editor_errors_name_the_host_not_the_token(scene, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_planted_token_123")
    with (
        FakeServer(
            {("POST", "/kontext"): lambda _: json_reply({"error": "bad token hf_planted_token_123"}, 401)}
        ) as server,
        pytest.raises(ThinkEditError) as caught,
    ):
        editor_for(server.url + "/kontext", "hf-inference").edit(scene, "x", seed=0)
    assert "refused the credentials (HTTP 401" in str(caught.value) and "HF_TOKEN" in str(caught.value)
    assert "hf_planted_token_123" not in str(caught.value)
    assert server.url.removeprefix("http://") in str(caught.value)


def test_hf_inference_editor_offline_refuses_clearly(scene):
    with pytest.raises(ThinkEditError, match="HF_HUB_OFFLINE"):
        editor_for("http://127.0.0.1:9/x", "hf-inference", request_retries=0).edit(
            Image.new("RGB", (8, 8)), "x", seed=0
        )
