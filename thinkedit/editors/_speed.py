"""`--speed fast` for the diffusers editors: the row's `FastPreset` put on the cached pipeline, and taken off.

All of it is diffusers' own: a `diffusers.hooks` cache through the denoiser's `enable_cache` / `disable_cache`,
regional compilation (`compile_repeated_blocks`) on CUDA, and a few-step distillation LoRA through
`load_lora_weights` / `unload_lora_weights` with the scheduler it was made for. `switch(pipe, preset)` moves a
loaded pipeline from what it has to `preset`; `None` takes everything off again, so the default path is the
pipeline exactly as loaded. Compilation happens once per loaded model and stays; calls at the default speed then
run eagerly (`torch.compiler.set_stance("force_eager")` in `denoising`), as they would without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import runtime
from ..backend import FastPreset
from ..errors import ThinkEditError
from ..registry import weights_location

ADAPTER = "thinkedit-fast"  # the LoRA's adapter name on the pipeline
STATE = "thinkedit_fast"  # the attribute of a loaded pipeline that says what is on it


@dataclass
class Applied:
    """What `switch` has put on one loaded pipeline."""

    preset: FastPreset | None = None
    compiled: bool = False  # `compile_repeated_blocks` ran: once per loaded model, never undone
    scheduler: Any = None  # the pipeline's own scheduler, while the preset's replaces it


def denoiser(pipe) -> Any:
    """The model the denoising loop calls: a transformer, or Stable Diffusion's UNet."""
    return getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)


def applied(pipe) -> Applied:
    """What is on `pipe` now (nothing, for a pipeline `switch` never gave a preset)."""
    return vars(pipe).get(STATE) or Applied()


def switch(pipe, preset: FastPreset | None, *, compile_blocks: bool, token: str | None = None) -> None:
    """Give the loaded `pipe` the speed-ups of `preset` (None: none), taking off what another preset put on."""
    state = applied(pipe)
    if state.preset is preset:
        return  # the default path never gets here with a preset on, nor changes anything
    setattr(pipe, STATE, state)
    if state.preset is not None:
        _take_off(pipe, state)
    if preset is None:
        return
    model = denoiser(pipe)
    if preset.lora:  # first: a missing LoRA is refused before anything else changes
        _load_lora(pipe, preset, token)
    state.preset = preset  # from here on, should a later piece fail, `_take_off` takes off what went on
    try:
        if preset.scheduler:
            state.scheduler = pipe.scheduler
            pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, **preset.scheduler)
        if preset.cache:
            import diffusers.hooks

            model.enable_cache(getattr(diffusers.hooks, preset.cache)(**preset.cache_options))
    except BaseException:
        _take_off(pipe, state)
        raise
    if compile_blocks and preset.compile and not state.compiled:
        # A cache decides outside the graph (its hooks are `torch.compiler.disable`d), so with one the blocks
        # compile in pieces around it; without one each block is one graph.
        model.compile_repeated_blocks(fullgraph=preset.cache is None)
        state.compiled = True


def _take_off(pipe, state: Applied) -> None:
    preset = state.preset
    if preset.cache and denoiser(pipe).is_cache_enabled:
        denoiser(pipe).disable_cache()
    if preset.lora:
        pipe.unload_lora_weights()  # the original layers back, not only the adapter switched off
    if state.scheduler is not None:
        pipe.scheduler, state.scheduler = state.scheduler, None
    state.preset = None


def _load_lora(pipe, preset: FastPreset, token: str | None) -> None:
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    missing = runtime.missing_weights(
        preset.lora, preset.lora_gb, file=preset.lora_weight, instead="use --speed default"
    )
    if runtime.offline() and weights_location(preset.lora, (preset.lora_weight,)) is None:
        raise missing
    try:
        pipe.load_lora_weights(preset.lora, weight_name=preset.lora_weight, adapter_name=ADAPTER, token=token)
    except (LocalEntryNotFoundError, EntryNotFoundError, RepositoryNotFoundError):
        raise missing from None
    except OSError as exc:  # diffusers' words for a repository or folder that is there without that file
        if not any(phrase in str(exc) for phrase in ("does not appear to have a file named", "no file named")):
            raise
        local = Path(preset.lora).expanduser().is_dir()
        listing = f"ls {preset.lora}" if local else f"hf models ls {preset.lora}"
        raise ThinkEditError(
            f"{preset.lora} has no file {preset.lora_weight}, the few-step LoRA that --speed fast loads for this "
            f"editor. See the files it has with `{listing}` and correct `lora_weight` in the editor's row "
            "(thinkedit/editors/__init__.py), or use --speed default."
        ) from None


@contextmanager
def denoising(pipe) -> Iterator[None]:
    """Around one call of `pipe`: at the default speed, compiled blocks run eagerly; with a cache on, its state is
    reset (a call that Stop ended leaves its step count behind) and the call runs in one cache context, for the
    pipelines that open none (FluxKontextPipeline and Flux2Pipeline in diffusers 0.42; those that do open their
    own around each denoiser call, which take its place there)."""
    state, model = applied(pipe), denoiser(pipe)
    with ExitStack() as stack:
        if state.compiled and state.preset is None:
            import torch

            stack.enter_context(torch.compiler.set_stance("force_eager"))
        if model is not None and getattr(model, "is_cache_enabled", False):
            model._reset_stateful_cache()  # what the diffusers caching guide asks before each new generation
            stack.enter_context(model.cache_context("cond"))
        yield
