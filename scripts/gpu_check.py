"""GPU check for the diffusers editors: real-size denoisers and VAEs (random bfloat16 weights), small text encoders.

For each editor: one edit of a 1024² image at the default step count through our editor (sizing, step
callback, resize back) and the same call straight to the diffusers pipeline; prints seconds per edit,
our overhead as a ratio, and peak GPU memory. Then FLUX.1 Kontext and a Qwen3-VL-8B-sized thinker
resident together. Architectures come from scripts/gpu_configs/*.json; the text encoders have the real
output widths (what the denoisers read) but only a layer or two. An editor that fails prints an error row
and the others still run; the exit code is 1 when any failed.

`--speed fast` measures `--speed fast` against the default instead: per editor one edit at the default speed,
then two at fast (the first compiles: its seconds are apart), their ratio and peak memory, with what the row's
preset did (a Lightning LoRA is replaced by a random one of rank 64, the real one being a download); then the
thinker's critique at both speeds (tokens per second, time to the first token, the compiling warm-up apart).
Each editor is loaded, compiled and released on its own, as in its own process.

    python scripts/gpu_check.py                # on a GPU: ~5 minutes on one H100, under 8 by design
    python scripts/gpu_check.py --speed fast   # on a GPU: default vs fast, under 8 minutes by design
    python scripts/gpu_check.py --dry-run      # on the CPU: every editor at its real widths, one layer, one step
    python scripts/gpu_check.py --tiny         # tiny models on the CPU: proves the script runs end to end
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import inspect
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

from gpu_check_thinker import default_dtype, measure_thinker, random_thinker  # noqa: E402
from tiny_pipelines import BUILDERS, random_lora  # noqa: E402

from thinkedit import runtime  # noqa: E402
from thinkedit.config import SPEEDS, Settings  # noqa: E402
from thinkedit.editors import EDITORS  # noqa: E402

CONFIGS = ROOT / "scripts" / "gpu_configs"
# editor → (denoiser attribute, denoiser config, VAE config, text width the denoiser expects, steps on an H100)
REAL = {
    "instruct-pix2pix": ("unet", "sd15_instruct_pix2pix_unet", "sd15_vae", {"text_dim": 768}, None),
    "flux2-klein": ("transformer", "flux2_klein_4b_transformer", "flux2_vae", {"text_dim": 2560}, None),
    "flux-kontext": (
        "transformer",
        "flux_kontext_transformer",
        "flux_vae",
        {"text_dim": 4096, "pooled_dim": 768},
        None,
    ),
    "longcat-image-edit": ("transformer", "longcat_image_transformer", "flux_vae", {"text_dim": 3584}, 20),
    "qwen-image-edit": ("transformer", "qwen_image_transformer", "qwen_image_vae", {"text_dim": 3584}, 20),
}
ONE_LAYER = {"num_layers": 1, "num_single_layers": 1, "layers_per_block": 1, "num_res_blocks": 1}  # --dry-run
# Pipelines that work at a fixed ~1 MP whatever the request (the condition image of Qwen-Image-Edit-Plus,
# everything in LongCat); a dry run shrinks that area to its small image: it checks shapes, not sizes.
FIXED_AREA_MODULES = (
    "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus",
    "diffusers.pipelines.longcat_image.pipeline_longcat_image_edit",
)


def build(name: str, device: str, mode: str):
    """The editor's pipeline: "tiny", or its real-size denoiser and VAE built in bfloat16 on `device` ("real"),
    or those at their real widths with one layer each ("dry-run")."""
    import diffusers

    torch.manual_seed(0)
    attribute, denoiser, vae, dims, _ = REAL[name]
    if mode == "tiny":
        pipe = BUILDERS[name]().to(device)
    else:
        parts = {}
        for part, config_name in ((attribute, denoiser), ("vae", vae)):
            config = json.loads((CONFIGS / f"{config_name}.json").read_text())
            if mode == "dry-run":
                config.update({key: value for key, value in ONE_LAYER.items() if key in config})
            with default_dtype(torch.bfloat16), torch.device(device):  # never a float32 copy first
                parts[part] = getattr(diffusers, config["_class_name"]).from_config(config).eval()
        pipe = with_parts(BUILDERS[name](**dims), **parts).to(device, torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def with_parts(pipe, **parts):
    """The pipeline built again through its constructor with `parts` replaced: the constructor derives sizes
    from its components (Qwen-Image-Edit's latent channels from its VAE), which setting an attribute skips."""
    init = inspect.signature(type(pipe).__init__).parameters
    options = {name: pipe.config[name] for name in init if name in pipe.config and name not in pipe.components}
    return type(pipe)(**{**pipe.components, **parts}, **options)


def random_editor(name: str, device: str, mode: str, speed: str = "default", spec=None):
    """The editor class itself (its "checkpoint" is the random pipeline this script puts in the cache)."""
    spec = spec or EDITORS[name]
    dtype = "float32" if mode == "tiny" else "bfloat16"
    settings = Settings(
        editor=name, editor_model=f"random-{name}", device=device, dtype=dtype, offload="none", speed=speed
    )
    return spec.load_class()(spec, settings)


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


def check_editor(name: str, device: str, mode: str, side: int, speed: str = "default") -> dict:
    editor = random_editor(name, device, mode)
    if mode == "dry-run":
        editor.area = side * side  # keep the small image small: a dry run checks shapes
    pipe = runtime.load(editor.cache_key, lambda: build(name, device, mode))
    steps = {"tiny": 2, "dry-run": 1}.get(mode) or REAL[name][4] or editor.spec.steps
    source = Image.new("RGB", (side, side), (135, 190, 235))
    bare = editor.call_arguments(source, "make the sky orange", 0, steps)

    if mode == "real":
        editor.edit(source, "warm up", seed=0, steps=1)  # kernels, allocator, cuDNN autotune
    if speed == "fast":
        return {"editor": name, **fast_against_default(editor, pipe, source, steps, device, mode)}
    ours, _ = timed(
        lambda: editor.edit(source, "make the sky orange", seed=0, steps=steps, on_step=lambda i, n: None), device
    )
    bare_s, peak = timed(lambda: pipe(**bare), device)
    return {
        "editor": name,
        "steps": steps,
        "default_steps": editor.spec.steps,
        "working_size": list(editor.working_size(source)),
        "ours_s": round(ours, 2),
        "bare_s": round(bare_s, 2),
        "overhead": round(ours / bare_s, 3),
        "peak_gb": peak,
    }


def fast_against_default(editor, pipe, source: Image.Image, steps: int, device: str, mode: str) -> dict:
    """One edit at the default speed, then two at fast on the same pipeline: the first compiles (on CUDA)."""
    preset, spec = editor.spec.fast, editor.spec
    with tempfile.TemporaryDirectory(prefix="gpu-check-lora-") as folder:
        if preset.lora:  # the real distillation is a download: a random LoRA of its kind on this very model
            random_lora(pipe, folder, "random-lightning.safetensors", rank=4 if mode == "tiny" else 64)
            spec = dataclasses.replace(
                spec, fast=dataclasses.replace(preset, lora=folder, lora_weight="random-lightning.safetensors")
            )
        fast = random_editor(spec.name, device, mode, "fast", spec)
        fast.area = editor.area
        fast_steps = steps if mode != "real" or not preset.steps else preset.steps  # a LoRA's own step count
        runs = {
            label: timed(
                lambda editor=editor, steps=at: editor.edit(source, "make the sky orange", seed=0, steps=steps), device
            )
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


def check_thinker(device: str, mode: str) -> dict:
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


def check_resident_together(device: str, mode: str) -> dict:
    """FLUX.1 Kontext and an 8B thinker loaded at once: what both hold in GPU memory (the dry run: a tiny thinker)."""
    editor = random_editor("flux-kontext", device, mode)
    runtime.load(editor.cache_key, lambda: build("flux-kontext", device, mode))
    random_thinker(device, tiny=mode != "real")
    held = torch.cuda.memory_allocated() / 1e9 if device.startswith("cuda") else None
    return {"resident": [str(key[0]) for key, _ in runtime.CACHE.entries()], "gpu_gb": round(held, 1) if held else None}


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--dry-run", action="store_true", help="the CPU: real widths, one layer each, one step")
    modes.add_argument("--tiny", action="store_true", help="tiny models on the CPU, 2 steps")
    parser.add_argument("--only", nargs="*", default=list(REAL), help="editors to check")
    parser.add_argument("--side", type=int, help="source image side (default 1024; dry run 64; tiny 96)")
    parser.add_argument("--speed", choices=SPEEDS, default="default", help="fast: default vs fast, and the thinker")
    args = parser.parse_args(argv)
    mode = "dry-run" if args.dry_run else "tiny" if args.tiny else "real"
    device = "cuda" if mode == "real" else "cpu"
    side = args.side or {"real": 1024, "dry-run": 64, "tiny": 96}[mode]
    if mode == "real" and not torch.cuda.is_available():
        parser.error("no CUDA device: run with --dry-run or --tiny on the CPU")
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; {mode}; source {side}²")
    if mode == "real":
        print("(LongCat and Qwen run 20 steps instead of 50 to fit the time box; seconds scale with steps)")
    checks = [({"editor": name}, check_editor, name, device, mode, side, args.speed) for name in args.only]
    if args.speed == "fast":
        checks.append(({"thinker": "qwen3-vl"}, check_thinker, device, mode))
    else:
        checks.append(({"resident": ["flux-kontext", "thinker"]}, check_resident_together, device, mode))
    started, failed = time.perf_counter(), 0
    with fixed_areas(side * side if mode == "dry-run" else None):
        for check in checks:
            result = row(*check)
            print(json.dumps(result), flush=True)
            failed += "error" in result
    print(json.dumps({"seconds": round(time.perf_counter() - started, 1), "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
