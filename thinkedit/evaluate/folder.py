"""An eval folder on disk: the names of its files, its lines read back, merged, and its config.

    eval.json          what was run (`harness.EvalPlan.config`): a later command continues it only if it matches
    samples.jsonl      one line per (sample, mode), in the benchmark's order, once the shards are merged
    shards/rank-r.jsonl  process r's lines while the eval runs

The harness writes the folder and the report reads it; both take its layout from here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..store import own_file, write_text_atomic
from .data import read_json, sample_id

CONFIG_FILE, SAMPLES_FILE, SHARDS = "eval.json", "samples.jsonl", "shards"
REQUEST = (  # `make_request` options
    "max_turns",
    "threshold",
    "first_turn",
    "seed",
    "seed_per_turn",
    "no_answer",
    "steps",
    "guidance",
    "patience",
    "budget_seconds",
    "budget_tokens",
)
# What an eval runs (`--modes`): the editor alone, the thinker's rewrite then one edit, N edits with different seeds
# the thinker picks from (best-of-N), and the loop; in this order in every file and table.
FIXED_MODES = ("single", "rewrite", "loop")
BEST_OF = re.compile(r"best-of-([1-9]\d*)")  # one spelling per N: its folder name under images/


def best_of(mode: str) -> int | None:
    """N of a `best-of-N` mode; None for another mode."""
    match = BEST_OF.fullmatch(mode)
    return int(match.group(1)) if match else None


def mode_order(mode: str) -> tuple[int, int]:
    """Where `mode` sits among the modes: single, rewrite, best-of-N by N, the loop, then anything else."""
    if best_of(mode) is not None:
        return 2, best_of(mode)
    return {"single": (0, 0), "rewrite": (1, 0), "loop": (3, 0)}.get(mode, (9, 0))


def row_id(row: dict[str, Any]) -> str:
    return sample_id(row["key"], row.get("language"))


def read_rows(out: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Every recorded (sample, mode) of the folder: samples.jsonl, then the shards (a later line wins)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    names = [SAMPLES_FILE, *sorted(f"{SHARDS}/{p.name}" for p in (out / SHARDS).glob("rank-*.jsonl"))]
    for file in filter(None, (own_file(out, name) for name in names)):  # links out of the folder are not read
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            try:
                row = json.loads(line)
            except RecursionError:
                raise BadInput(f"{file} line {number} is nested too deeply to be a sample's line.") from None
            except ValueError:
                continue  # a line cut short by a crash: that sample runs again
            if isinstance(row, dict) and "key" in row and "mode" in row:
                rows[(row_id(row), row["mode"])] = row
    return rows


def merge(out: Path, order: list[str]) -> list[dict[str, Any]]:
    """Fold the shards into samples.jsonl, in the benchmark's order, then remove them."""
    rows = read_rows(out)
    position = {sample_id: number for number, sample_id in enumerate(order)}
    seen = {key: number for number, key in enumerate(rows)}  # rows of samples no longer selected keep their order
    keys = sorted(rows, key=lambda k: (position.get(k[0], len(order) + seen[k]), mode_order(k[1])))
    merged = [rows[k] for k in keys]
    write_text_atomic(out / SAMPLES_FILE, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in merged))
    for shard in (out / SHARDS).glob("rank-*.jsonl"):
        shard.unlink()
    if (out / SHARDS).is_dir() and not any((out / SHARDS).iterdir()):
        (out / SHARDS).rmdir()
    return merged


def config_of(folder: Path) -> dict[str, Any]:
    missing = f"{folder} is not an eval folder (no {CONFIG_FILE}); run `thinkedit eval --out {folder}` first."
    file = own_file(Path(folder), CONFIG_FILE)  # a link out of the folder is not its eval.json
    if file is None:
        raise BadInput(missing)
    return read_json(file, missing)


def eval_folders(root: str | Path) -> list[Path]:
    """Eval folders directly under `root` (those with an eval.json), newest first."""
    root = Path(root)
    found = [p for p in root.iterdir() if (p / CONFIG_FILE).is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: (p / CONFIG_FILE).stat().st_mtime, reverse=True)
