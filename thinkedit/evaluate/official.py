"""GEdit-Bench's official scorer on an eval folder, its code unchanged: `python -m thinkedit.evaluate.official`.

Step1X-Edit's GEdit-Bench scripts fail as written: `test_gedit_score.py` iterates the `DatasetDict` that
`load_dataset` returns (split names, not rows), and `calculate_statistics.py` takes `--language en|zh` while the
data says `cn`. This wrapper imports their functions from your checkout and calls them as their own `__main__`
blocks mean to:

- scoring: for each of their `GROUPS`, the train split's samples whose result and `_SRCIMG` images are in
  `<images>/<model>/fullset/` go through their `process_single_item(item, vie_score)` with their
  `VIEScore(backbone=..., task="tie", key_path="secret_t2.env")`, and the rows go where their statistics read
  them, `<images>/<model>/<backbone>/eval_results_new/<model>_<group>_gpt_score.csv` (a sample already there is
  not scored again);
- statistics: their `analyze_scores(that folder, [model], language)` for each language asked ("en", "cn"),
  printed as their script prints it and kept as `statistics_<language>.json` beside the CSVs.

    python -m thinkedit.evaluate.official --scorer ~/Step1X-Edit/GEdit-Bench --images evals/kontext/images \\
        --model-name loop-last --data data/GEdit-Bench --language en

Run it where the scorer's own requirements are installed (megfile, pandas, the judge's client). Their code reads
`viescore/` and `secret_t2.env` relative to its folder, so that folder is the working directory while it runs.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import BadInput
from .data import GEDIT_HUB_ID, open_gedit

SCORER_FILES = ("test_gedit_score.py", "calculate_statistics.py")
FIELDS = (  # the columns of their CSVs, spelled as they spell them
    "source_image",
    "edited_image",
    "instruction",
    "sementics_score",
    "quality_score",
    "intersection_exist",
    "instruction_language",
)
AVERAGES = ("avg_semantics", "avg_quality", "avg_overall")  # their names for the means over groups
ITEM_FIELDS = ("key", "task_type", "instruction", "instruction_language", "Intersection_exist")


def scorer_folder(path: str | Path) -> Path:
    """The folder holding their two scripts: the one given, or its GEdit-Bench/ (a Step1X-Edit clone)."""
    root = Path(path).expanduser().resolve()
    for folder in (root, root / "GEdit-Bench"):
        if all((folder / name).is_file() for name in SCORER_FILES):
            return folder
    raise BadInput(
        f"--scorer {root} holds no {' and '.join(SCORER_FILES)}: point it at a clone of "
        "github.com/stepfun-ai/Step1X-Edit (or its GEdit-Bench folder)."
    )


@contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Their code imports `viescore` and opens `secret_t2.env` relative to its own folder: run from there."""
    before = os.getcwd()
    sys.path.insert(0, str(folder))
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)
        sys.path.remove(str(folder))


