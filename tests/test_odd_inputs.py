"""Odd values through the CLI, eval, export, serve-editor and saved runs, each answered with a sentence: numbers
beyond 64 bits, NUL characters, JSON nested 100,000 deep, a non-image file, a full disk, nonsense flags, and the
megapixel limit's message."""

import json
import os
import resource
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from helpers import RecordingEditor, ScriptedThinker, png_by_hand, serve
from PIL import Image

from thinkedit import loop, store
from thinkedit.cli import main
from thinkedit.config import Settings
from thinkedit.errors import BadInput
from thinkedit.evaluate.report import read_eval
from thinkedit.images import load_image

MB = 2**20
DEEP = "[" * 100_000 + "]" * 100_000  # Python's json gives up with a RecursionError at about 1000
REPO = Path(__file__).resolve().parent.parent


def finished_run(scene, run_dir: Path, script=((4, 6, "brighter"), (5, 6, "much brighter"))) -> Path:
    request = loop.make_request(scene, "make it brighter", max_turns=len(script))
    *_, last = loop.run(RecordingEditor(), ScriptedThinker(list(script)), request, run_dir=run_dir)
    assert last.trajectory.stop_reason != "error"
    return run_dir


def rewrite_record(run_dir: Path, change) -> None:
    record = json.loads((run_dir / "trajectory.json").read_text())
    change(record)
    (run_dir / "trajectory.json").write_text(json.dumps(record))


# -- numbers a run never writes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "value", "said"),
    [
        ("seed", 2**70, "the number 1180591620717411303424"),
        ("index", 2**64, "the number 18446744073709551616"),
        ("semantic", "1e999", "the number 1e999"),
    ],
)
def test_a_record_holding_a_number_no_run_writes_is_refused_with_a_sentence(
    scene, tmp_path, capsys, where, value, said
):
    run = finished_run(scene, tmp_path / "run")
    text = (run / "trajectory.json").read_text()
    old = {"seed": '"seed": 0', "index": '"index": 2', "semantic": '"semantic": 5'}[where]
    assert old in text
    (run / "trajectory.json").write_text(text.replace(old, f'"{where}": {value}', 1))
    assert main(["show", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"error: {run / 'trajectory.json'} holds {said}; a run's numbers are finite and whole ones fit in 64 bits.\n"
    )


def test_a_run_zip_with_a_seed_beyond_64_bits_is_refused_and_the_page_goes_on(scene, tmp_path):
    run = finished_run(scene, tmp_path / "run")
    rewrite_record(run, lambda record: record["turns"][0].update(seed=2**70))
    archive = store.zip_run(run, tmp_path / "run.zip")
    demo, url = serve(Settings(runs_dir=tmp_path / "runs"))
    try:
        client = Client(url, verbose=False)
        with pytest.raises(Exception, match="holds the number 1180591620717411303424; a run's numbers are finite"):
            client.predict(handle_file(str(archive)), "", api_name="/open_run")
        rewrite_record(run, lambda record: record["turns"][0].update(seed=7))
        opened = client.predict(handle_file(str(store.zip_run(run, tmp_path / "fixed.zip"))), "", api_name="/open_run")
        assert any(isinstance(value, dict) and value.get("instruction") == "make it brighter" for value in opened)
    finally:
        demo.close()


# -- NUL characters ---------------------------------------------------------------------------------------------


def test_a_nul_in_a_settings_file_path_is_refused_with_a_sentence(tmp_path, monkeypatch, capsys, scene):
    scene.save(tmp_path / "scene.png")
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"runs_dir": "runs\0evil"}))
    monkeypatch.setenv("THINKEDIT_SETTINGS_FILE", str(settings))
    monkeypatch.delenv("THINKEDIT_RUNS_DIR")  # the tests' own runs folder would win over the file
    monkeypatch.chdir(tmp_path)
    assert main(["edit", "--image", str(tmp_path / "scene.png"), "--instruction", "make it brighter"]) == 2
    assert capsys.readouterr().err == (
        "error: THINKEDIT_RUNS_DIR holds a NUL character, which no name or path may hold.\n"
    )


