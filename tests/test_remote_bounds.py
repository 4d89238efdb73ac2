"""Every remote client reads a bounded answer within a deadline, against misbehaving servers on 127.0.0.1: a huge
answer, an endless one, a one-byte drip, keep-alive comments, a compressed bomb, endless untagged text."""

import gzip
import json
import tracemalloc

import huggingface_hub.constants
import pytest
from helpers import (
    EDIT,
    Reply,
    b64_png,
    chat_chunks,
    drip,
    editing_server,
    flood,
    in_order,
    json_reply,
    keep_alive,
    openai_server,
    sse_reply,
)
from PIL import Image

from thinkedit import cli, loop
from thinkedit.config import Settings
from thinkedit.critique import answer_chars
from thinkedit.errors import BadInput, ThinkEditError
from thinkedit.registry import build_backend

MB = 2**20
TINY_ANSWER = {"success": True, "edited_image": b64_png(Image.new("RGB", (2, 2), "red")), "error": None}


def settings(**changes) -> Settings:
    base = Settings(connect_timeout=2.0, request_retries=2, retry_backoff=0.05, thinker_image_side=32)
    return base.replace(**changes)


def http_editor(url: str, **changes):
    return build_backend("editor", settings(editor="http", editor_url=url, **changes))


def thinker(url: str, name: str = "openai", **changes):
    return build_backend("thinker", settings(thinker=name, thinker_url=f"{url}/v1", **changes))


def peak_growth(call) -> tuple[BaseException | None, int]:
    """(what `call()` raised, the most memory Python held beyond what it held before the call)."""
    tracemalloc.start()
    try:
        call()
        raised = None
    except Exception as exc:  # noqa: BLE001 - the caller asserts what it was
        raised = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return raised, peak


# -- size ---------------------------------------------------------------------------------------------------


def test_an_editing_servers_huge_answer_is_refused_with_a_sentence_while_memory_stays_small(scene):
    """64 MB of JSON that never ends its string: read whole, it would take hundreds of MB; bounded, a few."""
    answer = flood(b'{"success": true, "edited_image": "', b"A" * 65536, times=1024)
    with editing_server(lambda _: answer) as server:
        editor = http_editor(server.url, remote_answer_mb=1)
        raised, peak = peak_growth(lambda: editor.edit(scene, "x", seed=0))
    assert isinstance(raised, ThinkEditError)
    assert str(raised) == (
        f"The editing server at {server.url.removeprefix('http://')} sent an answer larger than 1 MB "
        "(THINKEDIT_REMOTE_ANSWER_MB); it was not read further."
    )
    assert peak < 12 * MB, f"peak {peak / MB:.1f} MB"
    assert len(server.requests(*EDIT)) == 1  # not asked again: the next answer would be as large


def test_an_answer_declaring_1_5_gb_is_refused_from_its_headers(scene):
    declared = Reply(headers={"Content-Type": "application/json", "Content-Length": str(1536 * MB)}, chunks=[b"{"])
    with editing_server(lambda _: declared) as server, pytest.raises(ThinkEditError, match="larger than 256 MB"):
        http_editor(server.url).edit(scene, "x", seed=0)


