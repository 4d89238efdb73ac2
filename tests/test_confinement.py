"""Every file a saved record names is read only from its own folder, links resolved: a run's images and record
(`show`, `export`, zips, History), an eval's data (`edits.jsonl`, `basic_edit.json`, GEdit parquet paths) and an
eval folder (the Benchmarks tab). A missing file and one outside give the same sentence."""

import json
import zipfile
from pathlib import Path

import datasets
import pytest
from gradio_client import Client
from helpers import RecordingEditor, ScriptedThinker, same_pixels, serve
from PIL import Image

from thinkedit import loop, store
from thinkedit.cli import main
from thinkedit.config import Settings
from thinkedit.errors import BadInput
from thinkedit.evaluate.report import read_eval

SECRET = (255, 0, 255)  # a colour no run here makes
LINKS_NOT_FOLLOWED = "(a run's files are files in its own folder; links out of it are not followed)"


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the runs and the data, holding an image (`secret.png`) and not holding `missing.png`."""
    folder = tmp_path / "outside"
    folder.mkdir()
    Image.new("RGB", (40, 30), SECRET).save(folder / "secret.png")
    return folder


def finished_run(scene, run_dir: Path) -> Path:
    request = loop.make_request(scene, "make it brighter", max_turns=2)
    *_, last = loop.run(RecordingEditor(), ScriptedThinker([(4, 6, "brighter"), (5, 6, "much brighter")]), request,
                        run_dir=run_dir)  # fmt: skip
    assert len(last.trajectory.turns) == 2
    return run_dir


def link(path: Path, target: Path) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to(target)


def shows_secret(folder: Path) -> bool:
    """Whether any PNG under `folder` has the secret's pixels."""
    return any(Image.open(png).convert("RGB").getpixel((0, 0)) == SECRET for png in folder.rglob("*.png"))


# -- runs ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image", ["source.png", "turn_01.png"])
def test_show_and_export_refuse_a_run_whose_image_links_out_of_it(scene, tmp_path, outside, capsys, image):
    run = finished_run(scene, tmp_path / "runs" / "run")
    out = tmp_path / "data" / "turns.jsonl"
    said = []
    for target in (outside / "secret.png", outside / "missing.png"):  # the same sentence: nothing is learned
        link(run / image, target)
        for command in (["show", str(run)], ["export", "--runs", str(run), "--format", "jsonl", "--out", str(out)]):
            assert main(command) == 2
            said.append(capsys.readouterr().err)
    assert set(said) == {
        f"error: The run at {run} has no {image}, which its trajectory.json names {LINKS_NOT_FOLLOWED}.\n"
    }
    assert not out.parent.exists()


def test_export_of_a_folder_of_runs_skips_the_one_that_links_out(scene, tmp_path, outside, capsys):
    runs = tmp_path / "runs"
    finished_run(scene, runs / "good")
    link(finished_run(scene, runs / "bad") / "source.png", outside / "secret.png")
    out = tmp_path / "data" / "turns.json"
    assert main(["export", "--runs", str(runs), "--out", str(out)]) == 0
    assert f"skipped: The run at {runs / 'bad'} has no source.png" in capsys.readouterr().err
    records = json.loads(out.read_text())
    assert {image.split("/")[1] for record in records for image in record["images"]} == {"good"}
    assert not shows_secret(out.parent)


def test_a_trajectory_json_linked_from_outside_is_not_read(scene, tmp_path, outside):
    elsewhere = finished_run(scene, outside / "run")
    run = finished_run(scene, tmp_path / "runs" / "run")
    link(run / "trajectory.json", elsewhere / "trajectory.json")
    with pytest.raises(BadInput, match="is not a ThinkEdit run: it has no trajectory.json of its own"):
        store.load_run(run)


def test_a_runs_zip_leaves_out_what_links_out_of_it(scene, tmp_path, outside):
    run = finished_run(scene, tmp_path / "runs" / "run")
    link(run / "turn_01.png", outside / "secret.png")
    secret = (outside / "secret.png").read_bytes()
    with zipfile.ZipFile(store.zip_run(run, tmp_path / "run.zip")) as archive:
        assert sorted(Path(name).name for name in archive.namelist()) == [
            "source.png",
            "trajectory.json",
            "turn_02.png",
        ]
        assert all(archive.read(name) != secret for name in archive.namelist())


def test_a_link_that_stays_inside_the_run_is_followed(scene, tmp_path):
    run = finished_run(scene, tmp_path / "runs" / "run")
    link(run / "turn_02.png", run / "turn_01.png")
    saved = store.load_run(run)
    assert same_pixels(saved.image(2), saved.image(1))


# -- eval data ----------------------------------------------------------------------------------------------------


def eval_rows(data: Path, tmp_path: Path, *bench: str) -> dict[str, dict]:
    out = tmp_path / "eval"
    assert main(["eval", *bench, "--data", str(data), "--out", str(out), "--modes", "single", "--no-progress"]) == 0
    return {row["key"]: row for row in map(json.loads, (out / "samples.jsonl").read_text().splitlines())}


def not_followed(name: str, folder: Path) -> str:
    return (
        f"bad data: No image file '{name}' in {folder} (a sample's image is a file in its data folder; "
        "paths and links out of it are not followed)."
    )


