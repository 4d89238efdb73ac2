"""Test setup: nothing may touch the network or the hub, the suite is the same on any machine, and tiny models run
single-threaded."""

import atexit
import os
import shutil
import tempfile

# Hermetic on any box: no GPU (a CUDA machine would pick cuda and bfloat16), an empty hub cache (models cached on
# a developer's machine must not change what a test finds), and Gradio's copies of served files in a folder of
# this run's own (another app's shutdown elsewhere on the machine clears the shared default folder).
_SCRATCH = tempfile.mkdtemp(prefix="thinkedit-tests-")
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["HF_HOME"] = os.path.join(_SCRATCH, "hf-home")
os.environ["GRADIO_TEMP_DIR"] = os.path.join(_SCRATCH, "gradio")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["DO_NOT_TRACK"] = "1"

try:
    import torch

    torch.set_num_threads(1)  # on a 2-core box tiny models run tens of times faster single-threaded
except ImportError:
    pass

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from thinkedit import bench  # noqa: E402


@pytest.fixture(autouse=True)
def _runs_dir(tmp_path, monkeypatch):
    """Every test saves runs in its own folder, never in ./runs."""
    monkeypatch.setenv("THINKEDIT_RUNS_DIR", str(tmp_path / "runs"))


@pytest.fixture(scope="session")
def editor():
    """The offline classic editor (it keeps no state between edits)."""
    from thinkedit.config import Settings
    from thinkedit.registry import build_backend

    return build_backend("editor", Settings(), "classic")


@pytest.fixture(scope="session")
def thinker():
    """The offline classic thinker (it keeps no state between critiques)."""
    from thinkedit.config import Settings
    from thinkedit.registry import build_backend

    return build_backend("thinker", Settings(), "classic")


@pytest.fixture
def scene() -> Image.Image:
    """A small RGB scene with distinct regions: sky, grass, a red square, a blue disc (96×64)."""
    return bench.scene()


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """tiny(name) → the folder of that tiny diffusers pipeline (tests/tiny_pipelines.py), built once per session."""
    from tiny_pipelines import build_tiny_pipeline

    root = tmp_path_factory.mktemp("tiny-pipelines")
    folders = {}

    def get(name: str):
        if name not in folders:
            folders[name] = build_tiny_pipeline(name, root / name)
        return folders[name]

    return get


@pytest.fixture
def empty_model_cache():
    """The process-wide model cache empty before and after the test (`pytest.mark.usefixtures`)."""
    from thinkedit import runtime

    runtime.CACHE.clear()
    yield
    runtime.CACHE.clear()


@pytest.fixture
def source() -> Image.Image:
    """A small source for the diffusers editors: sky, a red square, grass."""
    from PIL import ImageDraw

    image = Image.new("RGB", (80, 48), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle([8, 8, 30, 30], fill=(220, 30, 30))
    draw.rectangle([0, 36, 79, 47], fill=(60, 150, 60))
    return image
