"""Saved runs as a summary (`thinkedit show RUN`) or as training data for a thinker (`thinkedit export`).

Export writes one record per exported turn, the way the paper built ThinkEdit-140k from trajectories:
- `sft`: LLaMA-Factory's ShareGPT layout, a JSON list (JSON lines when --out ends in .jsonl) of
  `{"messages": [user, assistant], "images": [source, edited], "drift"}`; the user turn is two `<image>`
  placeholders and the rendered critique template (with the masked region, when the run had a mask), the
  assistant turn the canonical `<think>…</think><score>…</score><answer>…</answer>` text; `drift` is the turn's.
- `rl`: EasyR1-style JSON lines `{"prompt", "images", "answer", "drift"}`: the same prompt and answer text.
- `jsonl`: one JSON line per turn with every field of the run and the turn, plus overall, gain, satisfied.
Image paths are relative to the output file; the images are copied into `<out stem>_images/` next to it.
- `hf`: a folder that `datasets.load_dataset(folder)` reads and `hf upload` publishes as is: parquet shards
  `data/train-NNNNN-of-NNNNN.parquet` with the images embedded (`datasets` Image features), and a dataset card
  `README.md` whose front matter tells the Hub its configs, features, license and task categories. When the runs
  hold preference pairs, a second config `preference` (`preference/train-….parquet`) holds them, images embedded.
- `preference`: JSON lines of preference pairs for DPO-style trainers (`preference.py` says which pairs):
  `{"source", "instruction", "chosen", "rejected", "chosen_by", …}`, the three images copied beside the file.

A turn's source and instruction are its stage's: the run's own, or (after building on a turn) that turn's image and
the stage's instruction. Where the person edited a turn's refined prompt before going on, the `sft` and `rl` answer
for that turn is the person's prompt (`"by": "person"`), otherwise the thinker's (`"by": "thinker"`).

Which turns: those whose semantic and quality scores were read. `--min-gain X` keeps a turn when its
overall score (the geometric mean of semantic and quality that ranks the best turn) is at least X above
the turn it continues (its parent); turn 1, and a stage's first turn, have a gain of 0. `--only-satisfied` keeps turns whose two scores both reach
the run's stop threshold.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import __version__, critique, drift
from .compute import Prices, Tokens, compute_line, seconds_text, tokens_text, totals
from .config import DEFAULTS, add_price_arguments, number_flag, settings_from_args
from .critique import defuse, format_critique, load_template, render, score_text
from .drift import percent
from .errors import BadInput, ThinkEditError
from .loop import stop_message
from .preference import Pair, pairs
from .schema import shown_best
from .store import SavedRun, copy_file_atomic, load_run, write_text_atomic

FORMATS = ("sft", "rl", "jsonl", "hf", "preference")
IMAGE_PLACEHOLDERS = "<image><image>"  # source, then edited: the order the thinker sees them
MAX_SHARD_BYTES = 500 * 10**6  # a parquet shard of the hf format holds at most about this much (push_to_hub's default)


def find_runs(root: str | Path, unpack_to: str | Path | None = None) -> list[tuple[str, SavedRun]]:
    """(name, run) for a run folder or zip, or for every run folder and zip under a folder (zips unpacked
    inside `unpack_to`)."""
    root = Path(root)
    if not root.exists():
        raise BadInput(f"{root} does not exist.")
    if root.is_file() or (root / "trajectory.json").is_file():
        return [(_run_name(root), load_run(root, unpack_to))]
    found = []
    folders = [p.parent for p in root.rglob("trajectory.json")]
    zips = [p for p in root.rglob("*.zip") if p.with_suffix("") not in folders]  # a folder's own zip is a copy
    candidates = sorted(folders + zips)
    for path in candidates:
        try:
            found.append((_run_name(path), load_run(path, unpack_to)))
        except BadInput as exc:
            print(f"skipped: {exc}", file=sys.stderr)
    if not found:
        raise BadInput(f"No ThinkEdit runs under {root}: expected folders with a trajectory.json, or run zips.")
    return found


def scored_turns(run: SavedRun) -> list[dict[str, Any]]:
    """The run's turns that have both scores, each with `overall`, `gain` (over the turn it continues; 0 for a
    stage's first turn) and `satisfied` added."""
    threshold = float(run.record.get("settings", {}).get("threshold", DEFAULTS.threshold))
    turns = {turn["index"]: turn for turn in run.record["turns"]}
    rows = []
    for turn in sorted(turns.values(), key=lambda t: t["index"]):
        score = critique.overall(turn.get("semantic"), turn.get("quality"))
        if score is None:
            continue
        parent = turns.get(turn.get("parent"))
        before = critique.overall(parent["semantic"], parent["quality"]) if parent else None
        if parent is None or parent["stage"] != turn["stage"]:
            gain = 0.0
        else:
            gain = score - before if before is not None else None
        satisfied = turn["semantic"] >= threshold and turn["quality"] >= threshold
        rows.append({**turn, "overall": score, "gain": gain, "satisfied": satisfied})
    return rows


