"""The remote thinkers against a real OpenAI-compatible server on 127.0.0.1 that streams server-sent events."""

import logging
import os
import time

import huggingface_hub.constants
import pytest
from helpers import (
    CHAT,
    MODELS,
    FakeServer,
    Reply,
    chat_chunks,
    decode_b64_image,
    free_port,
    in_order,
    json_reply,
    openai_server,
    sse_reply,
)
from PIL import Image, ImageOps

from thinkedit.config import Settings
from thinkedit.critique import load_template, render
from thinkedit.errors import Cancelled, ThinkEditError
from thinkedit.images import fit_within
from thinkedit.registry import build_backend

KEY = "sk-planted-secret-4242"
ANSWER = [
    "<think>The square is still red; the ",
    'sky is untouched.</think>\n<score>{"semantic": 3, ',
    '"quality": 9}</score>\n<answer>Paint the red square bright yellow</answer>',
]


def thinker_for(url: str, name: str = "openai", **changes):
    settings = Settings(
        thinker=name,
        thinker_url=url,
        thinker_image_side=64,
        request_timeout=5.0,
        connect_timeout=2.0,
        request_retries=2,
        retry_backoff=0.05,
    )
    return build_backend("thinker", settings.replace(**changes))


def chat_server(*replies: Reply) -> FakeServer:
    return openai_server(in_order(*replies), model="served-editthinker")


def assert_images_and_text(seen, images, text):
    """One user message: the images in order (decoded, pixel-exact after downscaling), then the text."""
    body = seen.json()
    assert body["stream"] is True
    (message,) = body["messages"]
    assert message["role"] == "user"
    parts = message["content"]
    assert [p["type"] for p in parts] == ["image_url"] * len(images) + ["text"]
    for part, image in zip(parts, images, strict=False):
        sent = decode_b64_image(part["image_url"]["url"])
        expected = fit_within(image, 64)
        assert sent.size == expected.size and max(sent.size) == 64
        assert sent.tobytes() == expected.tobytes()
    assert parts[-1]["text"] == text


@pytest.fixture
def edited(scene) -> Image.Image:
    return ImageOps.invert(scene)


def test_openai_thinker_streams_a_critique_with_images_source_first(scene, edited, monkeypatch):
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # the openai thinker must work on an offline box
    monkeypatch.setenv("THINKEDIT_THINKER_API_KEY", KEY)
    with chat_server(sse_reply(chat_chunks(ANSWER))) as server:
        tokens = []
        critique = thinker_for(server.url + "/v1").critique(
            scene, edited, "make the square yellow", "make the square yellow", on_token=tokens.append
        )
    (request,) = server.requests(*CHAT)
    template = render(load_template("critique"), "make the square yellow", "make the square yellow")
    assert_images_and_text(request, [scene, edited], template)
    assert request.json()["model"] == "served-editthinker"  # no --thinker-model: the server's first model
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "".join(tokens) == "".join(ANSWER)
    assert (critique.semantic, critique.quality) == (3.0, 9.0)
    assert critique.refined_prompt == "Paint the red square bright yellow"
    assert "sky is untouched" in critique.reasoning


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_sent_apart_from_the_content_is_read(scene, edited, field):
    reasoning = ["The square ", "did not change at all."]
    content = ['<score>{"semantic": 1, "quality": 8}</score>', "<answer>Recolor the square yellow</answer>"]
    with chat_server(sse_reply(chat_chunks(content, reasoning, field))) as server:
        tokens = []
        critique = thinker_for(server.url + "/v1", thinker_model="editthinker-8b").critique(
            scene, edited, "make it yellow", "make it yellow", on_token=tokens.append
        )
    assert server.requests(*MODELS) == []  # the configured model is used as is
    assert server.requests(*CHAT)[0].json()["model"] == "editthinker-8b"
    assert tokens == reasoning + content
    assert critique.reasoning == "The square did not change at all."
    assert (critique.semantic, critique.quality, critique.refined_prompt) == (1.0, 8.0, "Recolor the square yellow")


def test_trailing_comma_in_the_score_json(scene, edited):
    answer = ['<think>ok</think><score>{"semantic": 8, "quality": 6,}</score><answer>Keep it</answer>']
    with chat_server(sse_reply(chat_chunks(answer))) as server:
        critique = thinker_for(server.url + "/v1").critique(scene, edited, "x", "y")
    assert (critique.semantic, critique.quality, critique.refined_prompt) == (8.0, 6.0, "Keep it")


def test_polish_sends_the_source_and_the_polish_template(scene):
    with chat_server(
        sse_reply(chat_chunks(["<think>a red square</think><answer>Make the red square yellow</answer>"]))
    ) as server:
        prompt = thinker_for(server.url + "/v1").polish(scene, "yellow square please")
    assert_images_and_text(server.requests(*CHAT)[0], [scene], render(load_template("polish"), "yellow square please"))
    assert prompt == "Make the red square yellow"


def test_a_500_is_retried_then_the_answer_is_used(scene, edited):
    with chat_server(
        json_reply({"error": {"message": "engine restarting"}}, 500), sse_reply(chat_chunks(ANSWER))
    ) as server:
        critique = thinker_for(server.url + "/v1").critique(scene, edited, "x", "y")
    assert len(server.requests(*CHAT)) == 2
    assert critique.semantic == 3.0


