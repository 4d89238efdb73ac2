"""`python -m thinkedit bench`: where a run's time goes — loading, editing, thinking, storing, the loop itself.

Runs the same request N times through `loop.run` (saving each run to a temporary folder) and prints one row
per request: models loaded and the seconds that took (the first request pays, later ones should load
nothing), seconds per turn editing, thinking and storing (without loading), the loop's overhead
(wall − editing − thinking) / wall with loading left out of all three, and the peak resident memory.
`--vs-bare` then repeats the last request's edits as bare calls: `pipe(**kwargs)` with the kwargs the
editor builds for a diffusers editor, the editor's own `edit` for the classic one. With `--speed fast` it first
times bare edits of the request at the default speed and then at fast on the one loaded pipeline: seconds per
edit with the first call apart (fast's first compiles on CUDA), fast / default, and the peak memory of each.

`--tiny NAME` builds a tiny random pipeline of that editor and a tiny Qwen3-VL thinker with the
repository's test helpers (tests/tiny_pipelines.py, tests/tiny_qwen_vl.py), so the numbers can be
reproduced with no download.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from . import loop, runtime
from .config import DEFAULTS, SPEEDS, Settings, add_backend_arguments, settings_from_args
from .editors import EDITORS
from .editors._speed import denoising
from .errors import BadInput, ThinkEditError
from .registry import build_backend
from .requests import EditRequest, make_request

TINY_EDITORS = tuple(spec.name for spec in EDITORS.values() if spec.tiny)  # rows that name a tiny pipeline
CLASSIC_INSTRUCTION = "make it look like summer"  # vague: the classic critic refines it over 3 turns
TINY_INSTRUCTION = "make the sky orange"


@dataclass
class Measured:
    """One request through the loop. Editing and thinking seconds leave out the models' loading."""

    loads: int
    load_seconds: float
    wall: float
    edit: list[float] = field(default_factory=list)
    think: list[float] = field(default_factory=list)
    store: float = 0.0
    peak_rss_mb: float = 0.0
    turns: list[tuple[str, int]] = field(default_factory=list)  # (prompt, seed) of each turn, for --vs-bare

    @property
    def working(self) -> float:
        return self.wall - self.load_seconds

    def overhead(self, with_store: bool = True) -> float:
        rest = self.working - sum(self.edit) - sum(self.think) - (0.0 if with_store else self.store)
        return rest / self.working if self.working > 0 else 0.0


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def measure(editor, thinker, request: EditRequest, run_dir: Path) -> Measured:
    """Run `request` once through the loop, splitting its wall time by the loop's own events."""
    cache = runtime.CACHE
    loads, load_seconds = cache.loads, cache.load_seconds
    edit, think, turns, trajectory = [], [], [], None
    mark = edit_load = 0.0
    started = time.perf_counter()
    for event in loop.run(editor, thinker, request, run_dir=run_dir):
        if isinstance(event, loop.TurnStarted):
            mark, edit_load = cache.load_seconds, 0.0
        elif isinstance(event, loop.ThinkingStarted) and event.index > 0:
            edit_load, mark = cache.load_seconds - mark, cache.load_seconds
        elif isinstance(event, loop.TurnFinished):
            turn = event.turn
            edit.append(turn.edit_seconds - edit_load)
            think.append(turn.think_seconds - (cache.load_seconds - mark))
            turns.append((turn.prompt, turn.seed))
        elif isinstance(event, loop.RunFinished):
            trajectory = event.trajectory
    wall = time.perf_counter() - started
    if trajectory is None or trajectory.stop_reason == "error":
        raise ThinkEditError(f"The benchmark run failed: {trajectory.error if trajectory else 'no result'}")
    return Measured(
        cache.loads - loads,
        cache.load_seconds - load_seconds,
        wall,
        edit,
        think,
        trajectory.save_seconds,
        peak_rss_mb(),
        turns,
    )


