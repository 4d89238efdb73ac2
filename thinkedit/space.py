"""Hugging Face Spaces: assemble a ready-to-push Space folder for one variant, and check that it deploys.

`spaces_config/<variant>/` holds `space.yaml` (the README front matter, the package names the hardware
needs, a short card) and `thinkedit_settings.json` (the variant's defaults, which `Settings.from_env`
reads at start). `python -m thinkedit space build --variant NAME --out DIR` writes app.py, the
thinkedit package, assets/, requirements.txt, README.md and the settings file into DIR and checks it;
`python -m thinkedit space check DIR` checks an existing folder.

A ZeroGPU variant is also started the way ZeroGPU starts it: under the real `spaces` package's CUDA emulation
(`SPACES_ZERO_GPU=true`, its device API a local stand-in), with tiny random checkpoints of the variant's editor and
thinker built by the repository's test helpers, so that the models preload onto the emulated "cuda" and the
`spaces.GPU` functions are reported at launch, as on the Space. Its torch pin must be one ZeroGPU supports, its
preloaded models must fit ZeroGPU's "large" size, and a default run must fit a free account's daily quota.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from . import zerogpu
from .config import SETTINGS_FILE, Settings, read_settings_file
from .errors import BadInput, ThinkEditError

PROJECT = Path(__file__).resolve().parent.parent
CONFIGS = PROJECT / "spaces_config"
REQUIRED_KEYS = (
    "title",
    "emoji",
    "sdk",
    "sdk_version",
    "python_version",
    "app_file",
    "license",
    "short_description",
    "suggested_hardware",
)
MAX_SHORT_DESCRIPTION = 60  # the Hub refuses longer ones
LFS_PATTERNS = ("*.png", "*.jpg", "*.jpeg", "*.webp", "*.ttf", "*.otf")  # binary files a git push must send by LFS
START_TIMEOUT_S = 180  # starting the app imports gradio and builds the page
ZERO_GPU_TORCH = ("2.8.0", "2.9.1", "2.10.0", "2.11.0")  # the hub's ZeroGPU page, "Supported Versions"


def variants() -> list[str]:
    return sorted(p.parent.name for p in CONFIGS.glob("*/space.yaml"))


def build(variant: str, out: str | Path) -> Path:
    """Write the Space folder for `variant` into `out` (absent or empty) and check it; the folder."""
    if variant not in variants():
        raise BadInput(f"Unknown Space variant '{variant}'. Choose one of: {', '.join(variants()) or 'none found'}.")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BadInput(f"{out} is not empty; choose a new or empty folder for the Space.")
    if not (PROJECT / "app.py").is_file():
        raise ThinkEditError(f"{PROJECT / 'app.py'} is missing; build Spaces from a source checkout of ThinkEdit.")
    config = yaml.safe_load((CONFIGS / variant / "space.yaml").read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PROJECT / "app.py", out / "app.py")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    shutil.copytree(PROJECT / "thinkedit", out / "thinkedit", ignore=ignore)
    if (PROJECT / "assets").is_dir():
        shutil.copytree(PROJECT / "assets", out / "assets", ignore=ignore)
    shutil.copy2(CONFIGS / variant / SETTINGS_FILE, out / SETTINGS_FILE)
    lines = requirement_lines(config["requirements"], config.get("pins", []))
    (out / "requirements.txt").write_text("\n".join(lines) + "\n")
    front_matter = yaml.safe_dump(config["front_matter"], sort_keys=False, allow_unicode=True)
    card = config["card"].strip().format_map(card_values(out))
    (out / "README.md").write_text(f"---\n{front_matter}---\n\n{card}\n", encoding="utf-8")
    (out / ".gitattributes").write_text("".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS))
    problems = check(out)
    if problems:
        raise ThinkEditError(f"The {variant} Space in {out} would not deploy:\n- " + "\n- ".join(problems))
    return out


def requirement_lines(wanted: str | list[str], replaced: list[str] = ()) -> list[str]:
    """The project's pinned requirement lines for the named packages ("all": every line), with the lines in
    `replaced` taking the place of the project's for their packages (a ZeroGPU Space's torch)."""
    pins = {_package(line): line for line in _requirements(PROJECT / "requirements.txt")}
    unknown = [line for line in replaced if _package(line) not in pins]
    if unknown:
        raise ThinkEditError(f"pins {', '.join(unknown)} name packages requirements.txt does not have.")
    chosen = list(pins) if wanted == "all" else [_normal(name) for name in wanted]
    missing = [name for name in chosen if name not in pins]
    if missing:
        raise ThinkEditError(f"requirements.txt has no line for {', '.join(missing)}; add it there first.")
    pins |= {_package(line): line for line in replaced}
    return [pins[name] for name in chosen]


def card_values(folder: Path) -> dict[str, int]:
    """What a ZeroGPU card states (`{name}` in its text): each call's GPU seconds (`zerogpu.budget` of the folder's
    settings) and the GB its models preload; nothing for a Space without a local editor."""
    from .editors import EDITORS
    from .thinkers import THINKERS

    settings = Settings(**read_settings_file(str(folder / SETTINGS_FILE)))
    editor, thinker = EDITORS.get(settings.editor), THINKERS.get(settings.thinker)
    if editor is None or thinker is None or editor.kind != "local":
        return {}
    held = preloaded_gb(editor, settings) + preloaded_gb(thinker, settings)
    return zerogpu.budget(editor, thinker, settings) | {"preloaded_gb": round(held)}


def pinned_gradio() -> str:
    """The gradio version requirements.txt pins (what sdk_version must say); the installed one without a pin."""
    for line in _requirements(PROJECT / "requirements.txt"):
        if _package(line) == "gradio" and "==" in line:
            return line.split("==", 1)[1].strip()
    return metadata.version("gradio")


def check(folder: str | Path, *, start_app: bool = True) -> list[str]:
    """Why the Space folder would not deploy, one sentence each; [] when it would."""
    folder = Path(folder)
    readme = folder / "README.md"
    if not readme.is_file():
        return [f"{readme} is missing; it carries the Space's front matter."]
    try:
        meta = front_matter(readme.read_text(encoding="utf-8"))
    except ValueError as exc:
        return [f"README.md front matter: {exc}"]
    problems = [f"front matter lacks '{key}'" for key in REQUIRED_KEYS if key not in meta]
    if "sdk" in meta and meta["sdk"] != "gradio":
        problems.append(f"sdk is '{meta['sdk']}'; this app needs sdk: gradio")
    pinned = pinned_gradio()
    if "sdk_version" in meta and str(meta["sdk_version"]) != pinned:
        problems.append(f"sdk_version is {meta['sdk_version']}, but requirements.txt pins gradio {pinned}")
    if "python_version" in meta and not isinstance(meta["python_version"], str):
        problems.append(f'python_version must be a quoted string such as "3.12", not {meta["python_version"]!r}')
    elif "python_version" in meta:
        problems += python_problems(meta["python_version"], _installed_pins(folder, meta))
    if len(str(meta.get("short_description", ""))) > MAX_SHORT_DESCRIPTION:
        problems.append(f"short_description is longer than {MAX_SHORT_DESCRIPTION} characters")
    problems += _hardware_problems(meta.get("suggested_hardware"))
    problems += preload_problems(meta.get("preload_from_hub") or [])
    app_file = meta.get("app_file")
    if app_file and not (folder / app_file).is_file():
        problems.append(f"app_file {app_file} is not in the folder")
    problems += _requirements_problems(folder, pinned)
    problems += _backend_problems(folder, meta)
    zero = str(meta.get("suggested_hardware", "")).startswith("zero-")
    if zero and not problems:
        problems += zero_gpu_problems(folder)
    if start_app and not problems:
        problems += _start_problems(folder, app_file, zero)
    return problems


def python_problems(python_version: str, pins: dict[str, str]) -> list[str]:
    """One sentence per pinned package (name → version) whose own `Requires-Python` refuses `python_version`.

    The requirement is read from the installed package's metadata, so only packages installed here at
    exactly the pinned version can be checked; the others are left alone.
    """
    try:
        python = Version(python_version)
    except InvalidVersion:
        return [f'python_version "{python_version}" is not a Python version such as "3.12"']
    problems = []
    for name, version in sorted(pins.items()):
        try:
            installed = metadata.metadata(name)
        except metadata.PackageNotFoundError:
            continue
        requires = installed.get("Requires-Python")
        if installed["Version"].split("+")[0] == version and requires and python not in SpecifierSet(requires):
            problems.append(
                f"{name} {version} requires Python {requires} (its package metadata), but "
                f'python_version is "{python_version}": choose a Python it accepts'
            )
    return problems


def _installed_pins(folder: Path, meta: dict) -> dict[str, str]:
    """What the Space installs at an exact version: the `==` lines of its requirements.txt, and gradio at
    sdk_version (the Space installs that gradio whatever requirements.txt says)."""
    file = folder / "requirements.txt"
    lines = _requirements(file) if file.is_file() else []
    pins = {_package(line): line.split("==", 1)[1].split(";")[0].strip() for line in lines if "==" in line}
    if "sdk_version" in meta:
        pins["gradio"] = str(meta["sdk_version"])
    return pins


def front_matter(text: str) -> dict:
    """The YAML between the leading `---` lines of a Space README; ValueError when there is none or it is bad."""
    match = re.match(r"\A---\s*\n(.*?)\n---\s*(\n|\Z)", text, re.DOTALL)
    if not match:
        raise ValueError("README.md must start with a YAML block between '---' lines")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError("the YAML block is not a mapping of keys to values")
    return meta


def preload_problems(entries) -> list[str]:
    """`preload_from_hub` entries read as the Spaces docs write them: `repo_id [file1,file2,...] [commit_sha]`."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not isinstance(entries, list):
        return ["preload_from_hub must be a list of `repo_id [file1,file2] [commit]` entries"]
    problems = []
    for entry in entries:
        parts = str(entry).split()
        if not 1 <= len(parts) <= 3:
            problems.append(
                f"preload_from_hub entry '{entry}' is not `repo_id [file1,file2] [commit]` "
                "(file names are separated by commas, without spaces)"
            )
            continue
        try:
            validate_repo_id(parts[0])
        except HFValidationError:
            problems.append(f"preload_from_hub entry '{entry}' does not start with a repository id such as org/name")
        if len(parts) > 1 and "" in parts[1].split(","):
            problems.append(f"preload_from_hub entry '{entry}' has an empty file name in its comma-separated list")
        if len(parts) == 3 and not re.fullmatch(r"[0-9a-f]{40}", parts[2]):
            problems.append(
                f"preload_from_hub entry '{entry}' ends with '{parts[2]}', which is not a commit sha "
                "(file names are separated by commas, without spaces)"
            )
    return problems


