"""Memory accounting on the GPU a run chose: the budget leaves headroom, offloaded models count nothing.

This machine has no GPU, so `torch.cuda`'s device queries are stood in for, per device index.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from tiny_qwen_vl import build_tiny_qwen_vl

from thinkedit import runtime
from thinkedit.config import Settings
from thinkedit.registry import build_backend

pytestmark = pytest.mark.usefixtures("empty_model_cache")

GB = 1e9


@pytest.fixture
def two_gpus(monkeypatch) -> list:
    """cuda:0 has 80 GB (30 free), cuda:1 has 40 GB (12 free); "cuda" alone means the current device, 0.
    Returns the devices asked about."""
    total, free, asked = {0: 80 * GB, 1: 40 * GB}, {0: 30 * GB, 1: 12 * GB}, []

    def index(device) -> int:
        asked.append(str(device))
        return torch.device(device).index or 0

    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda d=None: SimpleNamespace(total_memory=total[index(d)])
    )
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=None: (free[index(d)], total[index(d)]))
    return asked


def test_the_default_budget_is_the_chosen_gpus_memory_less_headroom(two_gpus):
    assert runtime.memory_budget_gb(Settings(device="cuda:1")) == pytest.approx(40 * (1 - runtime.MEMORY_HEADROOM))
    assert runtime.memory_budget_gb(Settings(device="cuda")) == pytest.approx(80 * 0.85)
    assert runtime.memory_budget_gb(Settings(device="cuda:1", memory_budget_gb=20)) == 20.0
    assert runtime.memory_budget_gb(Settings(device="cpu")) is None
    assert "cuda:1" in two_gpus


def test_free_memory_is_read_on_the_chosen_gpu(two_gpus):
    assert runtime.free_memory_gb(Settings(device="cuda:1")) == pytest.approx(12.0)
    assert runtime.free_memory_gb(Settings(device="cuda:0")) == pytest.approx(30.0)
    assert runtime.choose_offload(Settings(device="cuda:1"), 16.0, "cuda:1") == "model"  # 16 × 1.2 > 12 free
    assert runtime.choose_offload(Settings(device="cuda:0"), 16.0, "cuda:0") == "none"


def test_an_offloaded_thinker_waiting_in_cpu_memory_counts_nothing_on_the_gpu(two_gpus, tmp_path):
    checkpoint = build_tiny_qwen_vl(tmp_path / "thinker", "qwen2_5_vl")
    settings = Settings(thinker="qwen-vl", thinker_model=str(checkpoint), device="cuda:1", offload="model")
    thinker = build_backend("thinker", settings)
    model, _, offload = thinker.load()
    assert offload == "model" and next(model.parameters()).device.type == "cpu"
    [(_, entry)] = runtime.CACHE.entries()
    assert entry.size_gb == 0.0
    assert runtime.resident_gb(model, "cpu") > 0  # it is in CPU memory, all of it


def test_the_budget_counts_what_stays_resident(two_gpus):
    """With a budget of one model, a resident model and an offloaded one both stay; two resident ones do not."""
    one = runtime.resident_gb(torch.nn.Linear(100, 100), "cpu")
    runtime.CACHE.get("editor", lambda: torch.nn.Linear(100, 100), budget_gb=one * 1.5, device="cpu")
    runtime.CACHE.get(
        "thinker", lambda: torch.nn.Linear(100, 100), budget_gb=one * 1.5, device="cuda:1", offload="model"
    )
    assert runtime.CACHE.keys() == ["editor", "thinker"]
    runtime.CACHE.get("other", lambda: torch.nn.Linear(100, 100), budget_gb=one * 1.5, device="cpu")
    assert runtime.CACHE.keys() == ["thinker", "other"]


def test_one_out_of_memory_rule_while_loading_while_running_and_in_the_loop(tmp_path):
    """What counts as the accelerator running out of memory is decided once (`runtime.is_out_of_memory`): torch's
    OutOfMemoryError, or the plain RuntimeError other backends raise. Loading, running and the loop's last word on a
    failed run all use it, and all say what to do."""
    from thinkedit import loop
    from thinkedit.editors.classic import ClassicEditor
    from thinkedit.errors import ThinkEditError

    out_of_memory = [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
        RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB)"),
        RuntimeError("HIP out of memory. Tried to allocate 2.00 GiB"),
    ]
    other = [RuntimeError("expected all tensors to be on the same device"), MemoryError()]
    assert [runtime.is_out_of_memory(exc) for exc in out_of_memory + other] == [True] * 3 + [False] * 2

    class Failing(ClassicEditor):
        def edit(self, image, prompt, **kwargs):
            raise self.failure

    for failure in out_of_memory + other:
        with (
            pytest.raises((ThinkEditError, type(failure))) as raised,
            runtime.friendly_errors("editing", offload="model"),
        ):
            raise failure
        said = isinstance(raised.value, ThinkEditError)
        editor = Failing(None, Settings())
        editor.failure = failure
        request = loop.make_request(Image.new("RGB", (32, 32)), "make it red", max_turns=1)
        [finished] = [e for e in loop.run(editor, None, request) if isinstance(e, loop.RunFinished)]
        error = finished.trajectory.error
        assert said == runtime.is_out_of_memory(failure) == error.startswith("The GPU ran out of memory"), error
        if said:
            assert "--offload group" in str(raised.value) and "--offload model, group or sequential" in error
