"""The person in the loop: go on from any turn of a saved run, and record what the person thinks of its turns.

A continuation is a new request that reads the run folder: nothing waits, holding a GPU or a thread, between a turn
and the person's answer, so it works after a restart and from another process. `open_run` reads the run (refusing
one whose first request is still making its turns), `run_settings` gives the backends that made it, `plan` checks
what the person asked for against it and returns the request and the `loop.Continuation` of a `loop.Job`, and
`rate` records a pick or a rating under the run's lock. Every surface goes through here: the Studio, the API's
/continue and /rate, `thinkedit edit --continue` and the MCP tool `continue_edit`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from .backend import accepts
from .config import Settings
from .errors import BadInput
from .loop import Continuation, Stage
from .requests import EditRequest, instruction_text, make_request, number, shown
from .schema import MAX_TURNS
from .store import SavedRun, load_run, still_running, update_record

VERDICTS = ("pick", "up", "down", "clear")  # what /rate records of a turn; "clear" takes back a rating and the pick
ANY_TURN = (1, 10**6)  # turn numbers a request may name (a run holds at most schema.MAX_TURNS of them)


def open_run(path: str | Path, unpack_to: str | Path | None = None) -> SavedRun:
    """A saved run to go on from (a folder, or a zip unpacked into `unpack_to`); `BadInput` while its first request
    is still making its turns."""
    if Path(path).is_dir() and still_running(Path(path)):  # before its first turn is saved, too
        raise BadInput(
            f"The run {Path(path).name} is still making its turns; go on from it when it has finished (or stop it)."
        )
    return load_run(path, unpack_to)


def run_settings(settings: Settings, saved: SavedRun) -> Settings:
    """The server's settings with the backends that made the run: a continuation edits and critiques with them.
    Outside public mode the run's models and speed come along too; a public server keeps its own."""
    record = saved.record
    if record.get("thinker") in (None, "none"):
        raise BadInput("This run was made without a thinker (a single-shot edit); start a new run to go on from it.")
    chosen = {"editor": record.get("editor"), "thinker": record.get("thinker")}
    if not settings.public:
        recorded = record.get("settings", {})
        chosen |= {key: recorded.get(key) for key in ("editor_model", "thinker_model", "speed")}
    return settings.replace(**chosen)


def plan(
    saved: SavedRun,
    from_turn: Any,
    *,
    prompt: Any = None,
    feedback: Any = None,
    build_on: Any = False,
    instruction: Any = None,
    max_turns: Any = None,
    step: Any = False,
    thinker: Any = None,
) -> tuple[EditRequest, Continuation]:
    """The request and the continuation that go on from turn `from_turn` of `saved`: with `prompt` (the person's
    words, or the thinker's refined prompt handed back), with `feedback` (the thinker answers it first), as a new
    stage built on the turn's image with its own `instruction`, or, with none of these, with the turn's refined
    prompt. `max_turns` counts the new turns (default 1: the person looks again after each steer); `step` pauses
    after each critique."""
    index = number(from_turn, "The turn to go on from", *ANY_TURN, whole=True)
    turn = saved.turn(index)
    if turn is None:
        held = ", ".join(str(t["index"]) for t in saved.record["turns"]) or "none"
        raise BadInput(f"This run has no turn {index}; its turns are: {held}.")
    building = _one_way(prompt, feedback, build_on, instruction)
    room = MAX_TURNS - len(saved.record["turns"])
    if room <= 0:
        raise BadInput(
            f"This run holds {MAX_TURNS} turns, the most a run keeps; start a new run from one of its images."
        )
    stage = saved.stage(turn)
    continuation = Continuation(
        from_turn=index,
        stage=Stage(stage["stage"], stage["instruction"], stage["source_turn"]),
        by="thinker",
        turn_prompt=turn["prompt"],
        turn_image=saved.image(index),
        first_index=max(t["index"] for t in saved.record["turns"]) + 1,
    )
    source = saved.source_of(turn)
    if building:
        number_of_stage = max(s["stage"] for s in saved.record["stages"]) + 1
        continuation.stage = Stage(number_of_stage, instruction_text(instruction), index)
        continuation.prompt, continuation.by, continuation.new_stage = (
            continuation.stage.instruction,
            "instruction",
            True,
        )
        source = continuation.turn_image
    elif feedback is not None:
        continuation.feedback = instruction_text(feedback, "feedback")
        if thinker is not None and not accepts(thinker.critique, "feedback"):
            raise BadInput(
                f"The thinker {saved.record['thinker']} cannot take feedback; go on with a prompt you write instead."
            )
    else:
        continuation.prompt = _next_prompt(turn, prompt)
        continuation.by = "thinker" if continuation.prompt == turn["refined_prompt"] else "person"
    mask = saved.mask if continuation.stage.number == 1 else None  # a run's mask was painted on its own source
    request = _request(saved, source, continuation.stage.instruction, max_turns, step, mask)
    request.max_turns = min(request.max_turns, room)
    return request, continuation


