"""What a backend is: the protocol of its role, and the one table row (`BackendSpec`) that holds its facts.

An **editor** edits `image` (RGB) as `prompt` says and returns an RGB image. `on_step(i, n)` is called
after each of its n steps (`on_step(0, n)` is a heartbeat); it raises `thinkedit.errors.Cancelled` when
the person pressed Stop, and the editor lets that propagate. An editor that could do only part of a
prompt says so in the returned image's `info["editor_note"]`. With a mask the loop composites any editor's result
onto the source outside it; an editor that takes `mask=` (an L image of the image's size, white may change) also
edits inside it only (the classic editor; a pipeline with native inpainting). An editor that changed only pixels it
chose itself may report them as `info["selection"]` (an L image of the result's size): drift is measured outside it.

A **thinker** looks at the source and the edited image (in that order), the person's original
instruction and the prompt that produced the edit, and returns scores, reasoning and a refined prompt
(`thinkedit.critique.parse_critique` reads model text). `on_token(text)` receives the output as it is
generated (`""` is a heartbeat) and raises `Cancelled` after Stop. `polish` is optional. `feedback` (the person's
words on the edit, when they gave some) is optional too: the loop passes it only when it is set, so a thinker
written without it works until someone steers it (`accepts` tells). With a mask the loop passes `region=` (the
mask in words, `masks.in_words`) to a thinker whose `critique` takes it, and `mask=` (the L image) as well to one
that measures pixels (the offline critic).

Backends are built as `Class(spec, settings)` (`registry.build_backend`); a spec names its class by
import path, so listing backends never imports torch or diffusers.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from .critique import Critique
from .errors import ThinkEditError

OnStep = Callable[[int, int], None]
OnToken = Callable[[str], None]


class Editor(Protocol):
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
    ) -> Image.Image: ...


class Thinker(Protocol):
    def critique(
        self,
        source: Image.Image,
        edited: Image.Image,
        instruction: str,
        prompt: str,
        *,
        on_token: OnToken | None = None,
        feedback: str | None = None,
        region: str | None = None,
    ) -> Critique: ...


@dataclass(frozen=True)
class FastPreset:
    """What `--speed fast` does for one diffusers editor, all of it diffusers' own (thinkedit/editors/_speed.py)."""

    cache: str | None = None  # a `diffusers.hooks` cache config class the denoiser's `enable_cache` takes
    cache_options: dict[str, Any] = field(default_factory=dict)  # its arguments, as the diffusers docs give them
    compile: bool = True  # regional compilation (`compile_repeated_blocks`) of the denoiser, on CUDA only
    lora: str | None = None  # an official few-step distillation LoRA: hub repo (or local folder) ...
    lora_weight: str | None = None  # ... and its file there
    lora_gb: float | None = None  # that file's size, for messages
    steps: int | None = None  # the step count and guidance the distillation was made for
    guidance: float | None = None
    scheduler: dict[str, Any] = field(default_factory=dict)  # scheduler config changes the distillation needs


@dataclass(frozen=True)
class BackendSpec:
    """One backend's facts: where its code is, what it runs on, its defaults, and its costs."""

    name: str
    target: str  # "module:Class"
    kind: str  # "offline" (CPU, no weights) | "local" (weights on this machine) | "remote" (a server)
    description: str
    model: str | None = None  # default checkpoint or remote model name
    steps: int | None = None
    guidance: float | None = None
    options: dict[str, Any] = field(default_factory=dict)  # other model-card defaults
    packages: tuple[str, ...] = ()  # import names that must be installed
    size_gb: float | None = None  # download size of the default checkpoint, for messages and the memory budget
    denoiser_gb: float | None = None  # of that, the transformer's (or UNet's): what float8 storage halves
    gated: bool = False
    needs_url: bool = False  # remote backends that talk to a URL the operator configures
    inference_providers: bool = False  # remote backends on Hugging Face Inference Providers (hub + HF_TOKEN)
    seconds_per_step: float = 1.0  # local editors: one denoising step at ~1024², bf16, H200-class (ZeroGPU budget)
    tokens_per_second: float = 30.0  # local thinkers: decoding speed, bf16, batch 1 (ZeroGPU budget)
    tiny: str | None = None  # the tiny random pipeline tests/tiny_pipelines.py builds of it (`bench --tiny`)
    code_check: str | None = None  # "module:function(settings)": why code beyond `packages` is missing, or None
    fast: FastPreset | None = None  # diffusers editors: what `--speed fast` changes (None: nothing)

    def preset(self, speed: str) -> FastPreset | None:
        """What runs at `speed`: the row's fast preset at `--speed fast`, None (the default path) otherwise."""
        return self.fast if speed == "fast" else None

    def defaults(self, speed: str = "default") -> tuple[int | None, float | None]:
        """Steps and guidance when a request names none: the row's, or at `--speed fast` those of its preset's
        few-step distillation."""
        fast = self.preset(speed)
        steps = (fast and fast.steps) or self.steps
        return steps, fast.guidance if fast is not None and fast.guidance is not None else self.guidance

    def held_gb(self, float8_storage: bool = False) -> float | None:
        """GB the default checkpoint holds once loaded: its size, its denoiser at half with float8 storage."""
        if self.size_gb is None:
            return None
        return self.size_gb - (self.denoiser_gb / 2 if float8_storage and self.denoiser_gb else 0.0)

    def load_class(self) -> type:
        module_name, _, class_name = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ThinkEditError(
                f"The {self.name} backend needs packages that are not installed ({exc.name}): "
                "pip install -r requirements.txt"
            ) from exc
        return getattr(module, class_name)


def accepts(method: Callable, name: str) -> bool:
    """Whether a backend's method takes the keyword `name` (or any keyword): a backend written before that argument
    existed is not given it."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def spec_of(backend: Any) -> BackendSpec | None:
    """A built backend's row (a test's stand-in may have none)."""
    spec = getattr(backend, "spec", None)
    return spec if isinstance(spec, BackendSpec) else None


def name_of(backend: Any) -> str:
    """The table name of a backend; a stand-in without a row is named by its class."""
    spec = spec_of(backend)
    return spec.name if spec is not None else type(backend).__name__


def is_local(backend: Any) -> bool:
    """Whether the backend runs a model on this machine's accelerator."""
    spec = spec_of(backend)
    return spec is not None and spec.kind == "local"
