"""Every setting in one place: its default, its environment variable, its allowed range, its flag.

The CLI flags, the web app and the Space variants all build a `Settings` through `Settings.from_env`,
so `--editor-model X` and `THINKEDIT_EDITOR_MODEL=X` mean the same thing everywhere. `DEFAULTS` holds the loop's
defaults once for every surface (settings, requests, the page and its API, the MCP tool, the CLI's help).
`settings.role("thinker")` is one role's part as one typed view; what a caller brings to one request (the URLs
they named, their own keys) travels in its own `Caller`, on that request's copy of the settings only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput

MAX_TURNS_RANGE = (1, 10)
THRESHOLD_RANGE = (0.0, 10.0)
STEPS_RANGE = (1, 500)
GUIDANCE_RANGE = (0.0, 100.0)
FIRST_TURN_STRATEGIES = ("none", "polish", "critique-source")
SEED_PER_TURN = ("same", "increment")  # same: every turn edits with the run's seed, as the reference does
NO_ANSWER = ("stop", "repeat")  # a reply without a refined prompt: stop, as the reference does, or edit again
JUDGE_PROTOCOLS = ("ours", "viescore")  # our judge questions, or VIEScore's official request from its prompt file
BASELINES = ("rewrite", "best-of-n")  # what the loop is measured against (`thinkedit eval --modes`, Compare)
# The early stops; 0 (or none) turns each off.
PATIENCE_RANGE = (0, MAX_TURNS_RANGE[1])  # --patience K: stop once the best score has not risen for K turns
BUDGET_SECONDS_RANGE = (0.0, 10.0**7)  # --budget-seconds: the run's edit and think seconds
BUDGET_TOKENS_RANGE = (0, 10**12)  # --budget-tokens: the thinker's prompt and completion tokens
MAX_INSTRUCTION_CHARS = 2000
MAX_IMAGE_PIXELS = 40_000_000
OFFLOAD_MODES = ("auto", "none", "model", "group", "sequential")
SPEEDS = ("default", "fast")  # fast: the editor row's `fast` preset, a static-cache compiled thinker on CUDA
# settings that take one of a few words (a Space file or a THINKEDIT_* variable with another is refused)
CHOICES = {"speed": SPEEDS, "seed_per_turn": SEED_PER_TURN, "no_answer": NO_ANSWER, "judge_protocol": JUDGE_PROTOCOLS}
SETTINGS_FILE = "thinkedit_settings.json"  # a Space's defaults; THINKEDIT_SETTINGS_FILE names another
PER_REQUEST = {"caller"}  # set on a request's copy of the settings, never configured
NOT_FROM_ENVIRONMENT = PER_REQUEST | {"extra"}  # never read from a THINKEDIT_* variable
ROLES = ("editor", "thinker", "judge")


@dataclass(frozen=True)
class Defaults:
    """The loop's defaults, written once: `Settings`' fields, `EditRequest`'s, the Studio's, Compare's and the MCP
    tool's API parameters and the CLI's help all take them from `DEFAULTS`."""

    editor: str = "classic"
    thinker: str = "classic"
    judge: str = "classic"
    max_turns: int = 3  # the reference ran up to 5 (MAX_TURNS_RANGE bounds what a person may ask)
    threshold: float = 8.0  # the reference stops when both scores reach 8
    first_turn: str = "none"  # the instruction as written, as all four benchmarks ran it
    seed: int = 0  # the reference's seed
    seed_per_turn: str = "same"  # every turn edits with the run's seed, as the reference does
    no_answer: str = "stop"  # a reply without <answer> ends the run, as the reference's does
    patience: int | None = None  # no early stop: the loop goes on until a stop rule of the reference's ends it
    budget_seconds: float | None = None  # no compute budget
    budget_tokens: int | None = None
    edit_timeout: float = 600.0  # seconds an editor may go without a step or heartbeat (remote: the read timeout)
    thinker_timeout: float = 600.0  # seconds a thinker may go without a token or heartbeat (loading included)


DEFAULTS = Defaults()


@dataclass(frozen=True)
class Caller:
    """What one caller (the web page, its API, an agent) brings to one request besides its choices: the roles whose
    URL they named (those get no key of the server's, `remote.credential`) and their own keys for them. Never
    configured, never read from the environment, never saved, logged or shown."""

    named_urls: frozenset[str] = frozenset()
    keys: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Role:
    """One role's settings (editor, thinker or judge) as one typed view: `settings.role("thinker").url`."""

    role: str
    backend: str  # the chosen backend's name
    model: str | None  # None: the backend row's default
    url: str | None
    provider: str | None
    caller_named_url: bool = False  # the caller named this URL: no key of the server's goes there
    caller_key: str | None = field(default=None, repr=False)  # the caller's own key for it


# The remote bounds: a NaN, an infinity or a negative here would turn a limit off without a word.
POSITIVE_SECONDS_OR_MB = (
    "connect_timeout",
    "request_timeout",
    "edit_timeout",
    "thinker_timeout",
    "remote_answer_mb",
    "public_max_megapixels",
)
PRICES = ("price_gpu_hour", "price_million_tokens")  # None, or a finite number from 0: an estimated cost's prices
OPTIONAL_NUMBERS = {"memory_budget_gb", "run_memory_gb", *PRICES}  # None by default; a number when set


@dataclass
class Settings:
    """The configuration runs are built from: which backends, where their models and servers are, where runs go.

    The server's own comes from `from_env` and is shared by every request; a request's copy (`for_caller`) adds
    what its caller chose and brought.
    """

    editor: str = DEFAULTS.editor
    editor_model: str | None = None
    editor_url: str | None = None
    editor_provider: str | None = None
    thinker: str = DEFAULTS.thinker
    thinker_model: str | None = None
    thinker_url: str | None = None
    thinker_provider: str | None = None
    thinker_template: str | None = None
    polish_template: str | None = None
    judge: str = DEFAULTS.judge  # `thinkedit eval`: who scores the edits (VIEScore rubric), independent of the thinker
    judge_model: str | None = None
    judge_url: str | None = None
    judge_provider: str | None = None
    judge_templates: str | None = None  # a folder with judge_semantic.txt and judge_quality.txt
    judge_retries: int = 2  # an unreadable verdict is asked again this many times, then recorded as null
    judge_protocol: str = "ours"  # "viescore": the official request, its prompts read from `viescore_prompts`
    viescore_prompts: str | None = None  # a checkout of Step1X-Edit or VIEScore, or its viescore/vie_prompts.py
    evals_dir: Path = Path("evals")  # where `thinkedit eval` folders are looked for (the web app's Benchmarks)
    max_turns: int = DEFAULTS.max_turns
    threshold: float = DEFAULTS.threshold
    first_turn: str = DEFAULTS.first_turn
    seed_per_turn: str = DEFAULTS.seed_per_turn  # "increment": turn n edits with seed + n - 1
    no_answer: str = DEFAULTS.no_answer  # "repeat": a reply without <answer> edits again with the same prompt
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
    edit_timeout: float = DEFAULTS.edit_timeout
    thinker_timeout: float = DEFAULTS.thinker_timeout
    remote_answer_mb: float = 256.0  # remote backends: the largest answer read (a 40-megapixel edit as base64 PNG fits)
    host: str = "127.0.0.1"
    port: int = 7860
    public: bool = False
    keep_history: bool = True  # web app outside --public: History outlives a reload (run ids kept in the browser)
    ui_concurrency: int = 4  # web app: runs at once (runs on the one local GPU still take turns)
    run_memory_gb: float | None = None  # web app: host memory its runs may hold at once (default: half the RAM)
    public_max_megapixels: float = 16.0  # web app with --public: the largest image a visitor may send
    max_queue: int = 32  # web app: runs waiting at most; beyond that a person is told to retry
    mcp: bool = False  # web app: also an MCP server at /gradio_api/mcp/ with the think_edit tool
    price_gpu_hour: float | None = None  # what a GPU-hour costs you: turns GPU seconds into an estimated cost
    price_million_tokens: float | None = None  # what a million thinker tokens (prompt + completion) cost you
    extra: dict = field(default_factory=dict)
    caller: Caller = field(default_factory=Caller, repr=False)  # a request's copy only (`for_caller`)

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
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise BadInput(f"Unknown {name} '{getattr(self, name)}'; use {' or '.join(allowed)}.")
        for name in POSITIVE_SECONDS_OR_MB:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise BadInput(f"THINKEDIT_{name.upper()} must be a number above 0, not {value!r}.")
        if self.run_memory_gb is not None and not (math.isfinite(self.run_memory_gb) and self.run_memory_gb > 0):
            raise BadInput(f"THINKEDIT_RUN_MEMORY_GB must be a number above 0, not {self.run_memory_gb!r}.")
        for name in PRICES:
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
            ):
                raise BadInput(f"THINKEDIT_{name.upper()} must be a number from 0 (a price), not {value!r}.")
        for f in dataclasses.fields(self):  # a settings file's "runs\u0000" would fail later as "embedded null byte"
            if isinstance(getattr(self, f.name), (str, Path)) and "\0" in str(getattr(self, f.name)):
                raise BadInput(f"THINKEDIT_{f.name.upper()} holds a NUL character, which no name or path may hold.")

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def for_caller(self, caller: Caller) -> Settings:
        """This configuration for one request of `caller`."""
        return dataclasses.replace(self, caller=caller)

    def role(self, role: str) -> Role:
        """The `role` backend's settings (editor, thinker or judge) as one typed view."""
        if role not in ROLES:
            raise ValueError(f"Unknown role {role!r}; the roles are {', '.join(ROLES)}.")
        return Role(
            role=role,
            backend=getattr(self, role),
            model=getattr(self, f"{role}_model"),
            url=getattr(self, f"{role}_url"),
            provider=getattr(self, f"{role}_provider"),
            caller_named_url=role in self.caller.named_urls,
            caller_key=self.caller.keys.get(role),
        )


