"""The web app under load: sessions at once without cross-talk, the run limit, a full queue, and a short soak."""

from __future__ import annotations

import importlib.util
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import CountingEditor, register, run_edit, scene_file, serve, solid
from PIL import Image, ImageStat

from thinkedit.config import Settings
from thinkedit.registry import build_backend

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

COLORS = [
    (200, 30, 30),
    (30, 160, 40),
    (30, 60, 200),
    (220, 200, 40),
    (140, 40, 160),
    (40, 180, 190),
    (90, 90, 90),
    (230, 120, 30),
]
SOAK = Path(__file__).resolve().parents[1] / "scripts" / "soak_ui.py"


@pytest.fixture
def counting(monkeypatch) -> str:
    CountingEditor.reset()
    return register(monkeypatch, "editor", "counting", "CountingEditor", seconds=0.4)


def sessions(url: str, count: int) -> list[Client]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: Client(url, verbose=False), range(count)))


def mean_color(image: Image.Image) -> tuple[float, ...]:
    return tuple(ImageStat.Stat(image.convert("RGB")).mean)


def test_eight_sessions_at_once_each_get_their_own_image_within_the_run_limit(tmp_path, counting):
    limit = 3
    demo, url = serve(Settings(runs_dir=tmp_path / "runs", ui_concurrency=limit))
    try:
        images = [solid(tmp_path / f"in-{i}.png", color, (40 + 8 * i, 40)) for i, color in enumerate(COLORS)]
        clients = sessions(url, len(images))
        jobs = [
            client.submit(handle_file(image), "make it brighter", counting, "classic", 2, seed=i, api_name="/edit")
            for i, (client, image) in enumerate(zip(clients, images, strict=True))
        ]
        finals = [job.result() for job in jobs]
    finally:
        demo.close()

    assert 2 <= CountingEditor.peak <= limit, f"edits at once: {CountingEditor.peak}, limit {limit}"
    classic = build_backend("editor", Settings(), "classic")
    run_dirs = set()
    for i, (image, final) in enumerate(zip(images, finals, strict=True)):
        gallery, record = final[0], final[8]
        run_dir = Path(record["run_dir"])
        run_dirs.add(run_dir)
        with Image.open(image) as given, Image.open(run_dir / "source.png") as source:
            assert source.tobytes() == given.convert("RGB").tobytes(), f"session {i} saved another session's source"
            expected = classic.edit(source.convert("RGB"), "make it brighter", seed=i)
        with Image.open(run_dir / "turn_01.png") as turn:
            assert turn.tobytes() == expected.tobytes(), f"session {i}: turn 1 is not the edit of its own image"
        with Image.open(gallery[0]["image"]) as shown:
            assert shown.size == expected.size
            assert all(abs(a - b) < 4 for a, b in zip(mean_color(shown), mean_color(expected), strict=True))
        assert record["settings"]["seed"] == i and record["error"] is None
        assert len(final[9]) == 1, "each session's History holds its own run only"
    assert len(run_dirs) == len(images)


def test_a_full_queue_refuses_with_the_busy_message_and_then_serves_again(tmp_path, monkeypatch):
    CountingEditor.reset()
    slow = register(monkeypatch, "editor", "slow", "CountingEditor", seconds=1.2)
    demo, url = serve(Settings(runs_dir=tmp_path / "runs", ui_concurrency=1, max_queue=1))
    try:
        image = handle_file(solid(tmp_path / "in.png", (120, 80, 40)))
        clients = sessions(url, 5)
        jobs = [client.submit(image, "make it brighter", slow, "classic", 1, api_name="/edit") for client in clients]
        done, busy = [], []
        for job in jobs:
            try:
                done.append(job.result())
            except Exception as exc:  # noqa: BLE001 - gradio_client raises its QueueError here
                busy.append(str(exc))
        assert len(done) >= 1 and len(done) + len(busy) == 5
        assert len(busy) >= 2 and all("Queue is full" in message for message in busy), busy
        assert CountingEditor.peak == 1
        final, _ = run_edit(clients[0], image, "make it brighter", max_turns=1)
        assert final["trajectory"]["error"] is None
    finally:
        demo.close()


def test_a_short_soak_keeps_memory_bounded(tmp_path):
    """25 runs through /edit (the full 200-run soak is `python scripts/soak_ui.py`)."""
    spec = importlib.util.spec_from_file_location("soak_ui", SOAK)
    soak_ui = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak_ui)
    demo, url = serve(Settings(runs_dir=tmp_path / "runs"))
    try:
        result = soak_ui.soak(url, os.getpid(), runs=25, image=scene_file(tmp_path), warmup=3)
    finally:
        demo.close()
    growth = result["rss_after_mb"] - result["rss_before_mb"]
    assert growth < 80, f"RSS grew {growth:.0f} MB over {result['runs']} runs: {result}"
    assert len(list((tmp_path / "runs").iterdir())) == 28
