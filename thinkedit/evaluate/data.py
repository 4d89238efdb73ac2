"""The benchmarks' samples: GEdit-Bench (through `datasets`), ImgEdit-Bench basic, or a folder of your own.

Every loader returns samples in the benchmark's own order. A row that cannot run (no instruction, an unsafe
key, a line that is not JSON) keeps its place with `problem` set; an image is only read when its sample
runs, so one that does not decode is that sample's recorded failure, never the end of the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..store import own_file

BENCHES = ("gedit", "imgedit", "folder")
GEDIT_HUB_ID = "stepfun-ai/GEdit-Bench"
LANGUAGES = ("en", "cn", "all")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\- ]*")  # a key or category that is a plain file name


@dataclass
class Sample:
    key: str
    category: str
    instruction: str
    read_image: Callable[[], Any] | None  # returns what `load_image` takes: a path, bytes or an image
    language: str | None = None  # GEdit only: "en" / "cn"
    intersection: bool | None = None  # GEdit only: in the Intersection subset
    image_id: str | None = None  # ImgEdit only: the image as basic_edit.json names it ("animal/000342021.jpg")
    problem: str | None = None  # why this sample cannot run; recorded as its failure
    read_mask: Callable[[], Any] | None = None  # your own folder only: the sample's mask (white may change)

    @property
    def id(self) -> str:
        return sample_id(self.key, self.language)


def sample_id(key: str, language: str | None) -> str:
    """A sample's id, unique within an eval: GEdit's English and Chinese rows share keys."""
    return f"{language}/{key}" if language else str(key)


def load(bench: str, data: str | None, *, language: str = "en", edit_json: str | None = None) -> list[Sample]:
    if bench == "gedit":
        return load_gedit(data or GEDIT_HUB_ID, language)
    if not data:
        raise BadInput(
            f"--bench {bench} needs --data: "
            + (
                "the folder of ImgEdit-Bench's images."
                if bench == "imgedit"
                else "a folder with edits.jsonl, or the edits.jsonl file."
            )
        )
    return load_imgedit(data, edit_json) if bench == "imgedit" else load_folder(data)


def filter_samples(
    samples: list[Sample],
    *,
    categories: list[str] | None = None,
    keys: list[str] | None = None,
    limit: int | None = None,
) -> list[Sample]:
    """The samples asked for, in the benchmark's order: these categories, these keys, the first `limit`."""
    for field, wanted in (("category", categories), ("key", keys)):
        if not wanted:
            continue
        known = [getattr(s, field) for s in samples]
        unknown = [value for value in wanted if value not in known]
        if unknown:
            raise BadInput(
                f"No {field} {', '.join(unknown)} in the selection; it has: {', '.join(sorted(set(known))[:40])}."
            )
        samples = [s for s in samples if getattr(s, field) in wanted]
    if limit is not None:
        if limit < 1:
            raise BadInput("--limit must be at least 1.")
        samples = samples[:limit]
    if not samples:
        raise BadInput("No samples to run: the data holds none for this selection.")
    return samples


# -- GEdit-Bench -------------------------------------------------------------------------------------------


def load_gedit(data: str, language: str) -> list[Sample]:
    """GEdit-Bench's parquet (`key`, `task_type`, `instruction`, `instruction_language`, `input_image`,
    `Intersection_exist`) from a hub id, a local folder or a parquet file. `language` en, cn or all."""
    import datasets

    if language not in LANGUAGES:
        raise BadInput(f"--language must be one of {', '.join(LANGUAGES)}, not '{language}'.")
    table = open_gedit(data)
    if "instruction" not in table.column_names:
        raise BadInput(
            f"{data} is not GEdit-Bench: it has no 'instruction' column (its columns: "
            f"{', '.join(table.column_names) or 'none'}). Pass GEdit-Bench as parquet, Arrow shards or a "
            "`save_to_disk` folder."
        )
    images = None
    if "input_image" in table.column_names:  # read and decoded per sample, when it runs
        images = table.select_columns(["input_image"]).cast_column("input_image", datasets.Image(decode=False))
    fields = [
        c
        for c in ("key", "task_type", "instruction", "instruction_language", "Intersection_exist")
        if c in table.column_names
    ]
    samples = []
    for index, row in enumerate(table.select_columns(fields).to_list()):
        row_language = row.get("instruction_language")
        if language != "all" and row_language not in (language, None):
            continue
        sample = Sample(
            key=str(row.get("key") or f"row-{index}"),
            category=str(row.get("task_type") or "unknown"),
            instruction=row.get("instruction") or "",
            read_image=(lambda i=index: _image_value(images[i]["input_image"], data)) if images is not None else None,
            language=row_language or (language if language != "all" else "unknown"),
            intersection=bool(row.get("Intersection_exist")),
        )
        missing = [c for c in ("key", "task_type", "instruction", "instruction_language") if row.get(c) in (None, "")]
        missing += [] if images is not None else ["input_image"]
        sample.problem = f"the row has no {', '.join(missing)}" if missing else _unsafe(sample)
        samples.append(sample)
    return samples