def test_a_compressed_answer_is_not_unpacked(scene):
    """A few kB of gzip that would unpack to 64 MB: answers are asked for plain, and a compressed one is refused."""
    bomb = gzip.compress(b'{"success": true, "edited_image": "' + b"A" * (64 * MB), compresslevel=9)
    reply = Reply(body=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    with editing_server(lambda _: reply) as server:
        editor = http_editor(server.url, remote_answer_mb=1)
        raised, peak = peak_growth(lambda: editor.edit(scene, "x", seed=0))
    assert isinstance(raised, ThinkEditError) and "sent a compressed answer (gzip)" in str(raised), raised
    assert server.requests(*EDIT)[0].headers["accept-encoding"] == "identity"
    assert peak < 12 * MB


@pytest.mark.parametrize(
    "reply",
    [
        flood(b'{"choices": [{"message": {"content": "', b"x" * 65536, times=512),  # the whole completion at once
        flood(b'data: {"choices": [{"delta": {"content": "', b"x" * 65536, times=512, content_type="text/event-stream"),
    ],
    ids=["whole-json", "one-endless-event"],
)
def test_a_thinkers_huge_answer_is_refused_with_a_sentence(scene, reply):
    with openai_server(lambda _: reply) as server:
        asker = thinker(server.url, remote_answer_mb=1)
        raised, peak = peak_growth(lambda: asker.critique(scene, scene, "x", "y"))
    assert isinstance(raised, ThinkEditError), raised
    assert "sent an answer larger than 1 MB (THINKEDIT_REMOTE_ANSWER_MB)" in str(raised)
    assert peak < 12 * MB, f"peak {peak / MB:.1f} MB"


@pytest.fixture
def hub_online(monkeypatch):
    """huggingface_hub refuses every URL while HF_HUB_OFFLINE=1, 127.0.0.1 too: lifted for these tests."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_planted_token_123")


@pytest.mark.usefixtures("hub_online")
def test_the_inference_client_backends_are_bounded_too(scene):
    """huggingface_hub's client gets the same bound: the hf-inference editor and thinker (and judge)."""
    huge = flood(b"\x89PNG", b"\0" * 65536, times=512, content_type="image/png")
    with editing_server() as server:
        server.routes[("POST", "/kontext")] = lambda _: huge
        editor = build_backend(
            "editor", settings(editor="hf-inference", editor_url=f"{server.url}/kontext", remote_answer_mb=1)
        )
        raised, peak = peak_growth(lambda: editor.edit(scene, "x", seed=0))
    assert isinstance(raised, ThinkEditError) and "larger than 1 MB (THINKEDIT_REMOTE_ANSWER_MB)" in str(raised)
    assert peak < 12 * MB
    events = flood(b'data: {"choices": [{"delta": {"content": "', b"x" * 65536, 512, "text/event-stream")
    with openai_server(lambda _: events) as server:
        asker = thinker(server.url, "hf-inference", thinker_model="org/vlm", remote_answer_mb=1)
        with pytest.raises(ThinkEditError, match=r"larger than 1 MB \(THINKEDIT_REMOTE_ANSWER_MB\)"):
            asker.critique(scene, scene, "x", "y")


# -- the deadline ---------------------------------------------------------------------------------------------


def test_a_one_byte_drip_is_cut_at_the_deadline(scene):
    """Each byte comes well within the read timeout; the answer, complete after ~20 s, never counts."""
    body = json.dumps(TINY_ANSWER).encode()
    with editing_server(lambda _: drip(body, pause=20 / len(body))) as server:
        editor = http_editor(server.url, edit_timeout=1.5)
        with pytest.raises(ThinkEditError) as caught:
            editor.edit(scene, "x", seed=0)
    assert str(caught.value) == (
        f"The editing server at {server.url.removeprefix('http://')} did not finish within 1.5 s "
        "(THINKEDIT_EDIT_TIMEOUT); the request was stopped."
    )


def test_sse_keep_alive_comments_do_not_extend_the_deadline(scene):
    """A comment every 0.1 s keeps the read timeout (1 s) at bay for 30 s, then a real answer; the whole call may
    take 1.5 s (the thinker timeout)."""
    answer = chat_chunks(['<score>{"semantic": 9, "quality": 9}</score><answer>x</answer>'])
    with openai_server(in_order(keep_alive(300, 0.1, answer))) as server:
        asker = thinker(server.url, request_timeout=1.0, thinker_timeout=1.5)
        with pytest.raises(ThinkEditError) as caught:
            asker.critique(scene, scene, "x", "y")
    assert str(caught.value).endswith(
        "did not finish within 1.5 s (THINKEDIT_THINKER_TIMEOUT); the request was stopped."
    )


def test_a_judge_asking_a_remote_model_has_the_same_deadline(scene):
    """The judges ask through the thinkers' clients, in the judge role: its URL, and the thinker timeout."""
    with openai_server(in_order(keep_alive(300, 0.1))) as server:
        judge = build_backend(
            "judge", settings(judge="openai", judge_url=f"{server.url}/v1", request_timeout=1.0, thinker_timeout=1.5)
        )
        with pytest.raises(ThinkEditError, match=r"did not finish within 1\.5 s \(THINKEDIT_THINKER_TIMEOUT\)"):
            judge.judge(scene, scene, "make it red")


def test_retries_stay_inside_the_deadline(scene):
    """A server answering 503 with Retry-After: 1 forever: the retries end with the call's deadline."""
    busy = json_reply({"error": "busy"}, 503, {"Retry-After": "1"})
    with editing_server(lambda _: busy) as server:
        editor = http_editor(server.url, edit_timeout=1.5, request_retries=50)
        with pytest.raises(ThinkEditError, match=r"did not finish within 1\.5 s"):
            editor.edit(scene, "x", seed=0)
    assert len(server.requests(*EDIT)) <= 3


# -- endless text ------------------------------------------------------------------------------------------------


def untagged(pieces: int) -> Reply:
    """A thinker that streams untagged text: `pieces` events of ten characters (a server ignoring max_tokens)."""
    return sse_reply(chat_chunks(["blah blah "] * pieces))


def test_endless_untagged_text_is_cut_at_the_token_limits_worth(scene):
    with openai_server(lambda _: untagged(50_000)) as server:
        pieces = []
        critique = thinker(server.url, thinker_max_new_tokens=32).critique(
            scene, scene, "x", "y", on_token=pieces.append
        )
    limit = answer_chars(32)
    assert len(critique.raw) == limit and len("".join(pieces)) == limit
    assert critique.semantic is None and critique.refined_prompt is None


def test_a_run_with_a_thinker_that_never_stops_talking_stays_small(tmp_path, scene, capsys, monkeypatch):
    """Through the CLI: two turns of endless untagged text; the run finishes, its trajectory.json is a few kB, `show`
    opens it, and what the page would show (the reasoning events) is as small."""
    scene.save(tmp_path / "scene.png")
    with openai_server(lambda _: untagged(50_000)) as server:
        monkeypatch.setenv("THINKEDIT_THINKER_MAX_NEW_TOKENS", "64")
        code = cli.main(
            [
                *("edit", "--image", str(tmp_path / "scene.png"), "--instruction", "make it red"),
                *("--max-turns", "2", "--thinker", "openai", "--thinker-url", f"{server.url}/v1"),
                *("--out", str(tmp_path / "run"), "--no-answer", "repeat"),  # go on after a reply without <answer>
            ]
        )
        assert code == 0
        record = tmp_path / "run" / "trajectory.json"
        assert record.stat().st_size < 3 * 2 * answer_chars(64) + 8000  # raw and reasoning of two turns
        assert [len(turn["raw"]) for turn in json.loads(record.read_text())["turns"]] == [answer_chars(64)] * 2
        capsys.readouterr()
        assert cli.main(["show", str(tmp_path / "run")]) == 0
        assert "Instruction: make it red" in capsys.readouterr().out

        asker = thinker(server.url, thinker_max_new_tokens=64)
        events = list(
            loop.run(
                build_backend("editor", settings()), asker, loop.make_request(scene, "make it red", no_answer="repeat")
            )
        )
    shown = sum(len(event.text) for event in events if isinstance(event, loop.Reasoning))
    assert shown == 3 * answer_chars(64)  # three turns (the default), each cut


# -- the settings ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
@pytest.mark.parametrize("name", ["THINKEDIT_REMOTE_ANSWER_MB", "THINKEDIT_EDIT_TIMEOUT", "THINKEDIT_THINKER_TIMEOUT"])
def test_a_bound_that_would_turn_itself_off_is_refused(name, value):
    with pytest.raises(BadInput, match=f"{name} must be a number above 0"):
        Settings.from_env({name: value})
