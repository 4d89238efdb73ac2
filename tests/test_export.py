import json
import math
import re
import shutil

import pytest
from helpers import RecordingEditor, ScriptedThinker, same_pixels
from PIL import Image

from thinkedit import loop, store
from thinkedit.cli import main
from thinkedit.critique import format_critique, load_template, parse_critique, render
from thinkedit.errors import BadInput
from thinkedit.export import export

# a turn's line in `show`: mark, turn, semantic, quality, edit s, think s, size, changed, outside, prompt
SHOWN_TURN = re.compile(  # a turn's line in `show`: turn, from, by, the person's verdict (often none), scores, …
    r"^[* ] +(?P<turn>\d+) +(?P<parent>\S+) +(?P<by>\S+) +(?P<you>(?:pick|up|down)?) +\S+ +\S+ +[\d.]+ +[\d.]+"
    r" +(?P<size>\S+) +(?P<changed>\S+) +(?P<outside>\S+)  (?P<prompt>.+)$"
)

# (semantic, quality, refined prompt) per turn. Run "climb" improves and reaches the threshold at turn 3;
# run "slip" gets worse at turn 2 and ends at max turns.
CLIMB = [(4, 6, "brighten by 30%"), (7, 8.5, "brighten by 45%"), (9, 9, "brighten by 45%")]
SLIP = [(5, 5, "add a thin red frame"), (4, 5.5, "add a 4 px red frame")]


def overall(semantic, quality):
    return math.sqrt(semantic * quality)


def make_run(scene, run_dir, instruction, script, max_turns):
    request = loop.make_request(scene, instruction, max_turns=max_turns, threshold=8.0, seed=3)
    *_, last = loop.run(RecordingEditor(), ScriptedThinker(script), request, run_dir=run_dir)
    return last.trajectory


@pytest.fixture
def runs(scene, tmp_path):
    root = tmp_path / "runs"
    make_run(scene, root / "climb", "make it brighter", CLIMB, max_turns=3)
    make_run(scene, root / "slip", "add a red frame", SLIP, max_turns=2)
    single = loop.make_request(scene, "make it brighter", max_turns=3)  # single shot: no scores, never exported
    *_, last = loop.run(RecordingEditor(), None, single, run_dir=root / "single")
    assert last.trajectory.turns[0].critique.semantic is None
    return root


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def expected_turns(root):
    """(run name, turn record) for every scored turn, read straight from the saved runs."""
    found = []
    for name in ("climb", "slip"):
        for turn in store.load_run(root / name).record["turns"]:
            found.append((name, turn))
    return found


def assert_resolves_to(out, relative, original):
    assert not relative.startswith("/") and ".." not in relative
    path = out.parent / relative
    assert path.is_file()
    assert same_pixels(Image.open(path), Image.open(original))


def check_prompt_answer(out, root, records, prompt_of, answer_of):
    template = load_template("critique")
    expected = expected_turns(root)
    assert len(records) == len(expected) == len(CLIMB) + len(SLIP)
    for record, (name, turn) in zip(records, expected, strict=True):
        run = store.load_run(root / name)
        prompt = prompt_of(record)
        assert prompt.count("<image>") == len(record["images"]) == 2
        assert prompt == "<image><image>" + render(template, run.record["instruction"], turn["prompt"])
        assert_resolves_to(out, record["images"][0], run.path / "source.png")
        assert_resolves_to(out, record["images"][1], run.path / turn["image"])
        parsed = parse_critique(answer_of(record))
        assert (parsed.semantic, parsed.quality) == (turn["semantic"], turn["quality"])
        assert parsed.refined_prompt == turn["refined_prompt"]
        assert parsed.reasoning == turn["reasoning"]


def test_sft_records_are_sharegpt_and_round_trip(runs, tmp_path):
    out = tmp_path / "export" / "sft.json"
    assert export(runs, out, "sft") == 5
    records = json.loads(out.read_text())
    for record in records:
        assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
    check_prompt_answer(
        out, runs, records, lambda r: r["messages"][0]["content"], lambda r: r["messages"][1]["content"]
    )