def _convert(name: str, raw: str):
    default = getattr(Settings, name, None) if name != "runs_dir" else Path()
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    kind = int if isinstance(default, int) else float if isinstance(default, float) or name in OPTIONAL_NUMBERS else str
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
    except RecursionError:
        raise BadInput(f"{path} is nested too deeply to be a settings file.") from None
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
PRICE_FLAGS = {  # an estimated cost (`edit`, `eval`, `show`), the same way
    "--price-gpu-hour": {"type": float, "help": "what a GPU-hour costs you (THINKEDIT_PRICE_GPU_HOUR): est. cost"},
    "--price-million-tokens": {
        "type": float,
        "help": "what a million thinker tokens cost you (THINKEDIT_PRICE_MILLION_TOKENS): est. cost",
    },
}
JUDGE_FLAGS = {  # `thinkedit eval`'s judge, the same way
    "--judge": {"help": "classic (default), openai, qwen-vl or hf-inference"},
    "--judge-model": {"help": "served model name, checkpoint id or local folder"},
    "--judge-url": {"help": "OpenAI-compatible base URL (the judge's key goes only here)"},
    "--judge-provider": {"help": "Inference Providers provider for hf-inference"},
    "--judge-templates": {"help": "folder with judge_semantic.txt and judge_quality.txt"},
    "--judge-protocol": {
        "choices": JUDGE_PROTOCOLS,
        "help": "ours (default), or viescore: the official VIEScore request, prompts read from --viescore-prompts",
    },
    "--viescore-prompts": {"help": "your checkout of Step1X-Edit or VIEScore, or its viescore/vie_prompts.py"},
}
APP_FLAGS = {  # `python app.py`, the web app, the same way
    "--host": {"help": "address to bind (default 127.0.0.1, THINKEDIT_HOST)"},
    "--port": {"type": int, "help": "port (default 7860, THINKEDIT_PORT)"},
    "--public": {
        "action": "store_true",
        "default": None,
        "help": "public demo: no model/URL boxes, no server folders (THINKEDIT_PUBLIC=1)",
    },
    "--mcp": {
        "action": "store_true",
        "default": None,
        "help": "also an MCP server at /gradio_api/mcp/ with the think_edit tool (THINKEDIT_MCP=1)",
    },
    "--keep-history": {
        "action": argparse.BooleanOptionalAction,
        "default": None,
        "help": "outside --public, History outlives a reload: the browser keeps its runs' ids (default on; "
        "--no-keep-history or THINKEDIT_KEEP_HISTORY=0 turns it off)",
    },
}


