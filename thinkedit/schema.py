"""The `trajectory.json` contract, declared once: for the record, its settings and each turn, every field's kinds,
whether a record must have it, and how the writer gets it from the loop's `Trajectory` or `Turn`.

`trajectory_record` writes a record from these declarations (and refuses settings it does not declare);
`check_record` validates a record read back (`store.load_run`) against the same ones. So a new field is one
row here, plus its line in docs/runs.md (tests/test_docs.py checks it is there).

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

from . import __version__, drift
from .compute import totals, zerogpu_record
from .critique import overall
from .errors import BadInput

SCHEMA_VERSION = 2  # 2: a run is a tree of turns (parent, by) in stages, with the person's pick and ratings
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}  # n → a version-n record as version n + 1
MAX_TURNS = 50  # the contract: a saved run has at most this many turns, all its branches and stages together
BY = ("instruction", "thinker", "person")  # who wrote a turn's prompt
RATINGS = ("up", "down")  # what a person may say of a turn, besides picking it

# What a field may hold, in the words refusals use.
KINDS: dict[str, Callable[[Any], bool]] = {
    "text": lambda v: isinstance(v, str),
    "a whole number": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "a number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
    "an object": lambda v: isinstance(v, dict),
    "a list": lambda v: isinstance(v, list),
    "a list of text": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    'a drift {"changed": 0..1, "outside": 0..1 or null}': drift.valid,
    "an object of token counts": lambda v: (
        isinstance(v, dict)
        and set(v) <= {"prompt", "completion"}
        and all(n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 0) for n in v.values())
    ),
}
DRIFT = next(kind for kind in KINDS if kind.startswith("a drift"))
MASK_FILE = "mask.png"


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
    "parent": Field(("a whole number", "null"), lambda turn: turn.parent, required=True),  # the turn it continues
    "by": Field(("text",), lambda turn: turn.by, required=True),  # who wrote its prompt: one of BY
    "stage": Field(("a whole number",), lambda turn: turn.stage, required=True),
    "feedback": Field(("an object", "null"), lambda turn: feedback_record(turn.feedback)),  # FEEDBACK, or null
    # how much changed (and outside the region); null for a turn of another shape (`drift.py`)
    "drift": Field((DRIFT, "null"), lambda turn: turn.drift.record() if turn.drift else None),
    # compute: the critique's tokens (null: not reported), device time held (null: no GPU), ZeroGPU slices' seconds
    "tokens": Field(("an object of token counts",), lambda turn: turn.tokens.record()),
    "gpu_seconds": Field(("a number", "null"), lambda turn: _rounded(turn.gpu_seconds)),
    "zerogpu": Field(("an object", "null"), lambda turn: zerogpu_record(turn.slices)),
}
# A person's feedback on the parent turn and the thinker's answer: that turn critiqued again with the feedback, whose
# refined prompt is this turn's prompt.
FEEDBACK = {
    "text": Field(("text",), lambda feedback: feedback.text, required=True),
    "semantic": Field(("a number", "null"), lambda feedback: feedback.critique.semantic),
    "quality": Field(("a number", "null"), lambda feedback: feedback.critique.quality),
    "reasoning": Field(("text", "null"), lambda feedback: feedback.critique.reasoning),
    "raw": Field(("text", "null"), lambda feedback: feedback.critique.raw),
}
# A stage: the source its turns edit and the instruction they follow. Stage 1 edits source.png with the run's
# instruction; building on a turn starts a stage whose source is that turn's image (stacked edits).
STAGE = {
    "stage": Field(("a whole number",), lambda stage: stage.number, required=True),
    "instruction": Field(("text",), lambda stage: stage.instruction, required=True),
    "source_turn": Field(("a whole number", "null"), lambda stage: stage.source_turn, required=True),
    "source": Field(("text",), lambda stage: stage_source(stage.source_turn), required=True),
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
    "mask": Field(("text", "null"), lambda run: MASK_FILE if run.request.mask is not None else None),
    "region": Field(("text", "null"), lambda run: run.region),  # the mask in words, as the thinker was told it
    "first_turn_compute": Field(("an object", "null"), lambda run: run.first_turn_compute),
    "turns": Field(("a list",), lambda run: [written(TURN, turn) for turn in run.turns], required=True),
    "best_turn": Field(("a whole number", "null"), lambda run: run.best_turn.index if run.best_turn else None),
    "stop_reason": Field(("text", "null"), lambda run: run.stop_reason),
    "error": Field(("text", "null"), lambda run: run.error),
    "warnings": Field(("a list of text",), lambda run: list(run.warnings)),
    "started": Field(("text",), lambda run: time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(run.started))),
    "seconds": Field(("a number",), lambda run: round(run.seconds, 3)),
    "stages": Field(("a list",), lambda run: [written(STAGE, stage) for stage in run.stages], required=True),
    "picked_turn": Field(("a whole number", "null"), lambda run: run.picked_turn),  # the person's; overrides best_turn
    "ratings": Field(("an object",), lambda run: dict(run.ratings)),  # the person's: {"2": "up", "3": "down"}
    "compute": Field(  # the run's totals: edits, seconds, GPU seconds, tokens, ZeroGPU slices
        ("an object",), lambda run: totals([written(TURN, turn) for turn in run.turns], run.first_turn_compute)
    ),
}
RUN_LEVEL = ("stop_reason", "error", "warnings", "seconds")  # of the newest request: a continuation's replace them


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
        if turn.get("feedback") is not None:
            check_fields(turn["feedback"], FEEDBACK, f"turn {number}'s feedback", label)
    for number, stage in enumerate(record["stages"], 1):
        check_fields(stage, STAGE, f"stage {number}", label)
    check_tree(record, label)
    return record


def check_tree(record: dict[str, Any], label: str) -> None:
    """Refuse a record whose turns do not form a tree in its stages: every number a turn, a stage, the pick or a
    rating names must be one the record holds."""

    def refuse(problem: str) -> None:
        raise BadInput(f"{label} does not follow the trajectory format: {problem}.")

    indexes = [turn["index"] for turn in record["turns"]]
    stages = {stage["stage"]: stage for stage in record["stages"]}
    if len(set(indexes)) != len(indexes) or len(stages) != len(record["stages"]):
        refuse("two turns (or two stages) have the same number")
    for turn in record["turns"]:
        parent = turn["parent"]
        if parent is not None and (parent not in indexes or parent >= turn["index"]):
            refuse(f"turn {turn['index']} continues turn {parent}, which is not an earlier turn of the run")
        if turn["by"] not in BY:
            refuse(f'turn {turn["index"]}\'s "by" is {turn["by"][:20]!r}, where one of {", ".join(BY)} belongs')
        if turn["stage"] not in stages:
            refuse(f"turn {turn['index']} belongs to stage {turn['stage']}, which the record does not list")
    for number, stage in stages.items():
        _check_stage(number, stage, indexes, record.get("source", "source.png"), refuse)
    if record["picked_turn"] is not None and record["picked_turn"] not in indexes:
        refuse(f"the picked turn {record['picked_turn']} is not a turn of the run")
    for turn, rating in record["ratings"].items():
        if not turn.isdigit() or int(turn) not in indexes or rating not in RATINGS:
            refuse(f"the rating {turn[:20]!r}: {str(rating)[:20]!r} is not up or down for a turn of the run")


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


def _check_stage(number: int, stage: dict[str, Any], indexes: list[int], source: str, refuse: Callable) -> None:
    """Stage 1 edits the run's source; any other edits the image of a turn of the run."""
    built_on = stage["source_turn"]
    if (built_on is None) != (number == 1) or built_on is not None and built_on not in indexes:
        refuse(f"stage {number} is built on turn {built_on}, which is not a turn of the run")
    if stage["source"] != (source if built_on is None else turn_file(built_on)):
        refuse(f"stage {number}'s source is {stage['source'][:40]!r}, not the image of the turn it is built on")


