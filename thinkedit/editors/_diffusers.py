"""What every diffusers editor shares: loading through the runtime, seeding, step callbacks, sizing, masks.

An editor file subclasses `DiffusersEditor`, names its pipeline class and rounding multiple, and maps
one request to that pipeline's keyword arguments in `arguments(...)`. Everything else lives here once.

With a mask, an editor whose checkpoint has an inpainting pipeline in diffusers (`inpaint_pipeline_name`) edits
through it: the same loaded components, the mask at the working size, the whole schedule (strength 1). The loop
composites every editor's result onto the source outside the mask afterwards, at the source's size.
"""

from __future__ import annotations

import inspect
import math
import weakref
from typing import Any

from PIL import Image

from .. import runtime
from ..backend import BackendSpec, OnStep
from ..config import Settings
from ..errors import Cancelled
from ..registry import weights_location
from ..remote import hf_token
from . import _speed

AREA = 1024 * 1024  # what FLUX.1 Kontext, Qwen-Image-Edit(-Plus), FLUX.2, LongCat and OmniGen2 work at in diffusers


def fit_size(width: int, height: int, multiple: int, area: int = AREA, min_side: int = 0) -> tuple[int, int]:
    """The working size: about `area` pixels whether the source is smaller or larger, at least `min_side` a
    side, the aspect ratio kept, both sides a multiple of `multiple`."""
    scale = math.sqrt(area / (width * height))
    scale = max(scale, min_side / min(width, height))
    return (
        max(multiple, round(width * scale / multiple) * multiple),
        max(multiple, round(height * scale / multiple) * multiple),
    )


class DiffusersEditor:
    """A diffusers pipeline as an editor. Subclasses set `pipeline_name` and `multiple`, and map arguments."""

    pipeline_name = "DiffusionPipeline"
    multiple = 16  # latent packing: 8× VAE × 2×2 patches for the FLUX and Qwen families
    area = AREA  # the model's preferred working area: small sources are scaled up to it, large ones down
    min_side = 0
    inpaint_pipeline_name: str | None = None  # diffusers' pipeline that repaints only a mask with these components

    def __init__(self, spec: BackendSpec, settings: Settings) -> None:
        self.spec, self.settings = spec, settings
        self.model = settings.role("editor").model or spec.model

    def arguments(self, image: Image.Image, prompt: str, steps: int, guidance: float) -> dict[str, Any]:
        """The pipeline's keyword arguments for one edit of `image` (already at the working size)."""
        raise NotImplementedError

    def inpaint_arguments(
        self, image: Image.Image, mask: Image.Image, prompt: str, steps: int, guidance: float
    ) -> dict[str, Any]:
        """The inpainting pipeline's keyword arguments: the edit's, the mask, and the whole schedule."""
        return {**self.arguments(image, prompt, steps, guidance), "mask_image": mask, "strength": 1.0}

    def pipeline_class(self):
        import diffusers

        return getattr(diffusers, self.pipeline_name)

    def from_pretrained_options(self, dtype) -> dict[str, Any]:
        """Extra `from_pretrained` arguments (components passed in, components left out)."""
        return {}

    @property
    def cache_key(self) -> tuple:
        device = runtime.pick_device(self.settings)
        dtype = str(runtime.pick_dtype(self.settings, device))
        storage = self.settings.editor_storage_dtype
        return (self.spec.name, self.model, self.pipeline_name, device, dtype, storage, self.settings.offload)

    @property
    def default_steps(self) -> int | None:
        return self.spec.defaults(self.settings.speed)[0]

    @property
    def default_guidance(self) -> float | None:
        return self.spec.defaults(self.settings.speed)[1]

    def pipeline(self):
        """The loaded pipeline (from the process-wide cache after the first request), at this editor's speed.

        Requests at either speed share the one loaded pipeline: each switches it to its own (`_speed.switch`).
        """
        download = runtime.estimate_gb(self.model, self.spec.size_gb if self.model == self.spec.model else None)
        held = self.spec.held_gb(float8_storage=bool(self.settings.editor_storage_dtype))
        size = held if self.model == self.spec.model else download  # what it will hold once loaded
        device = runtime.pick_device(self.settings)
        offload = runtime.choose_offload(self.settings, size, device)
        pipe = runtime.load(
            self.cache_key,
            lambda: self._load(device, offload, download),
            size_gb=size,
            settings=self.settings,
            offload=offload,
        )
        _speed.switch(
            pipe,
            self.spec.preset(self.settings.speed),
            compile_blocks=runtime.compiles(self.settings),
            token=hf_token(),
        )
        return pipe

    def _load(self, device: str, offload: str, size_gb: float | None):
        pipeline_class = self.pipeline_class()  # first: an editor whose own code is missing says so, not "weights"
        gated = self.spec.gated and self.model == self.spec.model
        if runtime.offline() and weights_location(self.model) is None:
            raise runtime.missing_weights(self.model, size_gb, gated=gated)
        dtype = runtime.pick_dtype(self.settings, device)
        storage = runtime.pick_storage_dtype(self.settings)
        with runtime.friendly_errors(f"loading {self.model}", self.model, size_gb, offload=offload, gated=gated):
            pipe = pipeline_class.from_pretrained(
                self.model, dtype=dtype, token=hf_token(), **self.from_pretrained_options(dtype)
            )
            if storage is not None:  # diffusers' layerwise casting: stored in 8 bits, each layer computed in `dtype`
                _speed.denoiser(pipe).enable_layerwise_casting(storage_dtype=storage, compute_dtype=dtype)
            runtime.place(pipe, device, offload)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def edit(
        self,
        image: Image.Image,
        prompt: str,
        *,
        seed: int,
        steps: int | None = None,
        guidance: float | None = None,
        on_step: OnStep | None = None,
        mask: Image.Image | None = None,
    ) -> Image.Image:
        key = self.cache_key
        inpaint = mask if self.inpaint_pipeline_name else None
        with runtime.CACHE.in_use(key):  # marked before it is fetched: no budget decision evicts it
            pipe = self.pipeline()
            kwargs = self.call_arguments(image, prompt, seed, steps, guidance, mask=inpaint)
            width, height = self.working_size(image)
            what = f"{self.spec.name} edited a {width}×{height} image"
            with (
                runtime.friendly_errors(what, offload=runtime.CACHE.offload_of(key)),
                _speed.denoising(pipe),
            ):
                runner = pipe if inpaint is None else inpainting(pipe, self.inpaint_pipeline_name)
                edited = run_pipeline(runner, kwargs, on_step)
        return edited.convert("RGB").resize(image.size, Image.Resampling.LANCZOS)

    def working_size(self, image: Image.Image) -> tuple[int, int]:
        """The size `image` is edited at (the result is resized back to the image's size)."""
        return fit_size(*image.size, self.multiple, self.area, self.min_side)

    def call_arguments(
        self,
        image: Image.Image,
        prompt: str,
        seed: int,
        steps: int | None = None,
        guidance: float | None = None,
        mask: Image.Image | None = None,
    ) -> dict[str, Any]:
        """Everything the pipeline is called with for one edit: the image at the working size, the prompt, the
        editor's arguments, the step count and a seeded generator (`bench --vs-bare` calls the pipeline with it);
        with a mask, the inpainting pipeline's arguments."""
        import torch

        steps = steps or self.default_steps
        guidance = self.default_guidance if guidance is None else guidance
        working = image.resize(self.working_size(image), Image.Resampling.LANCZOS)
        if mask is None:
            arguments = self.arguments(working, prompt, steps, guidance)
        else:
            fence = mask.convert("L").resize(working.size, Image.Resampling.BILINEAR)
            arguments = self.inpaint_arguments(working, fence, prompt, steps, guidance)
        return {
            **arguments,
            "num_inference_steps": steps,
            "generator": torch.Generator("cpu").manual_seed(seed),
        }


