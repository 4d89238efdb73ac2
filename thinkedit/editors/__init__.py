"""Editors: one file each, one row each in `EDITORS` (which is also their table of defaults).

An editor is anything with

    edit(image, prompt, *, seed, steps=None, guidance=None, on_step=None) -> PIL.Image

It edits `image` (RGB) as `prompt` says and returns an RGB image of the same size. `on_step(i, n)` is
called after each of its n steps; it raises `thinkedit.errors.Cancelled` when the person pressed Stop,
and the editor lets that propagate. An editor that could do only part of a prompt says so in the
returned image's `info["editor_note"]`. Classes are built as `Class(spec, settings)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from PIL import Image

from ..registry import BackendSpec

OnStep = Callable[[int, int], None]


class Editor(Protocol):
    spec: BackendSpec
    model: str | None

    def edit(
        self,
        image: Image.Image,
        prompt: str,
        *,
        seed: int,
        steps: int | None = None,
        guidance: float | None = None,
        on_step: OnStep | None = None,
    ) -> Image.Image: ...


_DIFFUSERS = ("torch", "diffusers", "transformers", "accelerate")

EDITORS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in [
        BackendSpec("classic", "thinkedit.editors.classic:ClassicEditor", "offline",
                    "Offline CPU editor made of ordinary image operations (color, geometry, frames, text)."),
        BackendSpec("flux-kontext", "thinkedit.editors.flux_kontext:FluxKontextEditor", "local",
                    "FLUX.1 Kontext [dev] through diffusers.FluxKontextPipeline.",
                    model="black-forest-labs/FLUX.1-Kontext-dev", steps=28, guidance=2.5,
                    packages=_DIFFUSERS, size_gb=34, gated=True),
        BackendSpec("qwen-image-edit", "thinkedit.editors.qwen_image_edit:QwenImageEditor", "local",
                    "Qwen-Image-Edit(-2509) through diffusers.QwenImageEditPlusPipeline; guidance is true CFG.",
                    model="Qwen/Qwen-Image-Edit-2509", steps=50, guidance=4.0,
                    packages=_DIFFUSERS, size_gb=58),
        BackendSpec("longcat-image-edit", "thinkedit.editors.longcat_image_edit:LongCatImageEditor", "local",
                    "LongCat-Image-Edit through diffusers.LongCatImageEditPipeline.",
                    model="meituan-longcat/LongCat-Image-Edit", steps=50, guidance=4.5,
                    packages=_DIFFUSERS, size_gb=30),
        BackendSpec("instruct-pix2pix", "thinkedit.editors.instruct_pix2pix:InstructPix2PixEditor", "local",
                    "InstructPix2Pix (Stable Diffusion 1.5 size): small enough for a laptop.",
                    model="timbrooks/instruct-pix2pix", steps=20, guidance=7.5,
                    options={"image_guidance_scale": 1.5}, packages=_DIFFUSERS, size_gb=4.3),  # fp32, no safety checker
        BackendSpec("flux2-klein", "thinkedit.editors.flux2_klein:Flux2KleinEditor", "local",
                    "FLUX.2 [klein] 4B (Apache-2.0) through diffusers.Flux2KleinPipeline: few-step, fits 24 GB.",
                    model="black-forest-labs/FLUX.2-klein-4B", steps=4, guidance=1.0,
                    packages=_DIFFUSERS, size_gb=16),
        BackendSpec("omnigen2", "thinkedit.editors.omnigen2:OmniGen2Editor", "local",
                    "OmniGen2 through its own code: a clone of its GitHub repository (THINKEDIT_OMNIGEN2_PATH).",
                    model="OmniGen2/OmniGen2", steps=50, guidance=5.0,
                    options={"image_guidance_scale": 1.5}, packages=_DIFFUSERS, size_gb=16,
                    code_check="thinkedit.editors.omnigen2:missing_code"),
        BackendSpec("hf-inference", "thinkedit.editors.hf_inference:HFInferenceEditor", "remote",
                    "An image-to-image model on Hugging Face Inference Providers (needs HF_TOKEN).",
                    model="black-forest-labs/FLUX.1-Kontext-dev", packages=("huggingface_hub",), inference_providers=True),
        BackendSpec("http", "thinkedit.editors.http:HTTPEditor", "remote",
                    "EditThinker's editing-server protocol (POST /edit); several URLs go round-robin.",
                    steps=28, guidance=2.5, needs_url=True),
    ]
}  # fmt: skip
