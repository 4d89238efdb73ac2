"""Compare sides on the one local GPU take turns and share loaded models; offline sides run together."""

import threading
import time

import pytest
from helpers import ScriptedThinker

from thinkedit import loop, runtime
from thinkedit.backend import BackendSpec


class TimedEditor:
    """Records when each edit ran; loads its 'model' through the runtime cache like a real local editor."""

    def __init__(self, kind: str, log: list, lock: threading.Lock):
        self.spec = BackendSpec(f"timed-{kind}", "tests:TimedEditor", kind, "test editor")
        self.model = "timed-model"
        self.log, self.lock = log, lock

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        runtime.load(("timed", self.spec.kind), lambda: object())
        start = time.monotonic()
        for step in range(1, 4):
            time.sleep(0.05)
            if on_step:
                on_step(step, 3)
        with self.lock:
            self.log.append((start, time.monotonic()))
        return image.copy()


def overlapping(spans: list[tuple[float, float]]) -> bool:
    spans = sorted(spans)
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


@pytest.mark.parametrize(("kind", "overlap"), [("local", False), ("offline", True)])
def test_local_sides_take_turns_and_offline_sides_run_together(scene, tmp_path, kind, overlap):
    runtime.CACHE.release(("timed", kind))
    log, lock = [], threading.Lock()
    sides = []
    for side in range(2):
        editor = TimedEditor(kind, log, lock)
        request = loop.make_request(scene, "make it brighter", max_turns=2, seed=3)
        thinker = ScriptedThinker([(5, 5, f"side {side} again"), (9, 9, "x")])
        sides.append(loop.Job(editor, thinker, request, tmp_path / str(side)))
    loads = runtime.CACHE.loads
    finished = [event for _, event in loop.run_jobs(sides) if isinstance(event, loop.RunFinished)]
    assert [len(f.trajectory.turns) for f in finished] == [2, 2]
    assert len(log) == 4
    assert overlapping(log) is overlap
    assert runtime.CACHE.loads - loads == 1, "the second side reuses the model the first one loaded"
