"""What a person asks for, checked: `make_request` turns what any surface received into an `EditRequest`.

The one place a request is validated, whichever surface it came from (the web page, the Gradio API, the MCP
tool, the CLI, `serve-editor`, `eval`): values may arrive as numbers or as text, and wrong types, NaN,
infinities, fractions where a whole number belongs and values out of range are refused with a sentence.
`number` checks one value the same way (the page uses it for list positions the API sends).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .config import (
    BASELINES,
    BUDGET_SECONDS_RANGE,
    BUDGET_TOKENS_RANGE,
    DEFAULTS,
    FIRST_TURN_STRATEGIES,
    GUIDANCE_RANGE,
    MAX_INSTRUCTION_CHARS,
    MAX_TURNS_RANGE,
    NO_ANSWER,
    PATIENCE_RANGE,
    SEED_PER_TURN,
    STEPS_RANGE,
    THRESHOLD_RANGE,
)
from .errors import BadInput
from .images import load_image
from .masks import load_mask


@dataclass
class EditRequest:
    """What the person asked for. Build it with `make_request`, which validates every field."""

    image: Image.Image
    instruction: str
    max_turns: int = DEFAULTS.max_turns
    threshold: float = DEFAULTS.threshold
    first_turn: str = DEFAULTS.first_turn
    seed: int = DEFAULTS.seed
    steps: int | None = None
    guidance: float | None = None
    seed_per_turn: str = DEFAULTS.seed_per_turn  # "increment": turn n edits with seed + n - 1
    no_answer: str = DEFAULTS.no_answer  # a reply without a refined prompt: "stop" (the reference's rule) or "repeat"
    step: bool = False  # step mode: pause after every critique, for the person to continue (stop reason "step")
    mask: Image.Image | None = None  # L at the image's size: white may change (`masks.py`); None: all of it may
    notes: tuple[str, ...] = ()  # what checking the request changed (a mask stretched or dropped), told as it runs
    patience: int | None = DEFAULTS.patience  # stop when the best score has not improved for this many turns
    budget_seconds: float | None = DEFAULTS.budget_seconds  # stop once edit + think seconds reach this
    budget_tokens: int | None = DEFAULTS.budget_tokens  # stop once the thinker's tokens reach this
    baseline: str | None = None  # None: the loop; "rewrite" or "best-of-n": a baseline it is measured against


def make_request(
    image: Any,
    instruction: Any,
    *,
    max_turns: Any = DEFAULTS.max_turns,
    threshold: Any = DEFAULTS.threshold,
    first_turn: Any = DEFAULTS.first_turn,
    seed: Any = DEFAULTS.seed,
    steps: Any = None,
    guidance: Any = None,
    seed_per_turn: Any = DEFAULTS.seed_per_turn,
    no_answer: Any = DEFAULTS.no_answer,
    step: Any = False,
    mask: Any = None,
    patience: Any = DEFAULTS.patience,
    budget_seconds: Any = DEFAULTS.budget_seconds,
    budget_tokens: Any = DEFAULTS.budget_tokens,
    baseline: Any = None,
) -> EditRequest:
    """Validate everything before any model runs; raise `BadInput` with the reason. `mask` is anything
    `load_image` reads (white may change), or None."""
    text = instruction_text(instruction)
    if baseline not in (None, *BASELINES):
        raise BadInput(f"Unknown baseline {shown(baseline)}; use {' or '.join(BASELINES)}, or none for the loop.")
    if first_turn not in FIRST_TURN_STRATEGIES:
        raise BadInput(
            f"Unknown first-turn strategy {shown(first_turn)}; use one of {', '.join(FIRST_TURN_STRATEGIES)}."
        )
    for value, name, allowed in ((seed_per_turn, "seed per turn", SEED_PER_TURN), (no_answer, "no answer", NO_ANSWER)):
        if value not in allowed:
            raise BadInput(f"Unknown {name} rule {shown(value)}; use {' or '.join(allowed)}.")
    request = EditRequest(
        instruction=text,
        max_turns=number(max_turns, "max_turns", *MAX_TURNS_RANGE, whole=True),
        threshold=number(threshold, "The stop threshold", *THRESHOLD_RANGE),
        first_turn=first_turn,
        seed=(number(seed, "The seed", -(2**63), 2**63 - 1, whole=True, optional=True) or 0) % (2**32),
        steps=number(steps, "steps", *STEPS_RANGE, whole=True, optional=True),
        guidance=number(guidance, "guidance", *GUIDANCE_RANGE, optional=True),
        seed_per_turn=seed_per_turn,
        no_answer=no_answer,
        step=switch(step, "Step mode"),
        patience=off_or_number(patience, "patience", *PATIENCE_RANGE, whole=True),
        budget_seconds=off_or_number(budget_seconds, "The seconds budget", *BUDGET_SECONDS_RANGE),
        budget_tokens=off_or_number(budget_tokens, "The tokens budget", *BUDGET_TOKENS_RANGE, whole=True),
        baseline=baseline,
        image=load_image(image),
    )
    if mask is not None:
        request.mask, notes = load_mask(mask, request.image.size)
        request.notes = tuple(notes)
    return request


def instruction_text(instruction: Any, what: str = "instruction") -> str:
    """The instruction (or another text a person gives the loop, `what`: a prompt, feedback) as the editor or the
    thinker will get it: control characters dropped; empty or endless refused."""
    if instruction is not None and not isinstance(instruction, str):
        raise BadInput(f"The {what} must be text, not {type(instruction).__name__}.")
    text = (instruction or "").strip()
    if not text:
        raise BadInput(f"The {what} is empty: say what to change in the image.")
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise BadInput(f"The {what} is {len(text)} characters long; the limit is {MAX_INSTRUCTION_CHARS}.")
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text).strip()
    if not text:
        raise BadInput(f"The {what} has no readable characters.")
    return text


def switch(value: Any, name: str) -> bool:
    """`value` as on or off: a boolean (None is off), else `BadInput`."""
    if value is None or isinstance(value, bool):
        return bool(value)
    raise BadInput(f"{name} must be true or false, not {shown(value)}.")


def number(value: Any, name: str, low: float, high: float, *, whole: bool = False, optional: bool = False):
    """`value` as a number from `low` to `high` (a whole one when `whole`), else `BadInput` saying why.

    Text that reads as a number is accepted (API callers send text); booleans, NaN, infinities and other
    types are not. An absent value (None or empty text) is None when `optional`.
    """
    kind = "a whole number" if whole else "a number"
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise BadInput(f"{name} is missing: give {kind} from {low:g} to {high:g}.")
    parsed = value
    if isinstance(value, str):
        try:
            parsed = int(value) if whole and value.strip().lstrip("+-").isdigit() else float(value)
        except (ValueError, OverflowError):
            parsed = None
    if isinstance(parsed, bool) or not isinstance(parsed, (int, float)):
        raise BadInput(f"{name} must be {kind} from {low:g} to {high:g}, not {shown(value)}.")
    if isinstance(parsed, float) and not math.isfinite(parsed):
        raise BadInput(f"{name} must be a finite number from {low:g} to {high:g}, not {shown(value)}.")
    if whole and parsed != int(parsed):
        raise BadInput(f"{name} must be a whole number, not {shown(value)}.")
    if not low <= parsed <= high:
        raise BadInput(f"{name} must be from {low:g} to {high:g}, not {shown(value)}.")
    return int(parsed) if whole else float(parsed)


def off_or_number(value: Any, name: str, low: float, high: float, *, whole: bool = False):
    """An optional early stop: None when absent or 0 (off, as on the command line), else a number above 0 up to
    `high`."""
    parsed = number(value, name, low, high, whole=whole, optional=True)
    return parsed or None


def shown(value: Any, limit: int = 40) -> str:
    """A value as a message quotes it: its repr, shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
