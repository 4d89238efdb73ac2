"""Running an eval: every (sample, mode) through `loop.run`, judged, written as one line; sharded and resumable.

Under any launcher (`accelerate launch`, `torchrun`) accelerate's `PartialState` says which process this is:
process r of w takes samples r, r+w, r+2w, … on its own GPU and appends its lines to `shards/rank-r.jsonl`.
When all have finished, the main process merges the shards into `samples.jsonl` and writes the summary.
A (key, mode) already in `samples.jsonl` or a shard is skipped: no edit, no thinker, no judge call.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from .. import loop, store
from ..backend import accepts
from ..compute import Prices, totals
from ..config import MAX_TURNS_RANGE, ROLES, Settings
from ..errors import BadInput, ThinkEditError
from ..images import png_bytes
from ..registry import build_backend, find_spec
from ..requests import EditRequest, make_request
from ..schema import TURN, turn_file, written
from .data import Sample, filter_samples, load, read_json
from .folder import CONFIG_FILE, FIXED_MODES, REQUEST, SHARDS, best_of, merge, read_rows
from .report import self_grading, write_reports
from .tradeoff import point_compute

MODES = ("single", "loop")  # what `--modes` runs unless told
SAME_EVAL = (
    "bench",
    "language",
    "editor",
    "editor_model",
    "thinker",
    "thinker_model",
    "judge",
    "judge_model",
    "judge_protocol",
    *REQUEST,
)
BARRIER_TIMEOUT = timedelta(days=7)  # the last shard may finish hours after the first


@dataclass
class EvalPlan:
    """One `thinkedit eval` command: what to run, how, and where it goes."""

    bench: str
    data: str | None
    out: Path
    settings: Settings
    request: dict[str, Any]  # `make_request` options (REQUEST): max_turns, threshold, seed, …
    modes: tuple[str, ...] = MODES
    language: str = "en"
    edit_json: str | None = None
    categories: list[str] | None = None
    keys: list[str] | None = None
    limit: int | None = None
    concurrency: int = 1
    retry_failed: bool = False
    progress: bool = True

    def config(self) -> dict[str, Any]:
        """What `eval.json` records: enough to tell whether a later command continues the same eval (a
        single-shot eval continues with `--modes loop`, so the thinker is named even when unused)."""
        record = {
            "bench": self.bench,
            "data": self.data,
            "modes": list(self.modes),
            "language": self.language if self.bench == "gedit" else None,
        }
        for role in ROLES:
            chosen = self.settings.role(role)
            record[role] = chosen.backend
            record[f"{role}_model"] = chosen.model or find_spec(role, chosen.backend).model
        record.update(thinker_url=self.settings.thinker_url, judge_url=self.settings.judge_url)
        record.update(judge_protocol=self.settings.judge_protocol, viescore_prompts=self.settings.viescore_prompts)
        record.update({name: self.request.get(name) for name in REQUEST})
        return record


@dataclass
class Backends:
    editor: Any
    thinker: Any
    judge: Any
    in_flight: set[threading.Event] = field(default_factory=set)  # each run's own Stop (the loop sets it at its end)
    stopping: bool = False

    def stop(self) -> None:
        """Ctrl-C: the runs in flight stop at their next step or token and are not recorded."""
        self.stopping = True
        for cancel in list(self.in_flight):
            cancel.set()


def run_eval(plan: EvalPlan) -> dict[str, Any] | None:
    """Run this process's share; on the main process, merge and summarise. Returns the summary (main only)."""
    check_modes(plan.modes)
    samples = filter_samples(
        load(plan.bench, plan.data, language=plan.language, edit_json=plan.edit_json),
        categories=plan.categories,
        keys=plan.keys,
        limit=plan.limit,
    )
    state = _process_state()
    rank, world = state.process_index, state.num_processes
    settings = plan.settings
    if world > 1 and settings.device is None and _cuda():
        settings = settings.replace(device=f"cuda:{state.local_process_index}")
    backends = Backends(
        build_backend("editor", settings),
        build_backend("thinker", settings) if set(plan.modes) != {"single"} else None,
        build_backend("judge", settings),
    )
    config = plan.config()
    _check_same_eval(plan.out, config)
    warning = self_grading(config)
    if state.is_main_process:
        plan.out.mkdir(parents=True, exist_ok=True)
        if not (plan.out / CONFIG_FILE).is_file():
            store.write_text_atomic(plan.out / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False))
        if warning:
            print(f"warning: {warning}", flush=True)
    done = read_rows(plan.out)
    todo = [
        (sample, mode)
        for sample in samples[rank::world]
        for mode in plan.modes
        if _needs_run(done.get((sample.id, mode)), plan.retry_failed)
    ]
    shard = plan.out / SHARDS / f"rank-{rank}.jsonl"
    _run_tasks(plan, backends, todo, shard, rank)
    state.wait_for_everyone()
    summary = None
    if state.is_main_process:
        rows = merge(plan.out, [s.id for s in samples])
        summary = write_reports(plan.out, rows, config, prices=Prices.of(plan.settings))
    if world > 1:
        state.destroy_process_group()
    return summary


