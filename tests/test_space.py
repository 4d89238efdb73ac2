"""Space variants build and deploy-check, and the built CPU Space really starts."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import free_port
from packaging.specifiers import SpecifierSet
from PIL import Image

from thinkedit import space, zerogpu
from thinkedit.cli import main
from thinkedit.config import Settings
from thinkedit.editors import EDITORS
from thinkedit.errors import BadInput
from thinkedit.thinkers import THINKERS

PROJECT = Path(__file__).resolve().parent.parent
VARIANTS = ("zerogpu-flux-kontext", "cpu-basic", "remote")


def pinned_gradio_from_requirements() -> str:
    text = (PROJECT / "requirements.txt").read_text()
    return re.search(r"^gradio(?:\[\w+\])?==(\S+)", text, re.MULTILINE).group(1)


def readme_meta(folder: Path) -> dict:
    return space.front_matter((folder / "README.md").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Every variant built once (each build runs the full check, app start included)."""
    root = tmp_path_factory.mktemp("spaces")
    return {variant: space.build(variant, root / variant) for variant in VARIANTS}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_builds_into_a_deployable_folder(built, variant):
    folder = built[variant]
    config = yaml.safe_load((PROJECT / "spaces_config" / variant / "space.yaml").read_text())
    meta = readme_meta(folder)
    assert meta == config["front_matter"]
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == pinned_gradio_from_requirements()
    assert meta["app_file"] == "app.py" and (folder / "app.py").read_text() == (PROJECT / "app.py").read_text()
    assert (folder / "thinkedit" / "loop.py").is_file() and not list(folder.rglob("__pycache__"))
    assert (folder / "thinkedit" / "prompts" / "critique.txt").is_file()
    defaults = json.loads((folder / "thinkedit_settings.json").read_text())
    assert defaults["public"] is True and defaults["host"] == "0.0.0.0"
    assert defaults["mcp"] is True and "mcp-server" in meta["tags"], "every Space is also an MCP server"
    requirements = (folder / "requirements.txt").read_text().splitlines()
    names = {re.split(r"[<>=]", line)[0] for line in requirements}
    if meta["suggested_hardware"] == "cpu-basic":
        assert not names & {"torch", "torchvision", "diffusers", "transformers", "accelerate"}, requirements
    else:
        assert {"torch", "diffusers", "transformers"} <= names
    project_lines = set((PROJECT / "requirements.txt").read_text().splitlines())
    assert set(requirements) <= project_lines | set(config.get("pins", []))  # the project's pins, or the variant's
    assert space.check(folder, start_app=False) == []


def test_zerogpu_variant_preloads_the_models_it_uses(built):
    meta = readme_meta(built["zerogpu-flux-kontext"])
    assert meta["suggested_hardware"] == "zero-a10g"
    preloaded = dict((entry.split() + [None])[:2] for entry in meta["preload_from_hub"])
    for model in ("black-forest-labs/FLUX.1-Kontext-dev", "appletea2333/EditThinker-8B"):
        assert model in meta["models"] and model in preloaded
    kontext = preloaded["black-forest-labs/FLUX.1-Kontext-dev"].split(",")  # what diffusers loads, no more
    assert "model_index.json" in kontext and "flux1-kontext-dev.safetensors" not in kontext
    assert "ae.safetensors" not in kontext and all("/" in name for name in kontext[1:])
    for folder in ("scheduler", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "transformer", "vae"):
        assert any(name.startswith(f"{folder}/") for name in kontext), folder
    defaults = json.loads((built["zerogpu-flux-kontext"] / "thinkedit_settings.json").read_text())
    assert (defaults["editor"], defaults["thinker"], defaults["device"], defaults["offload"]) == (
        "flux-kontext",
        "editthinker",
        "cuda",
        "none",
    )
    requirements = (built["zerogpu-flux-kontext"] / "requirements.txt").read_text().splitlines()
    assert "torch==2.11.0" in requirements and "torchvision==0.26.0" in requirements  # what ZeroGPU runs