def _one_way(prompt: Any, feedback: Any, build_on: Any, instruction: Any) -> bool:
    """Whether the continuation builds on the turn; `BadInput` when more than one way to go on was given."""
    building = build_on is True
    if build_on not in (None, False, True):
        raise BadInput(f"Build on must be true or false, not {shown(build_on)}.")
    given = [name for name, value in (("a prompt", prompt), ("feedback", feedback)) if value is not None]
    given += ["build on the turn"] if building else []
    if len(given) > 1:
        raise BadInput(
            f"Go on from a turn one way: give a prompt, feedback, or build on it; not {' and '.join(given)}."
        )
    if instruction is not None and not building:
        raise BadInput(
            "An instruction goes with building on a turn (a new stage); to change the next prompt, give a prompt."
        )
    return building


def _next_prompt(turn: dict[str, Any], prompt: Any) -> str:
    """The prompt the person gave, checked like an instruction, or the turn's refined prompt when they gave none."""
    if prompt is not None:
        return instruction_text(prompt, "prompt")
    if not turn["refined_prompt"]:
        raise BadInput(
            f"Turn {turn['index']} has no refined prompt (the thinker gave none); give a prompt or feedback to go on."
        )
    return turn["refined_prompt"]


def _request(
    saved: SavedRun, source: Path, instruction: str, max_turns: Any, step: Any, mask: Image.Image | None
) -> EditRequest:
    """The run's own loop settings (seed, steps, threshold, …) for a request on `source` with `instruction`, fenced
    in by `mask` (stage 1's continuations keep the run's mask; a new stage edits a new source, unmasked)."""
    recorded = saved.record.get("settings", {})
    keep = ("threshold", "seed", "steps", "guidance", "seed_per_turn", "no_answer")
    return make_request(
        source,
        instruction,
        max_turns=1 if max_turns is None else max_turns,
        step=step,
        mask=mask,
        **{key: recorded[key] for key in keep if key in recorded},
    )


def rate(run_dir: str | Path, turn: Any, verdict: Any) -> dict[str, Any]:
    """Record the person's `verdict` on `turn` ("pick": their best; "up" / "down": a rating; "clear": take back its
    rating, and the pick if it was this turn) under the run's lock; the record written."""
    index = number(turn, "The turn", *ANY_TURN, whole=True)
    if verdict not in VERDICTS:
        raise BadInput(f"Unknown verdict {shown(verdict)}; use {', '.join(VERDICTS)}.")

    def change(record: dict[str, Any]) -> None:
        if not any(t["index"] == index for t in record["turns"]):
            raise BadInput(f"This run has no turn {index}.")
        if verdict == "pick":
            record["picked_turn"] = index
        elif verdict == "clear":
            record["ratings"].pop(str(index), None)
            record["picked_turn"] = None if record["picked_turn"] == index else record["picked_turn"]
        else:
            record["ratings"][str(index)] = verdict

    return update_record(Path(run_dir), change)