def check_modes(modes: tuple[str, ...]) -> None:
    """Refuse modes `thinkedit eval` does not know, with the ones it does."""
    low, high = MAX_TURNS_RANGE
    wrong = [m for m in modes if m not in FIXED_MODES and not low <= (best_of(m) or 0) <= high]
    if wrong or not modes:
        raise BadInput(
            f"--modes takes {', '.join(FIXED_MODES)} and best-of-N (N from {low} to {high}, e.g. best-of-3), "
            f"comma-separated" + (f"; not {', '.join(repr(m) for m in wrong)}." if wrong else ".")
        )


def mode_request(request: EditRequest, mode: str) -> EditRequest:
    """The request a mode runs: the loop's and single-shot's as asked; the rewrite baseline makes one edit of the
    thinker's polish; best-of-N makes N edits with seeds seed … seed + N - 1."""
    if mode == "rewrite":
        return replace(request, baseline="rewrite", max_turns=1)
    if best_of(mode) is not None:
        return replace(request, baseline="best-of-n", max_turns=best_of(mode))
    return request


def judges_every_turn(mode: str) -> bool:
    """Whether each turn of a mode's runs is judged (the loop's and best-of-N's: their O after each turn)."""
    return mode == "loop" or best_of(mode) is not None


def _process_state():
    """accelerate's view of the launch. On CPU it must be told so (`cpu=True`), or under torchrun every process
    would think it is alone."""
    from accelerate import PartialState

    return PartialState(cpu=not _cuda(), timeout=BARRIER_TIMEOUT)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _check_same_eval(out: Path, config: dict[str, Any]) -> None:
    file = out / CONFIG_FILE
    if not file.is_file():
        return
    before = read_json(file, f"{file} vanished")
    changed = [name for name in SAME_EVAL if before.get(name) != config.get(name)]
    if changed:
        what = ", ".join(f"{name} {before.get(name)!r} → {config.get(name)!r}" for name in changed)
        raise BadInput(
            f"{out} holds an eval with other settings ({what}); continue it with the same settings "
            "or choose another --out."
        )


def _needs_run(row: dict[str, Any] | None, retry_failed: bool) -> bool:
    return row is None or (retry_failed and row.get("error") is not None)


# -- the tasks of one process ----------------------------------------------------------------------------


