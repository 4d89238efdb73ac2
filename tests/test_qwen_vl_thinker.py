"""The Qwen-VL thinker on tiny random Qwen3-VL and Qwen2.5-VL checkpoints, through the real from_pretrained path."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch
from PIL import Image, ImageStat
from tiny_qwen_vl import build_tiny_qwen_vl

from thinkedit import loop, runtime
from thinkedit.config import Settings
from thinkedit.errors import BadInput, Cancelled, ThinkEditError
from thinkedit.registry import build_backend
from thinkedit.store import load_run
from thinkedit.thinkers import THINKERS
from thinkedit.thinkers.qwen_vl import QwenVLThinker, generation_options

FAMILIES = ("qwen3_vl", "qwen2_5_vl")


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """One tiny checkpoint per family, built once. The Qwen3 one uses a "thinking" chat template. Seed 1: random
    weights whose babble has spaces, which the streamer flushes at (some seeds loop on one token without any)."""
    root = tmp_path_factory.mktemp("tiny-qwen-vl")
    return {
        family: str(build_tiny_qwen_vl(root / family, family, thinking=family == "qwen3_vl", seed=1))
        for family in FAMILIES
    }


def make(checkpoint: str, name: str = "editthinker", **settings) -> QwenVLThinker:
    options = {"thinker_max_new_tokens": 24, "thinker_image_side": 64, "device": "cpu", **settings}
    return build_backend("thinker", Settings(thinker=name, thinker_model=checkpoint, **options))


class DarkenEditor:
    model = "darken"

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        return Image.eval(image, lambda v: v // 2)


@pytest.fixture
def yellow() -> Image.Image:
    """An 'edited' image with content and size unlike the scene's, so their order is visible."""
    return Image.new("RGB", (80, 80), (240, 220, 20))


def spy_processor(monkeypatch, thinker) -> list[dict]:
    """Record every call of the thinker's processor (it is called as `processor(text=…, images=…)`)."""
    _, processor, _ = thinker.load()
    calls: list[dict] = []
    original = type(processor).__call__

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(processor), "__call__", spy)
    return calls


def spy_generate(monkeypatch, thinker) -> list[int]:
    """Record how many new tokens each `generate()` produced, also when it was stopped by an exception."""
    model, _, _ = thinker.load()
    produced: list[int] = []
    original = model.generate

    def generate(**kwargs):
        streamer, calls = kwargs["streamer"], [0]
        put = streamer.put

        def counting_put(value):
            calls[0] += 1
            put(value)

        streamer.put = counting_put
        try:
            return original(**kwargs)
        finally:
            produced.append(calls[0] - 1)  # the first call hands over the prompt

    monkeypatch.setattr(model, "generate", generate)
    return produced


def mean_color(image: Image.Image) -> tuple[int, ...]:
    return tuple(round(v) for v in ImageStat.Stat(image).mean)


@pytest.mark.parametrize("family", FAMILIES)
def test_critique_sends_source_then_edited_and_streams_the_reply(family, checkpoints, scene, yellow, monkeypatch):
    thinker = make(checkpoints[family])
    calls = spy_processor(monkeypatch, thinker)
    chunks: list[tuple[float, str]] = []

    critique = thinker.critique(
        scene,
        yellow,
        "Make the red square blue",
        "Paint the red square deep blue",
        on_token=lambda text: chunks.append((time.perf_counter(), text)),
    )
    returned = time.perf_counter()

    assert len(calls) == 1
    images = calls[0]["images"]
    assert len(images) == 2
    # source first, downscaled to the 64-pixel longest side; edited second (a square stays square)
    assert images[0].size == (64, 43) and images[1].size == (64, 64)
    assert mean_color(images[0]) == pytest.approx(mean_color(scene.resize((64, 43))), abs=3)
    assert mean_color(images[1]) == (240, 220, 20)
    text = calls[0]["text"][0]
    slot = "<|vision_start|><|image_pad|><|vision_end|>"
    assert text.count(slot) == 2 and text.index(slot) < text.index("Make the red square blue")
    assert "Paint the red square deep blue" in text and "Semantic score" in text

    # the gibberish arrives in several chunks before the critique returns, and is all of the reply
    assert len(chunks) >= 3 and all(at < returned for at, _ in chunks)
    reply = "".join(text for _, text in chunks)
    assert critique.raw == ("<think>" if family == "qwen3_vl" else "") + reply
    assert critique.semantic is None and critique.quality is None and critique.refined_prompt is None
    assert critique.reasoning