def add_price_arguments(parser: argparse.ArgumentParser) -> None:
    """The prices of an estimated cost (`edit`, `eval`, `show`); `settings_from_args` reads them."""
    group = parser.add_argument_group("cost")
    for flag, options in PRICE_FLAGS.items():
        group.add_argument(flag, **options)


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """The web app's flags; `settings_from_args` reads them."""
    for flag, options in APP_FLAGS.items():
        parser.add_argument(flag, **options)


def add_backend_arguments(parser: argparse.ArgumentParser, judge: bool = False) -> None:
    """The flags that choose and point backends (with `judge`, the judge's too); `settings_from_args` reads them."""
    groups = {"backends": BACKEND_FLAGS} | ({"judge": JUDGE_FLAGS} if judge else {})
    for title, flags in groups.items():
        group = parser.add_argument_group(title)
        for flag, options in flags.items():
            group.add_argument(flag, **options)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings the environment gives, with the flags of this module's tables that `args` has on top."""
    names = [flag[2:].replace("-", "_") for flag in (*BACKEND_FLAGS, *PRICE_FLAGS, *JUDGE_FLAGS, *APP_FLAGS)]
    return Settings.from_env(**{name: getattr(args, name, None) for name in names})


def number_flag(low: float, high: float, whole: bool = False) -> Callable[[str], float]:
    """An argparse `type`: a finite number from `low` to `high` (a whole one with `whole`). Anything else is refused
    by argparse with the flag's name, this sentence and exit status 2, before anything starts."""

    def convert(text: str) -> float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):
            bounds = (f"{v:,}" if float(v).is_integer() else f"{v:g}" for v in (low, high))
            raise argparse.ArgumentTypeError(
                f"must be {'a whole number' if whole else 'a number'} from {' to '.join(bounds)}, not '{text}'"
            )
        return value

    return convert


