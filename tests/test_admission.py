"""A few visitors cannot exhaust the app's memory (issue 23, item 2): runs are admitted by a memory budget.

What a run will hold is read from the image's header (pixels × what a run keeps per pixel × runs: two for Compare);
a request that does not fit beside the runs going is told to wait or to send a smaller image, and nobody else is
affected. Public pages take images of at most `public_max_megapixels`.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import tracemalloc
from pathlib import Path

import pytest
from helpers import call_edit, serve, upload
from PIL import Image

from thinkedit import admission
from thinkedit.config import Settings
from thinkedit.errors import BadInput
from thinkedit.ui import actions, form

ROOT = Path(__file__).resolve().parents[1]


def flat_png(path, width: int, height: int) -> str:
    Image.new("RGB", (width, height), (90, 140, 200)).save(path)
    return str(path)


def compare_values(image) -> list:
    return form.positional(actions.COMPARE_FIELDS, image=image, instruction="make it brighter", max_turns=1)


def test_a_budget_admits_what_fits_refuses_the_rest_and_gives_it_back():
    pixels = 1_000_000
    need = pixels * admission.BYTES_PER_PIXEL
    budget = admission.MemoryBudget(need * 3)
    with budget.hold(pixels, runs=2):
        assert budget.held == 2 * need
        busy = r"busy with other large images.*at most 0\.5 megapixels would fit now"  # half: a Compare is two runs
        with pytest.raises(BadInput, match=busy), budget.hold(pixels, runs=2):
            pass
        with budget.hold(pixels):  # one run of the same image still fits
            assert budget.held == 3 * need
    assert budget.held == 0
    with pytest.raises(RuntimeError), budget.hold(pixels):
        raise RuntimeError("the run failed")
    assert budget.held == 0, "a run that fails gives its memory back"
    with (
        pytest.raises(BadInput, match=r"can take at most 1\.5 megapixels for this comparison"),
        budget.hold(2 * pixels, 2),
    ):
        pass
    with pytest.raises(BadInput, match=r"at most 2 megapixels"), budget.hold(3 * pixels, max_pixels=2 * pixels):
        pass


def test_the_size_is_read_from_the_header_without_decoding(tmp_path):
    path = flat_png(tmp_path / "big.png", 6000, 5000)  # 30 megapixels, a few hundred kB on disk
    data = Path(path).read_bytes()
    tracemalloc.start()
    try:
        assert admission.header_pixels(path) == 30_000_000
        assert admission.header_pixels(data) == 30_000_000
        assert tracemalloc.get_traced_memory()[1] < 8 * 2**20  # decoding would take 90 MB
    finally:
        tracemalloc.stop()
    assert admission.header_pixels(b"not an image") is None  # load_image says why, later


def test_a_public_page_refuses_images_over_its_megapixel_limit(tmp_path):
    demo, url = serve(Settings(runs_dir=tmp_path / "runs", public=True, public_max_megapixels=2))
    try:
        url = url.rstrip("/")
        big = upload(url, flat_png(tmp_path / "big.png", 2000, 1500))
        answer = call_edit(url, compare_values(big), "compare")
        assert "this demo takes images of at most 2 megapixels" in answer
        small = upload(url, flat_png(tmp_path / "small.png", 400, 300))
        assert "event: complete" in call_edit(url, compare_values(small), "compare")
    finally:
        demo.close()


def test_a_busy_server_tells_a_visitor_to_wait_and_runs_again_once_memory_is_free(tmp_path):
    settings = Settings(runs_dir=tmp_path / "runs", run_memory_gb=0.25)
    demo, url = serve(settings)
    budget = admission.budget_for(settings)
    try:
        url = url.rstrip("/")
        image = upload(url, flat_png(tmp_path / "photo.png", 800, 600))
        others = threading.Event()
        with budget.hold(budget.budget // admission.BYTES_PER_PIXEL):  # other visitors hold all of it
            others.set()
            answer = call_edit(url, compare_values(image), "compare")
        assert others.is_set() and "busy with other large images" in answer and "Try again" in answer
        assert budget.held == 0
        assert "event: complete" in call_edit(url, compare_values(image), "compare")
        assert budget.held == 0, "a finished Compare gives its memory back"
    finally:
        demo.close()


def test_a_flood_of_large_compares_leaves_the_app_alive_and_within_its_budget():
    """scripts/flood_public.py at a size this machine allows: six Compares of 3-megapixel images at once against a
    budget that takes about one; the full-size run (6 × 40 megapixels) is the script's default."""
    spec = importlib.util.spec_from_file_location("flood_public", ROOT / "scripts" / "flood_public.py")
    flood_public = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flood_public)
    budget_gb = 0.4
    environment = {**os.environ, "THINKEDIT_RUN_MEMORY_GB": str(budget_gb), "GRADIO_ANALYTICS_ENABLED": "False"}
    report = flood_public.flood(3.0, 6, environment)
    assert report["alive"], report
    assert report["done"] >= 1 and report["done"] + report["refused"] == 6, report
    assert all("busy with other large images" in answer for answer in report["refusals"]), report
    assert report["peak_mb"] - report["idle_mb"] < 2 * budget_gb * 1024, report
