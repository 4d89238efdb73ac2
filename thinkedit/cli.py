"""`python -m thinkedit …` / `thinkedit …`: the same loop as the web app, in a terminal.

Exit codes: 0 success, 2 bad input (one line on stderr), 1 runtime failure.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from . import loop
from .config import FIRST_TURN_STRATEGIES, OFFLOAD_MODES, Settings
from .critique import score_text
from .errors import BadInput, ThinkEditError
from .registry import backend_rows, make_editor, make_thinker
from .store import new_run_dir

# Modules that add their own subcommand with `register(subparsers)`; one line each.
COMMAND_MODULES: list[str] = [
    "thinkedit.export", "thinkedit.space", "thinkedit.server", "thinkedit.bench", "thinkedit.evaluate"
]  # fmt: skip


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that choose and point backends; `Settings.from_env` mirrors each as THINKEDIT_*."""
    group = parser.add_argument_group("backends")
    group.add_argument("--editor", help="editor name (see `thinkedit backends`)")
    group.add_argument("--editor-model", help="checkpoint id or local folder for the editor")
    group.add_argument("--editor-url", help="editing server URL(s), comma-separated")
    group.add_argument("--editor-provider", help="Inference Providers provider for hf-inference")
    group.add_argument("--thinker", help="thinker name (see `thinkedit backends`)")
    group.add_argument("--thinker-model", help="checkpoint id, local folder or served model name")
    group.add_argument("--thinker-url", help="OpenAI-compatible base URL, e.g. http://gpu-box:8000/v1")
    group.add_argument("--thinker-provider", help="Inference Providers provider for hf-inference")
    group.add_argument("--thinker-template", help="critique template file ({instruction}, {prompt})")
    group.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: the best available)")
    group.add_argument("--dtype", help="bfloat16, float16 or float32 (default: by device)")
    group.add_argument("--offload", choices=OFFLOAD_MODES, help="model offload mode (default auto)")
    group.add_argument("--runs-dir", help="where runs are saved (default ./runs, THINKEDIT_RUNS_DIR)")


def add_loop_arguments(parser: argparse.ArgumentParser) -> None:
    """The loop's settings, as `edit` and `eval` take them; `loop_options` reads them back."""
    group = parser.add_argument_group("the loop")
    group.add_argument("--max-turns", type=int, help="1..10 (default 3)")
    group.add_argument("--threshold", type=float, help="stop when both scores reach this (default 8)")
    group.add_argument("--first-turn", choices=FIRST_TURN_STRATEGIES, help="first-turn strategy (default none)")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--steps", type=int, help="editor steps (default: the editor's)")
    group.add_argument("--guidance", type=float, help="editor guidance (default: the editor's)")


def loop_options(args: argparse.Namespace, settings: Settings) -> dict:
    """`make_request` keyword arguments from the loop flags, with the settings' defaults."""
    return {
        "max_turns": args.max_turns if args.max_turns is not None else settings.max_turns,
        "threshold": args.threshold if args.threshold is not None else settings.threshold,
        "first_turn": args.first_turn or settings.first_turn,
        "seed": args.seed,
        "steps": args.steps,
        "guidance": args.guidance,
    }


def settings_from_args(args: argparse.Namespace) -> Settings:
    names = ("editor", "editor_model", "editor_url", "editor_provider", "thinker", "thinker_model",
             "thinker_url", "thinker_provider", "thinker_template", "device", "dtype", "offload",
             "runs_dir", "judge", "judge_model", "judge_url", "judge_provider", "judge_templates")  # fmt: skip
    return Settings.from_env(**{name: getattr(args, name, None) for name in names})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thinkedit", description="Think-while-Edit: edit, critique, refine.")
    commands = parser.add_subparsers(dest="command", required=True)

    edit = commands.add_parser("edit", help="edit an image with the Think-while-Edit loop")
    edit.add_argument("--image", required=True, help="the source image")
    edit.add_argument("--instruction", required=True, help="what to change")
    add_loop_arguments(edit)
    edit.add_argument("--out", help="write the run folder exactly here")
    edit.add_argument("--json", action="store_true", help="print the final trajectory as JSON")
    add_backend_arguments(edit)
    edit.set_defaults(handler=_edit)

    backends = commands.add_parser("backends", help="list editors and thinkers and whether they can run here")
    add_backend_arguments(backends)
    backends.set_defaults(handler=_backends)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)

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
    request = loop.make_request(args.image, args.instruction, **loop_options(args, settings))
    editor, thinker = make_editor(settings), make_thinker(settings)
    run_dir = Path(args.out) if args.out else new_run_dir(settings.runs_dir)
    trajectory = None
    events = loop.run(editor, thinker, request, run_dir=run_dir,
                      edit_timeout=settings.edit_timeout, think_timeout=settings.edit_timeout)  # fmt: skip
    for event in events:
        trajectory = _print_event(event) or trajectory
    assert trajectory is not None
    if args.json:
        from .store import trajectory_record

        print(json.dumps(trajectory_record(trajectory), indent=2, ensure_ascii=False))
    return 1 if trajectory.stop_reason == "error" else 0


