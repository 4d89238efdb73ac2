"""Editors: one file each, one row each in `EDITORS` (which is also their table of defaults and costs).

The editor protocol and the row's fields are in thinkedit/backend.py. `denoiser_gb` is the bfloat16 size of the real
transformer (scripts/gpu_configs built on the meta device: what a checkpoint's safetensors index sums as
`total_size`); `size_gb` adds the text encoders and the VAE.
"""

from __future__ import annotations

import math

from ..backend import BackendSpec, FastPreset

_DIFFUSERS = ("torch", "diffusers", "transformers", "accelerate")
# --speed fast. TaylorSeer with the config the diffusers caching guide gives for FLUX.1-dev; it decides by step
# index, so it needs no calibration (MagCache's ratios are per checkpoint) and hooks blocks by name (First Block
# Cache needs them registered, which LongCat's are not). Few-step rows get regional compilation only.
_TAYLORSEER = FastPreset(
    cache="TaylorSeerCacheConfig", cache_options={"cache_interval": 5, "disable_cache_before_step": 10, "max_order": 1}
)
_COMPILED = FastPreset()
# lightx2v's Lightning distillations of Qwen-Image-Edit: 8 steps without CFG, and the scheduler of their README.
_LIGHTNING = {
    "steps": 8,
    "guidance": 1.0,
    "lora_gb": 0.85,
    "scheduler": {"base_shift": math.log(3), "max_shift": math.log(3), "shift_terminal": None},
}

# OmniGen2's own inference.py: its default negative prompt, and the prompt length it allows (1024 tokens).
_OMNIGEN2 = {
    "image_guidance_scale": 1.5,
    "negative_prompt": "(((deformed))), blurry, over saturation, bad anatomy, disfigured, poorly drawn face, mutation, "
    "mutated, (extra_limb), (ugly), (poorly drawn hands), fused fingers, messy drawing, broken legs censor, censored, "
    "censor_bar",
    "max_sequence_length": 1024,
}

EDITORS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in [
        BackendSpec("classic", "thinkedit.editors.classic:ClassicEditor", "offline",
                    "Offline CPU editor made of ordinary image operations (color, geometry, frames, text)."),
        BackendSpec("flux-kontext", "thinkedit.editors.flux_kontext:FluxKontextEditor", "local",
                    "FLUX.1 Kontext [dev] through diffusers.FluxKontextPipeline.",
                    model="black-forest-labs/FLUX.1-Kontext-dev", steps=28, guidance=2.5,
                    packages=_DIFFUSERS, size_gb=34, denoiser_gb=23.8, gated=True, seconds_per_step=0.45, tiny="flux-kontext",
                    fast=_TAYLORSEER),
        BackendSpec("qwen-image-edit", "thinkedit.editors.qwen_image_edit:QwenImageEditor", "local",
                    "Qwen-Image-Edit(-2509) through diffusers.QwenImageEditPlusPipeline; guidance is true CFG.",
                    model="Qwen/Qwen-Image-Edit-2509", steps=40, guidance=4.0,
                    packages=_DIFFUSERS, size_gb=58, denoiser_gb=40.9, seconds_per_step=0.9, tiny="qwen-image-edit",
                    fast=FastPreset(lora="lightx2v/Qwen-Image-Lightning", **_LIGHTNING,
                                    lora_weight="Qwen-Image-Edit-2509/Qwen-Image-Edit-2509-Lightning-8steps-V1.0-bf16.safetensors")),
        BackendSpec("qwen-image-edit-2511", "thinkedit.editors.qwen_image_edit:QwenImageEditor", "local",
                    "Qwen-Image-Edit-2511 (the same QwenImageEditPlusPipeline, better consistency); true CFG.",
                    model="Qwen/Qwen-Image-Edit-2511", steps=40, guidance=4.0,
                    packages=_DIFFUSERS, size_gb=58, denoiser_gb=40.9, seconds_per_step=0.9, tiny="qwen-image-edit",
                    fast=FastPreset(lora="lightx2v/Qwen-Image-Edit-2511-Lightning", **_LIGHTNING,
                                    lora_weight="Qwen-Image-Edit-2511-Lightning-8steps-V1.0-bf16.safetensors")),
        BackendSpec("longcat-image-edit", "thinkedit.editors.longcat_image_edit:LongCatImageEditor", "local",
                    "LongCat-Image-Edit through diffusers.LongCatImageEditPipeline.",
                    model="meituan-longcat/LongCat-Image-Edit", steps=50, guidance=4.5,
                    packages=_DIFFUSERS, size_gb=30, denoiser_gb=12.5, seconds_per_step=0.8, tiny="longcat-image-edit",
                    fast=_TAYLORSEER),
        BackendSpec("instruct-pix2pix", "thinkedit.editors.instruct_pix2pix:InstructPix2PixEditor", "local",
                    "InstructPix2Pix (Stable Diffusion 1.5 size): small enough for a laptop.",
                    model="timbrooks/instruct-pix2pix", steps=20, guidance=7.5,
                    options={"image_guidance_scale": 1.5}, packages=_DIFFUSERS, size_gb=4.3, seconds_per_step=0.06,
                    tiny="instruct-pix2pix", fast=_COMPILED),  # fp32, no safety checker
        BackendSpec("flux2-klein", "thinkedit.editors.flux2_klein:Flux2KleinEditor", "local",
                    "FLUX.2 [klein] 4B (Apache-2.0) through diffusers.Flux2KleinPipeline: few-step, fits 24 GB.",
                    model="black-forest-labs/FLUX.2-klein-4B", steps=4, guidance=1.0,
                    packages=_DIFFUSERS, size_gb=16, denoiser_gb=7.75, seconds_per_step=0.35, tiny="flux2-klein", fast=_COMPILED),
        BackendSpec("flux2-dev", "thinkedit.editors.flux2_dev:Flux2DevEditor", "local",
                    "FLUX.2 [dev] through diffusers.Flux2Pipeline (gated; non-commercial licence).",
                    model="black-forest-labs/FLUX.2-dev", steps=50, guidance=4.0,
                    packages=_DIFFUSERS, size_gb=110, gated=True, seconds_per_step=2.0, tiny="flux2-dev",
                    fast=_TAYLORSEER),
        BackendSpec("omnigen2", "thinkedit.editors.omnigen2:OmniGen2Editor", "local",
                    "OmniGen2 through its own code: a clone of its GitHub repository (THINKEDIT_OMNIGEN2_PATH).",
                    model="OmniGen2/OmniGen2", steps=50, guidance=5.0,
                    options=_OMNIGEN2, packages=_DIFFUSERS, size_gb=16, seconds_per_step=0.9,
                    code_check="thinkedit.editors.omnigen2:missing_code"),
        BackendSpec("hf-inference", "thinkedit.editors.hf_inference:HFInferenceEditor", "remote",
                    "An image-to-image model on Hugging Face Inference Providers (needs HF_TOKEN).",
                    model="black-forest-labs/FLUX.1-Kontext-dev", packages=("huggingface_hub",), inference_providers=True),
        BackendSpec("http", "thinkedit.editors.http:HTTPEditor", "remote",
                    "EditThinker's editing-server protocol (POST /edit); several URLs go round-robin.",
                    steps=28, guidance=2.5, needs_url=True),
    ]
}  # fmt: skip