def add_loop_arguments(parser: argparse.ArgumentParser) -> None:
    """The loop's settings, as `edit` and `eval` take them; `loop_options` reads them back."""
    group = parser.add_argument_group("the loop")
    low, high = MAX_TURNS_RANGE
    group.add_argument("--max-turns", type=int, help=f"{low}..{high} (default {DEFAULTS.max_turns})")
    group.add_argument(
        "--threshold", type=float, help=f"stop when both scores reach this (default {DEFAULTS.threshold:g})"
    )
    group.add_argument(
        "--first-turn", choices=FIRST_TURN_STRATEGIES, help=f"first-turn strategy (default {DEFAULTS.first_turn})"
    )
    group.add_argument("--seed", type=int, default=DEFAULTS.seed)
    group.add_argument(
        "--seed-per-turn",
        choices=SEED_PER_TURN,
        help="same: every turn edits with --seed, as the reference does (default); increment: turn n uses seed + n - 1",
    )
    group.add_argument(
        "--no-answer",
        choices=NO_ANSWER,
        help="a thinker reply without <answer>: stop, as the reference does (default), or repeat the prompt",
    )
    group.add_argument("--steps", type=int, help="editor steps (default: the editor's)")
    group.add_argument("--guidance", type=float, help="editor guidance (default: the editor's)")
    stop = parser.add_argument_group("early stop (the best turn so far is kept)")
    stop.add_argument(
        "--patience",
        type=number_flag(*PATIENCE_RANGE, whole=True),
        metavar="K",
        help="stop when the best score has not risen for K turns (0: off, the default)",
    )
    stop.add_argument(
        "--budget-seconds",
        type=number_flag(*BUDGET_SECONDS_RANGE),
        metavar="S",
        help="stop once the run's edit and think seconds reach S (0: off, the default)",
    )
    stop.add_argument(
        "--budget-tokens",
        type=number_flag(*BUDGET_TOKENS_RANGE, whole=True),
        metavar="T",
        help="stop once the thinker's prompt and completion tokens reach T (0: off, the default)",
    )


def loop_options(args: argparse.Namespace, settings: Settings) -> dict:
    """`make_request` keyword arguments from the loop flags, with the settings' defaults."""
    return {
        "max_turns": args.max_turns if args.max_turns is not None else settings.max_turns,
        "threshold": args.threshold if args.threshold is not None else settings.threshold,
        "first_turn": args.first_turn or settings.first_turn,
        "seed": args.seed,
        "seed_per_turn": args.seed_per_turn or settings.seed_per_turn,
        "no_answer": args.no_answer or settings.no_answer,
        "steps": args.steps,
        "guidance": args.guidance,
        "patience": args.patience,
        "budget_seconds": args.budget_seconds,
        "budget_tokens": args.budget_tokens,
    }