def person_answer(run: SavedRun, turn: dict[str, Any]) -> str | None:
    """The prompt the person wrote to go on from `turn` in place of the thinker's refined prompt (the newest, when
    they did so more than once), or None."""
    edited = [t for t in run.record["turns"] if t["parent"] == turn["index"] and t["by"] == "person"]
    edited = [t for t in edited if t["stage"] == turn["stage"]]
    return max(edited, key=lambda t: t["index"])["prompt"] if edited else None


def filter_turns(rows: list[dict[str, Any]], min_gain: float | None = None, only_satisfied: bool = False) -> list[dict]:
    if min_gain is not None:
        rows = [row for row in rows if row["gain"] is not None and row["gain"] >= min_gain]
    if only_satisfied:
        rows = [row for row in rows if row["satisfied"]]
    return rows


def selected_turns(runs: str | Path, scratch: str, min_gain: float | None, only_satisfied: bool) -> Iterator[tuple]:
    """(unique run name, run, turn) for every turn of every run under `runs` that the filters keep."""
    used_names: set[str] = set()
    for name, run in find_runs(runs, scratch):
        name = _unique(name, used_names)
        for turn in filter_turns(scored_turns(run), min_gain, only_satisfied):
            yield name, run, turn


def export(
    runs: str | Path,
    out: str | Path,
    fmt: str = "sft",
    *,
    min_gain: float | None = None,
    only_satisfied: bool = False,
    template: str | Path | None = None,
    license: str = "other",
) -> int:
    """Write the selected turns of every run under `runs` to `out` in `fmt`; the number of records.
    `license` is the dataset card's, for the `hf` format."""
    if fmt not in FORMATS:
        raise BadInput(f"Unknown export format '{fmt}'; use one of {', '.join(FORMATS)}.")
    if fmt == "preference" and (min_gain is not None or only_satisfied):
        raise BadInput("--min-gain and --only-satisfied choose turns; preference pairs follow their own rule.")
    out = Path(out)
    try:
        if fmt == "hf":
            return export_hub_dataset(runs, out, min_gain=min_gain, only_satisfied=only_satisfied, license=license)
        if fmt == "preference":
            return export_pairs(runs, out)
        return export_records(runs, out, fmt, min_gain, only_satisfied, load_template("critique", template))
    except Exception as exc:
        refused = _os_error(exc)  # a full disk, a file-size limit, a folder that cannot be written
        if refused is None:
            raise
        raise ThinkEditError(
            f"The export to {out} could not be written ({refused.strerror or refused}); every file it wrote is "
            "whole (nothing is left half-written). Free some space or choose another --out, and run it again."
        ) from None


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc`, if any: `datasets` reports one as a DatasetGenerationError."""
    while exc is not None and not isinstance(exc, OSError):
        exc = exc.__cause__ or exc.__context__
    return exc


def export_records(
    runs: str | Path, out: Path, fmt: str, min_gain: float | None, only_satisfied: bool, critique_template: str
) -> int:
    """The `sft`, `rl` and `jsonl` formats: the records file at `out`, the images copied beside it."""
    images_dir = out.parent / f"{out.stem}_images"
    records = []
    with tempfile.TemporaryDirectory(prefix="thinkedit-export-") as scratch:
        for name, run, turn in selected_turns(runs, scratch, min_gain, only_satisfied):
            images = [
                _copy(run.source_of(turn), images_dir / name, out.parent),
                _copy(run.file(turn["image"]), images_dir / name, out.parent),
            ]
            if fmt == "jsonl":
                records.append(_full_record(name, run, turn, images))
                continue
            stage = run.stage(turn)
            told = run.record.get("region") if stage["stage"] == 1 else None  # the mask was painted on stage 1
            prompt = IMAGE_PLACEHOLDERS + render(critique_template, stage["instruction"], turn["prompt"], region=told)
            person = person_answer(run, turn)
            answer = format_critique(
                turn["semantic"],
                turn["quality"],
                defuse(turn["reasoning"] or ""),
                defuse(person or turn["refined_prompt"] or turn["prompt"]),
            )
            by = "person" if person is not None else "thinker"
            if fmt == "sft":
                messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
                records.append({"messages": messages, "images": images, "by": by, "drift": turn.get("drift")})
            else:
                records.append(
                    {"prompt": prompt, "images": images, "answer": answer, "by": by, "drift": turn.get("drift")}
                )
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "sft" and out.suffix != ".jsonl":
        write_text_atomic(out, json.dumps(records, ensure_ascii=False, indent=1) + "\n")
    else:
        write_text_atomic(out, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    return len(records)


# -- preference pairs --------------------------------------------------------------------------------


def selected_pairs(runs: str | Path, scratch: str) -> Iterator[tuple[str, SavedRun, Pair]]:
    """(unique run name, run, pair) for every preference pair of every run under `runs`."""
    used_names: set[str] = set()
    for name, run in find_runs(runs, scratch):
        name = _unique(name, used_names)
        for pair in pairs(run):
            yield name, run, pair


def pair_fields(name: str, run: SavedRun, pair: Pair) -> dict[str, Any]:
    """A pair's text columns (its images are the caller's to place)."""
    return (
        {
            "instruction": pair.stage["instruction"],
            "chosen_by": pair.chosen_by,
            "chosen_prompt": pair.chosen["prompt"],
            "rejected_prompt": pair.rejected["prompt"],
            "chosen_turn": pair.chosen["index"],
            "rejected_turn": pair.rejected["index"],
            "chosen_overall": critique.overall(pair.chosen["semantic"], pair.chosen["quality"]),
            "rejected_overall": critique.overall(pair.rejected["semantic"], pair.rejected["quality"]),
            "stage": pair.stage["stage"],
            "run": name,
            "editor": run.record.get("editor"),
            "thinker": run.record.get("thinker"),
        }
        | drift_fields("chosen", pair.chosen)
        | drift_fields("rejected", pair.rejected)
    )


def drift_fields(side: str, turn: dict[str, Any]) -> dict[str, float | None]:
    """A pair side's drift as two flat columns (`<side>_drift_changed`, `<side>_drift_outside`), None unmeasured."""
    moved = drift.read(turn.get("drift"))
    return {
        f"{side}_drift_changed": moved.changed if moved else None,
        f"{side}_drift_outside": moved.outside if moved else None,
    }


def export_pairs(runs: str | Path, out: Path) -> int:
    """The `preference` format: one JSON line per pair at `out`, its three images copied beside it."""
    images_dir = out.parent / f"{out.stem}_images"
    lines = []
    with tempfile.TemporaryDirectory(prefix="thinkedit-export-") as scratch:
        for name, run, pair in selected_pairs(runs, scratch):
            folder = images_dir / name
            lines.append(
                {
                    "source": _copy(run.file(pair.stage["source"]), folder, out.parent),
                    "chosen": _copy(run.file(pair.chosen["image"]), folder, out.parent),
                    "rejected": _copy(run.file(pair.rejected["image"]), folder, out.parent),
                    **pair_fields(name, run, pair),
                }
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    return len(lines)


# -- a Hugging Face dataset --------------------------------------------------------------------------


def hub_features():
    """The columns of the `hf` format, as `datasets` features."""
    from datasets import Features, Image, Value

    text = Value("string")
    return Features(
        {
            "source": Image(),
            "edited": Image(),
            "instruction": text,
            "prompt": text,
            "semantic": Value("float64"),
            "quality": Value("float64"),
            "reasoning": text,
            "refined_prompt": text,
            "turn": Value("int32"),
            "best": Value("bool"),
            "run": text,
            "editor": text,
            "thinker": text,
            "drift_changed": Value("float64"),
            "drift_outside": Value("float64"),
            "region": text,
            "edit_seconds": Value("float64"),
            "think_seconds": Value("float64"),
            "gpu_seconds": Value("float64"),
            "prompt_tokens": Value("int64"),
            "completion_tokens": Value("int64"),
        }
    )


def hub_rows(selected: Iterator[tuple]) -> Iterator[dict[str, Any]]:
    """One row per selected turn, its two images as PNG bytes (so the parquet files hold them)."""
    source_of: tuple[Path | None, bytes] = (None, b"")  # the turns of one stage come together: its source read once
    for name, run, turn in selected:
        source = run.source_of(turn)
        if source_of[0] != source:
            source_of = (source, source.read_bytes())
        edited = run.file(turn["image"])
        moved = drift.read(turn.get("drift"))
        yield {
            "source": {"bytes": source_of[1], "path": f"{name}/{source.name}"},
            "edited": {"bytes": edited.read_bytes(), "path": f"{name}/{edited.name}"},
            "instruction": run.stage(turn)["instruction"],
            "prompt": turn["prompt"],
            "semantic": turn["semantic"],
            "quality": turn["quality"],
            "reasoning": turn["reasoning"],
            "refined_prompt": turn["refined_prompt"],
            "turn": turn["index"],
            "best": turn["index"] == run.record.get("best_turn"),
            "run": name,
            "editor": run.record.get("editor"),
            "thinker": run.record.get("thinker"),
            "drift_changed": moved.changed if moved else None,
            "drift_outside": moved.outside if moved else None,
            "region": run.record.get("region") if run.stage(turn)["stage"] == 1 else None,  # painted on stage 1
            "edit_seconds": turn.get("edit_seconds"),
            "think_seconds": turn.get("think_seconds"),
            "gpu_seconds": turn.get("gpu_seconds"),
            "prompt_tokens": Tokens.read(turn.get("tokens")).prompt,
            "completion_tokens": Tokens.read(turn.get("tokens")).completion,
        }


def preference_features():
    """The columns of the `hf` format's `preference` config: the `preference` format's, images embedded."""
    from datasets import Features, Image, Value

    text, whole, number = Value("string"), Value("int32"), Value("float64")
    images = {"source": Image(), "chosen": Image(), "rejected": Image()}
    kinds = {"chosen_turn": whole, "rejected_turn": whole, "stage": whole}
    kinds |= {"chosen_overall": number, "rejected_overall": number}
    names = ("instruction", "chosen_by", "chosen_prompt", "rejected_prompt", "chosen_turn", "rejected_turn")
    names += ("chosen_overall", "rejected_overall", "stage", "run", "editor", "thinker")
    drifts = tuple(f"{side}_drift_{share}" for side in ("chosen", "rejected") for share in ("changed", "outside"))
    kinds |= dict.fromkeys(drifts, number)
    names += drifts
    return Features(images | {name: kinds.get(name, text) for name in names})


def preference_rows(selected: list[tuple]) -> Iterator[dict[str, Any]]:
    """One row per pair, its three images as PNG bytes."""
    for name, run, pair in selected:
        files = {"source": run.file(pair.stage["source"])}
        files |= {"chosen": run.file(pair.chosen["image"]), "rejected": run.file(pair.rejected["image"])}
        images = {key: {"bytes": file.read_bytes(), "path": f"{name}/{file.name}"} for key, file in files.items()}
        yield images | pair_fields(name, run, pair)


def export_hub_dataset(
    runs: str | Path, out: Path, *, min_gain: float | None = None, only_satisfied: bool = False, license: str = "other"
) -> int:
    """Write the selected turns as a Hub dataset folder (parquet shards and a dataset card), and the runs' preference
    pairs as its `preference` config when there are any; the number of turn rows."""
    from datasets import Dataset

    with tempfile.TemporaryDirectory(prefix="thinkedit-export-") as scratch:
        selected = list(selected_turns(runs, scratch, min_gain, only_satisfied))
        if not selected:
            raise BadInput("No turn passed the filters, and a dataset needs at least one row: nothing was written.")
        cache = str(Path(scratch) / "cache")
        made = {
            "default": Dataset.from_generator(
                hub_rows, hub_features(), gen_kwargs={"selected": selected}, cache_dir=cache
            )
        }
        pair_rows = list(selected_pairs(runs, scratch))
        if pair_rows:
            made["preference"] = Dataset.from_generator(
                preference_rows, preference_features(), gen_kwargs={"selected": pair_rows}, cache_dir=cache
            )
        sizes = {
            config: write_shards(dataset, out / CONFIG_FOLDERS[config], scratch) for config, dataset in made.items()
        }
        if "preference" not in made:  # a previous export's pairs would be read along
            write_shards(None, out / CONFIG_FOLDERS["preference"], scratch)
        card = dataset_card(
            made, sizes, selected, len(pair_rows), min_gain=min_gain, only_satisfied=only_satisfied, license=license
        )
        rows = len(made["default"])
        del made  # the arrow cache lives in `scratch`
    write_text_atomic(out / "README.md", str(card))
    return rows


CONFIG_FOLDERS = {"default": "data", "preference": "preference"}  # where each config's parquet shards go


def write_shards(dataset, folder: Path, scratch: str) -> int:
    """`dataset` as parquet shards in `folder` the Hub's way (about `MAX_SHARD_BYTES` each), replacing what a previous
    export left there (None: only that); the bytes written."""
    for stale in folder.glob("train-*-of-*.parquet"):
        stale.unlink()
    if dataset is None:
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    shards = min(len(dataset), dataset.data.nbytes // MAX_SHARD_BYTES + 1)
    for index in range(shards):
        part = dataset.shard(num_shards=shards, index=index, contiguous=True)
        shard = folder / f"train-{index:05d}-of-{shards:05d}.parquet"
        part.to_parquet(str(Path(scratch) / shard.name))  # written whole in the scratch folder first
        copy_file_atomic(Path(scratch) / shard.name, shard)
    return sum(file.stat().st_size for file in folder.glob("train-*.parquet"))


def dataset_card(
    made: dict,
    sizes: dict,
    selected: list[tuple],
    pairs_count: int,
    *,
    min_gain: float | None,
    only_satisfied: bool,
    license: str,
):
    """The dataset card: front matter the Hub reads (configs, features, sizes, license, task categories) and a
    text saying how the data was made."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        license=license,
        task_categories=["image-to-image", "image-text-to-text"],
        tags=["thinkedit", "think-while-edit", "image-editing"],
        pretty_name="ThinkEdit trajectories",
    )
    infos, configs = {}, {}
    for config, dataset in made.items():
        info = DatasetInfo(
            features=dataset.features, splits=SplitDict(), download_size=sizes[config], dataset_size=dataset.data.nbytes
        )
        info.splits.add(SplitInfo(name="train", num_bytes=dataset.data.nbytes, num_examples=len(dataset)))
        infos[config] = info
        configs[config] = {"data_files": [{"split": "train", "path": f"{CONFIG_FOLDERS[config]}/train-*"}]}
    DatasetInfosDict(infos).to_dataset_card_data(data)
    MetadataConfigs(configs).to_dataset_card_data(data)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{card_text(selected, min_gain, only_satisfied, pairs_count)}")


def card_text(selected: list[tuple], min_gain: float | None, only_satisfied: bool, pairs_count: int = 0) -> str:
    runs = {name: run for name, run, _ in selected}
    backends = Counter((run.record.get("editor"), run.record.get("thinker")) for _, run, _ in selected)
    made_with = "\n".join(
        f"- editor `{editor}`, thinker `{thinker}`: {count} turn(s)"
        for (editor, thinker), count in sorted(backends.items())
    )
    filters = (
        [f"its overall score rose by at least {min_gain:g} over the previous turn"] if min_gain is not None else []
    )
    filters += ["both its scores reached its run's stop threshold"] if only_satisfied else []
    kept = "every turn with both scores" + (f" where {' and '.join(filters)}" if filters else "")
    return f"""# ThinkEdit trajectories

{len(selected)} turns of {len(runs)} Think-while-Edit runs ({kept}), exported by ThinkEdit {__version__} on
{time.strftime("%Y-%m-%d")} with `python -m thinkedit export --format hf`.

Each run follows the EditThinker loop ([arXiv 2512.05965](https://arxiv.org/abs/2512.05965)): an image editor
edits the source image with a prompt, a multimodal thinker scores the edit (semantic: instruction followed and
the rest preserved; quality: natural, no artifacts; both 0-10), explains what fell short and rewrites the
prompt, and the editor edits the source again with the rewrite, until both scores reach the run's threshold,
the thinker keeps the prompt, or the turns run out. The best turn has the highest √(semantic·quality).

{made_with}

| column | what |
| --- | --- |
| `source` | the image the turn edited: the run's source (every turn edits it anew), or after building on a turn, that turn's image |
| `edited` | this turn's edit, at the size the editor made it (a rotation or a crop changes it) |
| `instruction` | what the person asked for (the stage's instruction, after building on a turn) |
| `prompt` | what the editor was given this turn: the instruction, a refined prompt of the thinker's, or the person's |
| `semantic`, `quality` | the thinker's scores, 0-10 |
| `reasoning` | the thinker's reasoning |
| `refined_prompt` | the thinker's rewrite for the next turn (null when it gave none) |
| `turn` | the turn's number in its run, from 1 |
| `best` | whether this is its run's best turn |
| `run`, `editor`, `thinker` | the run's folder name and the backends that made it |
| `drift_changed` | the share of the image this turn changed noticeably (CIEDE2000 over 5 on a 512-pixel copy; null for a turn of another shape) |
| `drift_outside` | the share of the area outside the region (the mask, or the editor's own selection) that changed; null without one |
| `region` | the run's mask in words, as the thinker was told it (null without a mask) |
| `edit_seconds`, `think_seconds` | what this turn's edit and critique took |
| `gpu_seconds` | the device time the turn held (null where no GPU was used) |
| `prompt_tokens`, `completion_tokens` | the thinker's tokens for this critique (null where it did not report them) |

```python
from datasets import load_dataset

