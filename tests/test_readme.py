"""The "Add an editor in one file" example of docs/architecture.md is real: it passes the project's ruff and edits an image."""

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from tiny_pipelines import build_tiny_pipeline

from thinkedit.backend import BackendSpec
from thinkedit.config import Settings
from thinkedit.editors import _DIFFUSERS, EDITORS
from thinkedit.registry import build_backend

PROJECT = Path(__file__).resolve().parent.parent


def example_blocks() -> tuple[str, str]:
    """(the editor's file, its table row) from docs/architecture.md's section."""
    readme = (PROJECT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = readme.split("## Add an editor in one file", 1)[1]
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
