import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from thinkedit.cli import main
from thinkedit.config import Settings

ASSET = next(iter(sorted(Path(__file__).parent.parent.joinpath("assets").glob("*.png"))), None)


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "thinkedit", *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.skipif(ASSET is None, reason="assets/ has no PNG")
def test_edit_end_to_end_writes_a_valid_run_folder(tmp_path):
    out = tmp_path / "run"
    result = cli(
        "edit",
        "--image",
        str(ASSET),
        "--instruction",
        "make it black and white and add a thin red frame",
        "--editor",
        "classic",
        "--thinker",
        "classic",
        "--max-turns",
        "3",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "Turn 1" in result.stdout and "semantic" in result.stdout
    record = json.loads((out / "trajectory.json").read_text())
    assert record["editor"] == "classic" and record["thinker"] == "classic"
    assert 1 <= len(record["turns"]) <= 3
    assert record["stop_reason"] in ("threshold", "prompt_kept", "max_turns")
    for turn in record["turns"]:
        assert (out / turn["image"]).is_file()
        assert Image.open(out / turn["image"]).size == Image.open(ASSET).size


@pytest.mark.skipif(ASSET is None, reason="assets/ has no PNG")
def test_a_rotation_keeps_its_shape_through_edit_show_and_export(tmp_path, capsys):
    out = tmp_path / "run"
    result = cli(
        "edit",
        "--image",
        str(ASSET),
        "--instruction",
        "rotate 90 degrees clockwise",
        "--editor",
        "classic",
        "--thinker",
        "classic",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    source = Image.open(ASSET).convert("RGB")
    (width, height), rotated = source.size, source.transpose(Image.Transpose.ROTATE_270)
    record = json.loads((out / "trajectory.json").read_text())
    turn = record["turns"][0]
    assert record["size"] == [width, height] and turn["size"] == [height, width] and turn["semantic"] >= 8
    assert Image.open(out / turn["image"]).convert("RGB").tobytes() == rotated.tobytes()

    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert f"Source:      {width}×{height}" in shown
    assert f"{height}×{width}        –        –  rotate 90 degrees clockwise" in shown, "no drift across shapes"
    assert turn["drift"] is None
    assert main(["export", "--runs", str(out), "--format", "sft", "--out", str(tmp_path / "sft.json")]) == 0
    images = json.loads((tmp_path / "sft.json").read_text())[0]["images"]
    assert [Image.open(tmp_path / path).size for path in images] == [(width, height), (height, width)]


@pytest.mark.parametrize(
    ("instruction", "size"),
    [
        ("crop the left half", (16, 20)),
        ("crop the right half", (16, 20)),
        ("crop the top half", (32, 10)),
        ("crop the bottom half", (32, 10)),
        ("make the image half the size", (16, 10)),
    ],
)
def test_crops_and_resizes_keep_their_shape_through_the_cli(tmp_path, capsys, instruction, size):
    image = tmp_path / "in.png"
    Image.radial_gradient("L").resize((32, 20)).convert("RGB").save(image)
    code = main(
        [
            "edit",
            "--image",
            str(image),
            "--instruction",
            instruction,
            "--max-turns",
            "2",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 0
    turns = json.loads((tmp_path / "run" / "trajectory.json").read_text())["turns"]
    assert [Image.open(tmp_path / "run" / turn["image"]).size for turn in turns] == [size]


def test_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not really a png")
    result = cli("edit", "--image", str(broken), "--instruction", "x")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "not an image" in result.stderr
    image = tmp_path / "ok.png"
    Image.new("RGB", (8, 8)).save(image)
    for args in (
        ["--instruction", "  "],
        ["--instruction", "x", "--max-turns", "11"],
        ["--instruction", "x", "--threshold", "12"],
        ["--instruction", "x", "--editor", "nope"],
        [
            "--instruction",
            "x",
            "--thinker",
            "openai",
            "--thinker-url",
            "http://127.0.0.1:9/v1",
            "--thinker-template",
            str(tmp_path / "missing.txt"),
        ],
    ):
        result = cli("edit", "--image", str(image), *args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_runs_go_under_the_runs_root_by_default(tmp_path, monkeypatch, capsys):
    image = tmp_path / "in.png"
    Image.new("RGB", (32, 32), (90, 90, 90)).save(image)
    monkeypatch.setenv("THINKEDIT_RUNS_DIR", str(tmp_path / "my-runs"))
    code = main(["edit", "--image", str(image), "--instruction", "make it brighter", "--max-turns", "1"])
    assert code == 0
    runs = list((tmp_path / "my-runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "trajectory.json").is_file()


def test_backends_lists_every_backend_with_a_reason(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "classic" in out and "flux-kontext" in out and "editthinker" in out
    assert "weights not in the local cache: black-forest-labs/FLUX.1-Kontext-dev" in out
    assert "no endpoint configured" in out
    assert "runtime: device cpu" in out


def test_settings_mirror_the_environment():
    settings = Settings.from_env(
        {"THINKEDIT_EDITOR_MODEL": "/models/x", "THINKEDIT_MAX_TURNS": "5", "THINKEDIT_PUBLIC": "true"},
        thinker_url="http://h/v1",
    )
    assert settings.editor_model == "/models/x" and settings.max_turns == 5 and settings.public is True
    assert settings.thinker_url == "http://h/v1"
    assert Settings.from_env({"THINKEDIT_EDITOR": "a"}, editor="b").editor == "b"


def test_backends_explain_remote_requirements_and_hide_url_credentials(capsys, monkeypatch):
    import huggingface_hub.constants

    assert main(["backends"]) == 0
    assert "HF_HUB_OFFLINE=1 is set: Inference Providers cannot be reached" in capsys.readouterr().out
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # what huggingface_hub read at import
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    assert main(["backends", "--thinker", "openai", "--thinker-url", "http://user:hunter22@gpu-box:8000/v1"]) == 0
    out = capsys.readouterr().out
    assert "needs HF_TOKEN in the environment" in out
    assert "remote: http://gpu-box:8000/v1" in out and "hunter22" not in out


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--guidance", "nan", "guidance must be a finite number"),
        ("--guidance", "inf", "guidance must be a finite number"),
        ("--threshold", "-inf", "The stop threshold must be a finite number"),
        ("--steps", "0", "steps must be from 1 to 500"),
    ],
)
def test_non_finite_and_out_of_range_numbers_are_refused_before_any_run(tmp_path, capsys, flag, value, message):
    image = tmp_path / "in.png"
    Image.new("RGB", (32, 32), (90, 90, 90)).save(image)
    out = tmp_path / "run"
    code = main(
        ["edit", "--image", str(image), "--instruction", "make it brighter", f"{flag}={value}", "--out", str(out)]
    )
    assert code == 2 and message in capsys.readouterr().err
    assert not out.exists(), "nothing is written for a refused request"


def edit_seeds(tmp_path, name: str, *flags: str, env: dict | None = None) -> tuple[dict, str]:
    """An `edit` of a vague instruction the classic thinker refines over several turns: its record and output."""
    image = tmp_path / "in.png"
    Image.radial_gradient("L").resize((48, 32)).convert("RGB").save(image)
    out = tmp_path / name
    args = ["--image", str(image), "--instruction", "make it look old", "--max-turns", "3", "--seed", "5"]
    result = cli("edit", *args, *flags, "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "trajectory.json").read_text()), result.stdout


def test_every_turn_edits_with_one_seed_unless_asked_to_increment(tmp_path):
    import os

    record, printed = edit_seeds(tmp_path, "same")
    assert len(record["turns"]) >= 2 and {turn["seed"] for turn in record["turns"]} == {5}
    assert record["settings"]["seed_per_turn"] == "same" and record["settings"]["no_answer"] == "stop"
    reason = record["stop_reason"]
    assert f"Stopped: {reason} — " in printed and "good enough" not in printed

    record, _ = edit_seeds(tmp_path, "increment", "--seed-per-turn", "increment")
    assert [turn["seed"] for turn in record["turns"]] == [5 + i for i in range(len(record["turns"]))]
    assert record["settings"]["seed_per_turn"] == "increment"
    env = {**os.environ, "THINKEDIT_SEED_PER_TURN": "increment"}  # the setting's default, from the environment
    record, _ = edit_seeds(tmp_path, "from-env", env=env)
    assert [turn["seed"] for turn in record["turns"]][:2] == [5, 6]
    bad = cli(
        "edit",
        "--image",
        str(tmp_path / "in.png"),
        "--instruction",
        "x",
        env={**env, "THINKEDIT_SEED_PER_TURN": "dice"},
    )
    assert bad.returncode == 2 and "Unknown seed_per_turn 'dice'; use same or increment." in bad.stderr


def test_keep_history_has_a_flag_and_a_variable():
    import argparse

    from thinkedit.config import add_app_arguments, settings_from_args

    parser = argparse.ArgumentParser()
    add_app_arguments(parser)
    assert Settings.from_env({}).keep_history is True
    assert Settings.from_env({"THINKEDIT_KEEP_HISTORY": "0"}).keep_history is False
    assert settings_from_args(parser.parse_args(["--no-keep-history"])).keep_history is False
    assert settings_from_args(parser.parse_args([])).keep_history is True