def test_gibberish_critiques_still_finish_two_turns_and_save_them(checkpoints, scene, tmp_path):
    thinker = make(checkpoints["qwen3_vl"])
    request = loop.make_request(scene, "Make the sky orange", max_turns=2, no_answer="repeat")  # go on regardless
    events = list(loop.run(DarkenEditor(), thinker, request, run_dir=tmp_path / "run"))

    trajectory = events[-1].trajectory
    assert trajectory.stop_reason == "max_turns", trajectory.error
    assert [turn.prompt for turn in trajectory.turns] == ["Make the sky orange"] * 2  # no <answer>: prompt kept
    assert sum(isinstance(event, loop.Reasoning) for event in events) >= 4
    saved = load_run(tmp_path / "run")
    assert [turn["index"] for turn in saved.record["turns"]] == [1, 2]
    assert all(turn["semantic"] is None and turn["raw"] for turn in saved.record["turns"])
    assert saved.record["settings"]["thinker_model"] == checkpoints["qwen3_vl"]
    assert saved.image(2).size == scene.size


def test_stop_during_the_critique_stops_generation(checkpoints, scene, monkeypatch):
    limit = 2000
    thinker = make(checkpoints["qwen3_vl"], thinker_max_new_tokens=limit)
    produced = spy_generate(monkeypatch, thinker)
    cancel = threading.Event()
    request = loop.make_request(scene, "Make the sky orange", max_turns=2)

    for event in loop.run(DarkenEditor(), thinker, request, cancel=cancel):
        if isinstance(event, loop.Reasoning):
            cancel.set()

    assert event.trajectory.stop_reason == "cancelled"
    assert len(produced) == 1 and produced[0] < limit // 10


def test_cancelled_from_on_token_is_raised_after_generation_stopped(checkpoints, scene, yellow, monkeypatch):
    thinker = make(checkpoints["qwen2_5_vl"], thinker_max_new_tokens=2000)
    produced = spy_generate(monkeypatch, thinker)
    seen: list[str] = []

    def on_token(text):
        seen.append(text)
        if len(seen) == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        thinker.critique(scene, yellow, "Make the sky orange", "Make the sky orange", on_token=on_token)
    assert len(seen) == 2 and produced[0] < 200


def test_second_request_reuses_the_cached_model(checkpoints, scene, yellow):
    first = make(checkpoints["qwen2_5_vl"])
    first.critique(scene, yellow, "Make the sky orange", "Make the sky orange")
    loads = runtime.CACHE.loads
    second = make(checkpoints["qwen2_5_vl"], name="qwen-vl")
    second.critique(scene, yellow, "Add a cat", "Add a cat")
    assert runtime.CACHE.loads == loads
    assert second.load()[0] is first.load()[0]
    assert ("thinker", checkpoints["qwen2_5_vl"], "cpu", "torch.float32", "auto") in runtime.CACHE


def test_polish_sends_the_source_only(checkpoints, scene, monkeypatch):
    thinker = make(checkpoints["qwen3_vl"])
    calls = spy_processor(monkeypatch, thinker)
    chunks: list[str] = []
    polished = thinker.polish(scene, "Make the sky orange", on_token=chunks.append)
    assert len(calls[0]["images"]) == 1 and calls[0]["images"][0].size == (64, 43)
    assert "rewritten prompt" in calls[0]["text"][0] and "Make the sky orange" in calls[0]["text"][0]
    assert chunks and polished == "Make the sky orange"  # gibberish has no <answer>: the instruction stays


def test_polish_first_turn_in_the_loop(checkpoints, scene):
    request = loop.make_request(scene, "Make the sky orange", max_turns=1, first_turn="polish")
    events = list(loop.run(DarkenEditor(), make(checkpoints["qwen2_5_vl"]), request))
    trajectory = events[-1].trajectory
    assert trajectory.stop_reason == "no_answer", trajectory.error  # the random model writes no <answer>
    assert trajectory.first_turn_prompt == "Make the sky orange" and trajectory.first_turn_reasoning
    assert any(isinstance(e, loop.Reasoning) and e.index == 0 for e in events)


