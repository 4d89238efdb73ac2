"""`--speed fast` on the tiny pipelines: each row's preset engages, changes what it should, and comes off again.

The CPU never compiles (a test's stand-in records what would be compiled); the static-cache thinker runs only
on CUDA.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from helpers import studio_handler
from PIL import Image
from tiny_pipelines import denoiser_layer_calls, random_lora
from tiny_qwen_vl import build_tiny_qwen_vl

from thinkedit import loop, runtime
from thinkedit.config import Settings
from thinkedit.editors import EDITORS, _speed
from thinkedit.errors import BadInput, ThinkEditError
from thinkedit.registry import build_backend
from thinkedit.store import load_run
from thinkedit.thinkers.qwen_vl import generation_options

pytestmark = pytest.mark.usefixtures("empty_model_cache")

PROMPT = "make the sky orange"
CACHED = [name for name, spec in EDITORS.items() if spec.fast and spec.fast.cache and spec.tiny]
STEPS = 14  # the rows' TaylorSeer computes steps 0-9 and 11 in full and predicts 10, 12 and 13
PREDICTED = [10, 12, 13]
TOLERANCE = 4  # of 255: how far any pixel of a cached edit may be from the default edit's
AREA = 64 * 64  # the tiny pipelines' working area (the models' own is ~1024²)


@pytest.fixture(autouse=True)
def small_areas(monkeypatch):
    """The pipelines that work at a fixed ~1 MP whatever the request (LongCat, Qwen-Image-Edit-Plus's condition
    image) work at a small area here: the tests count steps and layers, not pixels."""
    import importlib

    for name in ("longcat_image.pipeline_longcat_image_edit", "qwenimage.pipeline_qwenimage_edit_plus"):
        module = importlib.import_module(f"diffusers.pipelines.{name}")
        original = module.calculate_dimensions
        monkeypatch.setattr(module, "calculate_dimensions", lambda _area, ratio, f=original: f(AREA, ratio))


def at_speeds(tiny, name: str, spec=None) -> tuple:
    """The editor `name` on its tiny pipeline at the default speed and at fast (one loaded pipeline for both),
    working at a small area."""
    spec = spec or EDITORS[name]
    editors = tuple(
        spec.load_class()(spec, Settings(editor=name, editor_model=str(tiny(spec.tiny)), speed=speed))
        for speed in ("default", "fast")
    )
    for editor in editors:
        editor.area = AREA
    return editors


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.mark.parametrize("name", CACHED)
def test_the_cache_predicts_later_steps_stays_close_and_default_comes_back_bit_for_bit(tiny, source, name):
    default, fast = at_speeds(tiny, name)
    pipe = default.pipeline()
    with denoiser_layer_calls(pipe) as passes:
        before = default.edit(source, PROMPT, seed=0, steps=STEPS)
        full, _ = passes[:], passes.clear()
        cached = fast.edit(source, PROMPT, seed=0, steps=STEPS)
        fast_passes, _ = passes[:], passes.clear()
        after = default.edit(source, PROMPT, seed=0, steps=STEPS)
        again, _ = passes[:], passes.clear()

    per_step = len(full) // STEPS  # 2 with classifier-free guidance (LongCat): a cond and an uncond pass
    assert len(set(full)) == 1 and len(full) == per_step * STEPS  # default: every layer on every step
    fewer = sorted({i // per_step for i, calls in enumerate(fast_passes) if calls < full[0]})
    assert fewer == PREDICTED and len(fast_passes) == len(full)
    assert np.abs(pixels(cached) - pixels(before)).max() <= TOLERANCE
    assert again == full and np.array_equal(pixels(after), pixels(before))
    assert not _speed.denoiser(pipe).is_cache_enabled and _speed.applied(pipe).preset is None
    assert fast.pipeline() is pipe  # both speeds share the one loaded pipeline


def test_the_default_speed_is_the_bare_pipeline_as_loaded(tiny, source):
    default, _ = at_speeds(tiny, "flux-kontext")
    edited = default.edit(source, PROMPT, seed=0, steps=3)
    pipe = default.pipeline()
    assert _speed.STATE not in vars(pipe) and not pipe.transformer.is_cache_enabled  # nothing was put on it
    bare = DiffusionPipeline.from_pretrained(default.model)  # loaded apart from ours
    bare.set_progress_bar_config(disable=True)
    image = bare(**default.call_arguments(source, PROMPT, 0, 3)).images[0]
    assert np.array_equal(pixels(image.resize(source.size, Image.Resampling.LANCZOS)), pixels(edited))


def test_the_lora_gives_its_steps_and_scheduler_changes_the_edit_and_unloads(tiny, source, tmp_path):
    row = EDITORS["qwen-image-edit"]
    lora = random_lora(  # in the key format lightx2v publish theirs: diffusers converts it as it loads
        DiffusionPipeline.from_pretrained(tiny(row.tiny)),
        tmp_path / "lora",
        "tiny-lightning.safetensors",
        published=True,
    )
    spec = dataclasses.replace(
        row, fast=dataclasses.replace(row.fast, lora=str(lora), lora_weight="tiny-lightning.safetensors")
    )
    default, fast = at_speeds(tiny, "qwen-image-edit", spec)
    pipe = default.pipeline()
    scheduler = pipe.scheduler
    before = default.edit(source, PROMPT, seed=0, steps=2)
    steps = []
    fast.edit(source, PROMPT, seed=0, on_step=lambda i, n: steps.append(n))
    assert steps[-1] == row.fast.steps == 8 and fast.default_guidance == 1.0  # the distillation's, from the row
    assert pipe.get_list_adapters() == {"transformer": [_speed.ADAPTER]}
    assert math.isclose(pipe.scheduler.config.base_shift, math.log(3)) and pipe.scheduler is not scheduler
    changed = fast.edit(source, PROMPT, seed=0, steps=2, guidance=row.guidance)
    assert np.abs(pixels(changed) - pixels(before)).max() > 0
    after = default.edit(source, PROMPT, seed=0, steps=2)
    assert np.array_equal(pixels(after), pixels(before)) and pipe.scheduler is scheduler
    assert not any("lora" in name for name, _ in pipe.transformer.named_modules())


def test_a_missing_lora_offline_is_named_with_how_to_get_it(tiny, source):
    default, fast = at_speeds(tiny, "qwen-image-edit")
    with pytest.raises(ThinkEditError) as refused:
        fast.edit(source, PROMPT, seed=0, steps=1)
    message = str(refused.value)
    assert f"hf download lightx2v/Qwen-Image-Lightning {EDITORS['qwen-image-edit'].fast.lora_weight}" in message
    assert "HF_HUB_OFFLINE=1" in message and "--speed default" in message
    assert _speed.applied(default.pipeline()).preset is None  # nothing half-applied
    assert default.edit(source, PROMPT, seed=0, steps=1).size == source.size


@pytest.fixture
def hub_without_the_file(monkeypatch):
    """A stand-in hub on 127.0.0.1 where every repository exists but has no file of the asked name; online."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from huggingface_hub import constants

    class Hub(BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 - http.server's name
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("X-Error-Message", "Entry not found")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    yield
    server.shutdown()
    server.server_close()


def test_a_wrong_lora_file_name_fails_naming_the_listing_command(tiny, source, tmp_path, hub_without_the_file):
    row = EDITORS["qwen-image-edit-2511"]
    default, fast = at_speeds(tiny, row.name)
    with pytest.raises(ThinkEditError) as refused:
        fast.edit(source, PROMPT, seed=0, steps=1)
    assert f"{row.fast.lora} has no file {row.fast.lora_weight}" in str(refused.value)
    assert f"`hf models ls {row.fast.lora}`" in str(refused.value) and "--speed default" in str(refused.value)
    (tmp_path / "lora").mkdir()  # a local folder without the file: its listing is `ls`
    spec = dataclasses.replace(row, fast=dataclasses.replace(row.fast, lora=str(tmp_path / "lora")))
    with pytest.raises(ThinkEditError, match=f"See the files it has with `ls {tmp_path / 'lora'}`"):
        at_speeds(tiny, row.name, spec)[1].edit(source, PROMPT, seed=0, steps=1)
    assert _speed.applied(default.pipeline()).preset is None


def test_a_preset_that_fails_half_way_is_taken_off_again(tiny, source, monkeypatch):
    row = EDITORS["flux-kontext"]  # its cache, with a scheduler change in front that goes on before the cache fails
    spec = dataclasses.replace(row, fast=dataclasses.replace(row.fast, scheduler={"shift": 2.0}))
    default, fast = at_speeds(tiny, "flux-kontext", spec)
    pipe = default.pipeline()
    scheduler, before = pipe.scheduler, default.edit(source, PROMPT, seed=0, steps=2)

    def refuse(config) -> None:
        raise RuntimeError("this denoiser takes no cache")

    monkeypatch.setattr(_speed.denoiser(pipe), "enable_cache", refuse)
    with pytest.raises(RuntimeError, match="takes no cache"):
        fast.edit(source, PROMPT, seed=0, steps=2)
    assert _speed.applied(pipe).preset is None and pipe.scheduler is scheduler
    assert np.array_equal(pixels(default.edit(source, PROMPT, seed=0, steps=2)), pixels(before))


@pytest.mark.parametrize(("name", "fullgraph"), [("flux-kontext", False), ("instruct-pix2pix", True)])
def test_compilation_once_per_loaded_model_and_the_default_runs_eagerly(tiny, source, monkeypatch, name, fullgraph):
    default, fast = at_speeds(tiny, name)
    model = _speed.denoiser(default.pipeline())
    compiled, stances = [], []
    monkeypatch.setattr(runtime, "compiles", lambda settings: True)  # as on CUDA; recorded here, never compiled
    monkeypatch.setattr(type(model), "compile_repeated_blocks", lambda self, **options: compiled.append(options))
    monkeypatch.setattr(torch.compiler, "set_stance", lambda stance: stances.append(stance) or contextlib.nullcontext())
    for editor in (fast, default, fast, default):
        editor.edit(source, PROMPT, seed=0, steps=1)
    assert compiled == [{"fullgraph": fullgraph}]  # a cache's hooks break the graph on purpose; without one, whole
    assert stances == ["force_eager", "force_eager"]  # the default calls only


def test_group_offload_runs_the_tiny_pipeline(tiny, source):
    default, _ = at_speeds(tiny, "flux-kontext")
    expected = default.edit(source, PROMPT, seed=0, steps=2)
    grouped = build_backend("editor", default.settings.replace(offload="group"))
    grouped.area = AREA
    # On the CPU any mode resolves to "none" (there is no accelerator to offload to): load it the way CUDA would,
    # with the CPU as the onload device and no streams (they are CUDA's).
    pipe = grouped._load("cpu", "group", None)
    hooked = [
        name
        for name, module in pipe.transformer.named_modules()
        if "group_offloading" in getattr(getattr(module, "_diffusers_hook", None), "hooks", {})
    ]
    assert hooked
    pipe.set_progress_bar_config(disable=True)
    image = pipe(**grouped.call_arguments(source, PROMPT, 0, 2)).images[0]
    assert np.array_equal(pixels(image.resize(source.size, Image.Resampling.LANCZOS)), pixels(expected))


def test_speed_setting_flag_environment_and_record(tmp_path, scene):
    assert Settings.from_env({"THINKEDIT_SPEED": "fast"}).speed == "fast" and Settings().speed == "default"
    with pytest.raises(BadInput, match="Unknown speed 'turbo'"):
        Settings.from_env({"THINKEDIT_SPEED": "turbo"})
    editor = build_backend("editor", Settings(speed="fast"))  # classic: no preset, the speed is still recorded
    request = loop.make_request(scene, "make it brighter", max_turns=1)
    for _ in loop.run(editor, build_backend("thinker", Settings()), request, run_dir=tmp_path / "run"):
        pass
    assert load_run(tmp_path / "run").record["settings"]["speed"] == "fast"  # written, and read back as valid


def test_thinker_fast_options_ask_for_a_static_cache_only_where_compiling_pays(monkeypatch):
    static = {"cache_implementation": "static"}
    assert static.items() <= generation_options(Settings(speed="fast", device="cuda")).items()
    for settings in (
        Settings(speed="fast", device="cpu"),
        Settings(device="cuda"),
        Settings(speed="fast", device="mps"),
    ):
        assert "cache_implementation" not in generation_options(settings)
    monkeypatch.setattr("thinkedit.zerogpu.on_zero_gpu", lambda: True)  # every call a fresh worker: no compiling
    assert "cache_implementation" not in generation_options(Settings(speed="fast", device="cuda"))


def test_thinker_fast_decodes_into_a_static_cache_and_not_when_it_moves_between_devices(tmp_path, scene, monkeypatch):
    monkeypatch.setattr(runtime, "compiles", lambda settings: True)  # as on CUDA; generate() compiles on CUDA only
    checkpoint = str(build_tiny_qwen_vl(tmp_path / "qwen3-vl", "qwen3_vl", seed=1))
    settings = Settings(
        thinker="qwen-vl",
        thinker_model=checkpoint,
        device="cpu",
        thinker_max_new_tokens=8,
        extra={"thinker_sampling": {"temperature": 0}},
    )  # greedy: the two caches agree
    calls = []

    def critique(speed: str):
        thinker = build_backend("thinker", settings.replace(speed=speed))
        return thinker.critique(scene, scene, "make it brighter", "make it brighter").raw

    model_class = type(build_backend("thinker", settings).load()[0])
    original = model_class.generate
    monkeypatch.setattr(model_class, "generate", lambda self, **kw: calls.append(kw) or original(self, **kw))
    fast, default = critique("fast"), critique("default")
    assert fast == default and fast  # the static cache decodes what the dynamic one does
    assert calls[0]["cache_implementation"] == "static" and "cache_implementation" not in calls[1]
    monkeypatch.setattr(runtime, "choose_offload", lambda *args: "model")  # waits in CPU memory between critiques
    runtime.CACHE.clear()
    critique("fast")
    assert len(calls) == 3 and "cache_implementation" not in calls[2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the static KV cache is compiled on CUDA only; no CUDA here")
def test_thinker_fast_decodes_with_a_compiled_static_cache_on_cuda(tmp_path, scene):
    checkpoint = str(build_tiny_qwen_vl(tmp_path / "qwen3-vl", "qwen3_vl", seed=1))
    replies = {}
    for speed in ("default", "fast"):
        thinker = build_backend(
            "thinker",
            Settings(
                thinker="qwen-vl", thinker_model=checkpoint, device="cuda", thinker_max_new_tokens=16, speed=speed
            ),
        )
        replies[speed] = thinker.critique(scene, scene, "make it brighter", "make it brighter").raw
    model = thinker.load()[0]
    assert hasattr(model, "_compiled_call") and replies["fast"]  # generate() compiled its decoding step


def test_the_studios_speed_reaches_the_run_outside_public_mode_only(tmp_path, scene):
    from thinkedit.ui import actions

    for public, recorded in ((False, "fast"), (True, "default")):
        edit, viewer, _ = studio_handler(Settings(public=public, runs_dir=tmp_path / f"runs-{public}"))
        last = list(edit(scene, "make it brighter", max_turns=1, speed="fast"))[-1]
        assert last[viewer.trajectory]["settings"]["speed"] == recorded
    assert actions.editor_defaults("qwen-image-edit", "fast") == (8, 1.0)  # what the Speed dropdown fills in
    assert actions.editor_defaults("qwen-image-edit", "default") == (40, 4.0)  # the 2509 model card's