def _hardware_problems(hardware) -> list[str]:
    from huggingface_hub import SpaceHardware

    known = [flavor.value for flavor in SpaceHardware]
    if hardware is not None and hardware not in known:
        return [f"suggested_hardware '{hardware}' is not a Space hardware flavor ({', '.join(known)})"]
    return []


def _requirements_problems(folder: Path, pinned: str) -> list[str]:
    file = folder / "requirements.txt"
    if not file.is_file():
        return ["requirements.txt is missing"]
    for line in _requirements(file):
        if _package(line) == "gradio" and re.sub(r"\[.*?\]|\s", "", line) != f"gradio=={pinned}":
            return [f"requirements.txt asks for '{line}', which fights sdk_version {pinned}"]
    return []


def _backend_problems(folder: Path, meta: dict) -> list[str]:
    """The settings file parses, names backends that exist, and every local model is listed and preloaded."""
    from .editors import EDITORS
    from .thinkers import THINKERS

    if not (folder / SETTINGS_FILE).is_file():
        return [f"{SETTINGS_FILE} is missing; it holds the variant's editor, thinker and turns"]
    try:
        settings = Settings(**read_settings_file(str(folder / SETTINGS_FILE)))
    except (BadInput, TypeError) as exc:
        return [f"{SETTINGS_FILE}: {exc}"]
    problems = []
    models = meta.get("models") or []
    entries = meta.get("preload_from_hub")  # its own shape is `preload_problems`' to report
    preloaded = {
        parts[0]: parts[1].split(",") if len(parts) > 1 else None
        for parts in (str(entry).split() for entry in (entries if isinstance(entries, list) else []))
        if parts
    }
    for role, table in (("editor", EDITORS), ("thinker", THINKERS)):
        chosen = settings.role(role)
        name = chosen.backend
        spec = table.get(name)
        if spec is None:
            problems.append(f"{SETTINGS_FILE} names {role} '{name}', which is not one of: {', '.join(table)}")
            continue
        model = chosen.model or spec.model
        if spec.kind == "local" and model not in models:
            problems.append(f"the {role} model {model} is not in the front matter's models list")
        if spec.kind == "local" and model not in preloaded:
            problems.append(f"the {role} model {model} is not in preload_from_hub, so it would download at start")
        marker = "model_index.json" if role == "editor" else "config.json"  # what from_pretrained reads first
        if spec.kind == "local" and preloaded.get(model) and marker not in preloaded[model]:
            problems.append(f"preload_from_hub lists files of {model} but not its {marker}")
    return problems


