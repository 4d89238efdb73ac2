"""The `trajectory.json` contract, declared once: for the record, its settings and each turn, every field's kinds,
whether a record must have it, and how the writer gets it from the loop's `Trajectory` or `Turn`.

`trajectory_record` writes a record from these declarations (and refuses settings it does not declare);
`check_record` validates a record read back (`store.load_run`) against the same ones. So a new field is one
row here, plus its line in the README's table.

`schema_version` says which contract a record follows. A bump raises `SCHEMA_VERSION` and adds `UPGRADES[n]`,
which turns a version-n record into a version n+1 one as it is read: runs saved by an older ThinkEdit stay
readable, and a record newer than this ThinkEdit is refused with a sentence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from . import __version__
from .compute import totals, zerogpu_record
from .config import MAX_TURNS_RANGE
from .errors import BadInput

SCHEMA_VERSION = 1
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}  # n → a version-n record as version n + 1
MAX_TURNS = MAX_TURNS_RANGE[1]  # the contract: a saved run has at most this many turns

# What a field may hold, in the words refusals use.
KINDS: dict[str, Callable[[Any], bool]] = {
    "text": lambda v: isinstance(v, str),
    "a whole number": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "a number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
    "an object": lambda v: isinstance(v, dict),
    "a list": lambda v: isinstance(v, list),
    "a list of text": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "an object of token counts": lambda v: (
        isinstance(v, dict)
        and set(v) <= {"prompt", "completion"}
        and all(n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 0) for n in v.values())
    ),
}


@dataclass(frozen=True)
class Field:
    kinds: tuple[str, ...]
    written: Callable[[Any], Any] | None = None  # the value from a Trajectory (record) or a Turn (turn)
    required: bool = False  # a record read back must have it (older runs may lack the others)


def turn_file(index: int) -> str:
    return f"turn_{index:02d}.png"


def versions(*more: str) -> dict[str, str | None]:
    """thinkedit's version and its main libraries' (and the `more` packages'), None where one is not installed."""
    found: dict[str, str | None] = {"thinkedit": __version__}
    for package in ("torch", "diffusers", "transformers", "gradio", *more):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


TURN = {
    "index": Field(("a whole number",), lambda turn: turn.index, required=True),
    "prompt": Field(("text",), lambda turn: turn.prompt, required=True),
    "image": Field(("text",), lambda turn: turn_file(turn.index), required=True),
    "size": Field(("a list",), lambda turn: list(turn.image.size)),  # its own: a rotation or a crop changes it
    "semantic": Field(("a number", "null"), lambda turn: turn.critique.semantic, required=True),
    "quality": Field(("a number", "null"), lambda turn: turn.critique.quality, required=True),
    "reasoning": Field(("text", "null"), lambda turn: turn.critique.reasoning),
    "refined_prompt": Field(("text", "null"), lambda turn: turn.critique.refined_prompt),
    "raw": Field(("text", "null"), lambda turn: turn.critique.raw),
    "seed": Field(("a whole number", "null"), lambda turn: turn.seed),
    "edit_seconds": Field(("a number",), lambda turn: round(turn.edit_seconds, 4), required=True),
    "think_seconds": Field(("a number",), lambda turn: round(turn.think_seconds, 4), required=True),
    "editor_note": Field(("text", "null"), lambda turn: turn.editor_note),
    "thinker_note": Field(("text", "null"), lambda turn: turn.thinker_note),  # e.g. its reply had no <answer>
    # compute: the critique's tokens (null: not reported), device time held (null: no GPU), ZeroGPU slices' seconds
    "tokens": Field(("an object of token counts",), lambda turn: turn.tokens.record()),
    "gpu_seconds": Field(("a number", "null"), lambda turn: _rounded(turn.gpu_seconds)),
    "zerogpu": Field(("an object", "null"), lambda turn: zerogpu_record(turn.slices)),
}
# The loop records these settings as the run starts (`loop.new_trajectory`); the writer keeps them as they are.
SETTINGS = {
    "max_turns": Field(("a whole number",)),
    "threshold": Field(("a number",)),
    "first_turn": Field(("text",)),
    "seed": Field(("a whole number", "null")),
    "seed_per_turn": Field(("text",)),
    "no_answer": Field(("text",)),
    "steps": Field(("a whole number", "null")),
    "guidance": Field(("a number", "null")),
    "editor_model": Field(("text", "null")),
    "thinker_model": Field(("text", "null")),
    "speed": Field(("text",)),
    "patience": Field(("a whole number", "null")),
    "budget_seconds": Field(("a number", "null")),
    "budget_tokens": Field(("a whole number", "null")),
    "baseline": Field(("text", "null")),  # null: the loop; "rewrite" or "best-of-n": a baseline run
}
RECORD = {
    "schema_version": Field(("a whole number",), lambda run: SCHEMA_VERSION),
    "instruction": Field(("text",), lambda run: run.request.instruction, required=True),
    "editor": Field(("text",), lambda run: run.editor),
    "thinker": Field(("text",), lambda run: run.thinker),  # "none" for single-shot
    "settings": Field(("an object",), lambda run: settings_record(run.settings)),
    "versions": Field(("an object",), lambda run: versions()),
    "source": Field(("text",), lambda run: "source.png"),
    "size": Field(("a list",), lambda run: list(run.request.image.size)),
    "first_turn_prompt": Field(("text", "null"), lambda run: run.first_turn_prompt),
    "first_turn_reasoning": Field(("text", "null"), lambda run: run.first_turn_reasoning),
    "first_turn_compute": Field(("an object", "null"), lambda run: run.first_turn_compute),
    "turns": Field(("a list",), lambda run: [written(TURN, turn) for turn in run.turns], required=True),
    "best_turn": Field(("a whole number", "null"), lambda run: run.best_turn.index if run.best_turn else None),
    "stop_reason": Field(("text", "null"), lambda run: run.stop_reason),
    "error": Field(("text", "null"), lambda run: run.error),
    "warnings": Field(("a list of text",), lambda run: list(run.warnings)),
    "started": Field(("text",), lambda run: time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(run.started))),
    "seconds": Field(("a number",), lambda run: round(run.seconds, 3)),
    "compute": Field(  # the run's totals: edits, seconds, GPU seconds, tokens, ZeroGPU slices
        ("an object",), lambda run: totals([written(TURN, turn) for turn in run.turns], run.first_turn_compute)
    ),
}


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 4)


