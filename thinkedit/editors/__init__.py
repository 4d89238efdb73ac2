"""Editors: one file each, one row each in `EDITORS` (which is also their table of defaults and costs).

The editor protocol and the row's fields are in thinkedit/backend.py.
"""

from __future__ import annotations

from ..backend import BackendSpec

_DIFFUSERS = ("torch", "diffusers", "transformers", "accelerate")

EDITORS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in [
        BackendSpec("classic", "thinkedit.editors.classic:ClassicEditor", "offline",
                    "Offline CPU editor made of ordinary image operations (color, geometry, frames, text)."),
        BackendSpec("flux-kontext", "thinkedit.editors.flux_kontext:FluxKontextEditor", "local",
                    "FLUX.1 Kontext [dev] through diffusers.FluxKontextPipeline.",
                    model="black-forest-labs/FLUX.1-Kontext-dev", steps=28, guidance=2.5,
                    packages=_DIFFUSERS, size_gb=34, gated=True, seconds_per_step=0.45, tiny="flux-kontext"),
        BackendSpec("qwen-image-edit", "thinkedit.editors.qwen_image_edit:QwenImageEditor", "local",
                    "Qwen-Image-Edit(-2509) through diffusers.QwenImageEditPlusPipeline; guidance is true CFG.",
                    model="Qwen/Qwen-Image-Edit-2509", steps=50, guidance=4.0,
                    packages=_DIFFUSERS, size_gb=58, seconds_per_step=0.9, tiny="qwen-image-edit"),
        BackendSpec("qwen-image-edit-2511", "thinkedit.editors.qwen_image_edit:QwenImageEditor", "local",
                    "Qwen-Image-Edit-2511 (the same QwenImageEditPlusPipeline, better consistency); true CFG.",
                    model="Qwen/Qwen-Image-Edit-2511", steps=40, guidance=4.0,
                    packages=_DIFFUSERS, size_gb=58, seconds_per_step=0.9, tiny="qwen-image-edit"),
        BackendSpec("longcat-image-edit", "thinkedit.editors.longcat_image_edit:LongCatImageEditor", "local",
                    "LongCat-Image-Edit through diffusers.LongCatImageEditPipeline.",
                    model="meituan-longcat/LongCat-Image-Edit", steps=50, guidance=4.5,
                    packages=_DIFFUSERS, size_gb=30, seconds_per_step=0.8, tiny="longcat-image-edit"),
        BackendSpec("instruct-pix2pix", "thinkedit.editors.instruct_pix2pix:InstructPix2PixEditor", "local",
                    "InstructPix2Pix (Stable Diffusion 1.5 size): small enough for a laptop.",
                    model="timbrooks/instruct-pix2pix", steps=20, guidance=7.5,
                    options={"image_guidance_scale": 1.5}, packages=_DIFFUSERS, size_gb=4.3, seconds_per_step=0.06,
                    tiny="instruct-pix2pix"),  # fp32, no safety checker
        BackendSpec("flux2-klein", "thinkedit.editors.flux2_klein:Flux2KleinEditor", "local",
                    "FLUX.2 [klein] 4B (Apache-2.0) through diffusers.Flux2KleinPipeline: few-step, fits 24 GB.",
                    model="black-forest-labs/FLUX.2-klein-4B", steps=4, guidance=1.0,
                    packages=_DIFFUSERS, size_gb=16, seconds_per_step=0.35, tiny="flux2-klein"),
        BackendSpec("flux2-dev", "thinkedit.editors.flux2_dev:Flux2DevEditor", "local",
                    "FLUX.2 [dev] through diffusers.Flux2Pipeline (gated; non-commercial licence).",
                    model="black-forest-labs/FLUX.2-dev", steps=50, guidance=4.0,
                    packages=_DIFFUSERS, size_gb=110, gated=True, seconds_per_step=2.0, tiny="flux2-dev"),
        BackendSpec("omnigen2", "thinkedit.editors.omnigen2:OmniGen2Editor", "local",
                    "OmniGen2 through its own code: a clone of its GitHub repository (THINKEDIT_OMNIGEN2_PATH).",
                    model="OmniGen2/OmniGen2", steps=50, guidance=5.0,
                    options={"image_guidance_scale": 1.5}, packages=_DIFFUSERS, size_gb=16, seconds_per_step=0.9,
                    code_check="thinkedit.editors.omnigen2:missing_code"),
        BackendSpec("hf-inference", "thinkedit.editors.hf_inference:HFInferenceEditor", "remote",
                    "An image-to-image model on Hugging Face Inference Providers (needs HF_TOKEN).",
                    model="black-forest-labs/FLUX.1-Kontext-dev", packages=("huggingface_hub",), inference_providers=True),
        BackendSpec("http", "thinkedit.editors.http:HTTPEditor", "remote",
                    "EditThinker's editing-server protocol (POST /edit); several URLs go round-robin.",
                    steps=28, guidance=2.5, needs_url=True),
    ]
}  # fmt: skip