def zero_gpu_problems(folder: Path) -> list[str]:
    """A ZeroGPU folder pins a torch ZeroGPU runs, preloads no more than its "large" size holds, and a default run
    fits a free account's daily quota (`zerogpu.budget`)."""
    from .editors import EDITORS
    from .thinkers import THINKERS

    problems = []
    torch = _installed_pins(folder, {}).get("torch")
    if torch not in ZERO_GPU_TORCH:
        problems.append(
            f"requirements.txt pins torch {torch or '(none)'}, which ZeroGPU does not run: pin one of "
            f"{', '.join(ZERO_GPU_TORCH)} (and the torchvision made for it) in the variant's pins"
        )
    settings = Settings(**read_settings_file(str(folder / SETTINGS_FILE)))
    held = preloaded_gb(EDITORS[settings.editor], settings) + preloaded_gb(THINKERS[settings.thinker], settings)
    if held > zerogpu.LARGE_LIMIT_GB:
        problems.append(
            f"the preloaded models hold about {held:.1f} GB, more than ZeroGPU's large size "
            f"({zerogpu.LARGE_LIMIT_GB:.1f} GB): every call would run xlarge and count twice against a visitor's "
            "quota; keep the editor's denoiser in float8 (editor_storage_dtype) or choose smaller models"
        )
    costs = card_values(folder)
    if costs and costs["counted_run_s"] > zerogpu.FREE_DAILY_S:
        problems.append(
            f"a default run of {costs['turns']} turns counts {costs['counted_run_s']} s of ZeroGPU quota, more than "
            f"a free account's daily {zerogpu.FREE_DAILY_S} s: lower max_turns, thinker_max_new_tokens or the steps"
        )
    return problems


