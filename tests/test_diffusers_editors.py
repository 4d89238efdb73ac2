"""The diffusers editors on their real code path: tiny random pipelines saved to folders, loaded with
`from_pretrained` through `--editor-model <folder>`, 2 steps on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from thinkedit import runtime
from thinkedit.config import Settings
from thinkedit.editors._diffusers import fit_size
from thinkedit.editors.qwen_image_edit import pipeline_name_for
from thinkedit.errors import BadInput, Cancelled, ThinkEditError
from thinkedit.registry import build_backend

pytestmark = pytest.mark.usefixtures("empty_model_cache")

CASES = {  # case → (tiny pipeline, the editor that runs it, the pipeline class it loads)
    "flux-kontext": ("flux-kontext", "flux-kontext", "FluxKontextPipeline"),
    "qwen-image-edit": ("qwen-image-edit", "qwen-image-edit", "QwenImageEditPlusPipeline"),
    "qwen-image-edit-original": ("qwen-image-edit-original", "qwen-image-edit", "QwenImageEditPipeline"),
    "qwen-image-edit-2511": ("qwen-image-edit", "qwen-image-edit-2511", "QwenImageEditPlusPipeline"),  # a row only
    "longcat-image-edit": ("longcat-image-edit", "longcat-image-edit", "LongCatImageEditPipeline"),
    "instruct-pix2pix": ("instruct-pix2pix", "instruct-pix2pix", "StableDiffusionInstructPix2PixPipeline"),
    "flux2-klein": ("flux2-klein", "flux2-klein", "Flux2KleinPipeline"),
    "flux2-dev": ("flux2-dev", "flux2-dev", "Flux2Pipeline"),  # one new file
}


def editor_for(tiny, case: str, **settings):
    pipeline, editor, _ = CASES.get(case, (case, case, None))
    return build_backend("editor", Settings(editor=editor, editor_model=str(tiny(pipeline)), **settings))


def denoiser_calls(pipe) -> list[int]:
    """A counter of the denoiser's forward passes (transformer or UNet)."""
    calls = [0]
    denoiser = getattr(pipe, "transformer", None) or pipe.unet

    def count(*_):
        calls[0] += 1

    denoiser.register_forward_hook(count)
    return calls


@pytest.mark.parametrize("name", list(CASES))
def test_editor_runs_its_real_pipeline(tiny, source, name):
    pipeline, _, pipeline_class = CASES[name]
    editor = editor_for(tiny, name)
    assert editor.model == str(tiny(pipeline))
    pipe = editor.pipeline()
    assert type(pipe).__name__ == pipeline_class
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
    line = runtime.device_summary(Settings())
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
    with (
        pytest.raises(ThinkEditError, match="accept its licence"),
        runtime.friendly_errors("loading", "black-forest-labs/FLUX.1-Kontext-dev"),
    ):
        raise GatedRepoError("403 gated", response=response)


def test_offload_is_none_without_a_gpu_and_auto_follows_free_memory(monkeypatch):
    assert runtime.choose_offload(Settings(offload="sequential"), 34, "cpu") == "none"
    monkeypatch.setattr(runtime.offload, "free_memory_gb", lambda settings: 40.0)  # where choose_offload reads it
    auto = Settings(offload="auto")
    assert runtime.choose_offload(auto, 30, "cuda") == "none"
    assert runtime.choose_offload(auto, 50, "cuda") == "model"
    assert runtime.choose_offload(auto, 80, "cuda") == "group"  # 15% of it fits: streamed in layer by layer
    assert runtime.choose_offload(auto, 300, "cuda") == "sequential"
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


def test_instruct_pix2pix_loads_without_the_checkpoints_safety_checker(tiny, source):
    folder = tiny("instruct-pix2pix-checked")
    assert (folder / "safety_checker" / "config.json").is_file()  # the checkpoint ships one, as the real one does
    editor = build_backend("editor", Settings(editor="instruct-pix2pix", editor_model=str(folder)))
    assert editor.pipeline().safety_checker is None
    assert editor.edit(source, "make it blue", seed=0, steps=1).size == source.size


def test_apple_gpus_get_bfloat16():
    assert runtime.pick_dtype(Settings(), "mps") is torch.bfloat16  # FLUX and Qwen-Image overflow in float16
    assert runtime.pick_dtype(Settings(), "cuda:1") is torch.bfloat16
    assert runtime.pick_dtype(Settings(), "cpu") is torch.float32
    assert runtime.pick_dtype(Settings(dtype="float16"), "mps") is torch.float16


@pytest.mark.parametrize(
    ("name", "area"), [("flux-kontext", 1024 * 1024), ("flux2-klein", 1024 * 1024), ("instruct-pix2pix", 512 * 512)]
)
def test_a_small_upload_is_denoised_at_the_models_preferred_area(tiny, name, area, monkeypatch):
    editor = editor_for(tiny, name)
    pipe = editor.pipeline()
    decoded: list[tuple[int, ...]] = []
    decode = pipe.vae.decode
    monkeypatch.setattr(
        pipe.vae, "decode", lambda latents, **kw: decoded.append(latents.shape) or decode(latents, **kw)
    )
    small = Image.new("RGB", (64, 48), (200, 40, 40))
    edited = editor.edit(small, "make it blue", seed=0, steps=1)
    assert edited.size == small.size
    height, width = (side * pipe.vae_scale_factor for side in decoded[-1][-2:])
    assert width / height == pytest.approx(64 / 48, rel=0.05)
    assert width * height == pytest.approx(area, rel=0.05), (width, height)