def bare_seconds(
    editor, image: Image.Image, prompt: str, seed: int, steps: int | None, guidance: float | None
) -> float:
    """One edit without the loop: the pipeline called with the editor's own arguments, or the classic editor."""
    from .editors._diffusers import DiffusersEditor
    from .editors.classic import ClassicEditor

    if isinstance(editor, ClassicEditor):
        started = time.perf_counter()
        editor.edit(image, prompt, seed=seed, steps=steps, guidance=guidance)
        return time.perf_counter() - started
    if not isinstance(editor, DiffusersEditor):
        raise BadInput("--vs-bare needs the classic editor or a local diffusers editor.")
    pipe, kwargs = editor.pipeline(), editor.call_arguments(image, prompt, seed, steps, guidance)
    started = time.perf_counter()
    with denoising(pipe):  # a cache's context and reset (nothing at the default speed): what diffusers asks
        pipe(**kwargs)
    return time.perf_counter() - started


def print_speeds(editor, request: EditRequest, calls: int) -> None:
    """`calls` bare edits of the request at each speed, default first, on the one loaded pipeline."""
    from .editors._diffusers import DiffusersEditor

    if not isinstance(editor, DiffusersEditor):
        raise BadInput("--speed fast --vs-bare needs a local diffusers editor.")
    cuda = runtime.pick_device(editor.settings).startswith("cuda")
    if cuda:
        import torch
    print(
        f"| speed | first call s | s/edit after the first | fast / default | {'peak GPU GB' if cuda else 'peak RSS MB'} |"
    )
    print("|---|---:|---:|---:|---:|")
    after_first = {}
    for speed in SPEEDS:
        at_speed = type(editor)(editor.spec, editor.settings.replace(speed=speed))  # the same cached pipeline
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        seconds = [
            bare_seconds(
                at_speed, request.image, request.instruction, request.seed + i, request.steps, request.guidance
            )
            for i in range(calls)
        ]
        peak = torch.cuda.max_memory_allocated() / 1e9 if cuda else peak_rss_mb()
        rest = seconds[1:] or seconds
        after_first[speed] = sum(rest) / len(rest)
        print(
            f"| {speed} | {seconds[0]:.4f} | {after_first[speed]:.4f} | "
            f"{after_first[speed] / after_first['default']:.3f} | {peak:.1f} |"
        )
    print()


def scene(width: int = 96, height: int | None = None) -> Image.Image:
    """A drawn picture with regions the offline backends tell apart: sky, grass, a red square and a blue disc.

    The benchmark's source, and the scene of the tests and scripts (at 96×64 the shapes sit on whole pixels:
    the red square at (10, 12)–(34, 36), the disc at (56, 10)–(84, 38), grass from row 40).
    """
    height = height or width * 2 // 3
    x, y = width / 96, height / 64
    image = Image.new("RGB", (width, height), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, round(40 * y), width - 1, height - 1], fill=(60, 150, 60))
    draw.rectangle([round(10 * x), round(12 * y), round(34 * x), round(36 * y)], fill=(220, 30, 30))
    draw.ellipse([round(56 * x), round(10 * y), round(84 * x), round(38 * y)], fill=(30, 60, 200))
    return image


def tiny_settings(settings: Settings, name: str, folder: Path, thinker_given: bool) -> Settings:
    """Build a tiny `name` pipeline (and a tiny Qwen3-VL thinker unless one was chosen) into `folder`."""
    tests = Path(__file__).resolve().parent.parent / "tests"
    if not (tests / "tiny_pipelines.py").is_file():
        raise BadInput("--tiny builds its models with the repository's tests/ helpers: run it from a source checkout.")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(tests))
    from tiny_pipelines import build_tiny_pipeline
    from tiny_qwen_vl import build_tiny_qwen_vl

    built = build_tiny_pipeline(EDITORS[name].tiny, folder / name)
    settings = settings.replace(editor=name, editor_model=str(built))
    if thinker_given:
        return settings
    thinker = build_tiny_qwen_vl(folder / "qwen3-vl")
    return settings.replace(
        thinker="qwen-vl", thinker_model=str(thinker), thinker_max_new_tokens=32, thinker_image_side=64
    )


