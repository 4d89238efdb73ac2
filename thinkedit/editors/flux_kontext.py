"""FLUX.1 Kontext [dev] through `diffusers.FluxKontextPipeline` (gated: accept the licence on the hub)."""

from __future__ import annotations

from typing import Any

from PIL import Image

from ._diffusers import DiffusersEditor


class FluxKontextEditor(DiffusersEditor):
    pipeline_name = "FluxKontextPipeline"
    inpaint_pipeline_name = "FluxKontextInpaintPipeline"  # with a mask: the source is also the Kontext context

    def arguments(self, image: Image.Image, prompt: str, steps: int, guidance: float) -> dict[str, Any]:
        # Kontext snaps the input to its preferred resolutions unless `_auto_resize=False`, and scales the
        # output to `max_area` whatever height/width say: both are set so that our working size stands.
        return {
            "image": image,
            "prompt": prompt,
            "guidance_scale": guidance,
            "height": image.height,
            "width": image.width,
            "max_area": image.width * image.height,
            "_auto_resize": False,
        }
