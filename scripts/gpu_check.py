"""GPU check for the diffusers editors: real-size denoisers and VAEs (random bfloat16 weights), tiny text encoders.

For each editor: one edit of a 1024² image at the default step count through our editor (sizing, step
callback, resize back) and the same call straight to the diffusers pipeline; prints seconds per edit,
our overhead as a ratio, and peak GPU memory. Then FLUX.1 Kontext and a Qwen3-VL-8B-sized thinker
resident together. Architectures come from scripts/gpu_configs/*.json.

    python scripts/gpu_check.py            # on a GPU, ~6 minutes on one H100
    python scripts/gpu_check.py --tiny     # tiny models on the CPU: proves the script runs end to end
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]

from tiny_pipelines import BUILDERS  # noqa: E402

from thinkedit import runtime  # noqa: E402
from thinkedit.config import Settings  # noqa: E402
from thinkedit.editors import EDITORS  # noqa: E402
from thinkedit.editors._diffusers import fit_size  # noqa: E402

CONFIGS = ROOT / "scripts" / "gpu_configs"
# editor → (denoiser attribute, denoiser config, VAE config, text width the denoiser expects, steps on an H100)
REAL = {
    "instruct-pix2pix": ("unet", "sd15_instruct_pix2pix_unet", "sd15_vae", {"text_dim": 768}, None),
    "flux2-klein": ("transformer", "flux2_klein_4b_transformer", "flux2_vae", {"text_dim": 2560}, None),
    "flux-kontext": ("transformer", "flux_kontext_transformer", "flux_vae", {"text_dim": 4096, "pooled_dim": 768}, None),
    "longcat-image-edit": ("transformer", "longcat_image_transformer", "flux_vae", {"text_dim": 3584}, 20),
    "qwen-image-edit": ("transformer", "qwen_image_transformer", "qwen_image_vae", {"text_dim": 3584}, 20),
}  # fmt: skip


def build(name: str, device: str, tiny: bool):
    """The editor's pipeline: tiny, or with its real-size denoiser and VAE in bfloat16 on `device`."""
    import diffusers

    torch.manual_seed(0)
    attribute, denoiser, vae, dims, _ = REAL[name]
    pipe = BUILDERS[name]() if tiny else BUILDERS[name](**dims)
    if not tiny:
        for part, config_name in ((attribute, denoiser), ("vae", vae)):
            config = json.loads((CONFIGS / f"{config_name}.json").read_text())
            with torch.device(device):
                setattr(pipe, part, getattr(diffusers, config["_class_name"]).from_config(config).eval())
    dtype = torch.float32 if tiny else torch.bfloat16
    pipe.to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def random_editor(name: str, device: str):
    """The editor class itself (its "checkpoint" is the random pipeline this script puts in the cache)."""
    settings = Settings(editor=name, editor_model=f"random-{name}", device=device, offload="none")
    return EDITORS[name].load_class()(EDITORS[name], settings)


def check_editor(name: str, device: str, tiny: bool, side: int) -> dict:
    editor = random_editor(name, device)
    pipe = runtime.load(editor.cache_key, lambda: build(name, device, tiny))
    steps = 2 if tiny else REAL[name][4] or editor.spec.steps
    source = Image.new("RGB", (side, side), (135, 190, 235))
    working = source.resize(fit_size(side, side, editor.multiple, editor.max_area, editor.min_side))
    bare = editor.arguments(working, "make the sky orange", steps, editor.spec.guidance)
    bare = {**bare, "num_inference_steps": steps, "generator": torch.Generator("cpu").manual_seed(0)}

    editor.edit(source, "warm up", seed=0, steps=1)  # kernels, allocator, cuDNN autotune
    seconds = {}
    for label, call in (
        ("ours", lambda: editor.edit(source, "make the sky orange", seed=0, steps=steps, on_step=lambda i, n: None)),
        ("bare", lambda: pipe(**bare)),
    ):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        call()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds[label] = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else None
    pipe = None  # with the cache's reference gone, the GPU memory is freed for the next editor
    runtime.CACHE.release(editor.cache_key)
    return {"editor": name, "steps": steps, "default_steps": editor.spec.steps, "ours_s": round(seconds["ours"], 2),
            "bare_s": round(seconds["bare"], 2), "overhead": round(seconds["ours"] / seconds["bare"], 3),
            "peak_gb": round(peak, 1) if peak else None}  # fmt: skip


def check_resident_together(device: str, tiny: bool) -> dict:
    """FLUX.1 Kontext and an 8B thinker loaded at once: what both hold in GPU memory."""
    from gpu_check_thinker import random_thinker

    editor = random_editor("flux-kontext", device)
    runtime.load(editor.cache_key, lambda: build("flux-kontext", device, tiny))
    random_thinker(device, tiny)
    held = torch.cuda.memory_allocated() / 1e9 if device.startswith("cuda") else None
    loaded = [str(key[0]) for key in runtime.CACHE.keys()]
    runtime.CACHE.clear()
    return {"resident": loaded, "gpu_gb": round(held, 1) if held else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU, 2 steps")
    parser.add_argument("--only", nargs="*", default=list(REAL), help="editors to check")
    parser.add_argument("--side", type=int, help="source image side (default 1024, tiny 96)")
    args = parser.parse_args(argv)
    device = "cpu" if args.tiny else "cuda"
    side = args.side or (96 if args.tiny else 1024)
    if not args.tiny and not torch.cuda.is_available():
        parser.error("no CUDA device: run with --tiny on the CPU")
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; source {side}²")
    print("(LongCat and Qwen run 20 steps instead of 50 to fit the time box; seconds scale with steps)")
    for name in args.only:
        print(json.dumps(check_editor(name, device, args.tiny, side)), flush=True)
    print(json.dumps(check_resident_together(device, args.tiny)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