def feedback_record(feedback) -> dict[str, Any] | None:
    return written(FEEDBACK, feedback) if feedback is not None else None


def stage_source(source_turn: int | None) -> str:
    """The file a stage's turns edit: the run's source, or the image of the turn the stage was built on."""
    return "source.png" if source_turn is None else turn_file(source_turn)


def _as_trees(record: Any) -> Any:
    """Version 1 → 2. A run saved before runs were trees is one chain in one stage: turn k continues turn k - 1, and
    its prompt is the instruction or the thinker's. The person had no pick or ratings. A record of the wrong shape is
    left for the checks to refuse."""
    if not isinstance(record, dict) or not isinstance(record.get("turns"), list):
        return record
    upgraded = {**record, "schema_version": 2, "picked_turn": None, "ratings": {}}
    source = record.get("source", "source.png")
    upgraded["stages"] = [{"stage": 1, "instruction": record.get("instruction"), "source_turn": None, "source": source}]
    turns, previous = [], None
    for turn in record["turns"]:
        if isinstance(turn, dict):
            by = "instruction" if turn.get("prompt") == record.get("instruction") else "thinker"
            turn = {**turn, "parent": previous, "by": by, "stage": 1, "feedback": None}
            previous = turn.get("index")
        turns.append(turn)
    upgraded["turns"] = turns
    return upgraded


UPGRADES[1] = _as_trees


def thinkers_best(turns: list[dict[str, Any]]) -> int | None:
    """The thinker's best turn of a record's `turns`: in the stage of the newest turn, the highest overall score
    (√(semantic·quality)); unreadable scores rank lowest; ties go to the later turn. One stage: the best of all."""
    if not turns:
        return None
    stage = max(turns, key=lambda turn: turn["index"])["stage"]
    ranked = [(_rank(turn), turn["index"]) for turn in turns if turn["stage"] == stage]
    return max(ranked)[1]


def _rank(turn: dict[str, Any]) -> float:
    score = overall(turn["semantic"], turn["quality"])
    return -1.0 if score is None else score


def shown_best(record: dict[str, Any]) -> int | None:
    """The turn shown as a run's best (★, slider, zip, `show`, the MCP summary): the person's pick when they made
    one, else the thinker's `best_turn`."""
    picked = record.get("picked_turn")
    return picked if picked is not None else record.get("best_turn")


def merged_record(disk: dict[str, Any] | None, mine: dict[str, Any], first: bool) -> dict[str, Any]:
    """The record of one request (`mine`: a run's first request, or a continuation holding only its own turns and
    stage) merged into the record on disk: turns and stages by number, the person's pick and ratings as on disk,
    the rest of the run's from the first request, `RUN_LEVEL` from the newest, and the thinker's best of the whole."""
    if disk is None:
        return mine
    base = mine if first else disk
    record = {**base, **{key: mine[key] for key in RUN_LEVEL}, "schema_version": SCHEMA_VERSION}
    record |= {"picked_turn": disk["picked_turn"], "ratings": disk["ratings"]}
    ours = {turn["index"] for turn in mine["turns"]}
    turns = [turn for turn in disk["turns"] if turn["index"] not in ours] + mine["turns"]
    record["turns"] = sorted(turns, key=lambda turn: turn["index"])
    stages = {stage["stage"]: stage for stage in disk["stages"] + mine["stages"]}
    record["stages"] = [stages[number] for number in sorted(stages)]
    record["best_turn"] = thinkers_best(record["turns"])
    record["compute"] = totals(record["turns"], record.get("first_turn_compute"))  # the whole run's
    return record
