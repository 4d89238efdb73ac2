"""`python -m thinkedit …` / `thinkedit …`: the same loop as the web app, in a terminal.

Exit codes: 0 success, 2 bad input (one line on stderr), 1 runtime failure or a run not saved completely.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from . import bench, evaluate, export, loop, runtime, server, space, steer
from .compute import Prices, compute_line, seconds_text, tokens_text
from .config import add_backend_arguments, add_loop_arguments, add_price_arguments, loop_options, settings_from_args
from .critique import score_text
from .drift import words
from .errors import BadInput, ThinkEditError
from .registry import backend_rows, build_backend
from .requests import make_request
from .schema import shown_best
from .store import import_run, new_run_dir, prepare_run_dir

# Modules that add their own subcommand with `register(subparsers)`.
COMMAND_MODULES = (export, space, server, bench, evaluate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thinkedit", description="Think-while-Edit: edit, critique, refine.")
    commands = parser.add_subparsers(dest="command", required=True)

    edit = commands.add_parser("edit", help="edit an image with the Think-while-Edit loop, or go on from a saved run")
    edit.add_argument("--image", help="the source image")
    edit.add_argument("--instruction", help="what to change (with --continue: the new stage's, with --build-on)")
    edit.add_argument(
        "--mask", metavar="PATH", help="a mask image: white where the edit may change, black kept exactly (any size)"
    )
    add_loop_arguments(edit)
    edit.add_argument("--step", action="store_true", help="pause after every critique; go on with --continue")
    edit.add_argument("--out", help="write the run folder exactly here (refused if it already holds a run)")
    edit.add_argument("--overwrite", action="store_true", help="replace the run already in --out (its files only)")
    edit.add_argument("--json", action="store_true", help="print the final trajectory as JSON")
    steering = edit.add_argument_group("going on from a saved run")
    steering.add_argument("--continue", dest="continue_from", metavar="RUN_DIR", help="a run folder (or a run's zip)")
    steering.add_argument("--from-turn", metavar="K", help="the turn to go on from (default: the run's newest)")
    ways = steering.add_mutually_exclusive_group()
    ways.add_argument("--prompt", help="the next prompt, your words (default: turn K's refined prompt)")
    ways.add_argument("--feedback", help="your words on turn K; the thinker answers them with the next prompt")
    ways.add_argument("--build-on", action="store_true", help="turn K's image becomes a new stage's source")
    add_backend_arguments(edit)
    add_price_arguments(edit)
    edit.set_defaults(handler=_edit)

    backends = commands.add_parser("backends", help="list editors, thinkers and judges and whether they can run here")
    add_backend_arguments(backends)
    backends.set_defaults(handler=_backends)

    for module in COMMAND_MODULES:
        module.register(commands)

    args = parser.parse_args(argv)
    try:
        return args.handler(args) or 0
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ThinkEditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a person gets one line, never a traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


STEERING = ("from_turn", "prompt", "feedback", "build_on")  # flags that go with --continue only


def _edit(args: argparse.Namespace) -> int:
    if args.continue_from:
        return _continue(args)
    given = [f"--{name.replace('_', '-')}" for name in STEERING if getattr(args, name) not in (None, False)]
    if given:
        raise BadInput(f"{', '.join(given)} go with --continue RUN_DIR (a saved run to go on from).")
    if not args.image or not args.instruction:
        raise BadInput("Give --image and --instruction for a new run, or --continue RUN_DIR to go on from a saved one.")
    settings = settings_from_args(args)
    request = make_request(args.image, args.instruction, **loop_options(args, settings), step=args.step, mask=args.mask)
    editor, thinker = build_backend("editor", settings), build_backend("thinker", settings)
    run_dir = prepare_run_dir(args.out, args.overwrite) if args.out else new_run_dir(settings.runs_dir)
    return _follow(loop.Job(editor, thinker, request, run_dir), settings, args.json)


def _continue(args: argparse.Namespace) -> int:
    """`edit --continue RUN_DIR`: new turns from turn K of a saved run, added to its folder (a zip's run is copied
    into the runs folder first)."""
    if args.image or args.out or args.overwrite:
        raise BadInput("--image, --out and --overwrite start a new run; --continue adds to the run's own folder.")
    settings = settings_from_args(args)
    with tempfile.TemporaryDirectory(prefix="thinkedit-continue-") as scratch:
        saved = steer.open_run(args.continue_from, scratch)
        for role in ("editor", "thinker"):
            chosen, made = getattr(args, role), saved.record.get(role)
            if chosen and chosen != made:
                raise BadInput(
                    f"This run's {role} is {made}; a continuation goes on with it (start a new run to change it)."
                )
        run_settings = steer.run_settings(settings, saved)
        editor, thinker = build_backend("editor", run_settings), build_backend("thinker", run_settings)
        newest = max((turn["index"] for turn in saved.record["turns"]), default=1)
        request, continuation = steer.plan(
            saved,
            newest if args.from_turn is None else args.from_turn,
            prompt=args.prompt,
            feedback=args.feedback,
            build_on=args.build_on,
            instruction=args.instruction,
            max_turns=args.max_turns,
            step=args.step,
            thinker=thinker,
        )
        run_dir = saved.path
        if Path(scratch) in run_dir.parents:
            run_dir = import_run(saved, settings.runs_dir)
            print(f"  note: the zip's run was copied to {run_dir}, where it goes on", file=sys.stderr)
    print(f"Going on from turn {continuation.from_turn} of {run_dir}: {_way(continuation)}")
    return _follow(loop.Job(editor, thinker, request, run_dir, continuation), run_settings, args.json)


def _way(continuation: loop.Continuation) -> str:
    if continuation.new_stage:
        return f"a new stage (stage {continuation.stage.number}) on its image: {continuation.stage.instruction}"
    if continuation.feedback is not None:
        return f"the thinker answers your feedback: {continuation.feedback}"
    return "your prompt" if continuation.by == "person" else "its refined prompt"


def _follow(job: loop.Job, settings, as_json: bool) -> int:
    """Run the job, printing each turn as it happens; the exit code."""
    trajectory = None
    events = loop.run_jobs([job], edit_timeout=settings.edit_timeout, think_timeout=settings.thinker_timeout)
    for _, event in events:
        trajectory = _print_event(event, Prices.of(settings)) or trajectory
    if as_json:
        print(json.dumps(trajectory.record(), indent=2, ensure_ascii=False))
    return 1 if trajectory.stop_reason == "error" or trajectory.warnings else 0  # warnings: a save that failed


def _print_event(event, prices: Prices):
    """Human-readable progress on stderr/stdout; returns the trajectory when the run is over."""
    if isinstance(event, loop.TurnStarted):
        print(f"\nTurn {event.index} · prompt: {event.prompt}", flush=True)
    elif isinstance(event, loop.EditStep):
        width = 30
        filled = round(width * event.step / max(event.total, 1))
        end = "\n" if event.step >= event.total else ""
        print(
            f"\r  editing [{'#' * filled}{'.' * (width - filled)}] {event.step}/{event.total}",
            end=end,
            file=sys.stderr,
            flush=True,
        )
    elif isinstance(event, loop.ThinkingStarted):
        label = "thinking about the instruction" if event.index == 0 else "thinking"
        print(f"  {label}…", file=sys.stderr, flush=True)
    elif isinstance(event, loop.Notice):
        print(f"  note: {event.message}", file=sys.stderr, flush=True)
    elif isinstance(event, loop.TurnFinished):
        turn = event.turn
        critique = turn.critique
        print(
            f"  semantic {score_text(critique.semantic)} · quality {score_text(critique.quality)} · "
            f"edit {turn.edit_seconds:.2f}s · think {turn.think_seconds:.2f}s · GPU {seconds_text(turn.gpu_seconds)}s · "
            f"tokens {tokens_text(turn.tokens)} · {words(turn.drift)}"
        )
        if critique.reasoning:
            print(f"  reasoning: {critique.reasoning}")
        if critique.refined_prompt:
            print(f"  refined prompt: {critique.refined_prompt}")
    elif isinstance(event, loop.RunFinished):
        trajectory = event.trajectory
        record = trajectory.record()
        error = f": {trajectory.error}" if trajectory.error else ""
        print(f"\nStopped: {trajectory.stop_reason} — {loop.stop_message(record)}{error}")
        best = next((turn for turn in record["turns"] if turn["index"] == shown_best(record)), None)
        if best:
            whose = " (your pick)" if record.get("picked_turn") is not None else ""
            print(
                f"Best turn: {best['index']}{whose} (semantic {score_text(best['semantic'])}, "
                f"quality {score_text(best['quality'])})"
            )
        print(f"Compute: {compute_line(record['compute'], prices)}")
        if trajectory.run_dir and not trajectory.warnings:
            print(f"Saved: {trajectory.run_dir}")
        if trajectory.stop_reason == "step" and trajectory.turns:
            print(
                f"Go on: thinkedit edit --continue {trajectory.run_dir} --from-turn {trajectory.turns[-1].index} "
                "[--prompt TEXT | --feedback TEXT | --build-on --instruction TEXT] [--step]"
            )
        return trajectory
    return None


def _backends(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    rows = backend_rows(settings)
    for role in ("editor", "thinker", "judge"):
        print(f"{role}s:" if role != "judge" else "judges (thinkedit eval):")
        for row in (r for r in rows if r["role"] == role):
            mark = "yes" if row["available"] else "no "
            print(f"  {row['name']:<20} {mark}  {row['reason']}")
    print(f"runtime: {runtime.device_summary(settings)}")
    return 0