turns = load_dataset("USER/NAME", split="train")  # or the folder itself
```
{preference_text(pairs_count)}
The license above is the exporter's choice (`--license`, default `other`). The source images are whoever ran
ThinkEdit's; the edited images also carry the terms of the editor model that made them.
"""


def preference_text(pairs_count: int) -> str:
    if not pairs_count:
        return ""
    return f"""
The `preference` config holds {pairs_count} preference pairs for DPO-style training: two edits of the same `source`
with the same `instruction`, `chosen` preferred to `rejected`. `chosen_by` says who preferred it: `person` (the
person's pick over the other turns, a turn they rated up over one they rated down) or `thinker` (an overall score
at least 1 higher, where the person said nothing against it). `chosen_prompt` / `rejected_prompt` made the two
edits; `chosen_overall` / `rejected_overall` are the thinker's √(semantic·quality).

```python
pairs = load_dataset("USER/NAME", "preference", split="train")
```
"""


def _full_record(name: str, run: SavedRun, turn: dict[str, Any], images: list[str]) -> dict[str, Any]:
    record = run.record
    run_fields = {key: value for key, value in record.items() if key not in ("turns", "source")}
    return {
        "run": name,
        **run_fields,
        **turn,
        "instruction": run.stage(turn)["instruction"],
        "source": images[0],
        "image": images[1],
        "best": turn["index"] == record.get("best_turn"),
        "picked": turn["index"] == record["picked_turn"],
        "rating": record["ratings"].get(str(turn["index"])),
    }


def _copy(image: Path, folder: Path, base: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    copy_file_atomic(image, folder / image.name)
    return (folder / image.name).relative_to(base).as_posix()


def _run_name(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def _unique(name: str, used: set[str]) -> str:
    candidate, number = name, 1
    while candidate in used:
        number += 1
        candidate = f"{name}-{number}"
    used.add(candidate)
    return candidate


# -- show --------------------------------------------------------------------------------------------


def summary(run: SavedRun, label: str | Path | None = None, prices: Prices | None = None) -> str:
    """A saved run in a few lines: what was asked, by which backends, every turn's scores, compute and prompt, which
    turn each continues and who wrote its prompt, its stages, the best turn (the person's pick when they made one),
    and the run's compute (an estimated cost at `prices`)."""
    record = run.record
    settings = record.get("settings", {})
    best = shown_best(record)
    lines = [
        f"Run:         {label or run.path}",
        f"Instruction: {record['instruction']}",
        f"Editor:      {_backend(record.get('editor'), settings.get('editor_model'))}",
        f"Thinker:     {_backend(record.get('thinker'), settings.get('thinker_model'))}",
        f"Source:      {_size(record.get('size'))}",
        f"Stopped:     {record.get('stop_reason')} after {len(record['turns'])} turn(s), "
        f"{record.get('seconds', 0):g} s (threshold {settings.get('threshold', '–')}): {stop_message(record)}",
    ]
    if record.get("region"):
        lines.append(f"Mask:        {record['region']}")
    if record.get("error"):
        lines.append(f"Error:       {record['error']}")
    if record.get("first_turn_prompt"):
        lines.append(f"Turn 1 prompt ({settings.get('first_turn')}): {record['first_turn_prompt']}")
    lines += [
        f"Stage {stage['stage']}:     built on turn {stage['source_turn']}'s image: {stage['instruction']}"
        for stage in record["stages"][1:]
    ]
    lines += [
        f"Feedback:    turn {turn['index']} answers your words on turn {turn['parent']}: {turn['feedback']['text']}"
        for turn in record["turns"]
        if turn["feedback"]
    ]
    lines += [
        "",
        "  turn  from  by           you   semantic  quality  edit s  think s   GPU s       tokens       size  changed  outside"
        "  prompt",
    ]
    for turn in record["turns"]:
        mark = "*" if turn["index"] == best else " "
        parent = "–" if turn["parent"] is None else turn["parent"]
        you = "pick" if turn["index"] == record["picked_turn"] else record["ratings"].get(str(turn["index"]), "")
        moved = drift.read(turn.get("drift"))
        lines.append(
            f"{mark} {turn['index']:>4}  {parent:>4}  {turn['by']:<11}  {you:<4}"
            f"  {score_text(turn.get('semantic')):>8}  {score_text(turn.get('quality')):>7}"
            f"  {turn.get('edit_seconds', 0):>6.2f}  {turn.get('think_seconds', 0):>7.2f}"
            f"  {seconds_text(turn.get('gpu_seconds')):>6}  {tokens_text(Tokens.read(turn.get('tokens'))):>11}"
            f"  {_size(turn.get('size')):>9}  {percent(moved and moved.changed):>7}"
            f"  {percent(moved and moved.outside):>7}  {turn['prompt']}"
        )
    lines.append("")
    lines.append(f"Best turn:   {_best_text(record, best)}")
    compute = record.get("compute") or totals(record["turns"], record.get("first_turn_compute"))
    lines.append(f"Compute:     {compute_line(compute, prices or Prices())}")
    lines += [f"Warning:     {warning}" for warning in record.get("warnings", [])]
    return "\n".join(lines)


def _best_text(record: dict[str, Any], best: int | None) -> str:
    if best is None:
        return "none"
    if record["picked_turn"] is None:
        return f"{best} (marked *)"
    return f"{best} (your pick, marked *; the thinker's best: {record['best_turn']})"


def _size(size: Any) -> str:
    """ "W×H" for a run's or a turn's `size` ([width, height]); runs saved before turns had one show "–"."""
    return f"{size[0]}×{size[1]}" if isinstance(size, list) and len(size) == 2 else "–"


def _backend(name: str | None, model: str | None) -> str:
    return f"{name} ({model})" if model else str(name)


# -- command line ------------------------------------------------------------------------------------


def register(subparsers) -> None:
    show = subparsers.add_parser("show", help="print a summary of a saved run (folder or zip)")
    show.add_argument("run", help="a run folder or a run's zip")
    add_price_arguments(show)
    show.set_defaults(handler=_show_command)

    data = subparsers.add_parser("export", help="turn saved runs into training data for a thinker")
    data.add_argument("--runs", required=True, help="a folder of runs (folders or zips), or one run")
    data.add_argument(
        "--format",
        choices=FORMATS,
        default="sft",
        help="sft (LLaMA-Factory), rl (EasyR1), jsonl, hf (a Hugging Face dataset folder)",
    )
    data.add_argument(
        "--min-gain", type=number_flag(-10, 10), help="keep turns whose overall score rose by at least this"
    )
    data.add_argument("--only-satisfied", action="store_true", help="keep turns that reached the run's threshold")
    data.add_argument("--template", help="critique template file (default: the shipped one)")
    data.add_argument("--license", default="other", help="hf: the dataset card's license (default other)")
    data.add_argument("--out", required=True, help="the output file, images next to it; for hf, a folder")
    data.set_defaults(handler=_export_command)


def _show_command(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="thinkedit-show-") as scratch:
        print(summary(load_run(args.run, scratch), args.run, Prices.of(settings_from_args(args))))
    return 0


def _export_command(args: argparse.Namespace) -> int:
    count = export(
        args.runs,
        args.out,
        args.format,
        min_gain=args.min_gain,
        only_satisfied=args.only_satisfied,
        template=args.template,
        license=args.license,
    )
    print(f"{count} record(s) written to {args.out}")
    return 0
