"""A light soak (scripts/soak.py with 30 runs per path): resident memory stays bounded."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "soak.py"


def test_thirty_runs_through_the_loop_and_serve_editor_keep_memory_bounded():
    spec = importlib.util.spec_from_file_location("soak", SCRIPT)
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    results = soak.soak(runs=30, side=64)
    assert set(results) == {"loop", "serve-editor"}
    for before, after, _ in results.values():
        assert before > 0 and after - before < 20  # MB: generous, yet a leak of ~1 MB a run would break it