def test_429_waits_as_long_as_retry_after_says(scene, edited):
    limited = json_reply({"error": {"message": "slow down"}}, 429, {"Retry-After": "1"})
    with chat_server(limited, sse_reply(chat_chunks(ANSWER))) as server:
        started = time.monotonic()
        critique = thinker_for(server.url + "/v1").critique(scene, edited, "x", "y")
        waited = time.monotonic() - started
    assert len(server.requests(*CHAT)) == 2
    assert waited >= 0.95  # the configured backoff is 0.05 s: the server's Retry-After won
    assert critique.quality == 9.0


def test_a_server_that_never_answers_times_out_with_the_host_named(scene, edited):
    with chat_server(Reply(hang=10)) as server:
        started = time.monotonic()
        with pytest.raises(ThinkEditError) as caught:
            thinker_for(server.url + "/v1", request_timeout=0.4).critique(scene, edited, "x", "y")
        assert time.monotonic() - started < 3
    message = str(caught.value)
    assert server.url.removeprefix("http://") in message
    assert "did not answer within 0.4 s" in message
    assert len(server.requests(*CHAT)) == 1  # a read timeout is not retried


def test_connection_refused_is_retried_then_reported():
    port = free_port()
    with pytest.raises(ThinkEditError, match=rf"127\.0\.0\.1:{port} could not be reached.*after 3 attempts"):
        thinker_for(f"http://127.0.0.1:{port}/v1").critique(
            Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8)), "x", "y"
        )


def test_stop_aborts_the_stream_in_flight(scene, edited):
    slow = sse_reply(chat_chunks(["piece "] * 40), pause=0.1)  # four seconds of tokens

    def stop_after_two(piece, seen=[]):  # noqa: B006 - a counter local to this test
        seen.append(piece)
        if len(seen) >= 2:
            raise Cancelled

    with chat_server(slow) as server:
        started = time.monotonic()
        with pytest.raises(Cancelled):
            thinker_for(server.url + "/v1").critique(scene, edited, "x", "y", on_token=stop_after_two)
        assert time.monotonic() - started < 1.5


def test_stop_aborts_a_silent_request_too(scene, edited):
    """No token arrives (a long prefill): the heartbeat still asks the callback, and Stop closes the request."""
    pressed = time.monotonic() + 0.3

    def on_token(piece):
        if time.monotonic() > pressed:
            raise Cancelled

    with chat_server(Reply(hang=10)) as server:
        started = time.monotonic()
        with pytest.raises(Cancelled):
            thinker_for(server.url + "/v1").critique(scene, edited, "x", "y", on_token=on_token)
        assert time.monotonic() - started < 2


def test_the_key_never_appears_in_errors_or_logs(scene, edited, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    echo = json_reply({"error": {"message": f"Incorrect API key provided: {KEY}"}}, 401)
    with chat_server(echo) as server, pytest.raises(ThinkEditError) as caught:
        thinker_for(server.url + "/v1").critique(scene, edited, "x", "y")
    assert server.requests(*CHAT)[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent, to the server only
    message = str(caught.value)
    assert "refused the credentials (HTTP 401" in message and "OPENAI_API_KEY" in message
    assert KEY not in message and caught.value.__cause__ is None and caught.value.__context__ is None
    assert KEY not in caplog.text


def test_openai_thinker_needs_a_url():
    with pytest.raises(ThinkEditError, match="--thinker-url"):
        build_backend("thinker", Settings(thinker="openai"))
    with pytest.raises(ThinkEditError, match="http:// or https://"):
        build_backend("thinker", Settings(thinker="openai", thinker_url="file:///etc/passwd"))


# -- hf-inference: the real InferenceClient, pointed at the same local server ---------------------------


@pytest.fixture
def hub_online(monkeypatch):
    """huggingface_hub reads HF_HUB_OFFLINE once, at import, and then refuses every URL (127.0.0.1 too).
    This test alone lifts it so the real client code runs; the server it talks to is still local."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", KEY)


def test_hf_inference_thinker_streams_through_inference_client(scene, edited, hub_online, caplog):
    caplog.set_level(logging.DEBUG)
    content = ['<score>{"semantic": 6, "quality": 7}</score>', "<answer>Make it yellow</answer>"]
    with chat_server(sse_reply(chat_chunks(content, ["Looks ", "unchanged."]))) as server:
        tokens = []
        critique = thinker_for(server.url + "/v1", "hf-inference").critique(
            scene, edited, "yellow", "yellow", on_token=tokens.append
        )
    (request,) = server.requests(*CHAT)
    assert_images_and_text(request, [scene, edited], render(load_template("critique"), "yellow", "yellow"))
    assert request.json()["model"] == "Qwen/Qwen2.5-VL-72B-Instruct"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert tokens == ["Looks ", "unchanged.", *content]
    assert (critique.semantic, critique.quality, critique.reasoning) == (6.0, 7.0, "Looks unchanged.")
    assert KEY not in caplog.text


def test_hf_inference_thinker_offline_says_what_to_do(scene, edited):
    with chat_server(sse_reply(chat_chunks(ANSWER))) as server, pytest.raises(ThinkEditError) as caught:
        thinker_for(server.url + "/v1", "hf-inference").critique(scene, edited, "x", "y")
    assert "HF_HUB_OFFLINE" in str(caught.value) and "openai thinker" in str(caught.value)
    assert server.seen == []