def test_sampling_settings(checkpoints, scene, yellow):
    assert generation_options(Settings()) == {"max_new_tokens": 4096}  # the rest is the checkpoint's own
    options = generation_options(Settings(extra={"thinker_sampling": {"temperature": 0.7, "top_p": 0.8}}))
    assert options == {"max_new_tokens": 4096, "do_sample": True, "temperature": 0.7, "top_p": 0.8}
    assert generation_options(Settings(extra={"thinker_sampling": {"temperature": 0}})) == {
        "max_new_tokens": 4096,
        "do_sample": False,
    }
    with pytest.raises(BadInput, match="beam"):
        generation_options(Settings(extra={"thinker_sampling": {"beams": 4}}))
    thinker = make(checkpoints["qwen2_5_vl"], extra={"thinker_sampling": {"temperature": 1.5, "top_k": 50}})
    torch.manual_seed(0)
    assert thinker.critique(scene, yellow, "Add a cat", "Add a cat").raw


def test_decoding_follows_the_checkpoints_generation_config(tmp_path, scene, yellow):
    """A checkpoint that samples (as EditThinker-8B's generation_config.json says) is sampled; the user's
    temperature 0 still decodes greedily."""
    folder = build_tiny_qwen_vl(tmp_path / "sampling", "qwen2_5_vl")
    config = json.loads((folder / "generation_config.json").read_text())
    config.update(do_sample=True, temperature=1.5, top_k=0, top_p=1.0)
    (folder / "generation_config.json").write_text(json.dumps(config))

    def replies(thinker, seeds=(1, 2)) -> set[str]:
        texts = set()
        for seed in seeds:
            torch.manual_seed(seed)
            texts.add(thinker.critique(scene, yellow, "Add a cat", "Add a cat").raw)
        return texts

    assert len(replies(make(str(folder)))) == 2
    assert len(replies(make(str(folder), extra={"thinker_sampling": {"temperature": 0}}))) == 1


def test_the_authors_template_file_can_be_used_as_is(checkpoints, scene, yellow, tmp_path, monkeypatch):
    """Laid out like EditThinker's inference/prompt_template.txt: `<image>` markers, its own placeholder names."""
    authors = tmp_path / "prompt_template.txt"
    authors.write_text(
        '<image><image>\n# Edit evaluation\nOriginal User Instruction: "{original_instruction}"\n'
        'Rewritten Prompt: "{rewritten_prompt}"\n<score>{"semantic": [0-10], "quality": [0-10]}</score>'
    )
    thinker = make(checkpoints["qwen2_5_vl"], thinker_template=str(authors))
    calls = spy_processor(monkeypatch, thinker)
    thinker.critique(scene, yellow, "Make the square blue", "Paint the red square deep blue")
    text = calls[0]["text"][0]
    assert 'Original User Instruction: "Make the square blue"' in text
    assert 'Rewritten Prompt: "Paint the red square deep blue"' in text
    assert "<image>" not in text and text.count("<|image_pad|>") == 2  # the two images, before the text
    assert text.index("<|vision_end|>") < text.index("# Edit evaluation")