def test_rl_lines_round_trip(runs, tmp_path):
    out = tmp_path / "export" / "rl.jsonl"
    assert export(runs, out, "rl") == 5
    records = lines(out)
    assert all(
        set(record) == {"prompt", "images", "answer", "by", "drift"} and record["by"] == "thinker" for record in records
    )
    check_prompt_answer(out, runs, records, lambda r: r["prompt"], lambda r: r["answer"])


def test_jsonl_has_every_field_and_the_computed_gain(runs, tmp_path):
    out = tmp_path / "export" / "turns.jsonl"
    assert export(runs, out, "jsonl") == 5
    records = lines(out)
    for record, (name, turn) in zip(records, expected_turns(runs), strict=True):
        saved = store.load_run(runs / name).record
        for key in set(turn) - {"image"}:
            assert record[key] == turn[key], key
        for key in ("instruction", "editor", "thinker", "settings", "stop_reason", "best_turn"):
            assert record[key] == saved[key], key
        assert record["run"] == name
        assert record["best"] == (turn["index"] == saved["best_turn"])
        assert_resolves_to(out, record["image"], runs / name / turn["image"])
        assert_resolves_to(out, record["source"], runs / name / "source.png")
        assert record["overall"] == pytest.approx(overall(turn["semantic"], turn["quality"]))
        script = CLIMB if name == "climb" else SLIP
        previous = script[turn["index"] - 2] if turn["index"] > 1 else None
        gain = 0.0 if previous is None else overall(turn["semantic"], turn["quality"]) - overall(*previous[:2])
        assert record["gain"] == pytest.approx(gain)
        assert record["satisfied"] == (turn["semantic"] >= 8 and turn["quality"] >= 8)


@pytest.mark.parametrize(
    ("min_gain", "only_satisfied", "expected"),
    [
        (None, False, [("climb", 1), ("climb", 2), ("climb", 3), ("slip", 1), ("slip", 2)]),
        (1.0, False, [("climb", 2), ("climb", 3)]),  # gains 2.82 and 1.29; slip turn 2 lost 0.31
        (2.0, False, [("climb", 2)]),
        (0.0, False, [("climb", 1), ("climb", 2), ("climb", 3), ("slip", 1)]),  # turn 1 counts as 0
        (None, True, [("climb", 3)]),  # climb turn 2 has semantic 7 < 8
        (2.0, True, []),
    ],
)
def test_filters_select_the_right_turns(runs, tmp_path, min_gain, only_satisfied, expected):
    out = tmp_path / "export" / "turns.jsonl"
    count = export(runs, out, "jsonl", min_gain=min_gain, only_satisfied=only_satisfied)
    records = lines(out)
    assert count == len(records)
    assert [(r["run"], r["index"]) for r in records] == expected


def test_export_folder_is_self_contained_and_reads_zips(runs, tmp_path):
    store.zip_run(runs / "slip")  # next to its folder: the same run, exported once
    assert export(runs, tmp_path / "all.jsonl", "jsonl") == 5
    zips = tmp_path / "zips"
    zips.mkdir()
    store.zip_run(runs / "climb", zips / "climb.zip")
    out = tmp_path / "export" / "sft.json"
    assert export(zips, out, "sft", only_satisfied=True) == 1
    moved = shutil.move(tmp_path / "export", tmp_path / "elsewhere")
    record = json.loads((moved / "sft.json").read_text())[0]
    assert record["images"] == ["sft_images/climb/source.png", "sft_images/climb/turn_03.png"]
    assert_resolves_to(moved / "sft.json", record["images"][1], runs / "climb" / "turn_03.png")


def test_cli_export_and_its_errors(runs, tmp_path, capsys):
    out = tmp_path / "export" / "rl.jsonl"
    code = main(["export", "--runs", str(runs), "--format", "rl", "--min-gain", "1", "--out", str(out)])
    assert code == 0 and len(lines(out)) == 2
    assert "2 record(s)" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", "--runs", str(empty), "--out", str(tmp_path / "x.json")]) == 2
    assert "No ThinkEdit runs" in capsys.readouterr().err
    with pytest.raises(BadInput, match="Unknown export format"):
        export(runs, out, "parquet")


