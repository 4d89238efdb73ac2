"""Benchmark the offline editor and critic through the real loop on every example in assets/examples.json.

Prints, per example: turn 1's scores, the best turn's scores, the turns used and why the run stopped; how
often the best turn beats turn 1 on vague instructions; and the seconds for 3 turns at 1024×1024.

    python scripts/bench_classic.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from PIL import Image

from thinkedit.config import Settings
from thinkedit.loop import Trajectory, run
from thinkedit.registry import build_backend
from thinkedit.requests import make_request

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def loop(editor, thinker, image: Image.Image, instruction: str, max_turns: int, threshold: float) -> Trajectory:
    *_, finished = run(editor, thinker, make_request(image, instruction, max_turns=max_turns, threshold=threshold))
    return finished.trajectory


def scores(turn) -> str:
    return f"{turn.critique.semantic:g}/{turn.critique.quality:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=1024, help="image side for the timing runs")
    parser.add_argument("--max-turns", type=int, default=3)
    args = parser.parse_args()
    settings = Settings(editor="classic", thinker="classic")
    editor, thinker = build_backend("editor", settings), build_backend("thinker", settings)
    examples = json.loads((ASSETS / "examples.json").read_text())

    print(f"{'case':<72} {'vague':<5} {'turn 1':>8} {'best':>8} {'best at':>7} {'turns':>5}  stop")
    better = vague = 0
    for example in examples:
        image = Image.open(ASSETS / example["image"]).convert("RGB")
        trajectory = loop(editor, thinker, image, example["instruction"], args.max_turns, 8.0)
        first, best = trajectory.turns[0], trajectory.best_turn
        case = f"{example['image']}: {example['instruction']}"
        print(
            f"{case[:72]:<72} {'yes' if example['vague'] else 'no':<5} {scores(first):>8} {scores(best):>8} "
            f"{best.index:>7} {len(trajectory.turns):>5}  {trajectory.stop_reason}"
        )
        if example["vague"]:
            vague += 1
            better += best.rank > first.rank
    print(f"\nvague instructions where the best turn beats turn 1: {better}/{vague}")

    # Timing: every example at side×side, threshold 10 so that only a kept prompt or max_turns ends a run.
    turns = seconds = 0.0
    full = []
    for example in examples:
        image = Image.open(ASSETS / example["image"]).convert("RGB").resize((args.side, args.side))
        started = time.perf_counter()
        trajectory = loop(editor, thinker, image, example["instruction"], 3, 10.0)
        elapsed = time.perf_counter() - started
        turns, seconds = turns + len(trajectory.turns), seconds + elapsed
        if len(trajectory.turns) == 3:
            full.append((elapsed, example["instruction"]))
    print(
        f"{args.side}×{args.side}: {seconds / turns * 1000:.0f} ms per turn (edit + critique, through the loop) "
        f"→ {3 * seconds / turns:.2f} s for 3 turns"
    )
    for elapsed, instruction in full:
        print(f"{args.side}×{args.side}: a real 3-turn run ('{instruction}') took {elapsed:.2f} s")


if __name__ == "__main__":
    main()