def open_gedit(data: str):
    """GEdit-Bench's train split in whichever form it came: a hub id, a parquet or Arrow file, a folder of parquet
    or Arrow shards, or a folder written by `save_to_disk` (a dataset with `state.json`, or a dataset dict with
    `dataset_dict.json`, also one level down, as a hub download of such a folder lays it out)."""
    import datasets

    path = Path(data).expanduser()
    try:
        if path.is_file():
            kind = "arrow" if path.suffix == ".arrow" else "parquet"
            return datasets.load_dataset(kind, data_files=str(path), split="train")
        if path.is_dir():
            saved = _saved_folder(path)
            if saved is not None:
                return _train_split(datasets.load_from_disk(str(saved)), saved)
            return datasets.load_dataset(str(path), split="train")
        return datasets.load_dataset(data, split="train")
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - missing, offline, unreadable: one sentence
        from .. import runtime

        if path.exists():
            raise BadInput(
                f"{path} could not be read as GEdit-Bench (parquet, Arrow shards or a `save_to_disk` folder): {exc}"
            ) from None
        if runtime.offline():
            raise BadInput(
                f"'{data}' is not on this machine and HF_HUB_OFFLINE=1 is set: download it where there "
                f"is network with `hf download {GEDIT_HUB_ID} --repo-type dataset --local-dir "
                f"data/GEdit-Bench`, then pass --data data/GEdit-Bench."
            ) from None
        raise BadInput(
            f"'{data}' could not be loaded as a dataset ({type(exc).__name__}: {exc}); pass a hub id "
            f"such as {GEDIT_HUB_ID}, a local folder or a parquet or Arrow file."
        ) from None


SAVED_MARKS = ("state.json", "dataset_dict.json")  # what `save_to_disk` writes beside the Arrow shards


def _saved_folder(path: Path) -> Path | None:
    """The `save_to_disk` folder at `path` or in one of its subfolders (a `train` one first), or None."""
    below = sorted((p for p in path.iterdir() if p.is_dir()), key=lambda p: (p.name != "train", p.name))
    for folder in [path, *below]:
        if any((folder / mark).is_file() for mark in SAVED_MARKS):
            return folder
    return None


def _train_split(loaded, folder: Path):
    """The train split of what `load_from_disk` gave (a dataset, or a dataset dict of splits)."""
    import datasets

    if not isinstance(loaded, datasets.DatasetDict):
        return loaded
    if "train" in loaded:
        return loaded["train"]
    if len(loaded) == 1:
        return next(iter(loaded.values()))
    raise BadInput(f"{folder} holds the splits {', '.join(loaded)} and no 'train': point --data at one of them.")


def _image_value(value: Any, data: str) -> Any:
    """An undecoded `datasets.Image` value ({"bytes", "path"}) as bytes, or as a file inside the local data folder."""
    if not isinstance(value, dict) or value.get("bytes"):
        return value.get("bytes") if isinstance(value, dict) else value
    path, root = value.get("path"), Path(data).expanduser()
    if not isinstance(path, str) or not root.exists():
        raise BadInput("The row's image is not embedded in the dataset, and a hub dataset's paths are not followed.")
    return data_file(root if root.is_dir() else root.parent, path)


# -- ImgEdit-Bench basic ----------------------------------------------------------------------------------