def test_the_zerogpu_space_fits_large_and_a_free_visitors_run_and_its_card_says_so(built):
    """Kontext (its transformer in float8) and EditThinker-8B preload under spaces' 45.1 GB "large" limit, and a
    default run counts no more than a free account's daily 300 s; the card states each call's real seconds."""
    folder = built["zerogpu-flux-kontext"]
    settings = Settings(**json.loads((folder / "thinkedit_settings.json").read_text()))
    held = space.preloaded_gb(EDITORS["flux-kontext"], settings) + space.preloaded_gb(THINKERS["editthinker"], settings)
    assert 39 < held < zerogpu.LARGE_LIMIT_GB < 34 + 17.5  # bfloat16 through and through would not fit
    costs = zerogpu.budget(EDITORS["flux-kontext"], THINKERS["editthinker"], settings)
    assert costs["counted_run_s"] == 3 * (costs["counted_edit_s"] + costs["counted_critique_s"]) <= zerogpu.FREE_DAILY_S
    editor = EDITORS["flux-kontext"].load_class()(EDITORS["flux-kontext"], settings)
    assert costs["edit_s"] == zerogpu.edit_seconds(editor, None)  # what each edit's slice really asks for
    card = (folder / "README.md").read_text()
    for phrase in (
        f"asks for {costs['edit_s']} s",
        f"for {costs['critique_s']} s",
        f"counts as {costs['counted_edit_s']} s",
        f"{costs['counted_critique_s']} s on its current cards",
        f"counts at most {costs['counted_run_s']} s",
        f"about {round(held)} GB",
    ):
        assert phrase in " ".join(card.split()), phrase
    assert "300" not in card
    docs = " ".join((PROJECT / "docs" / "spaces.md").read_text().split())  # the docs' ZeroGPU section says the same
    assert (
        f"an edit ({costs['steps']} steps) asks for {costs['edit_s']} s and a critique (up to {costs['tokens']} "
        f"tokens) for {costs['critique_s']} s, counted as {costs['counted_edit_s']} s and "
        f"{costs['counted_critique_s']} s: a 3-turn run counts {costs['counted_run_s']} s"
    ) in docs and f"about {round(held)} GB preload" in docs


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"pins": ["torch==2.14.1", "torchvision==0.29.1"]}, "pins torch 2.14.1, which ZeroGPU does not run"),
        ({"editor_storage_dtype": None}, "more than ZeroGPU's large size (45.1 GB)"),
        ({"max_turns": 5}, "a default run of 5 turns counts 480 s of ZeroGPU quota, more than a free account's"),
    ],
)
def test_a_zerogpu_space_that_would_not_fit_fails_check(built, tmp_path, change, reason):
    folder = broken_copy(built, tmp_path, "zerogpu-flux-kontext")
    if "pins" in change:
        (folder / "requirements.txt").write_text("\n".join(space.requirement_lines("all", change["pins"])) + "\n")
    else:
        defaults = json.loads((folder / "thinkedit_settings.json").read_text()) | change
        (folder / "thinkedit_settings.json").write_text(json.dumps(defaults))
    assert [p for p in space.check(folder, start_app=False) if reason in p], space.check(folder, start_app=False)


def test_the_zerogpu_space_is_checked_starting_under_spaces_own_emulation(built, tmp_path):
    """`space check` starts a ZeroGPU folder as ZeroGPU does (SPACES_ZERO_GPU=true, the real spaces package, tiny
    checkpoints, preload and all; the build did, and passed). A model loaded with device_map="cuda" (transformers
    then places weights from worker threads, which the emulation does not cover) and GPU functions made only at
    the first request are both caught."""
    threaded = broken_copy(built, tmp_path / "threaded", "zerogpu-flux-kontext")
    thinker = threaded / "thinkedit" / "thinkers" / "qwen_vl.py"
    code = thinker.read_text()
    placed = "        runtime.place(model, device, offload)"
    assert placed in code
    thinker.write_text(code.replace("token=hf_token())\n" + placed, 'token=hf_token(), device_map="cuda")\n' + placed))
    [problem] = space.check(threaded)
    assert problem.startswith("app.py does not start: RuntimeError: Low-level CUDA init"), problem

    late = broken_copy(built, tmp_path / "late", "zerogpu-flux-kontext")
    (late / "app.py").write_text((late / "app.py").read_text().replace("zerogpu.decorate_slices()\n", "\n"))
    zerogpu_file = late / "thinkedit" / "zerogpu.py"
    zerogpu_file.write_text(
        zerogpu_file.read_text().replace("    decorate_slices()  # spaces first", "    import spaces  #")
    )
    assert space.check(late) == [
        "the app launched before any spaces.GPU function existed, so spaces reported none to ZeroGPU and the Space "
        "would never get a GPU"
    ]