@pytest.mark.parametrize("as_zip", [False, True])
def test_show_prints_the_run(runs, tmp_path, capsys, as_zip):
    path = runs / "climb"
    if as_zip:
        path = store.zip_run(path, tmp_path / "climb.zip")
    assert main(["show", str(path)]) == 0
    text = capsys.readouterr().out
    assert "Instruction: make it brighter" in text
    assert "Stopped:     threshold after 3 turn(s)" in text
    assert "Best turn:   3" in text
    rows = [line for line in text.splitlines() if line[:6].strip().lstrip("*").strip() in ("1", "2", "3")]
    assert len(rows) == 3
    for row, prompt, (semantic, quality, _) in zip(
        rows, ["make it brighter"] + [s[2] for s in CLIMB[:2]], CLIMB, strict=True
    ):
        assert row.endswith(prompt)
        assert f"{semantic:g}" in row and f"{quality:g}" in row
    assert rows[2].startswith("*") and not rows[0].startswith("*")


def test_show_prints_sizes_and_reads_runs_saved_before_turns_had_one(runs, capsys):
    assert main(["show", str(runs / "climb")]) == 0
    text = capsys.readouterr().out
    assert "Source:      96×64" in text and text.count("  96×64  ") == 3
    path = runs / "climb" / "trajectory.json"
    record = json.loads(path.read_text())
    for turn in record["turns"]:
        del turn["size"]
    path.write_text(json.dumps(record))
    assert main(["show", str(runs / "climb")]) == 0
    rows = [SHOWN_TURN.match(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["size"] for row in rows if row] == ["–"] * 3


def test_show_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["show", str(tmp_path)]) == 2
    assert "not a ThinkEdit run" in capsys.readouterr().err


# -- the hf format: a Hugging Face dataset folder ----------------------------------------------------

COLUMNS = [
    "source",
    "edited",
    "instruction",
    "prompt",
    "semantic",
    "quality",
    "reasoning",
    "refined_prompt",
    "turn",
    "best",
    "run",
    "editor",
    "thinker",
    "drift_changed",
    "drift_outside",
    "region",
    "edit_seconds",
    "think_seconds",
    "gpu_seconds",
    "prompt_tokens",
    "completion_tokens",
]


def make_sized_run(scene, run_dir):
    """A run whose turns have other sizes than the source (a rotation, then a crop), saved the way the loop saves."""
    request = loop.make_request(scene, "turn it on its side", max_turns=2, threshold=8.0)
    trajectory = loop.Trajectory(request, "classic", "classic", {"threshold": 8.0, "max_turns": 2}, run_dir=run_dir)
    for index, (image, answer) in enumerate(
        [(scene.rotate(90, expand=True), "rotate by 90 degrees"), (scene.crop((8, 4, 72, 52)), "rotate by 90 degrees")],
        1,
    ):
        critique = parse_critique(format_critique(6 + index, 8, f"look {index}", answer))
        trajectory.turns.append(loop.Turn(index, "turn it on its side", image, critique, index, 0.1, 0.1))
    trajectory.stop_reason = "prompt_kept"
    store.save_run(trajectory, run_dir)
    assert {Image.open(run_dir / f"turn_0{i}.png").size for i in (1, 2)} == {(64, 96), (64, 48)}


def load_hub_dataset(folder, tmp_path):
    from datasets import load_dataset

    loaded = load_dataset(str(folder), cache_dir=str(tmp_path / "datasets-cache"))
    assert list(loaded) == ["train"]
    return loaded["train"]