def print_table(rows: list[Measured], size: tuple[int, int]) -> None:
    print(
        "| request | loads | load s | turns | edit s/turn | think s/turn | store s/turn | wall s | overhead "
        "| overhead w/o store | peak RSS MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for number, row in enumerate(rows, 1):
        n = len(row.edit)
        print(
            f"| {number} | {row.loads} | {row.load_seconds:.3f} | {n} | {sum(row.edit) / n:.4f} "
            f"| {sum(row.think) / n:.4f} | {row.store / n:.4f} | {row.wall:.3f} | {row.overhead():.2%} "
            f"| {row.overhead(with_store=False):.2%} | {row.peak_rss_mb:.0f} |"
        )
    if len(rows) > 1:
        later = sum(row.loads for row in rows[1:])
        print(f"\nrequests after the first loaded {later} model(s)" + (" — nothing, as it should" if not later else ""))
    last = rows[-1]
    print(f"last request: {len(last.edit)} turns at {size[0]}×{size[1]} in {last.wall:.3f} s")


def print_bare(editor, request: EditRequest, last: Measured) -> None:
    bare = [
        bare_seconds(editor, request.image, prompt, seed, request.steps, request.guidance)
        for prompt, seed in last.turns
    ]
    n = len(bare)
    outside_thinking = last.working - sum(last.think)
    print("\n| turns | editor in the loop s/turn | bare call s/turn | edit ratio | loop without thinking / bare |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {n} | {sum(last.edit) / n:.4f} | {sum(bare) / n:.4f} | {sum(last.edit) / sum(bare):.3f} "
        f"| {outside_thinking / sum(bare):.3f} |"
    )


def bench(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.requests < 1:
        raise BadInput("--requests must be at least 1.")
    with tempfile.TemporaryDirectory(prefix="thinkedit-bench-") as temp:
        temp = Path(temp)
        if args.tiny:
            print(
                f"building a tiny {args.tiny} pipeline"
                + ("" if args.thinker else " and a tiny Qwen3-VL thinker")
                + " …",
                file=sys.stderr,
                flush=True,
            )
            settings = tiny_settings(settings, args.tiny, temp / "models", thinker_given=bool(args.thinker))
        side = args.side or (128 if args.tiny else 1024)
        image = args.image or scene(side, side)  # make_request reads and checks a path
        instruction = args.instruction or (TINY_INSTRUCTION if args.tiny else CLASSIC_INSTRUCTION)
        steps = args.steps or (4 if args.tiny else None)
        request = make_request(image, instruction, max_turns=args.turns, threshold=10.0, steps=steps)
        editor, thinker = build_backend("editor", settings), build_backend("thinker", settings)
        print(
            f"editor {settings.editor} ({getattr(editor, 'model', None) or 'no weights'}), thinker "
            f"{settings.thinker} ({getattr(thinker, 'model', None) or 'no weights'}), {request.image.width}×"
            f"{request.image.height}, up to {request.max_turns} turns, steps {steps or 'default'}, "
            f"{runtime.device_summary(settings)}\n"
        )
        if args.vs_bare and settings.speed == "fast":  # first, so that fast's first call is the one that compiles
            print_speeds(editor, request, args.turns)
        rows = [measure(editor, thinker, request, temp / f"run-{number}") for number in range(args.requests)]
        print_table(rows, request.image.size)
        if args.vs_bare:
            print_bare(editor, request, rows[-1])
    return 0


def register(commands) -> None:
    parser = commands.add_parser("bench", help="measure loading, editing, thinking, storing and the loop's overhead")
    add_backend_arguments(parser)
    parser.add_argument("--requests", "-n", type=int, default=3, help="requests to run; the first loads (default 3)")
    parser.add_argument(
        "--turns",
        type=int,
        default=DEFAULTS.max_turns,
        help=f"turns per request (default {DEFAULTS.max_turns}; threshold 10)",
    )
    parser.add_argument("--side", type=int, help="side of the drawn source image (default 1024; 128 with --tiny)")
    parser.add_argument("--image", help="a source image instead of the drawn one")
    parser.add_argument("--instruction", help="the instruction (default: one the backends can do)")
    parser.add_argument("--steps", type=int, help="editor steps (default: the editor's; 4 with --tiny)")
    parser.add_argument(
        "--tiny",
        choices=TINY_EDITORS,
        help="build a tiny random pipeline of this editor (and a tiny Qwen3-VL thinker unless "
        "--thinker is given) from the repository's tests/ helpers: no download",
    )
    parser.add_argument("--vs-bare", action="store_true", help="repeat the last request's edits as bare calls")
    parser.set_defaults(handler=bench)
