"""InstructPix2Pix through `diffusers.StableDiffusionInstructPix2PixPipeline`: the editor a laptop can run.

It loads without the checkpoint's safety checker, as its model card does: the checker silently turns edits it
misjudges into black images, which the thinker would then critique as failed edits.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from ._diffusers import DiffusersEditor


class InstructPix2PixEditor(DiffusersEditor):
    pipeline_name = "StableDiffusionInstructPix2PixPipeline"
    multiple = 8  # Stable Diffusion's VAE, no patching
    area = 512 * 512  # Stable Diffusion 1.5's size, which InstructPix2Pix's own edit script works at

    def from_pretrained_options(self, dtype) -> dict[str, Any]:
        return {"safety_checker": None, "requires_safety_checker": False}

    def arguments(self, image: Image.Image, prompt: str, steps: int, guidance: float) -> dict[str, Any]:
        image_guidance = self.spec.options.get("image_guidance_scale", 1.5)
        return {"image": image, "prompt": prompt, "guidance_scale": guidance, "image_guidance_scale": image_guidance}
