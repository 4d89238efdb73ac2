"""FLUX.2 [klein] (4B, Apache-2.0) through `diffusers.Flux2KleinPipeline`; the source is the reference `image=`.

The default checkpoint is step- and guidance-distilled: 4 steps, and the pipeline ignores guidance.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from ._diffusers import DiffusersEditor


class Flux2KleinEditor(DiffusersEditor):
    pipeline_name = "Flux2KleinPipeline"
    inpaint_pipeline_name = "Flux2KleinInpaintPipeline"
    min_side = 64  # the pipeline refuses smaller reference images

    def arguments(self, image: Image.Image, prompt: str, steps: int, guidance: float) -> dict[str, Any]:
        return {
            "image": image,
            "prompt": prompt,
            "guidance_scale": guidance,
            "height": image.height,
            "width": image.width,
        }

    def inpaint_arguments(
        self, image: Image.Image, mask: Image.Image, prompt: str, steps: int, guidance: float
    ) -> dict[str, Any]:
        # the inpainting pipeline's `image` is what it repaints; the source stays the reference, as when editing
        return {**super().inpaint_arguments(image, mask, prompt, steps, guidance), "image_reference": image}
