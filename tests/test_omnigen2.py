"""OmniGen2 loads from a clone of its repository (THINKEDIT_OMNIGEN2_PATH), as every upstream loader does.

The clone here is a folder laid out like github.com/VectorSpaceLab/OmniGen2 (the same package and module
paths, the same relative imports) whose classes are small diffusers classes that record how they were
loaded and called. Its checkpoint names the transformer's module by its bare file name in model_index.json.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from thinkedit import runtime
from thinkedit.config import Settings
from thinkedit.editors import EDITORS
from thinkedit.editors.omnigen2 import OmniGen2Editor
from thinkedit.errors import ThinkEditError
from thinkedit.registry import availability, backend_rows, build_backend

TRANSFORMER = textwrap.dedent("""
    import einops  # upstream's transformer needs it
    import torch
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.models.modeling_utils import ModelMixin


    class OmniGen2Transformer2DModel(ModelMixin, ConfigMixin):
        loads = []

        @register_to_config
        def __init__(self, dim: int = 4):
            super().__init__()
            self.proj = torch.nn.Linear(dim, dim)

        @classmethod
        def from_pretrained(cls, *args, **kwargs):
            cls.loads.append((args, kwargs))
            return super().from_pretrained(*args, **kwargs)
""")

PIPELINE = textwrap.dedent("""
    import numpy as np
    import torch
    from diffusers import DiffusionPipeline, ImagePipelineOutput
    from PIL import Image

    from ...models.transformers import OmniGen2Transformer2DModel


    class OmniGen2Pipeline(DiffusionPipeline):
        loads = []

        def __init__(self, transformer: OmniGen2Transformer2DModel, scheduler):
            super().__init__()
            self.register_modules(transformer=transformer, scheduler=scheduler)
            self.calls = []

        @classmethod
        def from_pretrained(cls, *args, **kwargs):
            cls.loads.append((args, kwargs))
            return super().from_pretrained(*args, **kwargs)

        def __call__(self, prompt, input_images, negative_prompt=None, text_guidance_scale=4.0,
                     image_guidance_scale=1.0, height=None, width=None, max_pixels=1024 * 1024,
                     max_input_image_side_length=1024, num_inference_steps=28, max_sequence_length=256,
                     generator=None, step_func=None):
            self.calls.append(dict(locals()))
            for i in range(num_inference_steps):
                step_func(i, num_inference_steps)
            pixels = torch.rand((height, width, 3), generator=generator).numpy()
            return ImagePipelineOutput(images=[Image.fromarray((pixels * 255).astype(np.uint8))])
""")


@pytest.fixture
def isolated_imports(monkeypatch):
    """What a test imports from a clone (and the clone on sys.path) is forgotten afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [name for name in sys.modules if name.split(".")[0] in ("omnigen2", "transformer_omnigen2", "einops")]:
        del sys.modules[name]