def test_out_of_memory_becomes_a_clear_error(checkpoints, scene, yellow, monkeypatch):
    thinker = make(checkpoints["qwen2_5_vl"])
    model, _, _ = thinker.load()

    def generate(**kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(model, "generate", generate)
    with pytest.raises(ThinkEditError, match="GPU ran out of memory while the thinker read 2 image"):
        thinker.critique(scene, yellow, "Add a cat", "Add a cat")


def test_registry_rows_and_missing_weights():
    editthinker = QwenVLThinker(THINKERS["editthinker"], Settings(thinker="editthinker"))
    assert editthinker.model == "appletea2333/EditThinker-8B"
    assert QwenVLThinker(THINKERS["qwen-vl"], Settings()).model == "Qwen/Qwen3-VL-2B-Instruct"
    kontext = QwenVLThinker(THINKERS["editthinker-kontext"], Settings(thinker="editthinker-kontext"))
    assert kontext.model == "appletea2333/EditThinker8B-Flux.1-Kontext-Dev"
    with pytest.raises(BadInput, match="hf download appletea2333/EditThinker-8B"):
        build_backend("thinker", Settings(thinker="editthinker"))  # refused before anything loads
    with pytest.raises(ThinkEditError, match="hf download nobody/no-such-thinker"):
        make("nobody/no-such-thinker").load()


def test_gpu_check_runs_tiny_on_the_cpu(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check_thinker.py"
    spec = importlib.util.spec_from_file_location("gpu_check_thinker", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--tiny", "--tokens", "6"]) == 0
    report = json.loads(capsys.readouterr().out)
    for run in ("thinker_alone", "thinker_with_flux_kontext"):
        assert report[run]["new_tokens"] == 6 and report[run]["first_token_s"] > 0 and report[run]["tokens_per_s"] > 0
    assert report["flux_kontext_resident_gb"] > 0


# -- the EditThinker authors' own template --------------------------------------------------------------------


AUTHORS_LAYOUT = (  # laid out like their prompt_template.txt (our words): image markers, their placeholder names
    '<image><image>\n# Judge this edit\nAsked for: "{original_instruction}"\nDone with: "{rewritten_prompt}"\n'
    '<score>{"semantic": [0-10], "quality": [0-10]}</score>'
)


@pytest.fixture
def authors_url(monkeypatch, tmp_path):
    """The editthinker rows' template URL pointed at a server on 127.0.0.1 serving the authors' layout; the hub
    cache home empty and online. Yields the server."""
    from dataclasses import replace

    from helpers import FakeServer, Reply
    from huggingface_hub import constants

    from thinkedit.thinkers import _prompted

    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(_prompted, "_told", set())
    with FakeServer(
        {("GET", "/EditThinker/inference/prompt_template.txt"): lambda seen: Reply(200, AUTHORS_LAYOUT.encode())}
    ) as server:
        for name in ("editthinker", "editthinker-kontext"):
            url = f"{server.url}/EditThinker/inference/prompt_template.txt"
            monkeypatch.setitem(THINKERS, name, replace(THINKERS[name], options={"template_url": url}))
        yield server


def test_the_editthinker_rows_fetch_the_authors_template_once_and_use_it(
    authors_url, checkpoints, scene, yellow, monkeypatch
):
    thinker = make(checkpoints["qwen2_5_vl"])
    calls = spy_processor(monkeypatch, thinker)
    thinker.critique(scene, yellow, "Make the square blue", "Paint the red square deep blue")
    text = calls[0]["text"][0]
    assert 'Asked for: "Make the square blue"' in text and 'Done with: "Paint the red square deep blue"' in text
    assert len(authors_url.seen) == 1
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # from the cache ever after, offline too
    assert "# Judge this edit" in make(checkpoints["qwen2_5_vl"], name="editthinker-kontext").critique_template
    assert len(authors_url.seen) == 1
    assert "# Judge this edit" not in make(checkpoints["qwen2_5_vl"], name="qwen-vl").critique_template


def test_offline_without_the_authors_template_ours_is_used_with_one_notice(
    authors_url, checkpoints, caplog, monkeypatch
):
    from thinkedit.critique import load_template
    from thinkedit.thinkers._prompted import template_path

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with caplog.at_level("WARNING"):
        first, second = make(checkpoints["qwen2_5_vl"]), make(checkpoints["qwen2_5_vl"])
    assert first.critique_template == second.critique_template == load_template("critique")
    assert authors_url.seen == []
    [notice] = [r.getMessage() for r in caplog.records if "own critique template" in r.getMessage()]
    url = THINKERS["editthinker"].options["template_url"]
    assert f"curl -L --create-dirs -o '{template_path(url)}' {url}" in notice and "HF_HUB_OFFLINE=1" in notice


def test_a_failed_fetch_falls_back_to_ours_and_says_why(authors_url, checkpoints, caplog, monkeypatch):
    from dataclasses import replace

    url = f"{authors_url.url}/nothing-here.txt"
    monkeypatch.setitem(THINKERS, "editthinker", replace(THINKERS["editthinker"], options={"template_url": url}))
    with caplog.at_level("WARNING"):
        thinker = make(checkpoints["qwen2_5_vl"])
    assert "{instruction}" in thinker.critique_template and "Judge this edit" not in thinker.critique_template
    assert any("404" in r.getMessage() and url in r.getMessage() for r in caplog.records)
