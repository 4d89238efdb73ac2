"""ZeroGPU: each edit and critique of a local model is its own `spaces.GPU` slice, budgeted from its row; the
run, its session, Stop and History stay in the main process."""

import json
import math
import multiprocessing
import os
import pickle
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import register, steady, studio_handler
from tiny_pipelines import build_tiny_pipeline

from thinkedit import runtime, zerogpu
from thinkedit.config import Settings
from thinkedit.editors import EDITORS
from thinkedit.editors.classic import ClassicEditor
from thinkedit.registry import build_backend
from thinkedit.thinkers import THINKERS
from thinkedit.ui.session import Session, stop


@pytest.fixture
def spaces_module(monkeypatch):
    """The real `spaces` package, imported while SPACES_ZERO_GPU is unset (as a Space's import would see it)."""
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    return pytest.importorskip("spaces")


class ForkingGPU:
    """Stands in for `spaces.GPU(duration=...)` on a CPU the way ZeroGPU runs a generator function: each call in
    a forked process, its arguments pickled across, what it yields pickled back, and closing the generator in
    the main process stops the worker's generator at its next item. Records each call's asked duration."""

    def __init__(self):
        self.durations: list[int] = []

    def __call__(self, task=None, *, duration=None, size=None):
        def wrap(function):
            def gpu_call(*args):
                self.durations.append(duration(*args))
                context = multiprocessing.get_context("fork")
                results, stop = context.Queue(), context.Event()
                payload = pickle.dumps(args)  # what ZeroGPU's arg_queue does: the worker gets copies

                def child():
                    with closing(function(*pickle.loads(payload))) as items:
                        for item in items:
                            if stop.is_set():
                                break
                            results.put(item)
                    results.put(None)

                worker = context.Process(target=child, daemon=True)
                worker.start()
                try:
                    while (item := results.get(timeout=60)) is not None:
                        yield item
                finally:
                    stop.set()
                    worker.join(30)

            return gpu_call

        return wrap


@pytest.fixture
def on_zero_gpu(spaces_module, monkeypatch) -> ForkingGPU:
    gpu = ForkingGPU()
    monkeypatch.setattr(spaces_module, "GPU", gpu)
    monkeypatch.setattr(zerogpu, "_SLICES", {})
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    return gpu


class LocalSlowEditor(ClassicEditor):
    """The classic editor posing as a local GPU model. It logs the process each edit runs in; its third edit
    keeps reporting steps until Stop reaches it."""

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        log = Path(self.spec.options["log"])
        earlier = log.read_text().split() if log.exists() else []
        with log.open("a") as file:
            file.write(f"{os.getpid()}\n")
        total, step = steps or self.spec.steps, 0
        while step < total or len(earlier) >= 2:
            step += 1
            time.sleep(0.01)
            on_step(min(step, total), total)
        return super().edit(image, prompt, seed=seed)


@pytest.fixture
def local_editor(monkeypatch, tmp_path) -> Settings:
    spec = replace(
        EDITORS["classic"],
        name="local-slow",
        target="test_zerogpu:LocalSlowEditor",
        kind="local",
        steps=6,
        seconds_per_step=2.0,
        options={"log": str(tmp_path / "edits.log")},
    )
    monkeypatch.setitem(EDITORS, "local-slow", spec)
    register(monkeypatch, "thinker", "never-satisfied", "FaultThinker", output=steady())
    (tmp_path / "weights").mkdir()
    return Settings(
        editor="local-slow",
        editor_model=str(tmp_path / "weights"),
        thinker="never-satisfied",
        runs_dir=tmp_path / "runs",
    )


def test_each_call_asks_for_what_it_needs_from_the_row():
    settings = Settings(thinker="editthinker")
    kontext = EDITORS["flux-kontext"].load_class()(EDITORS["flux-kontext"], settings)
    assert zerogpu.edit_seconds(kontext, 28) == math.ceil(zerogpu.MARGIN_S + zerogpu.HEADROOM * 28 * 0.45)
    assert zerogpu.edit_seconds(kontext, None) == zerogpu.edit_seconds(kontext, 28)  # the row's 28 steps
    assert zerogpu.edit_seconds(kontext, 40) > zerogpu.edit_seconds(kontext, 28)
    assert zerogpu.edit_seconds(kontext, 10_000) == zerogpu.MAX_DURATION_S
    thinker = THINKERS["editthinker"].load_class()(THINKERS["editthinker"], settings)
    tokens = thinker.generation["max_new_tokens"]
    expected = math.ceil(zerogpu.MARGIN_S + zerogpu.HEADROOM * (zerogpu.THINKER_PREFILL_S + tokens / 30.0))
    assert zerogpu.think_seconds(thinker) == expected
    fewer = THINKERS["editthinker"].load_class()(THINKERS["editthinker"], replace(settings, thinker_max_new_tokens=512))
    assert zerogpu.think_seconds(fewer) < expected
    # a default 3-turn FLUX.1 Kontext + EditThinker run once asked for the 300 s cap in one call
    assert 3 * zerogpu.edit_seconds(kontext, None) < zerogpu.MAX_DURATION_S


def test_off_zero_gpu_nothing_is_wrapped(spaces_module, monkeypatch, local_editor):
    editor = build_backend("editor", local_editor)
    assert isinstance(editor, LocalSlowEditor)
    monkeypatch.setenv("SPACES_ZERO_GPU", "false")  # as `spaces` reads it: not ZeroGPU
    assert not zerogpu.on_zero_gpu() and isinstance(build_backend("editor", local_editor), LocalSlowEditor)


