"""EditThinker-8B and any Qwen2.5-VL / Qwen3-VL checkpoint, in-process through transformers, streamed.

One user turn: the source image, the edited image, then the rendered critique template. `generate()`
runs in the caller's thread and hands its text to `on_token` through a `TextStreamer`; when `on_token`
raises `Cancelled`, generation ends at that token.

Decoding follows the checkpoint's own `generation_config.json` (EditThinker-8B and the Qwen-VL checkpoints
sample, and their authors serve them that way: greedy decoding tends to loop and never close `</answer>`).
`settings.extra["thinker_sampling"] = {"temperature": 0.7, "top_p": 0.8}` overrides it (keys: temperature,
top_p, top_k, repetition_penalty; a temperature of 0 decodes greedily).

`--speed fast` on CUDA decodes into a static KV cache (`cache_implementation="static"`), with which
transformers' `generate()` compiles the decoding step itself; elsewhere it changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image
from transformers import TextStreamer

from .. import runtime
from ..backend import BackendSpec, OnToken
from ..compute import Tokens
from ..config import Settings
from ..errors import BadInput
from ..images import fit_within
from ..registry import weights_location
from ..remote import hf_token
from ._prompted import PromptedThinker

SAMPLING_KEYS = ("temperature", "top_p", "top_k", "repetition_penalty")
_OPEN_THINK = re.compile(r"<think>\s*$")


class QwenVLThinker(PromptedThinker):
    def __init__(self, spec: BackendSpec, settings: Settings, role: str = "thinker") -> None:
        super().__init__(spec, settings, role)  # a judge and a thinker on one checkpoint share one loaded model
        self.generation = generation_options(settings)

    def answer(self, images: list[Image.Image], text: str, on_token: OnToken | None) -> tuple[str, str, Tokens]:
        """(the model's reply to the images then `text`, "", its tokens): `generate()` runs here and hands its text
        to `on_token` piece by piece from inside this same thread, so when `on_token` raises (Stop) generation ends
        at that token. The prompt's tokens count the images' placeholder tokens too: what the model read."""
        with runtime.CACHE.in_use(self.cache_key):  # marked before it is fetched: no budget decision evicts it
            model, processor, offload = self.load()
            images = [fit_within(image, self.settings.thinker_image_side) for image in images]
            content = [{"type": "image"} for _ in images] + [{"type": "text", "text": text}]
            chat = processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
            )
            inputs = processor(text=[chat], images=images, return_tensors="pt")
            what = f"the thinker read {len(images)} image(s) of up to {self.settings.thinker_image_side} pixels a side"
            relay = _Relay(processor.tokenizer, on_token)
            with (
                runtime.friendly_errors(what, offload=offload),
                _on_device(model, runtime.pick_device(self.settings), offload),
            ):
                output = model.generate(**inputs.to(model.device), **self.options_for(offload), streamer=relay)
        read = int(inputs["input_ids"].shape[-1])
        sequences = getattr(output, "sequences", output)  # a checkpoint's config may ask generate() for a dict
        tokens = Tokens(read, int(sequences.shape[-1]) - read)
        # A "thinking" chat template opens <think> in the prompt; the reply starts inside that block.
        return ("<think>" if _OPEN_THINK.search(chat) else "") + "".join(relay.pieces), "", tokens

    @property
    def cache_key(self) -> tuple:
        device = runtime.pick_device(self.settings)
        return ("thinker", self.model, device, str(runtime.pick_dtype(self.settings, device)), self.settings.offload)

    def load(self) -> tuple[Any, Any, str]:
        """(model, processor, offload mode), loaded once per process and placed by the runtime."""
        size = runtime.estimate_gb(self.model, self.spec.size_gb if self.model == self.spec.model else None)
        device = runtime.pick_device(self.settings)
        offload = runtime.choose_offload(self.settings, size, device)
        dtype = runtime.pick_dtype(self.settings, device)
        loader = lambda: _load(self.model, device, dtype, offload, size, f"--{self.role}-model")  # noqa: E731
        return runtime.load(self.cache_key, loader, size_gb=size, settings=self.settings, offload=offload)

    def options_for(self, offload: str) -> dict[str, Any]:
        """The generation options for a model loaded with `offload`: one that moves between the CPU and the GPU
        would compile its decoding again at every critique, so it decodes without the static cache."""
        if offload == "none":
            return self.generation
        return {key: value for key, value in self.generation.items() if key != "cache_implementation"}


class _Relay(TextStreamer):
    """A `TextStreamer` whose finished pieces of text go to `on_token` instead of stdout."""

    def __init__(self, tokenizer, on_token: OnToken | None) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.on_token = on_token
        self.pieces: list[str] = []

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.pieces.append(text)
            if self.on_token is not None:
                self.on_token(text)


def generation_options(settings: Settings) -> dict[str, Any]:
    """`generate()` arguments: the token limit, the user's sampling settings over the checkpoint's own, and
    with `--speed fast` where compiling pays (`runtime.compiles`) a static KV cache."""
    sampling = dict(settings.extra.get("thinker_sampling") or {})
    unknown = set(sampling) - set(SAMPLING_KEYS)
    if unknown:
        raise BadInput(f"Unknown thinker sampling settings {sorted(unknown)}; use {', '.join(SAMPLING_KEYS)}.")
    if "temperature" in sampling:
        sampling["do_sample"] = float(sampling["temperature"] or 0) > 0
        if not sampling["do_sample"]:
            del sampling["temperature"]  # greedy: generate() refuses a temperature of 0
    fast = {"cache_implementation": "static"} if settings.speed == "fast" and runtime.compiles(settings) else {}
    return {"max_new_tokens": settings.thinker_max_new_tokens, **sampling, **fast}


def _load(
    checkpoint: str, device: str, dtype, offload: str, size_gb: float | None, flag: str = "--thinker-model"
) -> tuple[Any, Any, str]:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if runtime.offline() and weights_location(checkpoint) is None:
        raise runtime.missing_weights(checkpoint, size_gb, flag)
    with runtime.friendly_errors(f"loading {checkpoint}", checkpoint, size_gb, offload=offload, flag=flag):
        processor = AutoProcessor.from_pretrained(checkpoint, token=hf_token())
        model = AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=dtype, token=hf_token())
        runtime.place(model, device, offload)  # on the CPU first: see thinkedit/runtime/offload.py
    return model.eval(), processor, offload


@contextmanager
def _on_device(model, device: str, offload: str) -> Iterator[None]:
    """Offloaded, the thinker moves to the GPU only while it generates, leaving room for the editor between turns.

    Weights cannot stream layer by layer at a useful speed when decoding token by token, so the
    "sequential" mode moves the whole model too.
    """
    if offload == "none":
        yield
        return
    model.to(device)
    try:
        yield
    finally:
        model.to("cpu")
        if device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
