"""Qwen-Image-Edit through diffusers: `QwenImageEditPlusPipeline` (2509 and later), `QwenImageEditPipeline`
for the original `Qwen/Qwen-Image-Edit`. Guidance is true classifier-free guidance (`true_cfg_scale`),
which the pipeline applies only with a negative prompt, so one is passed whenever guidance is above 1 (the
Lightning distillation of `--speed fast` runs at 1: no CFG).

Both pipelines resize the source they condition on to their own size (about 1024², sides multiples of 32, by their
module's `calculate_dimensions`) whatever height and width say, so the output is asked at that size too: with
another, the latents of the output and of the condition image would not line up. With a mask the original
checkpoint edits through `QwenImageEditInpaintPipeline`; diffusers has none for the Plus pipeline (2509, 2511).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from PIL import Image

from ._diffusers import AREA, DiffusersEditor

ORIGINAL = "Qwen/Qwen-Image-Edit"
MODULES = {
    "QwenImageEditPipeline": "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit",
    "QwenImageEditPlusPipeline": "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus",
}


class QwenImageEditor(DiffusersEditor):
    def __init__(self, spec, settings) -> None:
        super().__init__(spec, settings)
        self.pipeline_name = pipeline_name_for(self.model)
        if self.pipeline_name == "QwenImageEditPipeline":
            self.inpaint_pipeline_name = "QwenImageEditInpaintPipeline"

    def working_size(self, image: Image.Image) -> tuple[int, int]:
        """The size the pipeline itself gives the source (its module's rule, looked up at each call)."""
        module = importlib.import_module(MODULES[self.pipeline_name])
        area = getattr(module, "VAE_IMAGE_SIZE", AREA)  # the Plus pipeline names it; the original writes 1024²
        width, height = module.calculate_dimensions(area, image.width / image.height)[:2]
        return int(width), int(height)

    def arguments(self, image: Image.Image, prompt: str, steps: int, guidance: float) -> dict[str, Any]:
        negative = {"negative_prompt": self.spec.options.get("negative_prompt", " ")} if guidance > 1 else {}
        return {
            "image": image,
            "prompt": prompt,
            **negative,
            "true_cfg_scale": guidance,
            "height": image.height,
            "width": image.width,
        }


def pipeline_name_for(checkpoint: str) -> str:
    """The original checkpoint's class from a local folder's model_index.json, or from the hub id."""
    index = Path(checkpoint).expanduser() / "model_index.json"
    if index.is_file():
        name = json.loads(index.read_text()).get("_class_name")
        if name in ("QwenImageEditPipeline", "QwenImageEditPlusPipeline"):
            return name
    return "QwenImageEditPipeline" if checkpoint.rstrip("/") == ORIGINAL else "QwenImageEditPlusPipeline"