def preloaded_gb(spec, settings: Settings) -> float:
    """GB a local row's default checkpoint holds on the GPU with these settings; 0 for backends that hold nothing."""
    if spec.kind != "local":
        return 0.0
    return spec.held_gb(float8_storage=bool(settings.editor_storage_dtype)) or 0.0


def _start_problems(folder: Path, app_file: str, zero: bool = False) -> list[str]:
    """Start the app as the Space will (`python app.py` in the folder), with gradio's `launch` stubbed out and the
    project's packages that the Space will not install made unimportable; on ZeroGPU hardware, under `spaces`'
    emulation with tiny checkpoints, checking that the local models preloaded and that `spaces` reported its
    GPU functions at launch."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("THINKEDIT_SETTINGS_FILE", None)  # the folder's own settings file is the one under test
    env.pop("SPACES_ZERO_GPU", None)
    with tempfile.TemporaryDirectory(prefix="thinkedit-space-check-") as scratch:
        reports: list[str] = []
        preloads = 0
        if zero:
            try:
                zero_env, preloads = _tiny_zero_gpu(folder, Path(scratch))
            except ThinkEditError as exc:
                return [str(exc)]
            env |= zero_env
            with _device_api(reports) as api:
                problem = _run_probe(folder, app_file, env | {"SPACES_ZERO_DEVICE_API_URL": api}, preloads)
        else:
            problem = _run_probe(folder, app_file, env, preloads)
    if problem:
        return [problem]
    if zero and "/startup-report" not in reports:
        return [
            "the app launched before any spaces.GPU function existed, so spaces reported none to ZeroGPU "
            "and the Space would never get a GPU"
        ]
    return []


def _run_probe(folder: Path, app_file: str, env: dict[str, str], preloads: int) -> str | None:
    probe = f"""
import pathlib, runpy, sys
sys.modules.update(dict.fromkeys({missing_on_space(folder)!r}))
sys.path.insert(0, ".")
sys.argv = [{app_file!r}]
import gradio
launched = []
gradio.Blocks.launch = lambda self, *args, **kwargs: launched.append(kwargs)
runpy.run_path({app_file!r}, run_name="__main__")
import thinkedit
from thinkedit import runtime
if not pathlib.Path(thinkedit.__file__).resolve().is_relative_to(pathlib.Path(".").resolve()):
    sys.exit(3)
if runtime.CACHE.loads < {preloads}:
    sys.exit(5)
