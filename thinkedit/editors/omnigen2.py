"""OmniGen2 through its own pipeline code, which diffusers does not ship.

The code comes from the `omnigen2` package (pip install git+https://github.com/VectorSpaceLab/OmniGen2)
when installed, else from a `pipeline.py` in the checkpoint (local folder or hub repository) loaded as a
diffusers custom pipeline with `trust_remote_code`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from PIL import Image

from .. import runtime
from ..errors import ThinkEditError
from ._diffusers import DiffusersEditor

PACKAGE_PIPELINE = "omnigen2.pipelines.omnigen2.pipeline_omnigen2"
INSTALL = "pip install git+https://github.com/VectorSpaceLab/OmniGen2"


class OmniGen2Editor(DiffusersEditor):
    pipeline_name = "OmniGen2Pipeline"

    def pipeline_class(self):
        installed = _installed_pipeline()
        if installed is not None:
            return installed
        folder = Path(self.model).expanduser()
        if not (folder / "pipeline.py").is_file() and (folder.is_dir() or runtime.offline()):
            where = f"{folder} has no pipeline.py" if folder.is_dir() else "HF_HUB_OFFLINE=1 forbids fetching it"
            raise ThinkEditError(
                f"OmniGen2 runs on its own pipeline code, which is not available here ({where}). "
                f"Install it with `{INSTALL}`, or put OmniGen2's pipeline.py in the checkpoint folder."
            )
        from diffusers import DiffusionPipeline

        return DiffusionPipeline

    def from_pretrained_options(self, dtype) -> dict[str, Any]:
        if _installed_pipeline() is not None:  # the package's own class: no code from the checkpoint
            return {}
        return {"custom_pipeline": self.model, "trust_remote_code": True}

    def arguments(self, image: Image.Image, prompt: str, steps: int, guidance: float) -> dict[str, Any]:
        options = self.spec.options
        return {
            "prompt": prompt,
            "input_images": [image],
            "negative_prompt": options.get("negative_prompt"),
            "text_guidance_scale": guidance,
            "image_guidance_scale": options.get("image_guidance_scale", 1.5),
            "height": image.height,
            "width": image.width,
            "max_pixels": self.area,
            "max_input_image_side_length": max(image.size),  # keep our working size
        }


def _installed_pipeline():
    try:
        return importlib.import_module(PACKAGE_PIPELINE).OmniGen2Pipeline
    except ImportError:
        return None
