"""Editors and thinkers defined by the tests: they record what they were given and answer from a script."""

from __future__ import annotations

import threading
import time

from PIL import Image, ImageChops

from thinkedit.critique import format_critique, parse_critique


class RecordingEditor:
    """Brightens the image by 10 per turn it is called and remembers every input image and prompt."""

    model = "recording-editor"

    def __init__(
        self,
        steps=3,
        fail_on_call=None,
        returns=None,
        hang: threading.Event | None = None,
        step_seconds=0.0,
        silent_seconds=0.0,
    ):
        self.steps = steps
        self.fail_on_call = fail_on_call
        self.returns = returns
        self.hang = hang
        self.step_seconds = step_seconds
        self.silent_seconds = silent_seconds
        self.steps_done = 0
        self.inputs: list[Image.Image] = []
        self.prompts: list[str] = []
        self.seeds: list[int] = []

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        self.inputs.append(image.copy())
        self.prompts.append(prompt)
        self.seeds.append(seed)
        if self.fail_on_call == len(self.inputs):
            raise RuntimeError("the editor broke")
        if self.hang is not None:
            self.hang.wait(30)
        time.sleep(self.silent_seconds)  # loading a model, decoding a VAE: no callbacks for a while
        for step in range(1, self.steps + 1):
            time.sleep(self.step_seconds)
            if on_step:
                on_step(step, self.steps)
            self.steps_done += 1
        if self.returns is not None:
            return self.returns(image)
        return Image.eval(image, lambda v: min(255, v + 10 * len(self.inputs)))


class ScriptedThinker:
    """Answers turn n with script[n-1] = (semantic, quality, refined prompt or None), streamed in chunks."""

    model = "scripted-thinker"

    def __init__(self, script, polished: str | None = None, chunk: int = 7, chunk_seconds: float = 0.0):
        self.script = list(script)
        self.chunk_seconds = chunk_seconds
        self.polished = polished
        self.chunk = chunk
        self.calls: list[dict] = []

    def critique(self, source, edited, instruction, prompt, *, on_token=None):
        self.calls.append({"source": source, "edited": edited, "instruction": instruction, "prompt": prompt})
        semantic, quality, answer = self.script[min(len(self.calls), len(self.script)) - 1]
        text = format_critique(semantic, quality, f"call {len(self.calls)}", answer if answer is not None else "")
        if answer is None:
            text = text.split("<answer>")[0]
        self._stream(text, on_token)
        return parse_critique(text)

    def polish(self, source, instruction, *, on_token=None):
        self._stream(f"<think>polishing</think><answer>{self.polished}</answer>", on_token)
        return self.polished

    def _stream(self, text, on_token):
        for start in range(0, len(text), self.chunk):
            time.sleep(self.chunk_seconds)
            if on_token:
                on_token(text[start : start + self.chunk])


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None
