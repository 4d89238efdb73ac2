"""Every setting in one place: its default, its environment variable, its allowed range.

The CLI flags, the web app and the Space variants all build a `Settings` through `Settings.from_env`,
so `--editor-model X` and `THINKEDIT_EDITOR_MODEL=X` mean the same thing everywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput

MAX_TURNS_RANGE = (1, 10)
THRESHOLD_RANGE = (0.0, 10.0)
STEPS_RANGE = (1, 500)
GUIDANCE_RANGE = (0.0, 100.0)
FIRST_TURN_STRATEGIES = ("none", "polish", "critique-source")
MAX_INSTRUCTION_CHARS = 2000
MAX_IMAGE_PIXELS = 40_000_000
OFFLOAD_MODES = ("auto", "none", "model", "group", "sequential")
SPEEDS = ("default", "fast")  # fast: the editor row's `fast` preset, a static-cache compiled thinker on CUDA
SETTINGS_FILE = "thinkedit_settings.json"  # a Space's defaults; THINKEDIT_SETTINGS_FILE names another
PER_REQUEST = {"caller_endpoints", "editor_key", "thinker_key"}  # set per request by the web app, never configured
NOT_FROM_ENVIRONMENT = PER_REQUEST | {"extra"}  # never read from a THINKEDIT_* variable


@dataclass
class Settings:
    """Process-wide configuration: which backends, where their models and servers are, where runs go."""

    editor: str = "classic"
    editor_model: str | None = None
    editor_url: str | None = None
    editor_provider: str | None = None
    thinker: str = "classic"
    thinker_model: str | None = None
    thinker_url: str | None = None
    thinker_provider: str | None = None
    thinker_template: str | None = None
    polish_template: str | None = None
    judge: str = "classic"  # `thinkedit eval`: who scores the edits (VIEScore rubric), independent of the thinker
    judge_model: str | None = None
    judge_url: str | None = None
    judge_provider: str | None = None
    judge_templates: str | None = None  # a folder with judge_semantic.txt and judge_quality.txt
    judge_retries: int = 2  # an unreadable verdict is asked again this many times, then recorded as null
    evals_dir: Path = Path("evals")  # where `thinkedit eval` folders are looked for (the web app's Benchmarks)
    max_turns: int = 3
    threshold: float = 8.0
    first_turn: str = "none"
    runs_dir: Path = Path("runs")
    device: str | None = None
    dtype: str | None = None
    offload: str = "auto"
    speed: str = "default"  # "fast": opt-in speed-ups (thinkedit/editors/_speed.py); "default": today's path exactly
    memory_budget_gb: float | None = None
    editor_storage_dtype: str | None = None  # float8_e4m3fn: a diffusers editor keeps its denoiser in 8 bits
    omnigen2_path: str | None = None  # a clone of github.com/VectorSpaceLab/OmniGen2: its code is not on PyPI
    thinker_image_side: int = 1024
    thinker_max_new_tokens: int = 4096  # what the EditThinker authors allow their thinker (vLLM max_tokens)
    request_timeout: float = 120.0  # remote backends: seconds to wait for an answer (read timeout)
    connect_timeout: float = 10.0  # remote backends: seconds to wait for a connection
    request_retries: int = 3  # remote backends: retries on 429, 5xx and connection errors
    retry_backoff: float = 1.0  # remote backends: first retry waits this long, then doubling
    edit_timeout: float = 600.0  # seconds an editor may go without a step or heartbeat (remote: the read timeout)
    thinker_timeout: float = 600.0  # seconds a thinker may go without a token or heartbeat (loading included)
    host: str = "127.0.0.1"
    port: int = 7860
    public: bool = False
    ui_concurrency: int = 4  # web app: runs at once (runs on the one local GPU still take turns)
    max_queue: int = 32  # web app: runs waiting at most; beyond that a person is told to retry
    mcp: bool = False  # web app: also an MCP server at /gradio_api/mcp/ with the think_edit tool
    extra: dict = field(default_factory=dict)
    # Per request, from a caller (the web page or its API), never from the environment and never saved:
    caller_endpoints: tuple[str, ...] = ()  # the roles whose URL the caller named: they get no server key
    editor_key: str | None = field(default=None, repr=False)  # the caller's own key for their endpoint
    thinker_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> Settings:
        """Defaults, then the settings file, then `THINKEDIT_<FIELD>` environment variables, then explicit
        overrides (None = unset). The settings file is THINKEDIT_SETTINGS_FILE, else ./thinkedit_settings.json."""
        env = os.environ if env is None else env
        values = read_settings_file(env.get("THINKEDIT_SETTINGS_FILE"))
        for f in dataclasses.fields(cls):
            if f.name in NOT_FROM_ENVIRONMENT:
                continue
            raw = env.get(f"THINKEDIT_{f.name.upper()}")
            if raw not in (None, ""):
                values[f.name] = _convert(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("runs_dir", "evals_dir"):
            if name in values:
                values[name] = Path(values[name])
        return cls(**values)

    def __post_init__(self) -> None:
        if self.speed not in SPEEDS:
            raise BadInput(f"Unknown speed '{self.speed}'; use {' or '.join(SPEEDS)}.")

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _convert(name: str, raw: str):
    default = getattr(Settings, name, None) if name != "runs_dir" else Path()
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    kind = (
        int if isinstance(default, int) else float if isinstance(default, float) or name == "memory_budget_gb" else str
    )
    try:
        return kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise BadInput(f"THINKEDIT_{name.upper()} must be {what}, not '{raw}'.") from None


def read_settings_file(named: str | None) -> dict:
    """Field values from a JSON settings file; {} when none is named and ./thinkedit_settings.json is absent."""
    path = Path(named or SETTINGS_FILE)
    if not path.is_file():
        if named:
            raise BadInput(f"THINKEDIT_SETTINGS_FILE names {path}, which is not a file.")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BadInput(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path} must hold one JSON object of settings.")
    unknown = sorted((set(data) - {f.name for f in dataclasses.fields(Settings)}) | (set(data) & PER_REQUEST))
    if unknown:
        raise BadInput(f"{path} has unknown settings: {', '.join(unknown)}. Remove them or fix their names.")
    return data


BACKEND_FLAGS = {  # flag → its argparse options; each names a Settings field (`Settings.from_env` mirrors it)
    "--editor": {"help": "editor name (see `thinkedit backends`)"},
    "--editor-model": {"help": "checkpoint id or local folder for the editor"},
    "--editor-url": {"help": "editing server URL(s), comma-separated"},
    "--editor-provider": {"help": "Inference Providers provider for hf-inference"},
    "--thinker": {"help": "thinker name (see `thinkedit backends`)"},
    "--thinker-model": {"help": "checkpoint id, local folder or served model name"},
    "--thinker-url": {"help": "OpenAI-compatible base URL, e.g. http://gpu-box:8000/v1"},
    "--thinker-provider": {"help": "Inference Providers provider for hf-inference"},
    "--thinker-template": {"help": "critique template file ({instruction}, {prompt})"},
    "--device": {"help": "cuda, cuda:1, mps or cpu (default: the best available)"},
    "--dtype": {"help": "bfloat16, float16 or float32 (default: by device)"},
    "--offload": {"choices": OFFLOAD_MODES, "help": "model offload mode (default auto)"},
    "--speed": {"choices": SPEEDS, "help": "fast: caches, compilation, few-step LoRAs (default: default)"},
    "--runs-dir": {"help": "where runs are saved (default ./runs, THINKEDIT_RUNS_DIR)"},
}
JUDGE_FLAGS = {  # `thinkedit eval`'s judge, the same way
    "--judge": {"help": "classic (default), openai, qwen-vl or hf-inference"},
    "--judge-model": {"help": "served model name, checkpoint id or local folder"},
    "--judge-url": {"help": "OpenAI-compatible base URL (the judge's key goes only here)"},
    "--judge-provider": {"help": "Inference Providers provider for hf-inference"},
    "--judge-templates": {"help": "folder with judge_semantic.txt and judge_quality.txt"},
}


def add_backend_arguments(parser: argparse.ArgumentParser, judge: bool = False) -> None:
    """The flags that choose and point backends (with `judge`, the judge's too); `settings_from_args` reads them."""
    groups = {"backends": BACKEND_FLAGS} | ({"judge": JUDGE_FLAGS} if judge else {})
    for title, flags in groups.items():
        group = parser.add_argument_group(title)
        for flag, options in flags.items():
            group.add_argument(flag, **options)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings the environment gives, with the backend (and judge) flags given on top."""
    names = [flag[2:].replace("-", "_") for flag in (*BACKEND_FLAGS, *JUDGE_FLAGS)]
    return Settings.from_env(**{name: getattr(args, name, None) for name in names})


def add_loop_arguments(parser: argparse.ArgumentParser) -> None:
    """The loop's settings, as `edit` and `eval` take them; `loop_options` reads them back."""
    group = parser.add_argument_group("the loop")
    group.add_argument("--max-turns", type=int, help="1..10 (default 3)")
    group.add_argument("--threshold", type=float, help="stop when both scores reach this (default 8)")
    group.add_argument("--first-turn", choices=FIRST_TURN_STRATEGIES, help="first-turn strategy (default none)")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--steps", type=int, help="editor steps (default: the editor's)")
    group.add_argument("--guidance", type=float, help="editor guidance (default: the editor's)")


def loop_options(args: argparse.Namespace, settings: Settings) -> dict:
    """`loop.make_request` keyword arguments from the loop flags, with the settings' defaults."""
    return {
        "max_turns": args.max_turns if args.max_turns is not None else settings.max_turns,
        "threshold": args.threshold if args.threshold is not None else settings.threshold,
        "first_turn": args.first_turn or settings.first_turn,
        "seed": args.seed,
        "steps": args.steps,
        "guidance": args.guidance,
    }
