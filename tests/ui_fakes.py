"""Test-only backends and gradio_client helpers for the web-app fault, load and security tests.

A backend joins the registry as a copy of the `classic` row whose `target` points here and whose
`options` say how it misbehaves, so one class serves many faults and the app builds it like any other.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from PIL import Image

from thinkedit.critique import format_critique, load_template, parse_critique, render
from thinkedit.editors import EDITORS
from thinkedit.editors.classic import ClassicEditor
from thinkedit.errors import ThinkEditError
from thinkedit.thinkers import THINKERS

EVIL = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
OUTPUTS = ["gallery", "progress", "reasoning", "refined", "table", "slider", "status", "download", "trajectory",
           "history"]  # fmt: skip


def register(monkeypatch, role: str, name: str, target: str, **options) -> str:
    """Add a test backend `name` (a copy of the classic row) to EDITORS or THINKERS for this test."""
    table = EDITORS if role == "editor" else THINKERS
    monkeypatch.setitem(table, name, replace(table["classic"], name=name, target=f"ui_fakes:{target}", options=options))
    return name


class FaultEditor(ClassicEditor):
    """The classic editor, until call number `on_call` of a run: then it does `fault`.

    fault: "raise" (RuntimeError(`message`)) | "none" (returns None) | "resize" (half size, RGBA) | "hang"
    (silent for `hang_s`). With `note`, every image it returns carries that editor note.
    """

    def __init__(self, spec, settings):
        super().__init__(spec, settings)
        self.calls = 0

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        self.calls += 1
        fault = self.spec.options["fault"] if self.calls >= self.spec.options.get("on_call", 1) else None
        if fault == "raise":
            raise RuntimeError(self.spec.options.get("message", "the test editor broke on purpose"))
        if fault == "none":
            return None
        if fault == "hang":
            time.sleep(self.spec.options["hang_s"])
        edited = super().edit(image, prompt, seed=seed, on_step=on_step)
        if fault == "resize":
            return edited.resize((max(1, image.width // 2), max(1, image.height // 2))).convert("RGBA")
        if "note" in self.spec.options:
            edited.info["editor_note"] = self.spec.options["note"]
        return edited


class FaultThinker:
    """Answers every critique with `output` ({prompt} is replaced by the prompt used), or raises
    `ThinkEditError(raise_message)` from call number `raise_on_call` of a run."""

    model = "fault-thinker"

    def __init__(self, spec, settings):
        self.spec = spec
        self.calls = 0

    def critique(self, source, edited, instruction, prompt, *, on_token=None):
        self.calls += 1
        options = self.spec.options
        if self.calls >= options.get("raise_on_call", 10**9):
            raise ThinkEditError(options["raise_message"])
        text = options["output"].replace("{prompt}", prompt)
        if on_token and text:
            on_token(text)
        return parse_critique(text)


class EchoThinker:
    """A naive model that parrots the prompt it was given (the rendered critique template) and adds nothing."""

    model = "echo-thinker"

    def __init__(self, spec, settings):
        self.spec = spec

    def critique(self, source, edited, instruction, prompt, *, on_token=None):
        text = render(load_template("critique"), instruction, prompt)
        if on_token:
            on_token(text)
        return parse_critique(text)


def steady(reasoning: str = "not there yet") -> str:
    """A thinker output that is never satisfied and always asks for a little more."""
    return format_critique(3, 3, reasoning, "{prompt}, a bit more")


class CountingEditor(ClassicEditor):
    """The classic editor, slowed to `seconds` per edit, counting how many edits run at once (all instances)."""

    lock = threading.Lock()
    running = 0
    peak = 0

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        cls = CountingEditor
        with cls.lock:
            cls.running += 1
            cls.peak = max(cls.peak, cls.running)
        try:
            seconds = self.spec.options.get("seconds", 0.3)
            for step in range(1, 5):
                time.sleep(seconds / 4)
                if on_step:
                    on_step(step, 4)
            return super().edit(image, prompt, seed=seed)
        finally:
            with cls.lock:
                cls.running -= 1

    @classmethod
    def reset(cls) -> None:
        cls.running = cls.peak = 0


# -- driving the app ---------------------------------------------------------------------------------


def run_edit(client, image: Any, instruction: str, **options) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Run /edit to the end: (final update as a dict of named outputs, [(toast text, level)] sent on the way)."""
    job = client.submit(image, instruction, api_name="/edit", **options)
    final = dict(zip(OUTPUTS, job.result(), strict=True))
    return final, toasts(job)


def toasts(job) -> list[tuple[str, str]]:
    """The gr.Warning / gr.Info messages a finished job received (gradio_client keeps them as status logs)."""
    updates, found = job.communicator.updates, []
    while not updates.empty():
        log = getattr(updates.get_nowait(), "log", None)
        if log:
            found.append(log)
    return found


def solid(path, color: tuple[int, int, int], size=(64, 48)) -> str:
    Image.new("RGB", size, color).save(path)
    return str(path)