def load_script(folder: Path, name: str) -> ModuleType:
    """Their script `name`.py as a module (its `__main__` block does not run)."""
    spec = importlib.util.spec_from_file_location(f"gedit_official_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gedit_items(data: str, language: str) -> list[dict[str, Any]]:
    """The train split's rows as their `process_single_item` reads them (no images: it reads ours from disk)."""
    table = open_gedit(data)
    missing = [name for name in ITEM_FIELDS if name not in table.column_names]
    if missing:
        raise BadInput(f"{data} is not GEdit-Bench: it has no {', '.join(missing)}.")
    rows = table.select_columns(list(ITEM_FIELDS)).to_list()
    return [row for row in rows if language == "all" or row["instruction_language"] == language]


def score(scorer: Path, images: Path, model: str, backbone: str, items: list[dict[str, Any]], workers: int) -> Path:
    """Their judge on every sample with images and no row yet; returns the folder of their CSVs."""
    module = load_script(scorer, "test_gedit_score")
    vie_score = module.VIEScore(backbone=backbone, task="tie", key_path="secret_t2.env")
    save_path = str(images / model)
    results = images / model / backbone / "eval_results_new"
    results.mkdir(parents=True, exist_ok=True)
    module.save_path = save_path  # the globals their process_single_item reads, as their __main__ sets them
    everything = []
    for group in module.GROUPS:
        file = results / f"{model}_{group}_gpt_score.csv"
        rows = read_csv(file)
        scored = {(row["source_image"], row["edited_image"]) for row in rows}
        todo = []
        for item in (item for item in items if item["task_type"] == group):
            folder = f"{save_path}/fullset/{group}/{item['instruction_language']}/{item['key']}"
            paths = (f"{folder}_SRCIMG.png", f"{folder}.png")
            if all(Path(path).is_file() for path in paths) and paths not in scored:
                todo.append(item)
        module.group_name = group
        with ThreadPoolExecutor(max(1, workers)) as pool:
            rows += [row for row in pool.map(lambda item: module.process_single_item(item, vie_score), todo) if row]
        write_csv(file, rows)
        everything += rows
        print(f"{group}: {len(todo)} scored now, {len(rows)} in all", flush=True)
    write_csv(results / f"{model}_combined_gpt_score.csv", everything)
    return results


def read_csv(file: Path) -> list[dict[str, Any]]:
    if not file.is_file():
        return []
    with open(file, newline="", encoding="utf-8") as lines:
        return list(csv.DictReader(lines))


def write_csv(file: Path, rows: list[dict[str, Any]]) -> None:
    with open(file, "w", newline="", encoding="utf-8") as lines:
        writer = csv.DictWriter(lines, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def statistics(scorer: Path, results: Path, model: str, languages: list[str]) -> dict[str, dict[str, Any]]:
    """Their `analyze_scores` per language, as {language: {"groups", "average", "intersection"}}; printed and
    saved as statistics_<language>.json."""
    module = load_script(scorer, "calculate_statistics")
    found = {}
    for language in languages:
        sc, pq, o, sc_i, pq_i, o_i = module.analyze_scores(str(results), [model], language=language)
        found[language] = {
            "groups": {g: _triple((sc, pq, o), model, g) for g in module.GROUPS},
            "average": _triple((sc, pq, o), model),
            "intersection": {
                "groups": {g: _triple((sc_i, pq_i, o_i), model, g) for g in module.GROUPS},
                "average": _triple((sc_i, pq_i, o_i), model),
            },
        }
        (results / f"statistics_{language}.json").write_text(json.dumps(found[language], indent=2), encoding="utf-8")
        print(f"\n{model}, {language} (semantics, quality, overall):")
        for group, (a, b, c) in found[language]["groups"].items():
            print(f"{group}: {_shown(a)}, {_shown(b)}, {_shown(c)}")
        print("Average: " + ", ".join(_shown(v) for v in found[language]["average"]))
    return found


def _triple(tables: tuple[dict, dict, dict], model: str, group: str | None = None) -> list[float | None]:
    """[SC, PQ, O] of one group, or (no group) their averages; NaN (a group without samples) as None."""
    keys = AVERAGES if group is None else (group, group, group)
    values = [float(table[model][key]) for table, key in zip(tables, keys, strict=True)]
    return [None if math.isnan(v) else v for v in values]


def _shown(value: float | None) -> str:
    return "nan" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m thinkedit.evaluate.official", description="GEdit-Bench's official scorer on an eval folder."
    )
    parser.add_argument("--scorer", required=True, help="your clone of Step1X-Edit, or its GEdit-Bench folder")
    parser.add_argument("--images", required=True, help="the eval's images/ folder")
    parser.add_argument("--model-name", required=True, help="which results: single, loop or loop-last")
    parser.add_argument("--backbone", default="gpt4o", choices=["gpt4o", "qwen25vl"], help="their judge (gpt4o)")
    parser.add_argument("--data", default=GEDIT_HUB_ID, help="GEdit-Bench: hub id, parquet, Arrow or saved folder")
    parser.add_argument("--language", default="en", choices=["en", "cn", "all"], help="which samples (default en)")
    parser.add_argument("--workers", type=int, default=5, help="samples judged at once (theirs: 5)")
    parser.add_argument("--statistics-only", action="store_true", help="only their statistics of the CSVs there")
    args = parser.parse_args(argv)
    try:
        scorer = scorer_folder(args.scorer)
        images = Path(args.images).expanduser().resolve()
        if not (images / args.model_name / "fullset").is_dir():
            raise BadInput(f"{images / args.model_name} has no fullset/: is --images the eval's images/ folder?")
        results = images / args.model_name / args.backbone / "eval_results_new"
        items = gedit_items(args.data, args.language)
        languages = sorted({item["instruction_language"] for item in items}, key=lambda lang: lang != "en")
        with inside(scorer):
            if not args.statistics_only:
                results = score(scorer, images, args.model_name, args.backbone, items, args.workers)
            statistics(scorer, results, args.model_name, languages)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
