"""Soak: many classic runs through the loop, then as many through `serve-editor` over HTTP; RSS before and after.

Each phase first runs a few warm-up runs (imports, first allocations, the server's start), then measures the
resident memory of this process (the loop, the HTTP client and the in-process server all live in it), runs
the rest, and measures again. Every run is saved to a temporary folder, as the web app saves its runs.

    python scripts/soak.py --runs 200
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import psutil
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import serve_app  # noqa: E402  (uvicorn in a thread on a free port)

from thinkedit.config import Settings  # noqa: E402
from thinkedit.loop import run  # noqa: E402
from thinkedit.registry import build_backend  # noqa: E402
from thinkedit.requests import make_request  # noqa: E402
from thinkedit.server import create_app  # noqa: E402

WARM_UP = 5
INSTRUCTIONS = [
    "make it look like summer",
    "make it black and white and add a thin red frame",
    "rotate 90 degrees clockwise",
    "make it moodier",
    "increase contrast by 30% and add a vignette",
]


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def source(index: int, side: int) -> Image.Image:
    """A different drawn image each run: the square moves and changes colour."""
    image = Image.new("RGB", (side, side), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    x = index * 7 % (side // 2)
    draw.rectangle([x, side // 4, x + side // 3, side // 2], fill=(index * 37 % 256, 40, 200 - index % 150))
    return image


def phase(editor, thinker, runs: int, side: int, root: Path) -> tuple[float, float, float]:
    """(RSS MB after the warm-up, RSS MB at the end, seconds) of `runs` saved runs."""
    before, started = 0.0, 0.0
    for index in range(runs):
        if index == min(WARM_UP, runs - 1):
            before, started = rss_mb(), time.perf_counter()
        request = make_request(source(index, side), INSTRUCTIONS[index % len(INSTRUCTIONS)], max_turns=3, seed=index)
        *_, finished = run(editor, thinker, request, run_dir=root / f"run-{index:04d}")
        if finished.trajectory.stop_reason == "error":
            raise RuntimeError(f"run {index} failed: {finished.trajectory.error}")
    return before, rss_mb(), time.perf_counter() - started


def soak(runs: int, side: int) -> dict[str, tuple[float, float, float]]:
    """RSS before and after `runs` runs, through the loop directly and through serve-editor over HTTP."""
    settings = Settings(editor="classic", thinker="classic")
    thinker = build_backend("thinker", settings)
    results = {}
    with tempfile.TemporaryDirectory(prefix="thinkedit-soak-") as temp:
        results["loop"] = phase(build_backend("editor", settings), thinker, runs, side, Path(temp) / "loop")
        with serve_app(create_app(build_backend("editor", settings))) as url:
            remote = build_backend("editor", settings.replace(editor="http", editor_url=url))
            results["serve-editor"] = phase(remote, thinker, runs, side, Path(temp) / "http")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs per phase (default 200)")
    parser.add_argument("--side", type=int, default=256, help="side of the source images (default 256)")
    args = parser.parse_args()
    print(
        f"{args.runs} classic runs per phase, up to 3 turns each, {args.side}×{args.side}, saved; "
        f"RSS measured after {WARM_UP} warm-up runs\n"
    )
    print("| path | RSS before MB | RSS after MB | growth MB | seconds |")
    print("|---|---:|---:|---:|---:|")
    for name, (before, after, seconds) in soak(args.runs, args.side).items():
        print(f"| {name} | {before:.1f} | {after:.1f} | {after - before:+.1f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
