"""Preference pairs from saved runs: two edits of the same source with the same instruction, one preferred.

What the person said comes first: their pick is preferred to every other turn of its stage, and a turn they rated up
to one they rated down (`chosen_by: person`). The thinker's scores add the pairs the person did not judge: a turn whose
overall score (√(semantic·quality)) is at least `THINKER_MARGIN` above another's (`chosen_by: thinker`), unless the
person's ratings say otherwise. Pairs never cross stages: a stage's turns share their source and instruction.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

from .critique import overall
from .store import SavedRun

THINKER_MARGIN = 1.0  # a thinker's pair needs this much between the two overall scores (0-10): less is noise


@dataclass
class Pair:
    stage: dict[str, Any]  # the stage both turns belong to: its source and instruction
    chosen: dict[str, Any]  # the preferred turn's record
    rejected: dict[str, Any]
    chosen_by: str  # "person" or "thinker"


def pairs(run: SavedRun) -> list[Pair]:
    """Every preference pair of the run: the person's first, then the thinker's."""
    record = run.record
    found: list[Pair] = []
    for stage in record["stages"]:
        turns = [turn for turn in record["turns"] if turn["stage"] == stage["stage"]]
        judged: set[frozenset[int]] = set()
        for chosen, rejected in person_pairs(record, turns):
            judged.add(frozenset((chosen["index"], rejected["index"])))
            found.append(Pair(stage, chosen, rejected, "person"))
        for chosen, rejected in thinker_pairs(record, turns):
            if frozenset((chosen["index"], rejected["index"])) not in judged:
                found.append(Pair(stage, chosen, rejected, "thinker"))
    return found


def person_pairs(record: dict[str, Any], turns: list[dict[str, Any]]) -> list[tuple[dict, dict]]:
    """(chosen, rejected) from the person's verdicts on `turns`: the pick over every other, up over down."""
    ratings = record["ratings"]
    found = [
        (turn, other)
        for turn in turns
        if turn["index"] == record["picked_turn"]
        for other in turns
        if other is not turn
    ]
    ups = [turn for turn in turns if ratings.get(str(turn["index"])) == "up"]
    downs = [turn for turn in turns if ratings.get(str(turn["index"])) == "down"]
    picked = {(chosen["index"], rejected["index"]) for chosen, rejected in found}
    found += [(up, down) for up in ups for down in downs if (up["index"], down["index"]) not in picked]
    return found


def thinker_pairs(record: dict[str, Any], turns: list[dict[str, Any]]) -> list[tuple[dict, dict]]:
    """(chosen, rejected) by the thinker's overall scores, at least `THINKER_MARGIN` apart; a pair whose chosen turn
    the person rated down or whose rejected one they rated up is left out."""
    ratings = record["ratings"]
    scored = [(turn, overall(turn["semantic"], turn["quality"])) for turn in turns]
    found = []
    for (a, score_a), (b, score_b) in combinations([pair for pair in scored if pair[1] is not None], 2):
        if abs(score_a - score_b) < THINKER_MARGIN:
            continue
        chosen, rejected = (a, b) if score_a > score_b else (b, a)
        if ratings.get(str(chosen["index"])) != "down" and ratings.get(str(rejected["index"])) != "up":
            found.append((chosen, rejected))
    return found
