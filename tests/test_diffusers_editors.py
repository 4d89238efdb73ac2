"""The diffusers editors on their real code path: tiny random pipelines saved to folders, loaded with
`from_pretrained` through `--editor-model <folder>`, 2 steps on the CPU.
"""

from __future__ import annotations

import importlib.util
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from tiny_pipelines import build_tiny_pipeline

from thinkedit import runtime
from thinkedit.config import Settings
from thinkedit.editors._diffusers import fit_size
from thinkedit.editors.qwen_image_edit import pipeline_name_for
from thinkedit.errors import Cancelled, ThinkEditError
from thinkedit.registry import build_backend

TINY = {  # tiny pipeline → the editor that runs it
    "flux-kontext": "flux-kontext",
    "qwen-image-edit": "qwen-image-edit",
    "qwen-image-edit-original": "qwen-image-edit",
    "longcat-image-edit": "longcat-image-edit",
    "instruct-pix2pix": "instruct-pix2pix",
    "flux2-klein": "flux2-klein",
}
PIPELINE_CLASS = {
    "flux-kontext": "FluxKontextPipeline",
    "qwen-image-edit": "QwenImageEditPlusPipeline",
    "qwen-image-edit-original": "QwenImageEditPipeline",
    "longcat-image-edit": "LongCatImageEditPipeline",
    "instruct-pix2pix": "StableDiffusionInstructPix2PixPipeline",
    "flux2-klein": "Flux2KleinPipeline",
}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """tiny(name) → the folder of that tiny pipeline, built once per test session."""
    root = tmp_path_factory.mktemp("tiny-pipelines")
    folders = {}

    def get(name: str):
        if name not in folders:
            folders[name] = build_tiny_pipeline(name, root / name)
        return folders[name]

    return get


@pytest.fixture(autouse=True)
def empty_cache():
    runtime.CACHE.clear()
    yield
    runtime.CACHE.clear()


