"""GPU check of the local thinker: the real Qwen3-VL-8B architecture with random bfloat16 weights.

Measures one two-image critique at 1024² through `QwenVLThinker` (the app's own code path): time to
first token, decoding tokens per second and peak GPU memory — alone, then with FLUX.1 Kontext resident
(its transformer, T5-XXL and CLIP text encoders and VAE at their real sizes, random weights). Nothing is
downloaded: models are built on the GPU from configs, and the tokenizer/processor is the tests' tiny one
(its token ids are in range; the image processor has the real patch and merge sizes).

    python scripts/gpu_check_thinker.py                  # one GPU, a few minutes
    python scripts/gpu_check_thinker.py --tiny           # tiny models on the CPU: proves the script runs

`measure_thinker(device, ...)` is importable by the editors' `scripts/gpu_check.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: every model here is built from a config

import torch  # noqa: E402
from PIL import ImageOps  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from tiny_qwen_vl import build_processor, build_tokenizer, qwen3_vl_config  # noqa: E402

from thinkedit import runtime  # noqa: E402
from thinkedit.bench import scene  # noqa: E402
from thinkedit.config import Settings  # noqa: E402
from thinkedit.thinkers import THINKERS  # noqa: E402
from thinkedit.thinkers.qwen_vl import QwenVLThinker  # noqa: E402

CONFIGS = Path(__file__).resolve().parent / "gpu_configs"
TINY_FLUX_TRANSFORMER = {
    "num_layers": 1,
    "num_single_layers": 1,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 32,
    "pooled_projection_dim": 32,
    "in_channels": 16,
    "guidance_embeds": True,
    "axes_dims_rope": [4, 6, 6],
}


def random_thinker(device: str, tiny: bool = False, speed: str = "default") -> QwenVLThinker:
    """A `QwenVLThinker` whose cached model is a random Qwen3-VL-8B (or tiny) built in place on `device`."""
    settings = Settings(
        thinker="editthinker",
        thinker_model=f"random-qwen3-vl-{'tiny' if tiny else '8b'}",
        device=device,
        offload="none",
        speed=speed,
    )
    thinker = QwenVLThinker(THINKERS["editthinker"], settings)
    runtime.load(thinker.cache_key, lambda: build_qwen3_vl(device, tiny))
    return thinker


def build_qwen3_vl(device: str, tiny: bool):
    from transformers import AutoModelForImageTextToText, Qwen3VLConfig

    tokenizer = build_tokenizer()
    if tiny:
        config = qwen3_vl_config(tokenizer)
    else:
        # the real architecture; only the special token ids follow the small tokenizer
        config = Qwen3VLConfig(**json.loads((CONFIGS / "qwen3_vl_8b.json").read_text()))
        for name, value in qwen3_vl_config(tokenizer).to_dict().items():
            if name.endswith("_token_id"):
                setattr(config, name, value)
    dtype = runtime.pick_dtype(Settings(device=device), device)
    with default_dtype(dtype), torch.device(device):
        model = AutoModelForImageTextToText.from_config(config).eval()
    model.generation_config.eos_token_id = None  # random weights: always decode the full token budget
    return model, build_processor("qwen3_vl", tokenizer, max_side=96 if tiny else 1024), "none"


def build_flux_kontext(device: str, tiny: bool = False) -> list[torch.nn.Module]:
    """FLUX.1 Kontext's four models at their real sizes (random weights), resident on `device`.

    The transformer and VAE configs are the editors' (scripts/gpu_configs); the text encoders are T5-XXL
    and CLIP-L, whose sizes are well known.
    """
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    if tiny:
        transformer, vae = (
            TINY_FLUX_TRANSFORMER,
            {"block_out_channels": [8], "latent_channels": 4, "norm_num_groups": 4},
        )
        t5 = T5Config(d_model=32, d_ff=64, num_layers=1, num_heads=2, d_kv=16, vocab_size=128)
        clip = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    else:
        transformer = json.loads((CONFIGS / "flux_kontext_transformer.json").read_text())
        vae = json.loads((CONFIGS / "flux_vae.json").read_text())
        t5 = T5Config(
            d_model=4096,
            d_ff=10240,
            num_layers=24,
            num_heads=64,
            d_kv=64,
            vocab_size=32128,
            feed_forward_proj="gated-gelu",
        )
        clip = CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
    dtype = runtime.pick_dtype(Settings(device=device), device)
    with default_dtype(dtype), torch.device(device):
        models = [
            FluxTransformer2DModel.from_config(transformer),
            T5EncoderModel(t5),
            CLIPTextModel(clip),
            AutoencoderKL.from_config(vae),
        ]
    return [model.eval() for model in models]


def measure_thinker(
    device: str, *, tiny: bool = False, new_tokens: int = 256, image_side: int = 1024, speed: str = "default"
) -> dict:
    """One two-image critique at `image_side`²: seconds to the first token, tokens/s, peak GPU memory (GB), and
    the warm-up call's seconds (`first_call_s`: with `speed="fast"` on CUDA, the one that compiles)."""
    thinker = random_thinker(device, tiny, speed)
    thinker.settings.thinker_image_side = image_side
    model = thinker.load()[0]
    steps: list[float] = []

    @torch.compiler.disable  # run as it is, outside fast's compiled decoding step: a real clock per token
    def tick(*_) -> None:
        steps.append(_synchronized(device))

    hook = model.register_forward_hook(tick)
    source = scene(image_side, image_side)
    edited = ImageOps.mirror(source)
    try:
        # warm-up: CUDA kernels, cuBLAS handles, the allocator; a static cache is as long as the token budget, so
        # fast warms up (and compiles) at the budget it is measured at
        thinker.generation["max_new_tokens"] = new_tokens if "cache_implementation" in thinker.generation else 4
        warm_up = _synchronized(device)
        thinker.critique(source, edited, "Make the red square blue", "Make the red square blue")
        first_call = _synchronized(device) - warm_up
        thinker.generation["max_new_tokens"] = new_tokens
        steps.clear()
        cuda = device.startswith("cuda")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        resident = torch.cuda.memory_allocated() / 1e9 if cuda else _weights_gb(model)
        started = _synchronized(device)
        thinker.critique(source, edited, "Make the red square blue", "Make the red square blue")
    finally:
        hook.remove()
    return {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else device,
        "image_side": image_side,
        "new_tokens": len(steps),
        "first_token_s": round(steps[0] - started, 3),
        "tokens_per_s": round((len(steps) - 1) / (steps[-1] - steps[0]), 1) if len(steps) > 1 else None,
        "resident_gb": round(resident, 2),
        "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if device.startswith("cuda") else None,
        "first_call_s": round(first_call, 2),
    }