def test_cli_check_passes_a_built_folder(built, capsys, monkeypatch):
    monkeypatch.setattr(space, "_start_problems", lambda folder, app_file, zero: [])  # the build already started it
    assert main(["space", "check", str(built["cpu-basic"])]) == 0
    assert "deployable" in capsys.readouterr().out


def test_build_refuses_unknown_variants_and_full_folders(tmp_path):
    with pytest.raises(BadInput, match="Unknown Space variant"):
        space.build("gpu-for-free", tmp_path / "x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(BadInput, match="not empty"):
        space.build("cpu-basic", tmp_path / "full")


def broken_copy(built, tmp_path, variant="cpu-basic") -> Path:
    return Path(shutil.copytree(built[variant], tmp_path / "space"))


def rewrite_front_matter(folder: Path, change) -> None:
    meta = readme_meta(folder)
    change(meta)
    (folder / "README.md").write_text(f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\ncard\n")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m.pop("sdk_version"), "front matter lacks 'sdk_version'"),
        (lambda m: m.pop("title"), "front matter lacks 'title'"),
        (lambda m: m.update(sdk="docker"), "sdk is 'docker'; this app needs sdk: gradio"),
        (lambda m: m.update(sdk_version="5.0.0"), "sdk_version is 5.0.0, but requirements.txt pins gradio"),
        (lambda m: m.update(python_version=3.1), "python_version must be a quoted string"),
        (lambda m: m.update(suggested_hardware="h100-free"), "suggested_hardware 'h100-free' is not"),
        (lambda m: m.update(app_file="main.py"), "app_file main.py is not in the folder"),
    ],
)
def test_a_broken_front_matter_fails_check_with_the_reason(built, tmp_path, capsys, change, reason):
    folder = broken_copy(built, tmp_path)
    rewrite_front_matter(folder, change)
    assert main(["space", "check", str(folder)]) == 1
    assert reason in capsys.readouterr().err


def test_other_breakages_fail_check_with_the_reason(built, tmp_path):
    folder = broken_copy(built, tmp_path, "zerogpu-flux-kontext")
    rewrite_front_matter(folder, lambda m: m.update(preload_from_hub=["appletea2333/EditThinker-8B"]))
    assert space.check(folder) == [
        "the editor model black-forest-labs/FLUX.1-Kontext-dev is not in preload_from_hub, so it would download at start"
    ]
    (folder / "thinkedit_settings.json").write_text(json.dumps({"editor": "dall-e", "thinker": "classic"}))
    assert any("names editor 'dall-e'" in p for p in space.check(folder))
    (folder / "requirements.txt").write_text("gradio==5.0.0\n")
    assert any("fights sdk_version" in p for p in space.check(folder))
    (folder / "README.md").write_text("# no front matter\n")
    assert space.check(folder) == ["README.md front matter: README.md must start with a YAML block between '---' lines"]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("black-forest-labs/FLUX.1-Kontext-dev model_index.json, vae/config.json", "without spaces"),
        ("black-forest-labs/FLUX.1-Kontext-dev model_index.json,,vae/config.json", "an empty file name"),
        ("black-forest-labs/FLUX.1-Kontext-dev model_index.json main", "'main', which is not a commit sha"),
        ("black forest labs FLUX", "is not `repo_id"),
        ("--flux-- model_index.json", "does not start with a repository id"),
        ("black-forest-labs/FLUX.1-Kontext-dev vae/config.json", "not its model_index.json"),
    ],
)
def test_preload_entries_are_checked_against_the_spaces_syntax(built, tmp_path, entry, reason):
    folder = broken_copy(built, tmp_path, "zerogpu-flux-kontext")
    rewrite_front_matter(folder, lambda m: m.update(preload_from_hub=[entry, "appletea2333/EditThinker-8B"]))
    assert any(reason in problem for problem in space.check(folder, start_app=False))


def test_a_python_the_pinned_packages_refuse_fails_check_naming_them(built, tmp_path):
    folder = broken_copy(built, tmp_path, "zerogpu-flux-kontext")
    rewrite_front_matter(folder, lambda m: m.update(python_version="3.10"))
    problems = space.check(folder, start_app=False)
    for package in ("transformers 5.23.0", "diffusers 0.42.1"):  # both say Requires-Python >=3.11
        assert any(p.startswith(f"{package} requires Python >=3.11") and '"3.10"' in p for p in problems), problems
    assert not any(p.startswith(("torch ", "gradio ")) for p in problems)  # these accept 3.10
    rewrite_front_matter(folder, lambda m: m.update(python_version="three"))
    assert space.check(folder, start_app=False) == ['python_version "three" is not a Python version such as "3.12"']