sys.exit(0 if launched else 4)
"""
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=folder, env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return f"starting {app_file} took longer than {START_TIMEOUT_S} s"
    if done.returncode == 0:
        return None
    reasons = {
        3: "the app imported another thinkedit package than the folder's own",
        4: f"{app_file} ran but never launched a gradio app",
        5: f"{app_file} launched without preloading its local models",
    }
    return reasons.get(done.returncode, f"{app_file} does not start: {last_error(done.stderr)}")


def last_error(stderr: str) -> str:
    """The line of a traceback that names the exception (its message may go on for lines), else the last line."""
    lines = stderr.strip().splitlines() or ["(no message)"]
    named = [line for line in lines if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", line)]
    return (named or lines)[-1]


def _tiny_zero_gpu(folder: Path, scratch: Path) -> tuple[dict[str, str], int]:
    """The environment of a ZeroGPU start with tiny random checkpoints of the folder's local backends, built in
    `scratch` by the repository's test helpers, and how many models it must preload."""
    from .editors import EDITORS
    from .thinkers import THINKERS

    if importlib.util.find_spec("spaces") is None:
        raise ThinkEditError(
            "the ZeroGPU start cannot be checked: the spaces package is not installed here (pip install -e '.[test]')"
        )
    tests = PROJECT / "tests"
    if not (tests / "tiny_pipelines.py").is_file():
        raise ThinkEditError(
            "the ZeroGPU start is checked with the repository's tests/ helpers: run it from a source checkout"
        )
    settings = Settings(**read_settings_file(str(folder / SETTINGS_FILE)))
    sys.path.insert(0, str(tests))
    try:
        from tiny_pipelines import build_tiny_pipeline
        from tiny_qwen_vl import build_tiny_qwen_vl
    finally:
        sys.path.remove(str(tests))
    env = {
        "SPACES_ZERO_GPU": "true",
        "ZEROGPU_OFFLOAD_DIR": str(scratch / "packed"),  # where spaces writes the preloaded tensors at launch
        "ZEROGPU_MMAP_AUTOPRUNE_PATTERN": str(scratch / "never" / "*"),  # it deletes the files it matches
        "CUDA_VISIBLE_DEVICES": "",  # the emulation alone, on any machine
    }
    editor, thinker = EDITORS[settings.editor], THINKERS[settings.thinker]
    if editor.kind == "local":
        if not editor.tiny:
            raise ThinkEditError(f"the ZeroGPU start cannot be checked: {editor.name} has no tiny build")
        env["THINKEDIT_EDITOR_MODEL"] = str(build_tiny_pipeline(editor.tiny, scratch / "editor"))
    if thinker.kind == "local":
        env["THINKEDIT_THINKER_MODEL"] = str(build_tiny_qwen_vl(scratch / "thinker"))
    return env, sum(spec.kind == "local" for spec in (editor, thinker))


@contextmanager
def _device_api(reports: list[str]) -> Iterator[str]:
    """A stand-in for ZeroGPU's device API on 127.0.0.1 that records what `spaces` posts to it; its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            reports.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def missing_on_space(folder: Path) -> list[str]:
    """Import names of the project's requirements that neither the Space's requirements.txt nor gradio bring."""
    gradio_brings = {"gradio"} | {_package(line) for line in metadata.requires("gradio") or []}
    present = {_package(line) for line in _requirements(folder / "requirements.txt")} | gradio_brings
    project = {_package(line) for line in _requirements(PROJECT / "requirements.txt")}
    return sorted(name.replace("-", "_") for name in project - present)


def _requirements(file: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in file.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def _package(line: str) -> str:
    return _normal(re.split(r"[<>=!~;\[\s]", line, maxsplit=1)[0])


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# -- command line ------------------------------------------------------------------------------------


def register(subparsers) -> None:
    space = subparsers.add_parser("space", help="build or check a Hugging Face Space folder")
    actions = space.add_subparsers(dest="space_command", required=True)
    build_parser = actions.add_parser("build", help="assemble a ready-to-push Space folder for one variant")
    build_parser.add_argument("--variant", required=True, help=f"one of: {', '.join(variants())}")
    build_parser.add_argument("--out", required=True, help="a new or empty folder")
    build_parser.set_defaults(handler=_build_command)
    check_parser = actions.add_parser("check", help="check that a Space folder would deploy")
    check_parser.add_argument("folder")
    check_parser.set_defaults(handler=_check_command)


def _build_command(args: argparse.Namespace) -> int:
    folder = build(args.variant, args.out)
    print(f"Space folder ready: {folder}")
    print(f"Push it with: hf upload --repo-type space YOUR_NAME/YOUR_SPACE {folder} .")
    return 0


def _check_command(args: argparse.Namespace) -> int:
    problems = check(args.folder)
    if problems:
        print(f"{args.folder} would not deploy:", file=sys.stderr)
        for problem in problems:
            print(f"- {problem}", file=sys.stderr)
        return 1
    meta = front_matter(Path(args.folder, "README.md").read_text(encoding="utf-8"))
    print(f"{args.folder}: deployable ({meta['title']}, {meta['suggested_hardware']})")
    return 0