def _print_event(event):
    """Human-readable progress on stderr/stdout; returns the trajectory when the run is over."""
    if isinstance(event, loop.TurnStarted):
        print(f"\nTurn {event.index} · prompt: {event.prompt}", flush=True)
    elif isinstance(event, loop.EditStep):
        width = 30
        filled = round(width * event.step / max(event.total, 1))
        end = "\n" if event.step >= event.total else ""
        print(f"\r  editing [{'#' * filled}{'.' * (width - filled)}] {event.step}/{event.total}",
              end=end, file=sys.stderr, flush=True)  # fmt: skip
    elif isinstance(event, loop.ThinkingStarted):
        label = "thinking about the instruction" if event.index == 0 else "thinking"
        print(f"  {label}…", file=sys.stderr, flush=True)
    elif isinstance(event, loop.Notice):
        print(f"  note: {event.message}", file=sys.stderr, flush=True)
    elif isinstance(event, loop.TurnFinished):
        turn = event.turn
        critique = turn.critique
        print(f"  semantic {score_text(critique.semantic)} · quality {score_text(critique.quality)} · "
              f"edit {turn.edit_seconds:.2f}s · think {turn.think_seconds:.2f}s")  # fmt: skip
        if critique.reasoning:
            print(f"  reasoning: {critique.reasoning}")
        if critique.refined_prompt:
            print(f"  refined prompt: {critique.refined_prompt}")
    elif isinstance(event, loop.RunFinished):
        trajectory = event.trajectory
        best = trajectory.best_turn
        print(f"\nStopped: {trajectory.stop_reason}" + (f" — {trajectory.error}" if trajectory.error else ""))
        if best:
            print(f"Best turn: {best.index} (semantic {score_text(best.critique.semantic)}, "
                  f"quality {score_text(best.critique.quality)})")  # fmt: skip
        if trajectory.run_dir and not trajectory.warnings:
            print(f"Saved: {trajectory.run_dir}")
        return trajectory
    return None


def _backends(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    rows = backend_rows(settings)
    for role in ("editor", "thinker"):
        print(f"{role}s:")
        for row in (r for r in rows if r["role"] == role):
            mark = "yes" if row["available"] else "no "
            print(f"  {row['name']:<20} {mark}  {row['reason']}")
    from .judges import JUDGES
    from .registry import availability

    print("judges (thinkedit eval):")
    for spec in JUDGES.values():
        chosen = spec.name == settings.judge
        ok, reason = availability(spec, model=settings.judge_model if chosen else None, url=settings.judge_url)
        print(f"  {spec.name:<20} {'yes' if ok else 'no '}  {reason}")
    from . import runtime

    print(f"runtime: {runtime.describe(settings)}")
    return 0