def test_a_nul_in_an_eval_line_is_that_samples_sentence(tmp_path, scene):
    data = tmp_path / "set"
    data.mkdir()
    scene.save(data / "scene.png")
    lines = [
        {"key": "ok", "image": "scene.png", "instruction": "make it brighter"},
        {"key": "bad\0key", "image": "scene.png", "instruction": "make it brighter"},
        {"key": "nul-category", "image": "scene.png", "instruction": "x", "category": "a\0b"},
    ]
    (data / "edits.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "eval"
    assert main(["eval", "--bench", "folder", "--data", str(data), "--out", str(out), "--modes", "single",
                 "--no-progress"]) == 0  # fmt: skip
    errors = [json.loads(line)["error"] for line in (out / "samples.jsonl").read_text().splitlines()]
    assert errors == [None, "bad data: its key 'bad\0key' cannot be a file name",
                      "bad data: its category 'a\0b' cannot be a file name"]  # fmt: skip


# -- JSON nested 100,000 deep -------------------------------------------------------------------------------------


def test_a_deeply_nested_settings_file_is_refused_with_a_sentence(tmp_path, monkeypatch, capsys):
    settings = tmp_path / "settings.json"
    settings.write_text(DEEP)
    monkeypatch.setenv("THINKEDIT_SETTINGS_FILE", str(settings))
    assert main(["backends"]) == 2
    assert capsys.readouterr().err == f"error: {settings} is nested too deeply to be a settings file.\n"


def test_a_deeply_nested_edits_line_is_that_lines_failure(tmp_path, scene):
    data = tmp_path / "set"
    data.mkdir()
    scene.save(data / "scene.png")
    good = json.dumps({"key": "ok", "image": "scene.png", "instruction": "make it brighter"})
    (data / "edits.jsonl").write_text(f"{good}\n{DEEP}\n")
    out = tmp_path / "eval"
    assert main(["eval", "--bench", "folder", "--data", str(data), "--out", str(out), "--modes", "single",
                 "--no-progress"]) == 0  # fmt: skip
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [(row["key"], row["error"]) for row in rows] == [
        ("ok", None),
        ("line-2", "bad data: line 2 is not a JSON object"),
    ]

    with (out / "samples.jsonl").open("a") as lines:  # a resumed eval and the Benchmarks tab meet such a line
        lines.write(DEEP + "\n")
    said = f"{out / 'samples.jsonl'} line 3 is nested too deeply to be a sample's line."
    with pytest.raises(BadInput) as caught:
        read_eval(out)
    assert str(caught.value) == said
    assert main(["eval", "--bench", "folder", "--data", str(data), "--out", str(out), "--modes", "single",
                 "--no-progress"]) == 2  # fmt: skip


def test_a_deeply_nested_basic_edit_json_is_refused_with_a_sentence(tmp_path, capsys):
    (tmp_path / "basic_edit.json").write_text(DEEP)
    args = ["eval", "--bench", "imgedit", "--data", str(tmp_path), "--out", str(tmp_path / "eval"), "--no-progress"]
    assert main(args) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'basic_edit.json'} is nested too deeply to be read.\n"


# -- a non-image file -------------------------------------------------------------------------------------------------


