"""Qwen-Image-Edit through diffusers: `QwenImageEditPlusPipeline` (2509 and later), `QwenImageEditPipeline`
for the original `Qwen/Qwen-Image-Edit`. Guidance is true classifier-free guidance (`true_cfg_scale`),
which the pipeline applies only with a negative prompt, so one is passed whenever guidance is above 1 (the
Lightning distillation of `--speed fast` runs at 1: no CFG). With a mask the original checkpoint edits through
`QwenImageEditInpaintPipeline`; diffusers has none for the Plus pipeline (2509, 2511).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from ._diffusers import DiffusersEditor

ORIGINAL = "Qwen/Qwen-Image-Edit"


class QwenImageEditor(DiffusersEditor):
    def __init__(self, spec, settings) -> None:
        super().__init__(spec, settings)
        self.pipeline_name = pipeline_name_for(self.model)
        if self.pipeline_name == "QwenImageEditPipeline":
            self.inpaint_pipeline_name = "QwenImageEditInpaintPipeline"

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