def test_the_projects_lowest_python_is_one_every_pinned_dependency_accepts():
    import tomllib

    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    project = pyproject["project"]
    supported = SpecifierSet(project["requires-python"])
    lowest = next(f"3.{minor}" for minor in range(8, 20) if f"3.{minor}" in supported)
    pins = {re.split(r"[\[=]", line)[0]: line.split("==")[1] for line in project["dependencies"] if "==" in line}
    assert len(pins) >= 10
    assert space.python_problems(lowest, pins) == []
    assert pyproject["tool"]["ruff"]["target-version"] == "py3" + lowest.split(".")[1]


def test_an_app_that_does_not_start_fails_check(built, tmp_path):
    folder = broken_copy(built, tmp_path)
    (folder / "app.py").write_text("import torch\n")  # cpu-basic installs no torch
    assert space.check(folder) == [
        "app.py does not start: ModuleNotFoundError: import of torch halted; None in sys.modules"
    ]
    (folder / "app.py").write_text("print('no launch')\n")
    assert space.check(folder) == ["app.py ran but never launched a gradio app"]


# -- the settings file -------------------------------------------------------------------------------


def test_settings_file_sits_below_environment_and_overrides(tmp_path, monkeypatch):
    file = tmp_path / "defaults.json"
    file.write_text(json.dumps({"editor": "flux-kontext", "max_turns": 5, "public": True, "runs_dir": "/tmp/r"}))
    env = {"THINKEDIT_SETTINGS_FILE": str(file), "THINKEDIT_MAX_TURNS": "7"}
    settings = Settings.from_env(env, editor="classic")
    assert (settings.editor, settings.max_turns, settings.public, settings.runs_dir) == (
        "classic",
        7,
        True,
        Path("/tmp/r"),
    )
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({}).editor == "classic"  # no ./thinkedit_settings.json: the defaults
    shutil.copy(file, tmp_path / "thinkedit_settings.json")
    assert Settings.from_env({}).max_turns == 5
    file.write_text(json.dumps({"edtor": "classic"}))
    with pytest.raises(BadInput, match="unknown settings: edtor"):
        Settings.from_env(env)
    with pytest.raises(BadInput, match="not a file"):
        Settings.from_env({"THINKEDIT_SETTINGS_FILE": str(tmp_path / "missing.json")})


@pytest.fixture
def spaces_module(monkeypatch):
    """The real `spaces` package, imported while SPACES_ZERO_GPU is unset (as a Space's import would see it)."""
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    return pytest.importorskip("spaces")


def test_built_cpu_space_starts_without_torch_and_runs_a_classic_edit(built, spaces_module, tmp_path, scene):
    """`python app.py` in the built folder, with what the Space will not install made unimportable."""
    from gradio_client import Client, handle_file

    folder, port = built["cpu-basic"], free_port()
    blocked = space.missing_on_space(folder)
    assert {"torch", "diffusers", "transformers"} <= set(blocked)
    start = (
        f"import runpy, sys; sys.modules.update(dict.fromkeys({blocked!r})); sys.path.insert(0, '.'); "
        f"sys.argv = ['app.py', '--port', '{port}']; runpy.run_path('app.py', run_name='__main__')"
    )
    env = {**os.environ, "THINKEDIT_HOST": "127.0.0.1", "THINKEDIT_RUNS_DIR": str(tmp_path / "runs")}
    env.pop("SPACES_ZERO_GPU", None)
    app = subprocess.Popen(
        [sys.executable, "-c", start], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert app.poll() is None, app.stderr.read()
            assert time.monotonic() < deadline, "the Space app did not start within 60 s"
            time.sleep(0.2)
        scene.save(tmp_path / "scene.png")
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        job = client.submit(
            handle_file(str(tmp_path / "scene.png")), "make it black and white", api_name="/edit", max_turns=2
        )
        record = job.result()[8]
        assert (record["editor"], record["thinker"], record["error"]) == ("classic", "classic", None)
        assert "/" not in record["run_dir"]  # a public page names the run by its id, never by its path
        run_dir = tmp_path / "runs" / record["run_dir"]
        assert (run_dir / "turn_01.png").is_file()
        edited = Image.open(run_dir / "turn_01.png").convert("HSV")
        assert max(edited.getchannel("S").getdata()) <= 8  # black and white: no saturation left
    finally:
        app.terminate()
        app.wait(10)