_INPAINTING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loaded pipeline → {class name: inpainting}


def inpainting(pipe, name: str):
    """The diffusers pipeline `name` made of `pipe`'s loaded components (no second copy of any weight, and their
    dtype, device and offload hooks as they are), once per loaded pipeline."""
    import diffusers

    made = _INPAINTING.setdefault(pipe, {})
    if name not in made:
        cls = getattr(diffusers, name)
        modules, options = cls._get_signature_keys(cls)
        given = {key: value for key, value in pipe.components.items() if key in modules}
        given |= {key: pipe.config[key] for key in options if key in pipe.config}
        made[name] = cls(**given)
        made[name].set_progress_bar_config(disable=True)
    return made[name]


def run_pipeline(pipe, kwargs: dict[str, Any], on_step: OnStep | None) -> Image.Image:
    """Call `pipe(**kwargs)`, reporting each step to `on_step(i, n)`; Stop ends the run at the next step.

    Pipelines with `callback_on_step_end` report through it and stop by `pipe._interrupt`; those without
    (LongCat-Image-Edit) report through their scheduler's `step`; OmniGen2's through `step_func`.
    """
    steps = kwargs["num_inference_steps"]
    cancelled: list[Cancelled] = []
    can_interrupt = isinstance(getattr(type(pipe), "interrupt", None), property)

    def report(i: int) -> None:
        if on_step is None or cancelled:
            return
        try:
            on_step(i + 1, steps)
        except Cancelled as exc:
            if not can_interrupt:
                raise
            cancelled.append(exc)
            pipe._interrupt = True  # the denoising loop skips every remaining step

    def on_step_end(_pipe, i, _t, _tensors):
        report(i)
        return {}

    accepted = inspect.signature(pipe.__call__).parameters
    if "callback_on_step_end" in accepted:
        result = pipe(**kwargs, callback_on_step_end=on_step_end)
    elif "step_func" in accepted:
        result = pipe(**kwargs, step_func=lambda i, _n: report(i))
    else:
        result = _with_scheduler_steps(pipe, kwargs, report)
    if cancelled:
        raise cancelled[0]
    return result.images[0]


def _with_scheduler_steps(pipe, kwargs: dict[str, Any], report):
    """Call `pipe`, counting its scheduler's steps: one `scheduler.step` per denoising step."""
    scheduler = pipe.scheduler
    original = scheduler.step
    count = [0]

    def step(*args, **kw):
        out = original(*args, **kw)
        report(count[0])
        count[0] += 1
        return out

    scheduler.step = step
    try:
        return pipe(**kwargs)
    finally:
        del scheduler.step  # back to the class's method
