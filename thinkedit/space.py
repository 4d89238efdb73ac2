"""Hugging Face Spaces: assemble a ready-to-push Space folder for one variant, and check that it deploys.

`spaces_config/<variant>/` holds `space.yaml` (the README front matter, the package names the hardware
needs, a short card) and `thinkedit_settings.json` (the variant's defaults, which `Settings.from_env`
reads at start). `python -m thinkedit space build --variant NAME --out DIR` writes app.py, the
thinkedit package, assets/, requirements.txt, README.md and the settings file into DIR and checks it;
`python -m thinkedit space check DIR` checks an existing folder.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

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
    (out / "requirements.txt").write_text("\n".join(requirement_lines(config["requirements"])) + "\n")
    front_matter = yaml.safe_dump(config["front_matter"], sort_keys=False, allow_unicode=True)
    (out / "README.md").write_text(f"---\n{front_matter}---\n\n{config['card'].strip()}\n", encoding="utf-8")
    (out / ".gitattributes").write_text("".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS))
    problems = check(out)
    if problems:
        raise ThinkEditError(f"The {variant} Space in {out} would not deploy:\n- " + "\n- ".join(problems))
    return out


def requirement_lines(wanted: str | list[str]) -> list[str]:
    """The project's pinned requirement lines for the named packages ("all": every line)."""
    pins = {_package(line): line for line in _requirements(PROJECT / "requirements.txt")}
    if wanted == "all":
        return list(pins.values())
    missing = [name for name in wanted if _normal(name) not in pins]
    if missing:
        raise ThinkEditError(f"requirements.txt has no line for {', '.join(missing)}; add it there first.")
    return [pins[_normal(name)] for name in wanted]


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
    if start_app and not problems:
        problems += _start_problems(folder, app_file)
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


def _start_problems(folder: Path, app_file: str) -> list[str]:
    """Start the app as the Space will (`python app.py` in the folder), with gradio's `launch` stubbed out
    and the project's packages that the Space will not install made unimportable."""
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
if not pathlib.Path(thinkedit.__file__).resolve().is_relative_to(pathlib.Path(".").resolve()):
    sys.exit(3)
sys.exit(0 if launched else 4)
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("THINKEDIT_SETTINGS_FILE", None)  # the folder's own settings file is the one under test
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=folder, env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return [f"starting {app_file} took longer than {START_TIMEOUT_S} s"]
    if done.returncode == 3:
        return ["the app imported another thinkedit package than the folder's own"]
    if done.returncode == 4:
        return [f"{app_file} ran but never launched a gradio app"]
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        return [f"{app_file} does not start: {last}"]
    return []


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
