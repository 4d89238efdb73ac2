"""The docs' examples are real: the "Add an editor in one file" example of docs/architecture.md passes the project's
ruff and edits an image; the Python examples of docs/api.md run against a served app, and the `edit` / `show` lines of
docs/cli.md run as written, both with the offline backends."""

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import serve
from PIL import Image
from tiny_pipelines import build_tiny_pipeline

from thinkedit import bench, cli
from thinkedit.backend import BackendSpec
from thinkedit.config import Settings
from thinkedit.editors import _DIFFUSERS, EDITORS
from thinkedit.loop import STOP_REASONS
from thinkedit.registry import build_backend

PROJECT = Path(__file__).resolve().parent.parent
DOCS = PROJECT / "docs"


def code_blocks(page: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.DOTALL)


def example_blocks() -> tuple[str, str]:
    """(the editor's file, its table row) from docs/architecture.md's section."""
    page = (DOCS / "architecture.md").read_text(encoding="utf-8")
    section = page.split("## Add an editor in one file", 1)[1]
    module, row = re.findall(r"```python\n(.*?)```", section, re.DOTALL)[:2]
    return module, row


def test_the_one_file_editor_example_passes_ruff_and_runs(tmp_path, monkeypatch, scene):
    module, row = example_blocks()
    path = tmp_path / "magicbrush.py"
    path.write_text(module, encoding="utf-8")
    ruff = Path(sys.executable).with_name("ruff")
    config = ["--config", str(PROJECT / "pyproject.toml")]
    for command in (["check", *config, str(path)], ["format", "--check", "--diff", *config, str(path)]):
        done = subprocess.run([str(ruff), *command], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr

    spec = eval(row.strip().rstrip(","), {"BackendSpec": BackendSpec, "_DIFFUSERS": _DIFFUSERS})
    assert spec.target == "thinkedit.editors.magicbrush:MagicBrushEditor"
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(EDITORS, spec.name, replace(spec, target="magicbrush:MagicBrushEditor"))
    folder = build_tiny_pipeline("instruct-pix2pix", tmp_path / "tiny")  # the same pipeline class, tiny
    editor = build_backend("editor", Settings(editor="magicbrush", editor_model=str(folder)))
    steps: list[int] = []
    edited = editor.edit(scene, "make the sky orange", seed=0, steps=2, on_step=lambda i, n: steps.append(i))
    assert edited.size == scene.size and edited.mode == "RGB"
    assert steps == [1, 2]


@pytest.fixture
def photo_folder(tmp_path, monkeypatch) -> Path:
    """A working folder holding the files the examples name: photo.jpg and the project's assets/."""
    bench.scene(320, 220).save(tmp_path / "photo.jpg")
    (tmp_path / "assets").symlink_to(PROJECT / "assets")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_api_examples_run_against_the_app(photo_folder, capsys):
    pytest.importorskip("gradio_client")
    demo, url = serve(Settings(runs_dir=photo_folder / "runs"))
    try:
        edit, steer = code_blocks("api.md", "python")[:2]
        for code in (edit, steer):
            assert "http://127.0.0.1:7860/" in code
            shown: dict = {}
            exec(compile(code.replace("http://127.0.0.1:7860/", url.rstrip("/") + "/"), "docs/api.md", "exec"), shown)
            if code is edit:
                stop_reason, best_turn, run_dir = capsys.readouterr().out.splitlines()[-1].split()  # its print()
                assert stop_reason in STOP_REASONS and int(best_turn) >= 1 and Path(run_dir).is_dir()
    finally:
        demo.close()
    record = shown["record"]  # the steering example: feedback, the person's prompt, a new stage, their pick
    assert [turn["by"] for turn in record["turns"]] == ["instruction", "thinker", "person", "instruction"]
    assert [turn["parent"] for turn in record["turns"]] == [None, 1, 2, 2]
    assert len(record["stages"]) == 2 and record["picked_turn"] == 3


def command_lines(page: str) -> list[list[str]]:
    """The `python -m thinkedit edit|show` lines of `page`'s bash blocks, as argv (continuations joined)."""
    lines = re.sub(r"\\\n\s*", " ", "\n".join(code_blocks(page, "bash"))).splitlines()
    argvs = [shlex.split(line, comments=True) for line in lines]
    return [argv[3:] for argv in argvs if argv[:3] == ["python", "-m", "thinkedit"] and argv[3] in ("edit", "show")]


def test_the_command_line_examples_run(photo_folder, capsys):
    commands = command_lines("cli.md")
    assert [argv[0] for argv in commands] == ["edit", "show", "edit", *["edit"] * 4, "show"]
    for argv in commands:
        assert cli.main(argv) == 0, f"thinkedit {shlex.join(argv)}: {capsys.readouterr().err}"
    demo = json.loads((photo_folder / "runs" / "demo" / "trajectory.json").read_text())
    assert demo["editor"] == demo["thinker"] == "classic" and 1 <= len(demo["turns"]) <= 3
    old = json.loads((photo_folder / "runs" / "old" / "trajectory.json").read_text())
    assert [turn["parent"] for turn in old["turns"]] == [None, 1, 2, 2, 3]
    assert [turn["stage"] for turn in old["turns"]] == [1, 1, 1, 1, 2]
    assert "add a thin white border" in capsys.readouterr().out  # `show runs/old` prints the new stage


@pytest.mark.browser
def test_the_readme_picture_command_makes_the_picture(tmp_path):
    """`scripts/studio_picture.py` (docs/install.md) still drives the page to turn 2 of a run: a picture of the committed
    one's width and palette, about as tall (a layout that moved the reasoning box far off would change that)."""
    if not Path("/usr/bin/chromium").exists() or importlib.util.find_spec("playwright") is None:
        pytest.skip("needs Debian's /usr/bin/chromium and playwright")
    out = tmp_path / "studio.png"
    done = subprocess.run(
        [sys.executable, "scripts/studio_picture.py", "--out", str(out)], cwd=PROJECT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    made, committed = Image.open(out), Image.open(DOCS / "images" / "studio.png")
    assert made.mode == committed.mode == "P" and made.width == committed.width == 960
    assert abs(made.height - committed.height) <= committed.height * 0.1, (made.size, committed.size)
