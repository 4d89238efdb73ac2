"""OmniGen2 through its own code, which diffusers does not ship: a clone of its GitHub repository.

The repository has no setup.py or pyproject.toml to pip-install, and the hub checkpoint has no pipeline.py,
so every upstream loader (the repository's app.py and inference.py) puts the clone on `sys.path`. So do we,
with the clone named by THINKEDIT_OMNIGEN2_PATH. `OmniGen2Transformer2DModel` is loaded from the checkpoint's
`transformer` subfolder and handed to `OmniGen2Pipeline.from_pretrained` (upstream loads the transformer in
the pipeline and then loads it again in its place).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from PIL import Image

from ..config import Settings
from ..errors import ThinkEditError
from ..remote import hf_token
from ._diffusers import DiffusersEditor

REPOSITORY = "https://github.com/VectorSpaceLab/OmniGen2"
PIPELINE_MODULE = "omnigen2.pipelines.omnigen2.pipeline_omnigen2"
TRANSFORMER_MODULE = "omnigen2.models.transformers.transformer_omnigen2"
SETUP = (
    f"Set it up once: `git clone {REPOSITORY} /path/to/OmniGen2`, `pip install einops` (the one package its code "
    "needs beyond ThinkEdit's), then `export THINKEDIT_OMNIGEN2_PATH=/path/to/OmniGen2`."
)


def missing_code(settings: Settings) -> str | None:
    """Why OmniGen2's code cannot be imported here, with the set-up steps; None when it can."""
    clone = settings.omnigen2_path
    pipeline_file = PIPELINE_MODULE.replace(".", "/") + ".py"
    if clone and not (Path(clone).expanduser() / pipeline_file).is_file():
        return f"THINKEDIT_OMNIGEN2_PATH={clone} is not a clone of OmniGen2's repository (no {pipeline_file}). {SETUP}"
    if not clone and importlib.util.find_spec("omnigen2") is None:
        return f"OmniGen2's code is not on this machine (THINKEDIT_OMNIGEN2_PATH is not set). {SETUP}"
    if importlib.util.find_spec("einops") is None:
        return "OmniGen2's code needs einops, which is not installed: pip install einops."
    return None


def omnigen2_classes(settings: Settings) -> tuple[type, type]:
    """(OmniGen2Pipeline, OmniGen2Transformer2DModel) from the clone (or an `omnigen2` already importable)."""
    problem = missing_code(settings)
    if problem:
        raise ThinkEditError(problem)
    if settings.omnigen2_path:
        clone = str(Path(settings.omnigen2_path).expanduser().resolve())
        if clone not in sys.path:
            sys.path.append(clone)  # after everything else: the clone's app.py or train.py shadow nothing
    try:
        pipeline = importlib.import_module(PIPELINE_MODULE).OmniGen2Pipeline
        transformer = importlib.import_module(TRANSFORMER_MODULE).OmniGen2Transformer2DModel
    except Exception as exc:  # noqa: BLE001 - its import runs its code (e.g. triton kernels query the GPU)
        raise ThinkEditError(
            f"OmniGen2's code in {settings.omnigen2_path or 'omnigen2'} could not be imported: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return pipeline, transformer


class OmniGen2Editor(DiffusersEditor):
    pipeline_name = "OmniGen2Pipeline"

    def pipeline_class(self):
        return omnigen2_classes(self.settings)[0]

    def from_pretrained_options(self, dtype) -> dict[str, Any]:
        pipeline, transformer_class = omnigen2_classes(self.settings)
        transformer = transformer_class.from_pretrained(
            self.model, subfolder="transformer", dtype=dtype, token=hf_token()
        )
        _resolve_transformer_module(pipeline, self.model, transformer_class)
        # trust_remote_code as upstream's loaders pass it: the checkpoint may ship other components' code
        return {"transformer": transformer, "trust_remote_code": True}

    def arguments(self, image: Image.Image, prompt: str, steps: int, guidance: float) -> dict[str, Any]:
        options = self.spec.options
        return {
            "prompt": prompt,
            "input_images": [image],
            "negative_prompt": options["negative_prompt"],
            "max_sequence_length": options["max_sequence_length"],
            "text_guidance_scale": guidance,
            "image_guidance_scale": options.get("image_guidance_scale", 1.5),
            "height": image.height,
            "width": image.width,
            "max_pixels": self.area,
            "max_input_image_side_length": max(image.size),  # keep our working size
        }


def _resolve_transformer_module(pipeline, checkpoint: str, transformer_class: type) -> None:
    """Let diffusers find the module model_index.json names for the transformer.

    diffusers checks a component handed to `from_pretrained` against the class model_index.json names, and
    resolves a module outside diffusers and transformers only among those already imported. A checkpoint
    that names the module by its bare file name (`transformer_omnigen2`) means the clone's module.
    """
    library = (pipeline.load_config(checkpoint, token=hf_token()).get("transformer") or [None])[0]
    if library and library not in sys.modules and importlib.util.find_spec(library.split(".")[0]) is None:
        sys.modules[library] = sys.modules[transformer_class.__module__]