def load_imgedit(data: str, edit_json: str | None = None) -> list[Sample]:
    """ImgEdit-Bench's basic set: `basic_edit.json` (`{key: {"id", "prompt", "edit_type"}}`, default
    `<data>/basic_edit.json`) with each `id` a path under the image folder `data`."""
    root = Path(data).expanduser()
    if not root.is_dir():
        raise BadInput(f"--data {root} is not a folder: point it at ImgEdit-Bench's images (Benchmark.tar, unpacked).")
    file = Path(edit_json).expanduser() if edit_json else root / "basic_edit.json"
    entries = read_json(file, f"No basic_edit.json at {file}: pass --edit-json PATH.")
    if not isinstance(entries, dict):
        raise BadInput(f"{file} must hold one JSON object of {{key: {{id, prompt, edit_type}}}}.")
    samples = []
    for key, entry in entries.items():
        entry = entry if isinstance(entry, dict) else {}
        image = entry.get("id")
        sample = Sample(
            str(key),
            str(entry.get("edit_type") or "unknown"),
            entry.get("prompt") or "",
            (lambda name=image: data_file(root, name)) if isinstance(image, str) else None,
            image_id=image if isinstance(image, str) else None,
        )
        missing = [field for field in ("id", "prompt", "edit_type") if not entry.get(field)]
        sample.problem = f"the entry has no {', '.join(missing)}" if missing else _unsafe(sample)
        samples.append(sample)
    return samples


# -- a folder of your own ------------------------------------------------------------------------------------


def load_folder(data: str) -> list[Sample]:
    """`edits.jsonl`: one `{"key", "image", "instruction", "category"}` per line, and optionally a `"mask"` (an
    image: white where the edit may change); images relative to its folder."""
    path = Path(data).expanduser()
    file = path / "edits.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise BadInput(
            f'No edits.jsonl at {file}: write one line {{"key", "image", "instruction", "category"}}}} per edit.'
        )
    samples, seen = [], set()
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: brackets nested thousands deep
            entry = None
        if not isinstance(entry, dict):
            samples.append(Sample(f"line-{number}", "unknown", "", None, problem=f"line {number} is not a JSON object"))
            continue
        key = str(entry.get("key") or f"line-{number}")
        if key in seen:
            raise BadInput(f"{file} has the key '{key}' twice (line {number}); keys must be unique.")
        seen.add(key)
        image, mask = entry.get("image"), entry.get("mask")
        sample = Sample(
            key,
            str(entry.get("category") or "all"),
            entry.get("instruction") or "",
            (lambda name=image: data_file(file.parent, name)) if isinstance(image, str) else None,
            read_mask=(lambda name=mask: data_file(file.parent, name)) if isinstance(mask, str) and mask else None,
        )
        missing = [field for field in ("key", "image", "instruction") if not entry.get(field)]
        sample.problem = f"line {number} has no {', '.join(missing)}" if missing else _unsafe(sample)
        samples.append(sample)
    return samples


def read_json(file: Path, missing: str) -> Any:
    """The JSON in `file`; `BadInput` saying `missing` when there is no such file, or why it is not JSON."""
    if not file.is_file():
        raise BadInput(missing)
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except RecursionError:
        raise BadInput(f"{file} is nested too deeply to be read.") from None
    except ValueError as exc:
        raise BadInput(f"{file} is not valid JSON: {exc}") from None


def data_file(folder: Path, name: str) -> Path:
    """The file a data file names (`name`, relative to `folder`), when it lies in `folder` once links are resolved;
    `BadInput` otherwise, with one sentence whether it is missing or outside: nothing is learned of what is outside."""
    path = own_file(folder, name)
    if path is None:
        raise BadInput(
            f"No image file '{name[:200]}' in {folder} (a sample's image is a file in its data folder; "
            "paths and links out of it are not followed)."
        )
    return path


def _unsafe(sample: Sample) -> str | None:
    """Keys, categories and languages become folder and file names: nothing but plain names."""
    for what, value in (("key", sample.key), ("category", sample.category), ("language", sample.language)):
        if value is not None and (not _SAFE_NAME.fullmatch(value) or len(value) > 128):
            return f"its {what} '{value[:40]}' cannot be a file name"
    return None
