"""scripts/gpu_check.py on the CPU: `--dry-run` runs every editor at its real widths (one layer, a 64² source) with its
fast preset, and loads FLUX.1 Kontext and the thinker from saved folders the way users load them, so a shape or a
loading step that only breaks at real size breaks here; a failing editor is one error row, the others still run."""

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
    module.release_built()
    runtime.CACHE.clear()


def rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_dry_run_runs_every_editor_at_its_real_widths_with_its_fast_preset_and_loads_as_users_do(
    script, capsys, monkeypatch
):
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
    assert set(editors) == {*script.REAL, "omnigen2"} and summary["failed"] == 0
    assert "OmniGen2's own code" in editors.pop("omnigen2")["skipped"]
    for name, row in editors.items():
        assert "error" not in row and row["steps"] == 1 and row["working_size"] == [64, 64], row
        preset = row["fast_preset"]
        if script.EDITORS[name].fast.lora:  # lightx2v's key format, converted by diffusers as it loads
            assert preset["lora_layers"] > 0 and preset["steps"] == 1, (name, preset)
        elif script.EDITORS[name].fast.cache:  # past its first cached step
            assert preset["predicted_steps"] == [2] and preset["steps"] == 4, (name, preset)
        else:
            assert preset == "compilation only (see --speed fast)"
    kontext, thinker = (row for row in checks if "loading" in row)
    assert set(kontext) >= {"none", "group", "float8"} and "error" not in kontext, kontext
    assert kontext["float8"]["held_gb"] < 0.7 * kontext["none"]["held_gb"]  # float8 storage: the transformer halved
    assert (
        thinker["resident"] == ["thinker", "flux-kontext"] and thinker["resident_gb"] >= kontext["none"]["held_gb"] > 0
    )
    # built once per architecture (the 2509 and 2511 rows share one), and again when loaded from the saved folders
    assert len(built) >= 2 * (len(script.REAL) - 1) and {dtype for _, dtype in built} == {torch.bfloat16}


def test_a_failing_editor_is_an_error_row_and_the_others_still_run(script, capsys, monkeypatch):
    def broken(**dims):
        raise RuntimeError("split_with_sizes expects split_sizes to sum exactly to 448")

    monkeypatch.setitem(script.BUILDERS, "flux-kontext", broken)
    assert script.main(["--tiny", "--only", "flux-kontext", "instruct-pix2pix"]) == 1
    kontext, pix2pix, loading, thinker, summary = rows(capsys.readouterr().out)
    assert {key: kontext[key] for key in ("editor", "error")} == {
        "editor": "flux-kontext",
        "error": "RuntimeError: split_with_sizes expects split_sizes to sum exactly to 448",
    }
    assert pix2pix["editor"] == "instruct-pix2pix" and pix2pix["ours_s"] > 0 and "error" not in pix2pix
    assert "error" in loading and "error" in thinker and summary["failed"] == 3  # both load FLUX.1 Kontext


def test_speed_fast_measures_both_speeds_per_editor_and_for_the_thinker(script, capsys):
    assert script.main(["--tiny", "--speed", "fast", "--only", "qwen-image-edit", "flux-kontext"]) == 0
    qwen, kontext, thinker, summary = rows(capsys.readouterr().out)
    assert qwen["fast"] == "LoRA (8 steps)" and kontext["fast"] == "TaylorSeerCacheConfig"  # nothing compiles here
    for row in (qwen, kontext):
        assert all(row[key] > 0 for key in ("default_s", "fast_first_s", "fast_s", "fast_ratio")), row
    assert set(thinker) >= {"default", "fast", "tokens_per_s_ratio"} and thinker["fast"]["first_call_s"] > 0
    assert summary["failed"] == 0