def _run_tasks(plan: EvalPlan, backends: Backends, todo: list[tuple[Sample, str]], shard: Path, rank: int) -> None:
    """Run `todo` with up to `concurrency` in flight; each line is appended to the shard the moment it is done."""
    if not todo:
        return
    workers = plan.concurrency
    kinds = {b.spec.kind for b in (backends.editor, backends.thinker, backends.judge) if b is not None}
    if workers > 1 and "local" in kinds:
        print(
            "note: local models take one sample at a time per process; --concurrency is for remote backends "
            "(use one process per GPU for more)",
            flush=True,
        )
        workers = 1
    _end_the_last_line(shard)
    progress = _progress(len(todo), rank, plan.progress)
    means: dict[str, list[float]] = {}
    with open(shard, "a", encoding="utf-8") as lines, ThreadPoolExecutor(workers, "thinkedit-eval") as pool:
        pending: set[Future] = set()
        queue = iter(todo)
        try:
            while True:
                while len(pending) < workers and (task := next(queue, None)) is not None:
                    pending.add(pool.submit(run_sample, plan, backends, *task))
                if not pending:
                    break
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)  # Ctrl-C gets in
                for future in finished:
                    row = future.result()
                    if row is not None:  # one cancelled in flight is not recorded: the next run does it again
                        _record(row | {"process": rank}, lines, means, progress)
        except BaseException:
            backends.stop()
            for future in pending:
                future.cancel()
            raise
        finally:
            progress.close()


def _end_the_last_line(shard: Path) -> None:
    """The shard's folder made, and its last line ended: a line cut short by a crash stays a line of its own."""
    shard.parent.mkdir(parents=True, exist_ok=True)
    if shard.is_file() and shard.stat().st_size:
        with open(shard, "rb+") as lines:
            lines.seek(-1, os.SEEK_END)
            if lines.read(1) != b"\n":
                lines.write(b"\n")


def _record(row: dict[str, Any], lines, means: dict[str, list[float]], progress) -> None:
    """Append one finished row to the shard at once, and show each mode's running mean O."""
    lines.write(json.dumps(row, ensure_ascii=False) + "\n")
    lines.flush()
    if row["o"] is not None:
        means.setdefault(row["mode"], []).append(row["o"])
    progress.set_postfix_str(" · ".join(f"{mode} O {sum(v) / len(v):.2f}" for mode, v in means.items()))
    progress.update()


def _progress(total: int, rank: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=f"eval [process {rank}]", unit="run", position=rank, disable=not enabled, dynamic_ncols=True
    )


# -- one (sample, mode) -------------------------------------------------------------------------------------


def run_sample(plan: EvalPlan, backends: Backends, sample: Sample, mode: str) -> dict[str, Any] | None:
    """Edit (single-shot or the loop), judge the best turn and the last, place the images, return the line."""
    started = time.perf_counter()
    row = _base_row(plan, sample, mode)
    if sample.problem:
        row["error"] = f"bad data: {sample.problem}"
        return _finish(row, started)
    try:
        image = sample.read_image() if sample.read_image else None
        mask = sample.read_mask() if sample.read_mask else None
        request = mode_request(make_request(image, sample.instruction, mask=mask, **plan.request), mode)
    except Exception as exc:  # noqa: BLE001 - a row that does not decode is this sample's failure
        row["error"] = f"bad data: {exc}"
        return _finish(row, started)
    seconds = row["seconds"]
    seconds["load"] = time.perf_counter() - started
    run_dir = plan.out / row["run"]
    if run_dir.exists():  # an interrupted earlier attempt: start clean, never mix its turns in
        shutil.rmtree(run_dir)
    looping = time.perf_counter()
    trajectory = _edit(plan, backends, request, mode, run_dir, seconds)
    seconds["loop"] = time.perf_counter() - looping
    if trajectory is None or trajectory.stop_reason == "cancelled":
        return None
    turns = trajectory.turns
    seconds["edit"] = sum(t.edit_seconds for t in turns)
    seconds["think"] += sum(t.think_seconds for t in turns)
    seconds["store"] = trajectory.save_seconds
    row.update(
        turns=len(turns),
        stop_reason=trajectory.stop_reason,
        prompts=[t.prompt for t in turns],
        thinker_model=trajectory.settings.get("thinker_model"),
        compute=totals([written(TURN, turn) for turn in turns], trajectory.first_turn_compute),
    )
    if trajectory.stop_reason == "error" or not turns:
        row["error"] = trajectory.error or "the run produced no image"
        return _finish(row, started)
    best, last = trajectory.best_turn, turns[-1]
    row["best_turn"] = best.index
    try:
        fence = (trajectory.region, request.mask)
        row.update(_judge_turns(backends.judge, trajectory, sample.instruction, mode, seconds, fence))
    except Exception as exc:  # noqa: BLE001 - a judge that fails (server down) fails this sample, not the run
        row["error"] = f"judge: {exc if isinstance(exc, ThinkEditError) else f'{type(exc).__name__}: {exc}'}"
        return _finish(row, started)
    row["judge_model"] = backends.judge.model
    placed = time.perf_counter()
    _place_images(plan, sample, mode, row, run_dir, request.image, best, last)
    seconds["place"] = time.perf_counter() - placed
    return _finish(row, started)