def trajectory_record(trajectory) -> dict[str, Any]:
    """The trajectory as the JSON contract: plain data, no images, no secrets."""
    return written(RECORD, trajectory)


def written(fields: dict[str, Field], source: Any) -> dict[str, Any]:
    return {name: field.written(source) for name, field in fields.items()}


def settings_record(settings: dict[str, Any]) -> dict[str, Any]:
    """The run's settings as written; one the contract does not declare is a mistake of ThinkEdit's own."""
    undeclared = sorted(set(settings) - set(SETTINGS))
    if undeclared:
        raise ValueError(f"Declare the settings {', '.join(undeclared)} in thinkedit/schema.py's SETTINGS first.")
    return settings


def check_record(record: Any, label: str) -> dict[str, Any]:
    """The record in the current contract, upgraded from an older `schema_version`; `BadInput` naming the field,
    what it holds and what belongs when it breaks the contract (`label` names the file)."""
    check_fields(record, {"schema_version": RECORD["schema_version"]}, "the record", label)
    version = record.get("schema_version", 1)
    if not 1 <= version <= SCHEMA_VERSION:
        raise BadInput(
            f"{label} follows trajectory format {version}; this ThinkEdit reads formats 1 to {SCHEMA_VERSION}. "
            "Open it with a newer ThinkEdit."
        )
    for older in range(version, SCHEMA_VERSION):
        record = UPGRADES[older](record)
    check_fields(record, RECORD, "the record", label)
    check_fields(record.get("settings", {}), SETTINGS, "the settings", label)
    turns = record["turns"]
    if len(turns) > MAX_TURNS:
        raise BadInput(
            f"{label} does not follow the trajectory format: it has {len(turns)} turns, "
            f"and a run has at most {MAX_TURNS}."
        )
    for number, turn in enumerate(turns, 1):
        check_fields(turn, TURN, f"turn {number}", label)
    return record


def check_fields(data: Any, fields: dict[str, Field], what: str, label: str) -> None:
    """Refuse `data` (`what`: the record, its settings or one turn) unless it is an object whose fields hold what
    the contract allows."""

    def refuse(problem: str) -> None:
        raise BadInput(f"{label} does not follow the trajectory format: {problem}.")

    if not isinstance(data, dict):
        refuse(f"{what} is {kind_of(data)}, not an object")
    owner = f"{what}'" if what.endswith("s") else f"{what}'s"
    for key, field in fields.items():
        if key not in data:
            if field.required:
                refuse(f'{what} has no "{key}"')
        elif not any(KINDS[kind](data[key]) for kind in field.kinds):
            refuse(f'{owner} "{key}" is {kind_of(data[key])}, where {" or ".join(field.kinds)} belongs')


def kind_of(value: Any) -> str:
    """What a JSON value is, in the words the contract uses."""
    if isinstance(value, bool):
        return "true or false"
    return next(
        (kind for kind in ("null", "text", "a whole number", "a number", "an object", "a list") if KINDS[kind](value)),
        type(value).__name__,
    )
