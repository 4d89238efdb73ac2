"""`python -m thinkedit eval`: does the loop help this editor, and does it pay for itself? GEdit-Bench,
ImgEdit-Bench or your own edits, single-shot, rewrite-once and best-of-N against Think-while-Edit, scored by an
independent judge, with what each spent.

    data.py     the benchmarks' samples (GEdit-Bench through `datasets`, ImgEdit basic, edits.jsonl)
    harness.py  every (sample, mode) through `loop.run`, judged, one line each; sharded, resumable
    report.py   summary.json (each benchmark's own averages, GEdit per language), report.md, report.png, and
                `read_eval` for the web app
    tradeoff.py quality against compute: the points, their gains per unit of compute, the verdict, compute.png
    official.py GEdit-Bench's official scorer on an eval folder, its code unchanged (python -m ...official)

The judge is its own role (`thinkedit/judges/`), following GEdit-Bench's VIEScore rubric.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import BadInput
from .data import BENCHES, LANGUAGES
from .harness import MODES, EvalPlan, run_eval
from .report import read_eval, refresh

__all__ = ["EvalPlan", "read_eval", "refresh", "register", "run_eval"]


def _names(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def evaluate(args: argparse.Namespace) -> int:
    from ..compute import Prices
    from ..config import loop_options, settings_from_args

    if args.report:
        refresh(Path(args.report), Prices.of(settings_from_args(args)))
        return 0
    if not args.out:
        raise BadInput("Say where the eval goes: --out DIR (or --report DIR to summarise one again).")
    if args.concurrency < 1:
        raise BadInput("--concurrency must be at least 1.")
    settings = settings_from_args(args)
    plan = EvalPlan(
        bench=args.bench,
        data=args.data,
        out=Path(args.out),
        settings=settings,
        request=loop_options(args, settings),
        modes=tuple(dict.fromkeys(_names(args.modes) or MODES)),  # each once, in the order given
        language=args.language,
        edit_json=args.edit_json,
        categories=_names(args.categories),
        keys=_names(args.keys),
        limit=args.limit,
        concurrency=args.concurrency,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
    )
    run_eval(plan)
    return 0


def register(commands) -> None:
    from ..config import add_backend_arguments, add_loop_arguments, add_price_arguments, number_flag

    parser = commands.add_parser("eval", help="benchmark single-shot vs the loop (GEdit-Bench, ImgEdit, your own)")
    parser.add_argument("--bench", choices=BENCHES, default="gedit", help="which benchmark (default gedit)")
    parser.add_argument(
        "--data",
        help="gedit: hub id (default stepfun-ai/GEdit-Bench), folder or parquet file; "
        "imgedit: the images folder; folder: a folder with edits.jsonl",
    )
    parser.add_argument("--edit-json", help="imgedit: basic_edit.json (default <data>/basic_edit.json)")
    parser.add_argument("--language", choices=LANGUAGES, default="en", help="gedit: en (default), cn or all")
    parser.add_argument(
        "--modes",
        default="single,loop",
        help="comma-separated: single, rewrite, best-of-N (e.g. best-of-3), loop (default single,loop)",
    )
    parser.add_argument(
        "--limit", type=number_flag(1, 10**9, whole=True), help="only the first N samples (after --categories/--keys)"
    )
    parser.add_argument("--categories", help="only these categories (task types), comma-separated")
    parser.add_argument("--keys", help="only these sample keys, comma-separated")
    parser.add_argument("--out", help="the eval folder (running the same command again continues it)")
    parser.add_argument("--report", metavar="DIR", help="summarise an eval folder again and redraw its plot")
    parser.add_argument("--retry-failed", action="store_true", help="run recorded failures again")
    parser.add_argument(
        "--concurrency",
        type=number_flag(1, 256, whole=True),
        default=1,
        help="samples in flight per process (remote backends)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_loop_arguments(parser)
    add_backend_arguments(parser, judge=True)
    add_price_arguments(parser)
    parser.set_defaults(handler=evaluate)