def test_a_non_image_file_is_refused_from_its_header_not_read_whole(tmp_path, capsys):
    """A 256 MB file (sparse: it costs no disk) given to `edit --image`: refused, and memory stays small."""
    big = tmp_path / "video.mp4"
    with big.open("wb") as file:
        file.write(b"\0\0\0\x18ftypmp42")
        file.truncate(256 * MB)
    tracemalloc.start()
    try:
        code = main(["edit", "--image", str(big), "--instruction", "make it brighter"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 2
    assert capsys.readouterr().err.startswith("error: This file is not an image Pillow can read")
    assert peak < 16 * MB, f"peak {peak / MB:.1f} MB"


def test_the_megapixel_limit_message_does_not_contradict_itself():
    header_only = png_by_hand(6400, 6300, 8, 2, b"")  # the size is refused before any pixel is decoded
    with pytest.raises(BadInput) as caught:
        load_image(header_only)
    assert str(caught.value) == (
        "The image is 6400×6300 = 40.3 megapixels; the limit is 40 megapixels. Downscale it first."
    )
    with pytest.raises(BadInput, match=r"= 40\.000001 megapixels; the limit is 40 megapixels"):
        load_image(png_by_hand(40_000_001, 1, 8, 2, b""))


# -- a full disk -------------------------------------------------------------------------------------------------------


def limited_to(size: int):
    """A `preexec_fn`: files the child writes may grow to `size` bytes; past that a write fails with EFBIG, the way a
    full disk fails it with ENOSPC (Python ignores SIGXFSZ, so the write returns the error)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


@pytest.mark.parametrize("fmt", ["sft", "hf"])
def test_export_to_a_full_disk_leaves_no_truncated_file_and_says_so(scene, tmp_path, fmt):
    runs = tmp_path / "runs"
    big = Image.effect_noise((200, 200), 80).convert("RGB")  # a turn PNG of ~120 kB: over the limit
    finished_run(big, runs / "run")
    out = tmp_path / "data" / ("turns.json" if fmt == "sft" else "dataset")
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(tmp_path / "scratch")}
    (tmp_path / "scratch").mkdir()
    command = [sys.executable, "-m", "thinkedit", "export", "--runs", str(runs), "--format", fmt, "--out", str(out)]
    done = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True,
                          preexec_fn=limited_to(60_000), timeout=240)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1] == (  # after `datasets`' progress lines
        f"error: The export to {out} could not be written (File too large); every file it wrote is whole "
        "(nothing is left half-written). Free some space or choose another --out, and run it again."
    )
    written = [path for path in tmp_path.joinpath("data").rglob("*") if path.is_file()]
    assert not [path for path in written if path.name.startswith(".")], "no temp file is left"
    for path in written:
        if path.suffix == ".png":
            assert Image.open(path).load() is not None  # whole, not truncated
    assert not out.is_file()


# -- serve-editor's flags -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [
        ("--max-body-mb", "-1", "must be a number from 0.001 to 65,536, not '-1'"),
        ("--max-body-mb", "nan", "must be a number from 0.001 to 65,536, not 'nan'"),
        ("--max-body-mb", "inf", "must be a number from 0.001 to 65,536, not 'inf'"),
        ("--port", "99999", "must be a whole number from 1 to 65,535, not '99999'"),
        ("--port", "0", "must be a whole number from 1 to 65,535, not '0'"),
        ("--max-queue", "-3", "must be a whole number from 0 to 10,000, not '-3'"),
        ("--body-timeout", "0", "must be a number from 0.1 to 86,400, not '0'"),
        ("--header-timeout", "nan", "must be a number from 0.1 to 3,600, not 'nan'"),
    ],
)
def test_serve_editor_refuses_nonsense_flags_before_starting(flag, value, said, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["serve-editor", flag, value])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"thinkedit serve-editor: error: argument {flag}: {said}"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["eval", "--concurrency", "0"], "argument --concurrency: must be a whole number from 1 to 256, not '0'"),
        (["eval", "--limit", "-5"], "argument --limit: must be a whole number from 1 to 1,000,000,000, not '-5'"),
        (["export", "--runs", "r", "--out", "o", "--min-gain", "nan"], "argument --min-gain: must be a number"),
    ],
)
def test_eval_and_export_refuse_nonsense_numbers(args, said, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 2 and said in capsys.readouterr().err


def test_a_zip_with_a_huge_index_is_refused_before_unpacking(scene, tmp_path):
    run = finished_run(scene, tmp_path / "run")
    rewrite_record(run, lambda record: record.update(best_turn=2**80))
    archive = store.zip_run(run, tmp_path / "run.zip")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(BadInput, match="holds the number 120892581961462917470617…; a run's numbers"):
        store.load_run(archive, unpack_to=scratch)
    assert not list(scratch.iterdir())
    assert zipfile.is_zipfile(archive)