def _edit(plan: EvalPlan, backends: Backends, request, mode: str, run_dir: Path, seconds: dict[str, float]):
    """Run the editor alone (single-shot) or the loop; the trajectory, or None when it was stopped before it ran.

    The first critique (between turn 0 and turn 1) is timed here: it is thinking the turns do not count."""
    thinker = backends.thinker if mode != "single" else None
    trajectory, first_thinking = None, None
    cancel = threading.Event()
    backends.in_flight.add(cancel)
    try:
        if backends.stopping:
            return None
        for event in loop.run(
            backends.editor,
            thinker,
            request,
            cancel=cancel,
            run_dir=run_dir,
            edit_timeout=plan.settings.edit_timeout,
            think_timeout=plan.settings.thinker_timeout,
        ):
            if isinstance(event, loop.ThinkingStarted) and event.index == 0:
                first_thinking = time.perf_counter()
            elif isinstance(event, loop.TurnStarted) and event.index == 1 and first_thinking is not None:
                seconds["think"] += time.perf_counter() - first_thinking
            elif isinstance(event, loop.RunFinished):
                trajectory = event.trajectory
    finally:
        backends.in_flight.discard(cancel)
    return trajectory


def _judge_turns(
    judge, trajectory, instruction: str, mode: str, seconds, fence: tuple = (None, None)
) -> dict[str, Any]:
    """The judge's verdict and the drift of the best turn; in loop mode also of the last (`last`); for the loop and
    best-of-N of every turn, each judged once, and what stopping after each turn would have given (`by_turn`). With a
    mask (`fence`: the region in words, the mask) the judge is told the region, and one that measures pixels gets the
    mask too (a judge written before either existed is told nothing)."""
    region, mask = fence
    told = {"region": region} if region and accepts(judge.judge, "region") else {}
    told |= {"mask": mask} if told and accepts(judge.judge, "mask") else {}
    source, turns, best = trajectory.request.image, trajectory.turns, trajectory.best_turn
    judged = turns if judges_every_turn(mode) else [best]
    verdicts = {
        turn.index: _judge(judge, source, turn.image, instruction, seconds, told)
        | {"drift": turn.drift.record() if turn.drift else None}
        for turn in judged
    }
    update = dict(verdicts[best.index])
    if mode == "loop":
        update["last"] = {"turn": turns[-1].index, **verdicts[turns[-1].index]}
    if judges_every_turn(mode):
        update["by_turn"] = by_turn(trajectory, verdicts)
    return update


