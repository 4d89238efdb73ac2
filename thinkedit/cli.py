"""`python -m thinkedit …` / `thinkedit …`: the same loop as the web app, in a terminal.

Exit codes: 0 success, 2 bad input (one line on stderr), 1 runtime failure or a run not saved completely.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import bench, evaluate, export, loop, runtime, server, space
from .compute import Prices, compute_line, seconds_text, tokens_text
from .config import add_backend_arguments, add_loop_arguments, add_price_arguments, loop_options, settings_from_args
from .critique import score_text
from .errors import BadInput, ThinkEditError
from .registry import backend_rows, build_backend
from .requests import make_request
from .schema import trajectory_record
from .store import new_run_dir, prepare_run_dir

# Modules that add their own subcommand with `register(subparsers)`.
COMMAND_MODULES = (export, space, server, bench, evaluate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thinkedit", description="Think-while-Edit: edit, critique, refine.")
    commands = parser.add_subparsers(dest="command", required=True)

    edit = commands.add_parser("edit", help="edit an image with the Think-while-Edit loop")
    edit.add_argument("--image", required=True, help="the source image")
    edit.add_argument("--instruction", required=True, help="what to change")
    add_loop_arguments(edit)
    edit.add_argument("--out", help="write the run folder exactly here (refused if it already holds a run)")
    edit.add_argument("--overwrite", action="store_true", help="replace the run already in --out (its files only)")
    edit.add_argument("--json", action="store_true", help="print the final trajectory as JSON")
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


def _edit(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    request = make_request(args.image, args.instruction, **loop_options(args, settings))
    editor, thinker = build_backend("editor", settings), build_backend("thinker", settings)
    run_dir = prepare_run_dir(args.out, args.overwrite) if args.out else new_run_dir(settings.runs_dir)
    trajectory = None
    events = loop.run(
        editor,
        thinker,
        request,
        run_dir=run_dir,
        edit_timeout=settings.edit_timeout,
        think_timeout=settings.thinker_timeout,
    )
    for event in events:
        trajectory = _print_event(event, Prices.of(settings)) or trajectory
    if args.json:
        print(json.dumps(trajectory_record(trajectory), indent=2, ensure_ascii=False))
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
            f"tokens {tokens_text(turn.tokens)}"
        )
        if critique.reasoning:
            print(f"  reasoning: {critique.reasoning}")
        if critique.refined_prompt:
            print(f"  refined prompt: {critique.refined_prompt}")
    elif isinstance(event, loop.RunFinished):
        trajectory = event.trajectory
        best = trajectory.best_turn
        record = trajectory_record(trajectory)
        error = f": {trajectory.error}" if trajectory.error else ""
        print(f"\nStopped: {trajectory.stop_reason} — {loop.stop_message(record)}{error}")
        if best:
            print(
                f"Best turn: {best.index} (semantic {score_text(best.critique.semantic)}, "
                f"quality {score_text(best.critique.quality)})"
            )
        print(f"Compute: {compute_line(record['compute'], prices)}")
        if trajectory.run_dir and not trajectory.warnings:
            print(f"Saved: {trajectory.run_dir}")
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
    print(f"runtime: {runtime.describe(settings)}")
    return 0
