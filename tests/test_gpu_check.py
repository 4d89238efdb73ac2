"""scripts/gpu_check.py on the CPU: `--dry-run` runs every editor at its real widths (one layer, one step), so
a shape that only breaks at real size breaks here; a failing editor is one error row, the others still run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import diffusers
import pytest
import torch

from thinkedit import runtime


@pytest.fixture
def script():
    path = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    runtime.CACHE.clear()


def rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_dry_run_runs_every_editor_at_its_real_widths(script, capsys, monkeypatch):
    built = []  # (class, default dtype while it was built): the denoisers and VAEs never exist in float32
    for name in {json.loads(f.read_text()).get("_class_name") for f in script.CONFIGS.glob("*.json")} & set(
        dir(diffusers)
    ):
        original = getattr(diffusers, name).from_config.__func__

        def from_config(cls, *args, original=original, **kwargs):
            built.append((cls.__name__, torch.get_default_dtype()))
            return original(cls, *args, **kwargs)

        monkeypatch.setattr(getattr(diffusers, name), "from_config", classmethod(from_config))
    assert script.main(["--dry-run"]) == 0
    *checks, summary = rows(capsys.readouterr().out)
    editors = {row["editor"]: row for row in checks if "editor" in row}
    assert set(editors) == set(script.REAL) and summary["failed"] == 0
    for row in editors.values():
        assert "error" not in row and row["steps"] == 1 and row["working_size"] == [64, 64], row
    assert checks[-1] == {"resident": ["flux-kontext", "thinker"], "gpu_gb": None}
    assert len(built) == 2 * len(script.REAL) + 2 and {dtype for _, dtype in built} == {torch.bfloat16}


def test_a_failing_editor_is_an_error_row_and_the_others_still_run(script, capsys, monkeypatch):
    def broken(**dims):
        raise RuntimeError("split_with_sizes expects split_sizes to sum exactly to 448")

    monkeypatch.setitem(script.BUILDERS, "flux-kontext", broken)
    assert script.main(["--tiny", "--only", "flux-kontext", "instruct-pix2pix"]) == 1
    kontext, pix2pix, resident, summary = rows(capsys.readouterr().out)
    assert kontext == {
        "editor": "flux-kontext",
        "error": "RuntimeError: split_with_sizes expects split_sizes to sum exactly to 448",
    }
    assert pix2pix["editor"] == "instruct-pix2pix" and pix2pix["ours_s"] > 0 and "error" not in pix2pix
    assert "error" in resident and summary["failed"] == 2  # the resident check builds FLUX.1 Kontext too


def test_speed_fast_measures_both_speeds_per_editor_and_for_the_thinker(script, capsys):
    assert script.main(["--dry-run", "--speed", "fast", "--only", "qwen-image-edit", "flux-kontext"]) == 0
    qwen, kontext, thinker, summary = rows(capsys.readouterr().out)
    assert qwen["fast"] == "LoRA (8 steps)" and kontext["fast"] == "TaylorSeerCacheConfig"  # nothing compiles here
    for row in (qwen, kontext):
        assert all(row[key] > 0 for key in ("default_s", "fast_first_s", "fast_s", "fast_ratio")), row
    assert set(thinker) >= {"default", "fast", "tokens_per_s_ratio"} and thinker["fast"]["first_call_s"] > 0
    assert summary["failed"] == 0