def by_turn(trajectory, verdicts: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """After each turn k: its verdict, the turn the run would have returned had it stopped there (the best so far,
    ties to the later, as `Trajectory.best_turn`), and the compute spent up to it. A run stopped after turn k is
    what `--max-turns k` gives (every stop rule looks only at the turns so far), so these are its points."""
    records = [written(TURN, turn) for turn in trajectory.turns]
    points, best = [], None
    for k, turn in enumerate(trajectory.turns, 1):
        if best is None or turn.rank >= best.rank:
            best = turn
        verdict = verdicts[turn.index]
        spent = totals(records[:k], trajectory.first_turn_compute)
        points.append(
            {
                "turn": turn.index,
                **{metric: verdict[metric] for metric in ("sc", "pq", "o")},
                "best": best.index,
                "compute": point_compute(spent),
            }
        )
    return points


def _base_row(plan: EvalPlan, sample: Sample, mode: str) -> dict[str, Any]:
    row = {"key": sample.key, "category": sample.category, "instruction": sample.instruction, "mode": mode}
    if plan.bench == "gedit":
        row.update(language=sample.language, intersection=sample.intersection)
    if plan.bench == "imgedit":
        row["id"] = sample.image_id  # the source image as basic_edit.json names it
    row.update(
        sc=None,
        pq=None,
        o=None,
        turns=0,
        best_turn=None,
        run=f"runs/{mode}/{sample.id}",
        image=None,
        drift=None,
        seconds=dict.fromkeys(("load", "edit", "think", "judge", "store", "place", "loop"), 0.0),
        error=None,
    )
    return row


def _judge(
    judge, source: Image.Image, edited: Image.Image, instruction: str, seconds: dict, told: dict | None = None
) -> dict[str, Any]:
    started = time.perf_counter()
    verdict = judge.judge(source, edited, instruction, **(told or {}))
    seconds["judge"] += time.perf_counter() - started
    return {
        "sc": verdict.sc,
        "pq": verdict.pq,
        "o": verdict.o,
        "scores": {"semantic": verdict.semantic, "quality": verdict.quality},
        "judge": {"semantic": verdict.semantic_reply, "quality": verdict.quality_reply, "asked": verdict.asked},
        "unreadable": [
            part for part, scores in (("semantic", verdict.semantic), ("quality", verdict.quality)) if scores is None
        ],
    }


def _finish(row: dict[str, Any], started: float) -> dict[str, Any]:
    """`loop` is the time inside `loop.run` (editing, thinking, saving the run folder, the loop's own work);
    `harness` is what eval adds around it and the judge: reading the sample, placing images, bookkeeping."""
    seconds = row["seconds"]
    seconds["wall"] = time.perf_counter() - started
    seconds["harness"] = seconds["wall"] - seconds["loop"] - seconds["judge"]
    row["seconds"] = {name: round(value, 5) for name, value in seconds.items()}
    return row


def image_path(bench: str, sample: Sample, folder: str) -> str:
    """Where a result goes, in the benchmark's own layout (so its official scorer reads our output)."""
    if bench == "gedit":
        return f"images/{folder}/fullset/{sample.category}/{sample.language}/{sample.key}.png"
    return f"images/{folder}/{sample.key}.png"


def _place_images(
    plan: EvalPlan, sample: Sample, mode: str, row: dict, run_dir: Path, source: Image.Image, best, last
) -> None:
    """The best turn under images/<mode>/, the loop's last under images/loop-last/ (what the paper judged),
    and for GEdit the source beside each as <key>_SRCIMG.png, which its scorer reads."""
    targets = [(mode, best)] + ([("loop-last", last)] if mode == "loop" else [])
    for folder, turn in targets:
        relative = image_path(plan.bench, sample, folder)
        _copy_or_write(run_dir / turn_file(turn.index), turn.image, plan.out / relative)
        if plan.bench == "gedit":
            _copy_or_write(run_dir / "source.png", source, plan.out / (relative.removesuffix(".png") + "_SRCIMG.png"))
        if folder == mode:
            row["image"] = relative
        else:
            row["last"]["image"] = relative


def _copy_or_write(saved: Path, image: Image.Image, target: Path) -> None:
    """The PNG the run folder already holds, linked (or copied) into place: no second encoding. Written anew
    only if the run could not save it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    if not saved.is_file():
        target.write_bytes(png_bytes(image))
        return
    try:
        os.link(saved, target)  # run folders are written once, so sharing the file is safe
    except OSError:  # a file system without hard links
        shutil.copyfile(saved, target)