def test_edits_jsonl_images_are_read_only_from_the_data_folder(tmp_path, outside, scene):
    data = tmp_path / "set"
    data.mkdir()
    scene.save(data / "scene.png")
    (data / "link.png").symlink_to(outside / "secret.png")
    names = {
        "inside": "scene.png",
        "up": "../outside/secret.png",
        "absolute": str(outside / "secret.png"),
        "link": "link.png",
        "missing": "../outside/missing.png",
        "nul": "scene\0.png",
    }
    lines = [{"key": key, "image": name, "instruction": "make it brighter"} for key, name in names.items()]
    (data / "edits.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows = eval_rows(data, tmp_path, "--bench", "folder")
    assert rows["inside"]["error"] is None
    for key, name in names.items():
        if key != "inside":
            assert rows[key]["error"] == not_followed(name, data), key
    assert not shows_secret(tmp_path / "eval")


def test_imgedit_ids_are_read_only_from_the_image_folder(tmp_path, outside, scene):
    root = tmp_path / "Benchmark" / "singleturn"
    root.mkdir(parents=True)
    scene.save(root / "ok.png")
    entries = {
        "1": {"id": "ok.png", "prompt": "make it brighter", "edit_type": "adjust"},
        "2": {"id": "../../outside/secret.png", "prompt": "make it brighter", "edit_type": "adjust"},
    }
    (root / "basic_edit.json").write_text(json.dumps(entries))
    rows = eval_rows(root, tmp_path, "--bench", "imgedit")
    assert rows["1"]["error"] is None and rows["2"]["error"] == not_followed("../../outside/secret.png", root)


def test_a_gedit_parquet_naming_a_path_is_read_only_inside_its_folder(tmp_path, outside, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    features = datasets.Features(
        {
            "key": datasets.Value("string"),
            "task_type": datasets.Value("string"),
            "instruction": datasets.Value("string"),
            "instruction_language": datasets.Value("string"),
            "input_image": datasets.Image(decode=False),
        }
    )
    row = {"key": "g1", "task_type": "style_change", "instruction": "make it red", "instruction_language": "en"}
    parquet = tmp_path / "gedit" / "test-00000-of-00001.parquet"
    parquet.parent.mkdir()
    path = str(outside / "secret.png")
    columns = {name: [value] for name, value in row.items()} | {"input_image": [{"bytes": None, "path": path}]}
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(parquet))
    rows = eval_rows(parquet, tmp_path, "--bench", "gedit")
    assert rows["g1"]["error"] == not_followed(path, parquet.parent)


# -- eval folders (the Benchmarks tab) ----------------------------------------------------------------------------


@pytest.fixture
def crafted_eval(tmp_path, outside) -> Path:
    """A real eval folder (two samples), plus a line that names images outside it."""
    from test_eval import build_eval

    folder = build_eval(tmp_path / "evals")
    crafted = {"key": "evil", "category": "look", "instruction": "x", "mode": "single", "sc": 1, "pq": 1, "o": 1}
    crafted |= {"run": "../../outside", "image": str(outside / "secret.png"), "error": None}
    with (folder / "samples.jsonl").open("a") as lines:
        lines.write(json.dumps(crafted) + "\n")
    return folder


def test_read_eval_names_no_image_outside_the_eval_folder(crafted_eval):
    samples = {sample["key"]: sample for sample in read_eval(crafted_eval)["samples"]}
    assert samples["evil"]["source"] is None and samples["evil"]["single"]["image"] is None
    assert all(Path(samples["bw"][field] if field == "source" else samples["bw"]["single"]["image"]).is_relative_to(
        crafted_eval.resolve()) for field in ("source", "image"))  # fmt: skip


def test_an_eval_folders_files_linked_from_outside_are_not_read(crafted_eval, tmp_path):
    elsewhere = tmp_path / "outside" / "samples.jsonl"
    elsewhere.write_text((crafted_eval / "samples.jsonl").read_text())
    link(crafted_eval / "samples.jsonl", elsewhere)
    assert read_eval(crafted_eval)["samples"] == []
    link(crafted_eval / "eval.json", tmp_path / "outside" / "eval.json")
    with pytest.raises(BadInput, match="is not an eval folder"):
        read_eval(crafted_eval)


def test_the_benchmarks_tab_shows_no_outside_image_and_history_opens_no_outside_file(
    crafted_eval, tmp_path, outside, scene
):
    runs = tmp_path / "runs"
    link(finished_run(scene, runs / "linked") / "turn_01.png", outside / "secret.png")
    link(finished_run(scene, runs / "dangling") / "turn_01.png", outside / "missing.png")
    demo, url = serve(Settings(runs_dir=runs, evals_dir=crafted_eval.parent))
    try:
        client = Client(url, verbose=False)
        *_, gallery, _compute_plot = client.predict(crafted_eval.name, api_name="/benchmark")
        assert len(gallery) == 2, "the crafted line's outside image is not shown"
        assert all(Image.open(item["image"]).convert("RGB").getpixel((0, 0)) != SECRET for item in gallery)
        refusals = []
        for name in ("linked", "dangling"):
            with pytest.raises(Exception, match="has no turn_01.png") as refusal:
                client.predict(None, name, api_name="/open_run")
            refusals.append(str(refusal.value).replace(name, "RUN"))
        assert refusals[0] == refusals[1], "one sentence whether or not the outside file exists"
    finally:
        demo.close()