def test_qwen_checkpoint_picks_its_pipeline():
    assert pipeline_name_for("Qwen/Qwen-Image-Edit") == "QwenImageEditPipeline"
    assert pipeline_name_for("Qwen/Qwen-Image-Edit-2509") == "QwenImageEditPlusPipeline"


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


@pytest.mark.parametrize("case", ["qwen-image-edit", "qwen-image-edit-original"])
def test_qwen_image_edit_asks_for_the_size_it_conditions_on(tiny, monkeypatch, case):
    """The Qwen pipelines resize the image they condition on by their own rule (about 1024², multiples of 32), so
    the output is asked at that size: a 4:3 source once gave an output of 1184×880 against a condition of 1184×896."""
    editor = editor_for(tiny, case)
    pipe = editor.pipeline()
    conditioned = []
    preprocess = pipe.image_processor.preprocess

    def spy(image, height=None, width=None, *args, **kwargs):
        conditioned.append((width, height))
        return preprocess(image, height, width, *args, **kwargs)

    monkeypatch.setattr(pipe.image_processor, "preprocess", spy)
    source = Image.new("RGB", (160, 120), (135, 190, 235))
    assert editor.working_size(source) == (1184, 896)
    edited = editor.edit(source, "make the sky orange", seed=0, steps=1)
    assert conditioned == [(1184, 896)] and edited.size == source.size


def test_float8_storage_halves_the_transformer_and_still_edits(tiny, source):
    """`editor_storage_dtype` (the ZeroGPU Space's float8_e4m3fn): diffusers' layerwise casting keeps the
    transformer's weights in 8 bits and computes each layer in the compute dtype; an unknown dtype is refused."""
    plain, stored = (
        editor_for(tiny, "flux-kontext", editor_storage_dtype=storage) for storage in (None, "float8_e4m3fn")
    )
    sizes = [runtime.resident_gb(editor.pipeline().transformer) for editor in (plain, stored)]
    assert sizes[1] < 0.6 * sizes[0]
    assert plain.cache_key != stored.cache_key  # two loaded pipelines, not one changed under the other
    edited = stored.edit(source, "make the red square blue", seed=0, steps=2)
    assert edited.size == source.size and np.asarray(edited).std() > 0
    with pytest.raises(BadInput, match="Unknown editor storage dtype 'int3'"):
        editor_for(tiny, "flux-kontext", editor_storage_dtype="int3").pipeline()


# -- masks ------------------------------------------------------------------------------------------

INPAINTING = {  # the editors whose checkpoints have an inpainting pipeline in diffusers 0.42 (docs/backends.md's editor table)
    "flux-kontext": "FluxKontextInpaintPipeline",
    "qwen-image-edit-original": "QwenImageEditInpaintPipeline",
    "flux2-klein": "Flux2KleinInpaintPipeline",
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_mask_confines_every_diffusers_editor(tiny, source, name):
    from thinkedit.editors._diffusers import _INPAINTING
    from thinkedit.loop import RunFinished, make_request, run
    from thinkedit.masks import weight

    editor = editor_for(tiny, name)
    mask = Image.new("L", source.size)
    mask.paste(255, (0, 0, 40, 48))  # the left half may change
    request = make_request(source, "make the red square blue", steps=2, seed=3, mask=mask)
    trajectory = next(e.trajectory for e in run(editor, None, request) if isinstance(e, RunFinished))
    assert trajectory.error is None
    (turn,) = trajectory.turns
    result, original = np.asarray(turn.image), np.asarray(source)
    assert (result[:, 40:] == original[:, 40:]).all(), "outside the mask every pixel is the source's"
    core = weight(mask) == 1  # inside, away from the soft edge
    assert (result[core] != original[core]).any(), "inside the mask the (random) model's edit shows"
    assert turn.drift.outside == 0.0 and 0 < turn.drift.changed <= 0.55
    made = [type(made).__name__ for made in _INPAINTING.get(editor.pipeline(), {}).values()]
    assert made == ([INPAINTING[name]] if name in INPAINTING else []), "native inpainting where diffusers has it"


def test_native_inpainting_shares_the_loaded_weights_and_reports_every_step(tiny, source):
    from thinkedit.editors._diffusers import inpainting

    editor = editor_for(tiny, "flux2-klein")
    pipe = editor.pipeline()
    inpaint = inpainting(pipe, editor.inpaint_pipeline_name)
    assert inpaint is inpainting(pipe, editor.inpaint_pipeline_name), "made once per loaded pipeline"
    assert (
        inpaint.transformer is pipe.transformer
        and inpaint.vae is pipe.vae
        and inpaint.text_encoder is pipe.text_encoder
    )
    assert inpaint.config.is_distilled == pipe.config.is_distilled
    mask = Image.new("L", source.size, 0)
    mask.paste(255, (10, 10, 50, 40))
    steps: list[tuple[int, int]] = []
    edited = editor.edit(source, "blue", seed=1, steps=3, mask=mask, on_step=lambda i, n: steps.append((i, n)))
    assert edited.size == source.size and steps == [(1, 3), (2, 3), (3, 3)]
    arguments = editor.call_arguments(source, "blue", 1, 2, mask=mask)
    assert arguments["mask_image"].size == arguments["image"].size == editor.working_size(source)
    assert arguments["image_reference"] is arguments["image"] and arguments["strength"] == 1.0