@pytest.fixture
def source() -> Image.Image:
    image = Image.new("RGB", (80, 48), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle([8, 8, 30, 30], fill=(220, 30, 30))
    draw.rectangle([0, 36, 79, 47], fill=(60, 150, 60))
    return image


def editor_for(tiny, name: str, **settings):
    return build_backend("editor", Settings(editor=TINY[name], editor_model=str(tiny(name)), **settings))


def denoiser_calls(pipe) -> list[int]:
    """A counter of the denoiser's forward passes (transformer or UNet)."""
    calls = [0]
    denoiser = getattr(pipe, "transformer", None) or pipe.unet

    def count(*_):
        calls[0] += 1

    denoiser.register_forward_hook(count)
    return calls


@pytest.mark.parametrize("name", list(TINY))
def test_editor_runs_its_real_pipeline(tiny, source, name):
    editor = editor_for(tiny, name)
    assert editor.model == str(tiny(name))
    pipe = editor.pipeline()
    assert type(pipe).__name__ == PIPELINE_CLASS[name]
    calls = denoiser_calls(pipe)

    steps: list[tuple[int, int]] = []
    first = editor.edit(source, "make the red square blue", seed=3, steps=2, on_step=lambda i, n: steps.append((i, n)))
    assert first.size == source.size and first.mode == "RGB"
    assert steps == [(1, 2), (2, 2)]
    per_step = calls[0] // 2
    assert per_step >= 1

    loads = runtime.CACHE.loads
    again = editor.edit(source, "make the red square blue", seed=3, steps=2)
    other = editor.edit(source, "make the red square blue", seed=4, steps=2)
    assert runtime.CACHE.loads == loads, "the second request must reuse the cached pipeline"
    assert np.array_equal(np.asarray(again), np.asarray(first))
    assert not np.array_equal(np.asarray(other), np.asarray(first))

    seen: list[int] = []

    def stop(i: int, n: int) -> None:
        seen.append(i)
        raise Cancelled

    calls[0] = 0
    with pytest.raises(Cancelled):
        editor.edit(source, "make the red square blue", seed=3, steps=3, on_step=stop)
    assert seen == [1]
    assert calls[0] == per_step, "steps after Stop must not run"


def test_small_budget_releases_the_least_recently_used_editor(tiny, source):
    first = editor_for(tiny, "instruct-pix2pix", memory_budget_gb=1e-6)
    second = editor_for(tiny, "flux-kontext", memory_budget_gb=1e-6)
    first.edit(source, "blue", seed=0, steps=1)
    assert runtime.CACHE.keys() == [first.cache_key]
    second.edit(source, "blue", seed=0, steps=1)
    assert runtime.CACHE.keys() == [second.cache_key]

    with runtime.CACHE.in_use(second.cache_key):  # a request is still using it: it stays
        first.edit(source, "blue", seed=0, steps=1)
    assert set(runtime.CACHE.keys()) == {first.cache_key, second.cache_key}


def test_without_a_budget_on_the_cpu_both_stay(tiny, source):
    for name in ("instruct-pix2pix", "flux-kontext"):
        editor_for(tiny, name).edit(source, "blue", seed=0, steps=1)
    assert len(runtime.CACHE.keys()) == 2
    line = runtime.describe(Settings())
    assert "memory budget unlimited" in line and "instruct-pix2pix" in line and "offload none" in line


def test_out_of_memory_gives_a_clear_message_and_a_consistent_cache():
    def explode():
        with runtime.friendly_errors("loading a big model", offload="none"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    runtime.load("kept", lambda: "model")
    with pytest.raises(ThinkEditError, match="--offload model"):
        runtime.load("big", explode)
    assert runtime.CACHE.keys() == ["kept"]
    assert runtime.load("big", lambda: "fits now") == "fits now"


def test_missing_weights_say_which_checkpoint_how_big_and_what_to_do(source):
    with pytest.raises(ThinkEditError) as info:
        build_backend("editor", Settings(editor="flux-kontext"))
    message = str(info.value)
    for part in ("black-forest-labs/FLUX.1-Kontext-dev", "34 GB", "hf download", "--editor-model", "licence"):
        assert part in message
    assert runtime.CACHE.keys() == []


def test_gated_repository_asks_to_accept_the_licence():
    from httpx2 import Request, Response  # huggingface_hub's HTTP client
    from huggingface_hub.errors import GatedRepoError

    response = Response(403, request=Request("GET", "https://huggingface.co/api/models/x"))
    with pytest.raises(ThinkEditError, match="accept its licence"):
        with runtime.friendly_errors("loading", "black-forest-labs/FLUX.1-Kontext-dev"):
            raise GatedRepoError("403 gated", response=response)


def test_offload_is_none_without_a_gpu_and_auto_follows_free_memory(monkeypatch):
    assert runtime.choose_offload(Settings(offload="sequential"), 34, "cpu") == "none"
    monkeypatch.setattr(runtime, "free_memory_gb", lambda settings: 40.0)
    auto = Settings(offload="auto")
    assert runtime.choose_offload(auto, 30, "cuda") == "none"
    assert runtime.choose_offload(auto, 50, "cuda") == "model"
    assert runtime.choose_offload(auto, 80, "cuda") == "sequential"
    assert runtime.choose_offload(Settings(offload="model"), 1, "cuda") == "model"


@pytest.mark.parametrize("size", [(80, 48), (4000, 3000), (17, 900), (1024, 1024), (50, 50)])
def test_working_size_keeps_aspect_area_and_multiple(size):
    for multiple, min_side in ((16, 0), (8, 0), (16, 64)):
        width, height = fit_size(*size, multiple, 1024 * 1024, min_side)
        assert width % multiple == 0 and height % multiple == 0
        assert width * height <= 1024 * 1024 * 1.05
        assert min(width, height) >= max(min_side, multiple) - multiple // 2
        if min(size) >= 4 * multiple:
            assert abs(width / height - size[0] / size[1]) / (size[0] / size[1]) < 0.15


def test_qwen_checkpoint_picks_its_pipeline():
    assert pipeline_name_for("Qwen/Qwen-Image-Edit") == "QwenImageEditPipeline"
    assert pipeline_name_for("Qwen/Qwen-Image-Edit-2509") == "QwenImageEditPlusPipeline"


# -- OmniGen2: its code lives on the hub; here a stand-in pipeline.py records what the adapter passes ----

STAND_IN = textwrap.dedent("""
    import numpy as np
    import torch
    from diffusers import DiffusionPipeline, ImagePipelineOutput
    from PIL import Image


    class OmniGen2Pipeline(DiffusionPipeline):
        def __init__(self, scheduler):
            super().__init__()
            self.register_modules(scheduler=scheduler)
            self.calls = []

        def __call__(self, prompt, input_images, negative_prompt=None, text_guidance_scale=4.0,
                     image_guidance_scale=1.0, height=None, width=None, max_pixels=1024 * 1024,
                     max_input_image_side_length=1024, num_inference_steps=28, generator=None, step_func=None):
            self.calls.append(dict(locals()))
            for i in range(num_inference_steps):
                step_func(i, num_inference_steps)
            pixels = torch.rand((height, width, 3), generator=generator).numpy()
            return ImagePipelineOutput(images=[Image.fromarray((pixels * 255).astype(np.uint8))])
""")


def test_omnigen2_maps_arguments_onto_its_own_pipeline(tmp_path, source):
    from diffusers import FlowMatchEulerDiscreteScheduler

    (tmp_path / "pipeline.py").write_text(STAND_IN)
    module_spec = importlib.util.spec_from_file_location("omnigen2_stand_in", tmp_path / "pipeline.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    module.OmniGen2Pipeline(FlowMatchEulerDiscreteScheduler()).save_pretrained(tmp_path)

    editor = build_backend("editor", Settings(editor="omnigen2", editor_model=str(tmp_path)))
    steps = []
    edited = editor.edit(source, "make it night", seed=5, guidance=6.0, on_step=lambda i, n: steps.append(i))
    call = editor.pipeline().calls[-1]
    assert edited.size == source.size
    assert steps == list(range(1, 51))  # the table's 50 steps
    assert call["prompt"] == "make it night" and call["num_inference_steps"] == 50
    assert call["text_guidance_scale"] == 6.0 and call["image_guidance_scale"] == 1.5
    assert call["input_images"][0].size == (call["width"], call["height"]) == (80, 48)


def test_omnigen2_without_its_code_says_how_to_get_it(tmp_path, source):
    (tmp_path / "model_index.json").write_text('{"_class_name": "OmniGen2Pipeline"}')  # weights, no pipeline.py
    editor = build_backend("editor", Settings(editor="omnigen2", editor_model=str(tmp_path)))
    with pytest.raises(ThinkEditError, match="pip install git\\+https://github.com/VectorSpaceLab/OmniGen2"):
        editor.edit(source, "blue", seed=0)
    with pytest.raises(ThinkEditError, match="OmniGen2/OmniGen2 \\(about 16 GB\\)"):
        build_backend("editor", Settings(editor="omnigen2"))


# -- the whole loop ---------------------------------------------------------------------------------


def test_loop_runs_a_tiny_editor_with_the_offline_critic(tiny, source):
    pytest.importorskip("thinkedit.thinkers.classic", reason="the classic thinker is not written yet")
    from thinkedit.loop import EditStep, RunFinished, make_request, run
    from thinkedit.registry import build_backend

    settings = Settings(editor="instruct-pix2pix", editor_model=str(tiny("instruct-pix2pix")), thinker="classic")
    request = make_request(source, "make the red square blue", max_turns=2, steps=2, seed=7)
    events = list(run(build_backend("editor", settings), build_backend("thinker", settings), request))
    trajectory = events[-1].trajectory
    assert isinstance(events[-1], RunFinished) and trajectory.error is None
    assert trajectory.stop_reason in ("threshold", "prompt_kept", "max_turns")
    assert 1 <= len(trajectory.turns) <= 2
    for turn in trajectory.turns:
        assert turn.image.size == source.size
        assert turn.critique.semantic is not None
        assert [(e.step, e.total) for e in events if isinstance(e, EditStep) and e.index == turn.index] == [
            (1, 2),
            (2, 2),
        ]


def test_omnigen2_prefers_its_installed_package_over_checkpoint_code(tmp_path, monkeypatch):
    import sys
    import types

    from thinkedit.editors import omnigen2

    class InstalledPipeline:
        pass

    module = types.ModuleType(omnigen2.PACKAGE_PIPELINE)
    module.OmniGen2Pipeline = InstalledPipeline
    monkeypatch.setitem(sys.modules, omnigen2.PACKAGE_PIPELINE, module)
    editor = build_backend("editor", Settings(editor="omnigen2", editor_model=str(tmp_path)))
    assert editor.pipeline_class() is InstalledPipeline
    assert editor.from_pretrained_options() == {}, "no checkpoint code runs when the package is installed"
    monkeypatch.delitem(sys.modules, omnigen2.PACKAGE_PIPELINE)
    (tmp_path / "pipeline.py").write_text(STAND_IN)
    assert editor.from_pretrained_options() == {"custom_pipeline": str(tmp_path), "trust_remote_code": True}
