"""GPU check of what users run: every local editor at its real size, loaded the way ThinkEdit loads it, and the thinker.

Denoisers and VAEs are built at their real sizes with random bfloat16 weights (architectures from
scripts/gpu_configs/*.json); the text encoders have the real output widths (what the denoisers read) but a layer
or two, and the tokenizers are the tests' small ones. Nothing is downloaded. One JSON row per check:

- every editor (FLUX.1 Kontext, FLUX.2 klein and dev, Qwen-Image-Edit 2509 and 2511, LongCat, InstructPix2Pix):
  one edit of a 1024² source through our editor (sizing, step callback, resize back) and the same call straight to
  the pipeline (seconds, our overhead, peak GPU memory); then its `--speed fast` preset without compiling: the
  TaylorSeer cache run past its first cached steps (which steps it predicted), or a random Lightning LoRA in the key
  format lightx2v publish theirs in (diffusers converts it as it loads) at the LoRA's steps. Qwen, LongCat and
  FLUX.2 dev run fewer steps than their rows to fit the time box; seconds scale with steps.
- loading: FLUX.1 Kontext saved to a folder and loaded with `from_pretrained` by the editor itself, offload none,
  model and group, and none with its transformer stored in float8 (the ZeroGPU Space's setting): seconds to load and
  to edit, GPU memory held. Then a Qwen3-VL-8B thinker saved and loaded by the thinker's own loader, one critique,
  and the thinker and Kontext resident together.
- omnigen2: its code (a clone of its repository) and its transformer's config are not here; the row says so.

A failing check prints an error row and the others still run; the exit code is 1 when any failed.
`--speed fast` measures `--speed fast` against the default instead, compilation included: per editor one edit at the
default speed, then two at fast (the first compiles), and the thinker's critique at both speeds.

    python scripts/gpu_check.py                # on a GPU: under 8 minutes on one H100 by design
    python scripts/gpu_check.py --speed fast   # on a GPU: default vs fast, under 8 minutes by design
    python scripts/gpu_check.py --dry-run      # the CPU: all of it at real widths, one layer, 64² sources
    python scripts/gpu_check.py --dry-run --real-area   # ... with Qwen and LongCat at their real ~1 MP (slow)
    python scripts/gpu_check.py --tiny         # tiny models on the CPU: proves the script runs end to end
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import inspect
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: every model here is built from a config
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

from gpu_check_thinker import build_qwen3_vl, default_dtype, measure_thinker  # noqa: E402
from tiny_pipelines import BUILDERS, denoiser_layer_calls, random_lora  # noqa: E402

from thinkedit import runtime  # noqa: E402
from thinkedit.bench import scene  # noqa: E402
from thinkedit.config import SPEEDS, Settings  # noqa: E402
from thinkedit.editors import EDITORS, _speed  # noqa: E402
from thinkedit.thinkers import THINKERS  # noqa: E402

CONFIGS = ROOT / "scripts" / "gpu_configs"
# editor → (denoiser attribute, denoiser config, VAE config, text widths the denoiser reads, steps on a GPU or None:
# the row's); 2511 is the 2509 architecture under its own row
REAL = {
    "instruct-pix2pix": ("unet", "sd15_instruct_pix2pix_unet", "sd15_vae", {"text_dim": 768}, None),
    "flux2-klein": ("transformer", "flux2_klein_4b_transformer", "flux2_vae", {"text_dim": 2560}, None),
    "flux-kontext": ("transformer", "flux_kontext_transformer", "flux_vae", {"text_dim": 4096, "pooled_dim": 768}, None),
    "longcat-image-edit": ("transformer", "longcat_image_transformer", "flux_vae", {"text_dim": 3584}, 20),
    "qwen-image-edit": ("transformer", "qwen_image_transformer", "qwen_image_vae", {"text_dim": 3584}, 20),
    "qwen-image-edit-2511": ("transformer", "qwen_image_transformer", "qwen_image_vae", {"text_dim": 3584}, 8),
    "flux2-dev": ("transformer", "flux2_dev_transformer", "flux2_vae", {"text_dim": 5120}, 4),
}  # fmt: skip
NOT_HERE = {"omnigen2": "needs OmniGen2's own code (a clone of its repository) and its transformer's config"}
ONE_LAYER = {"num_layers": 1, "num_single_layers": 1, "layers_per_block": 1, "num_res_blocks": 1}  # --dry-run
CACHED_STEPS = 14  # the rows' TaylorSeer computes steps 0-9 and 11 in full and predicts 10, 12 and 13
CPU_CACHE = ({"disable_cache_before_step": 2}, 4)  # on the CPU: caching from step 2, 4 steps (predicts step 2)
# Pipelines that work at a fixed ~1 MP whatever the request (Qwen-Image-Edit(-Plus), LongCat); a dry run shrinks
# that area to its small source (it checks shapes, not sizes) unless --real-area.
FIXED_AREA_MODULES = (
    "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus",
    "diffusers.pipelines.longcat_image.pipeline_longcat_image_edit",
)
PROMPT = "make the sky orange"
_BUILT: dict[str, object] = {}  # the last real-size pipeline built, by its architecture: 2509 and 2511 share one


def build(name: str, device: str, mode: str):
    """The editor's pipeline: "tiny", or its real-size denoiser and VAE built in bfloat16 on `device` ("real"),
    or those at their real widths with one layer each ("dry-run"). The last one built is reused."""
    import diffusers

    attribute, denoiser, vae, dims, _ = REAL[name]
    key = json.dumps([EDITORS[name].tiny, denoiser, vae, dims, device, mode])
    if key in _BUILT:
        return _BUILT[key]
    release_built()
    torch.manual_seed(0)
    if mode == "tiny":
        pipe = BUILDERS[EDITORS[name].tiny]().to(device)
    else:
        parts = {}
        for part, config_name in ((attribute, denoiser), ("vae", vae)):
            config = json.loads((CONFIGS / f"{config_name}.json").read_text())
            if mode == "dry-run":
                config.update({key: value for key, value in ONE_LAYER.items() if key in config})
            with default_dtype(torch.bfloat16), torch.device(device):  # never a float32 copy first
                parts[part] = getattr(diffusers, config["_class_name"]).from_config(config).eval()
        pipe = with_parts(BUILDERS[EDITORS[name].tiny](**dims), **parts).to(device, torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    _BUILT[key] = pipe
    return pipe


def release_built() -> None:
    _BUILT.clear()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def with_parts(pipe, **parts):
    """The pipeline built again through its constructor with `parts` replaced: the constructor derives sizes
    from its components (Qwen-Image-Edit's latent channels from its VAE), which setting an attribute skips."""
    init = inspect.signature(type(pipe).__init__).parameters
    options = {name: pipe.config[name] for name in init if name in pipe.config and name not in pipe.components}
    return type(pipe)(**{**pipe.components, **parts}, **options)


def random_editor(name: str, device: str, mode: str, speed: str = "default", spec=None, **settings):
    """The editor class itself (its "checkpoint" is the random pipeline this script puts in the cache, or a folder)."""
    spec = spec or EDITORS[name]
    dtype = "float32" if mode == "tiny" else "bfloat16"
    options = {"editor_model": f"random-{name}", "offload": "none", **settings}
    return spec.load_class()(spec, Settings(editor=name, device=device, dtype=dtype, speed=speed, **options))


def timed(call: Callable[[], object], device: str) -> tuple[float, float | None]:
    """(seconds `call()` took, the peak GPU memory in GB while it ran; None off CUDA)."""
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    call()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - started, round(torch.cuda.max_memory_allocated() / 1e9, 1) if cuda else None


def held_gb(device: str, *models) -> float:
    """GPU memory allocated on CUDA; elsewhere what the models' weights hold."""
    if device.startswith("cuda"):
        return round(torch.cuda.memory_allocated() / 1e9, 1)
    return round(sum(runtime.resident_gb(model) or 0 for model in models), 2)


def steps_for(name: str, mode: str) -> int:
    return {"tiny": 2, "dry-run": 1}.get(mode) or REAL[name][4] or EDITORS[name].steps


def check_editor(name: str, device: str, mode: str, side: int, speed: str = "default") -> dict:
    editor = random_editor(name, device, mode)
    if mode != "real":
        editor.area = side * side  # keep the small source small: on the CPU this checks shapes, not speed
    pipe = runtime.load(editor.cache_key, lambda: build(name, device, mode))
    steps = steps_for(name, mode)
    source = Image.new("RGB", (side, side), (135, 190, 235))
    if mode == "real":
        editor.edit(source, "warm up", seed=0, steps=1)  # kernels, allocator, cuDNN autotune
    if speed == "fast":
        return {"editor": name, **fast_against_default(editor, pipe, source, steps, device, mode)}
    ours, peak = timed(lambda: editor.edit(source, PROMPT, seed=0, steps=steps, on_step=lambda i, n: None), device)
    done = {
        "editor": name,
        "steps": steps,
        "default_steps": editor.spec.steps,
        "working_size": list(editor.working_size(source)),
        "ours_s": round(ours, 2),
        "peak_gb": peak,
    }
    if mode != "dry-run":  # the bare call measures our overhead, which a dry run's seconds do not tell
        bare = editor.call_arguments(source, PROMPT, 0, steps)
        bare_s, done["peak_gb"] = timed(lambda: pipe(**bare), device)
        done |= {"bare_s": round(bare_s, 2), "overhead": round(ours / bare_s, 3)}
    return done | {"fast_preset": preset_check(editor, pipe, source, device, mode)}


def preset_check(editor, pipe, source: Image.Image, device: str, mode: str) -> dict | str:
    """The row's `--speed fast` preset on the loaded pipeline, compilation left out (it is `--speed fast`'s own
    check): a cache run past its first cached steps, or a random Lightning LoRA in its published key format."""
    preset = editor.spec.fast
    if preset is None or not (preset.cache or preset.lora):
        return "compilation only (see --speed fast)"
    steps = CACHED_STEPS
    if preset.cache and mode != "real":
        options, steps = CPU_CACHE
        preset = dataclasses.replace(preset, cache_options={**preset.cache_options, **options})
    elif preset.lora:
        steps = preset.steps if mode == "real" else 1
    spec = dataclasses.replace(editor.spec, fast=dataclasses.replace(preset, compile=False))
    with tempfile.TemporaryDirectory(prefix="gpu-check-lora-") as folder:
        if preset.lora:  # the real distillation is a download: a random one of its rank, in its key format
            random_lora(pipe, folder, "lightning.safetensors", rank=64 if mode == "real" else 4, published=True)
            spec = dataclasses.replace(
                spec, fast=dataclasses.replace(spec.fast, lora=folder, lora_weight="lightning.safetensors")
            )
        fast = random_editor(spec.name, device, mode, "fast", spec)
        fast.area = editor.area
        with denoiser_layer_calls(pipe) as passes:
            seconds, peak = timed(lambda: fast.edit(source, PROMPT, seed=0, steps=steps), device)
        done = {"preset": preset.cache or f"LoRA {preset.lora_weight}", "steps": steps, "seconds": round(seconds, 2)}
        if preset.lora:
            adapters = [m for m in _speed.denoiser(pipe).modules() if hasattr(m, "lora_A") and m.lora_A]
            done["lora_layers"] = len(adapters)
        else:
            per_step = len(passes) // steps  # two denoiser passes a step with classifier-free guidance
            done["predicted_steps"] = sorted({i // per_step for i, calls in enumerate(passes) if calls < max(passes)})
        _speed.switch(pipe, None, compile_blocks=False)  # as it was for the next check
    return done | {"peak_gb": peak}


def fast_against_default(editor, pipe, source: Image.Image, steps: int, device: str, mode: str) -> dict:
    """One edit at the default speed, then two at fast on the same pipeline: the first compiles (on CUDA)."""
    preset, spec = editor.spec.fast, editor.spec
    with tempfile.TemporaryDirectory(prefix="gpu-check-lora-") as folder:
        if preset.lora:  # the real distillation is a download: a random LoRA of its kind on this very model
            random_lora(pipe, folder, "random-lightning.safetensors", rank=4 if mode == "tiny" else 64, published=True)
            spec = dataclasses.replace(
                spec, fast=dataclasses.replace(preset, lora=folder, lora_weight="random-lightning.safetensors")
            )
        fast = random_editor(spec.name, device, mode, "fast", spec)
        fast.area = editor.area
        fast_steps = steps if mode != "real" or not preset.steps else preset.steps  # a LoRA's own step count
        runs = {
            label: timed(lambda editor=editor, steps=at: editor.edit(source, PROMPT, seed=0, steps=steps), device)
            for label, editor, at in (
                ("default", editor, steps),
                ("fast_first", fast, fast_steps),
                ("fast", fast, fast_steps),
            )
        }
    did = [preset.cache] if preset.cache else []
    did += [f"LoRA ({preset.steps} steps)"] if preset.lora else []
    did += ["compiled"] if preset.compile and runtime.compiles(fast.settings) else []
    return {
        "steps": steps,
        "fast_steps": fast_steps,
        "fast": " + ".join(did) or "nothing (it compiles on CUDA only)",
        **{f"{label}_s": round(seconds, 2) for label, (seconds, _) in runs.items()},
        "fast_ratio": round(runs["fast"][0] / runs["default"][0], 3),
        "default_peak_gb": runs["default"][1],
        "fast_peak_gb": runs["fast"][1],
    }


LOADINGS = {  # label → (offload, editor_storage_dtype)
    "none": ("none", None),
    "model": ("model", None),
    "group": ("group", None),
    "float8": ("none", "float8_e4m3fn"),
}


def check_loading(device: str, mode: str, side: int, scratch: Path) -> dict:
    """FLUX.1 Kontext saved, then loaded by the editor itself (`from_pretrained`, then placed by the runtime) with
    each offload mode and with float8 storage: seconds to load and to edit one step, GPU memory held."""
    folder = scratch / "flux-kontext"
    saved_s, _ = timed(lambda: build("flux-kontext", device, mode).save_pretrained(folder), device)
    release_built()
    source = Image.new("RGB", (side, side), (135, 190, 235))
    results = {}
    for label, (offload, storage) in LOADINGS.items():
        if label == "model" and mode != "real":
            continue  # moving whole models between the CPU and the CPU shows nothing
        editor = random_editor(
            "flux-kontext", device, mode, editor_model=str(folder), offload=offload, editor_storage_dtype=storage
        )
        if mode != "real":
            editor.area = side * side
        load_s, _ = timed(editor.pipeline, device)
        held = held_gb(device, editor.pipeline())
        edit_s, peak = timed(lambda editor=editor: editor.edit(source, PROMPT, seed=0, steps=1), device)
        results[label] = {
            "load_s": round(load_s, 1),
            "held_gb": held,
            "edit_1_step_s": round(edit_s, 2),
            "peak_gb": peak,
        }
        runtime.CACHE.clear()
    return {"loading": "flux-kontext", "saved_s": round(saved_s, 1), **results}


def check_thinker(device: str, mode: str, scratch: Path) -> dict:
    """A Qwen3-VL-8B (dry run and tiny: a tiny one) saved, loaded by the thinker's own loader, one critique; then
    FLUX.1 Kontext loaded from its folder beside it, both resident (the FLUX.1 Kontext + EditThinker Space)."""
    folder = scratch / "thinker"
    model, processor, _ = build_qwen3_vl(device, tiny=mode != "real")
    model.generation_config.eos_token_id = None  # random weights: always decode the full token budget
    started = time.perf_counter()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    saved_s = time.perf_counter() - started
    del model
    gc.collect()
    tokens, image_side = (64, 1024) if mode == "real" else (6, 96)
    settings = Settings(
        thinker="qwen-vl", thinker_model=str(folder), device=device, offload="none",
        thinker_max_new_tokens=tokens, thinker_image_side=image_side,
    )  # fmt: skip
    thinker = THINKERS["qwen-vl"].load_class()(THINKERS["qwen-vl"], settings)
    load_s, _ = timed(thinker.load, device)
    source = scene(image_side, image_side)
    critique_s, peak = timed(
        lambda: thinker.critique(source, source.rotate(90), "Make it blue", "Make it blue"), device
    )
    alone = held_gb(device, thinker.load()[0])
    kontext = random_editor("flux-kontext", device, mode, editor_model=str(scratch / "flux-kontext"))
    kontext.pipeline()
    return {
        "loading": "thinker",
        "saved_s": round(saved_s, 1),
        "load_s": round(load_s, 1),
        "critique_s": round(critique_s, 2),
        "new_tokens": tokens,
        "held_gb": alone,
        "peak_gb": peak,
        "resident": [str(key[0]) for key, _ in runtime.CACHE.entries()],
        "resident_gb": held_gb(device, thinker.load()[0], kontext.pipeline()),
    }


def check_thinker_speeds(device: str, mode: str) -> dict:
    """A critique at the default speed, then at fast: a Qwen3-VL-8B-sized thinker on a GPU, a tiny one elsewhere."""
    options = {
        "tiny": mode != "real",
        "new_tokens": 128 if mode == "real" else 6,
        "image_side": 1024 if mode == "real" else 96,
    }
    runs = {speed: measure_thinker(device, **options, speed=speed) for speed in SPEEDS}
    speeds = [runs[speed]["tokens_per_s"] for speed in SPEEDS]
    return {
        "thinker": "qwen3-vl-8b" if mode == "real" else "qwen3-vl-tiny",
        **runs,
        "tokens_per_s_ratio": round(speeds[1] / speeds[0], 3) if all(speeds) else None,
    }


def row(label: dict, check, *args) -> dict:
    """`check(*args)`, or `label` with the error when it fails; either way its models are released afterwards."""
    try:
        return check(*args)
    except Exception as exc:  # noqa: BLE001 - one editor's failure must not lose the others' rows
        return {**label, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        runtime.CACHE.clear()
        torch._dynamo.reset()  # the next editor compiles afresh, as in a process of its own
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


@contextmanager
def fixed_areas(area: int | None) -> Iterator[None]:
    """With `area`, the pipelines in FIXED_AREA_MODULES work at it instead of their ~1 MP."""
    import importlib

    modules = [importlib.import_module(name) for name in FIXED_AREA_MODULES] if area else []
    originals = [module.calculate_dimensions for module in modules]
    for module, original in zip(modules, originals, strict=True):
        module.calculate_dimensions = lambda _area, ratio, original=original: original(area, ratio)
    try:
        yield
    finally:
        for module, original in zip(modules, originals, strict=True):
            module.calculate_dimensions = original


def plan(args: argparse.Namespace, device: str, mode: str, side: int, scratch: Path) -> list[tuple]:
    """The checks to run, in order: (label for an error row, check, its arguments)."""
    checks = [
        ({"editor": name}, check_editor, name, device, mode, side, args.speed) for name in args.only if name in REAL
    ]
    if args.speed == "fast":
        return [*checks, ({"thinker": "qwen3-vl"}, check_thinker_speeds, device, mode)]
    if args.loading:
        checks += [
            ({"loading": "flux-kontext"}, check_loading, device, mode, side, scratch),
            ({"loading": "thinker"}, check_thinker, device, mode, scratch),
        ]
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--dry-run", action="store_true", help="the CPU: real widths, one layer each, one step")
    modes.add_argument("--tiny", action="store_true", help="tiny models on the CPU, 2 steps")
    parser.add_argument("--only", nargs="*", default=[*REAL, *NOT_HERE], help="editors to check")
    parser.add_argument("--no-loading", dest="loading", action="store_false", help="leave out the loading checks")
    parser.add_argument("--side", type=int, help="source image side (default 1024; dry run 64; tiny 96)")
    parser.add_argument("--real-area", action="store_true", help="CPU: Qwen and LongCat at their real ~1 MP")
    parser.add_argument("--speed", choices=SPEEDS, default="default", help="fast: default vs fast, and the thinker")
    parser.add_argument("--scratch", help="folder for the saved checkpoints (default: a temporary one)")
    args = parser.parse_args(argv)
    mode = "dry-run" if args.dry_run else "tiny" if args.tiny else "real"
    device = "cuda" if mode == "real" else "cpu"
    side = args.side or {"real": 1024, "dry-run": 64, "tiny": 96}[mode]
    if mode == "real" and not torch.cuda.is_available():
        parser.error("no CUDA device: run with --dry-run or --tiny on the CPU")
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; {mode}; source {side}²")
    for name in (name for name in args.only if name in NOT_HERE):
        print(json.dumps({"editor": name, "skipped": NOT_HERE[name]}), flush=True)
    started, failed = time.perf_counter(), 0
    with (
        tempfile.TemporaryDirectory(prefix="gpu-check-", dir=args.scratch) as scratch,
        fixed_areas(side * side if mode != "real" and not args.real_area else None),
    ):
        for check in plan(args, device, mode, side, Path(scratch)):
            began = time.perf_counter()
            result = row(*check)
            print(json.dumps(result | {"check_s": round(time.perf_counter() - began, 1)}), flush=True)
            failed += "error" in result
    release_built()
    print(json.dumps({"seconds": round(time.perf_counter() - started, 1), "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