def test_hf_folder_loads_as_is_with_every_field_and_image_of_the_runs(runs, scene, tmp_path):
    from datasets import Image as ImageFeature

    make_sized_run(scene, runs / "sized")
    out = tmp_path / "data" / "my-trajectories"
    assert export(runs, out, "hf") == len(CLIMB) + len(SLIP) + 2
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "README.md",
        "data",
        "data/train-00000-of-00001.parquet",
        "preference",  # the thinker's pairs of the climb (tests/test_steer.py reads them)
        "preference/train-00000-of-00001.parquet",
    ]
    hidden = runs.rename(tmp_path / "hidden")  # the images are in the parquet file, not referenced
    rows = load_hub_dataset(out, tmp_path)
    assert rows.column_names == COLUMNS
    assert isinstance(rows.features["source"], ImageFeature) and isinstance(rows.features["edited"], ImageFeature)

    expected = [
        (name, turn) for name in ("climb", "sized", "slip") for turn in store.load_run(hidden / name).record["turns"]
    ]
    assert len(rows) == len(expected)
    for row, (name, turn) in zip(rows, expected, strict=True):
        record = store.load_run(hidden / name).record
        assert row["run"] == name and row["turn"] == turn["index"]
        for key in ("instruction", "editor", "thinker"):
            assert row[key] == record[key] and row[key], key
        for key in ("prompt", "semantic", "quality", "reasoning", "refined_prompt"):
            assert row[key] == turn[key], key
        assert row["best"] == (turn["index"] == record["best_turn"])
        assert same_pixels(row["source"], Image.open(hidden / name / "source.png"))
        assert same_pixels(row["edited"], Image.open(hidden / name / turn["image"]))
    sizes = {row["edited"].size for row in rows}
    assert {(64, 96), (64, 48), scene.size} <= sizes, "turns of any size"
    assert [row["best"] for row in rows].count(True) == 3, "one best turn per run"


def test_hf_dataset_card_has_the_front_matter_the_hub_reads(runs, tmp_path):
    from huggingface_hub import DatasetCard

    out = tmp_path / "ds"
    export(runs, out, "hf")
    card = DatasetCard.load(out / "README.md")
    meta = card.data.to_dict()
    assert meta["license"] == "other" and "image-to-image" in meta["task_categories"]
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]},
        {"config_name": "preference", "data_files": [{"split": "train", "path": "preference/train-*"}]},
    ]
    info = next(config for config in meta["dataset_info"] if config["config_name"] == "default")
    assert [feature["name"] for feature in info["features"]] == COLUMNS
    assert {f["name"]: f["dtype"] for f in info["features"]}["edited"] == "image"
    assert info["splits"] == [{"name": "train", "num_bytes": info["dataset_size"], "num_examples": 5}]
    assert info["download_size"] == (out / "data" / "train-00000-of-00001.parquet").stat().st_size
    assert "5 turns of 2 Think-while-Edit runs (every turn with both scores)" in card.text
    assert "editor `RecordingEditor`, thinker `ScriptedThinker`: 5 turn(s)" in card.text


def test_hf_takes_the_same_filters_and_replaces_a_previous_export(runs, tmp_path, capsys):
    from huggingface_hub import DatasetCard

    out = tmp_path / "ds"
    code = main(
        [
            "export",
            "--runs",
            str(runs),
            "--format",
            "hf",
            "--min-gain",
            "1",
            "--license",
            "cc-by-4.0",
            "--out",
            str(out),
        ]
    )
    assert code == 0 and "2 record(s)" in capsys.readouterr().out
    rows = load_hub_dataset(out, tmp_path / "first")
    assert [(row["run"], row["turn"]) for row in rows] == [("climb", 2), ("climb", 3)]
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "cc-by-4.0" and "rose by at least 1 over the previous turn" in card.text

    assert main(["export", "--runs", str(runs), "--format", "hf", "--only-satisfied", "--out", str(out)]) == 0
    assert [(row["run"], row["turn"]) for row in load_hub_dataset(out, tmp_path / "second")] == [("climb", 3)]

    empty = tmp_path / "empty"
    assert main(["export", "--runs", str(runs), "--format", "hf", "--min-gain", "9", "--out", str(empty)]) == 2
    assert "No turn passed the filters" in capsys.readouterr().err and not empty.exists()


def test_hf_writes_shards_the_hub_way_when_the_data_is_large(runs, tmp_path, monkeypatch):
    from thinkedit import export as export_module

    monkeypatch.setattr(export_module, "MAX_SHARD_BYTES", 1)  # every row is larger: one shard each
    out = tmp_path / "ds"
    assert export(runs, out, "hf") == 5
    assert sorted(p.name for p in (out / "data").iterdir()) == [f"train-0000{i}-of-00005.parquet" for i in range(5)]
    rows = load_hub_dataset(out, tmp_path)
    assert [(row["run"], row["turn"]) for row in rows] == [
        ("climb", 1),
        ("climb", 2),
        ("climb", 3),
        ("slip", 1),
        ("slip", 2),
    ]