@pytest.fixture
def einops_installed(tmp_path, monkeypatch):
    """A stand-in `einops` (the one package OmniGen2's code needs beyond ours, not installed here)."""
    (tmp_path / "site" / "einops").mkdir(parents=True)
    (tmp_path / "site" / "einops" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


def make_clone(root: Path) -> Path:
    files = {
        "README.md": "OmniGen2\n",
        "app.py": "",
        "omnigen2/__init__.py": "",
        "omnigen2/models/__init__.py": "",
        "omnigen2/models/transformers/__init__.py": "from .transformer_omnigen2 import OmniGen2Transformer2DModel\n",
        "omnigen2/models/transformers/transformer_omnigen2.py": TRANSFORMER,
        "omnigen2/pipelines/__init__.py": "",
        "omnigen2/pipelines/omnigen2/pipeline_omnigen2.py": PIPELINE,  # a namespace package, as upstream
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def make_checkpoint(clone: Path, folder: Path) -> Path:
    """A saved OmniGen2 checkpoint whose model_index.json names the transformer's module by its file name."""
    sys.path.append(str(clone))
    from diffusers import FlowMatchEulerDiscreteScheduler
    from omnigen2.models.transformers.transformer_omnigen2 import OmniGen2Transformer2DModel
    from omnigen2.pipelines.omnigen2.pipeline_omnigen2 import OmniGen2Pipeline

    OmniGen2Pipeline(OmniGen2Transformer2DModel(), FlowMatchEulerDiscreteScheduler()).save_pretrained(folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["transformer"] = ["transformer_omnigen2", "OmniGen2Transformer2DModel"]
    (folder / "model_index.json").write_text(json.dumps(index))
    for name in [m for m in sys.modules if m == "omnigen2" or m.startswith("omnigen2.")]:
        del sys.modules[name]  # the editor must import the clone itself
    sys.path.remove(str(clone))
    return folder


def test_omnigen2_loads_from_the_clone_and_edits(tmp_path, isolated_imports, einops_installed):
    clone = make_clone(tmp_path / "OmniGen2")
    checkpoint = make_checkpoint(clone, tmp_path / "checkpoint")
    settings = Settings(editor="omnigen2", editor_model=str(checkpoint), omnigen2_path=str(clone))
    assert availability("editor", EDITORS["omnigen2"], model=str(checkpoint), settings=settings)[0]
    editor = build_backend("editor", settings)
    source = Image.new("RGB", (80, 48), (135, 190, 235))
    steps: list[int] = []
    edited = editor.edit(source, "make it night", seed=5, guidance=6.0, on_step=lambda i, n: steps.append(i))

    pipe = editor.pipeline()
    pipeline_class, transformer_class = type(pipe), type(pipe.transformer)
    assert pipeline_class.__module__ == "omnigen2.pipelines.omnigen2.pipeline_omnigen2"
    assert Path(sys.modules[pipeline_class.__module__].__file__).is_relative_to(clone)
    [(args, kwargs)] = transformer_class.loads  # loaded once, from the transformer subfolder
    assert args == (str(checkpoint),) and kwargs["subfolder"] == "transformer" and kwargs["dtype"] == torch.float32
    [(args, kwargs)] = pipeline_class.loads
    assert args == (str(checkpoint),) and kwargs["transformer"] is pipe.transformer
    assert edited.size == source.size and steps == list(range(1, 51))  # the table's 50 steps
    call = pipe.calls[-1]
    assert call["prompt"] == "make it night" and call["num_inference_steps"] == 50
    assert call["text_guidance_scale"] == 6.0 and call["image_guidance_scale"] == 1.5
    assert call["max_sequence_length"] == 1024, "upstream's inference.py allows 1024 prompt tokens"
    assert call["negative_prompt"].startswith("(((deformed))), blurry") and call["negative_prompt"].endswith(
        "censor_bar"
    )
    assert call["input_images"][0].size == (call["width"], call["height"]) == editor.working_size(source)
    runtime.CACHE.release(editor.cache_key)


def test_without_its_code_omnigen2_is_unavailable_with_the_set_up_steps(tmp_path, monkeypatch):
    monkeypatch.delenv("THINKEDIT_OMNIGEN2_PATH", raising=False)
    steps = "git clone https://github.com/VectorSpaceLab/OmniGen2"
    for settings in (Settings(editor="omnigen2"), Settings(editor="omnigen2", omnigen2_path=str(tmp_path))):
        ok, reason = availability("editor", EDITORS["omnigen2"], settings=settings)
        assert not ok and steps in reason and "THINKEDIT_OMNIGEN2_PATH" in reason and "weights" not in reason
        with pytest.raises(ThinkEditError) as info:  # the default checkpoint is not here either: code comes first
            build_backend("editor", settings)
        assert steps in str(info.value) and "weights" not in str(info.value) and ".." not in str(info.value)
    with pytest.raises(ThinkEditError) as info:  # a backend built before the code went away says so at load
        OmniGen2Editor(EDITORS["omnigen2"], settings).edit(Image.new("RGB", (32, 32)), "blue", seed=0)
    assert steps in str(info.value) and "weights" not in str(info.value)
    assert "is not a clone" in reason
    [row] = [row for row in backend_rows(Settings()) if row["name"] == "omnigen2"]  # `thinkedit backends`
    assert not row["available"] and steps in row["reason"]


def test_a_clone_without_einops_says_to_install_it(tmp_path, isolated_imports):
    clone = make_clone(tmp_path / "OmniGen2")
    ok, reason = availability("editor", EDITORS["omnigen2"], settings=Settings(omnigen2_path=str(clone)))
    assert not ok and reason == "OmniGen2's code needs einops, which is not installed: pip install einops."


def test_the_clone_path_comes_from_the_environment(tmp_path):
    assert Settings.from_env({"THINKEDIT_OMNIGEN2_PATH": str(tmp_path)}).omnigen2_path == str(tmp_path)


def test_a_clone_whose_code_fails_to_import_says_why(tmp_path, isolated_imports, einops_installed):
    clone = make_clone(tmp_path / "OmniGen2")
    crash = 'raise RuntimeError("Found no NVIDIA driver on your system")\n'  # upstream's triton kernels, on a CPU
    (clone / "omnigen2/models/transformers/transformer_omnigen2.py").write_text(crash)
    editor = OmniGen2Editor(EDITORS["omnigen2"], Settings(editor_model=str(tmp_path), omnigen2_path=str(clone)))
    with pytest.raises(ThinkEditError, match="could not be imported: RuntimeError: Found no NVIDIA driver"):
        editor.edit(Image.new("RGB", (32, 32)), "blue", seed=0)