def test_on_zero_gpu_edits_run_in_their_own_slices_and_stop_and_history_stay_with_the_session(
    on_zero_gpu, local_editor, scene, tmp_path
):
    editor, thinker = build_backend("editor", local_editor), build_backend("thinker", local_editor)
    assert isinstance(editor, zerogpu.Sliced) and not editor.takes_turns
    assert not isinstance(thinker, zerogpu.Sliced), "an offline thinker needs no GPU"

    session = Session()
    edit, viewer, history = studio_handler(local_editor)
    updates = edit(scene, "make it brighter", "local-slow", "never-satisfied", 10, 8.0, session=session)
    log = tmp_path / "edits.log"
    for update in updates:
        if log.exists() and len(log.read_text().split()) == 3:
            stop(session, "studio")  # in the main process, where the run and its session live
        last = update
    record = last[viewer.trajectory]
    assert record["stop_reason"] == "cancelled" and len(record["turns"]) == 2, record
    assert "stopped by you" in last[viewer.status]
    assert len(last[history]) == 1 and session.runs == [record["run_dir"]], "History kept the run"
    pids = {int(pid) for pid in (tmp_path / "edits.log").read_text().split()}
    assert len(pids) == 3 and os.getpid() not in pids, "every edit ran in its own forked GPU worker"
    assert on_zero_gpu.durations == [zerogpu.edit_seconds(editor, None)] * 3, "one slice per edit, from the row"


def test_preload_puts_the_editor_where_requests_find_it(on_zero_gpu, tmp_path, scene):
    """The zerogpu variant's editor, as a tiny random FLUX.1 Kontext pipeline on the CPU: loaded at start, in the
    main process, so that a request finds it in the cache (a forked worker inherits it)."""
    folder = build_tiny_pipeline("flux-kontext", tmp_path / "tiny-flux-kontext")
    settings = Settings(
        editor="flux-kontext",
        editor_model=str(folder),
        thinker="classic",
        device="cpu",
        dtype="float32",
        offload="none",
    )
    editor = build_backend("editor", settings)
    before = runtime.CACHE.loads
    assert zerogpu.preload([editor, build_backend("thinker", settings)]) == ["flux-kontext"]
    assert runtime.CACHE.loads == before + 1
    edited = editor.backend.edit(scene, "make it red", seed=0, steps=2)
    assert edited.size == scene.size and runtime.CACHE.loads == before + 1
    runtime.CACHE.release(editor.cache_key)


EMULATED_LOADS = """
import json, sys
import spaces  # first, as on a Space: its CUDA emulation covers the thread that imports it
from thinkedit import runtime
from thinkedit.config import Settings
from thinkedit.registry import build_backend

placed = {}
for role, name, model, extra in json.loads(sys.argv[1]):
    settings = Settings(device="cuda", dtype="bfloat16", offload="none", **{role: name, f"{role}_model": model}, **extra)
    backend = build_backend(role, settings)
    loaded = backend.load()[0] if role == "thinker" else backend.pipeline()
    placed[name] = sorted({str(t.device) for m in runtime.modules_of(loaded) for t in m.parameters()})
print(json.dumps(placed))
"""


def test_every_local_backend_loads_onto_zerogpus_emulated_cuda(tiny, tmp_path):
    """ZeroGPU lets a Space put its models on "cuda" at start, before a GPU is attached, by a CUDA emulation that
    covers only the thread that imported `spaces` (spaces 0.51.3, run here as it runs there). Every local editor
    and the Qwen-VL thinker load through their own code there; the thinker's device_map="cuda" once made
    transformers place weights from its worker threads and the Space failed at start."""
    from tiny_qwen_vl import build_tiny_qwen_vl

    editors = [name for name, spec in EDITORS.items() if spec.kind == "local" and spec.tiny]
    cases = [("editor", name, str(tiny(EDITORS[name].tiny)), {}) for name in editors]
    cases.append(("editor", "flux-kontext", str(tiny("flux-kontext")), {"editor_storage_dtype": "float8_e4m3fn"}))
    cases.append(("thinker", "editthinker", str(build_tiny_qwen_vl(tmp_path / "thinker")), {}))
    env = {
        **os.environ,
        "SPACES_ZERO_GPU": "true",
        "SPACES_ZERO_DEVICE_API_URL": "http://127.0.0.1:9",  # never called: nothing launches here
        "ZEROGPU_OFFLOAD_DIR": str(tmp_path / "packed"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    done = subprocess.run(
        [sys.executable, "-c", EMULATED_LOADS, json.dumps(cases)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    placed = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(placed) == {*editors, "editthinker"}
    assert all(devices == ["cuda:0"] for devices in placed.values()), placed


def test_on_zero_gpu_a_thinker_gets_the_persons_feedback_in_its_slice(on_zero_gpu, monkeypatch, scene, tmp_path):
    """`feedback` crosses into the forked worker with the rest of a critique's arguments, and only when it is set."""
    spec = replace(THINKERS["classic"], name="local-critic", kind="local", tokens_per_second=30.0)
    monkeypatch.setitem(THINKERS, "local-critic", spec)
    (tmp_path / "weights").mkdir()  # the classic critic posing as a local model: it reads no weights
    thinker = build_backend("thinker", Settings(thinker="local-critic", thinker_model=str(tmp_path / "weights")))
    assert isinstance(thinker, zerogpu.Sliced)
    prompt = "increase brightness by 40%"
    edited = ClassicEditor(EDITORS["classic"], Settings()).edit(scene, prompt, seed=0)
    steered = thinker.critique(scene, edited, "make it brighter", prompt, feedback="much less")
    plain = thinker.critique(scene, edited, "make it brighter", prompt)
    assert "Your feedback: much less" in steered.reasoning and "Your feedback" not in plain.reasoning
    assert "20%" in steered.refined_prompt and len(on_zero_gpu.durations) == 2
