"""FLUX.2 [dev] through `diffusers.Flux2Pipeline`; the source is the reference `image=`, as for FLUX.2 [klein].

The full model (a 32B transformer and a Mistral-Small-3.2 text encoder) is guidance-distilled: the guidance
scale is embedded, not classifier-free, so one pass per step.
"""

from __future__ import annotations

from .flux2_klein import Flux2KleinEditor


class Flux2DevEditor(Flux2KleinEditor):
    pipeline_name = "Flux2Pipeline"
    inpaint_pipeline_name = None  # diffusers 0.42 has no inpainting pipeline for FLUX.2 [dev]
