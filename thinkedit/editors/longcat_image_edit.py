"""LongCat-Image-Edit through `diffusers.LongCatImageEditPipeline`.

The pipeline always works at about 1024² (it takes no height/width) and has no step callback; the shared
helper reports steps through its scheduler and returns the source's size.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from ._diffusers import DiffusersEditor


class LongCatImageEditor(DiffusersEditor):
    pipeline_name = "LongCatImageEditPipeline"

    def arguments(self, image: Image.Image, prompt: str, steps: int, guidance: float) -> dict[str, Any]:
        return {"image": image, "prompt": prompt, "guidance_scale": guidance}