def _synchronized(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter()


def _weights_gb(*models: torch.nn.Module) -> float:
    return sum(p.numel() * p.element_size() for m in models for p in m.parameters()) / 1e9


@contextmanager
def default_dtype(dtype) -> Iterator[None]:
    """Build parameters directly in `dtype`: an 8B model first made in float32 would need twice the memory."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU (proves the script runs)")
    parser.add_argument("--tokens", type=int, help="tokens to decode (default 256; 16 with --tiny)")
    parser.add_argument("--image-side", type=int, help="image side (default 1024; 96 with --tiny)")
    args = parser.parse_args(argv)
    device = "cpu" if args.tiny else "cuda"
    if not args.tiny and not torch.cuda.is_available():
        parser.error("no CUDA device here; use --tiny for the CPU run")
    torch.manual_seed(0)
    options = {
        "tiny": args.tiny,
        "new_tokens": args.tokens or (16 if args.tiny else 256),
        "image_side": args.image_side or (96 if args.tiny else 1024),
    }
    started = time.perf_counter()
    report = {"thinker_alone": measure_thinker(device, **options)}
    flux = build_flux_kontext(device, args.tiny)
    report["flux_kontext_resident_gb"] = round(_weights_gb(*flux), 2)
    report["thinker_with_flux_kontext"] = measure_thinker(device, **options)
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
