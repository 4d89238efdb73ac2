"""What a run spends: seconds, GPU seconds, ZeroGPU slices, thinker tokens, and an estimated cost.

A thinker says how many tokens a critique took in its `Critique.tokens` (`None` where it cannot know: a server that
does not report `usage`, a critic that is not a model). What happens inside a backend call that the call's answer
cannot carry — a ZeroGPU slice's durations, a polish's tokens — is reported to the `Meter` of the run it belongs
to (`metering`, one per run thread). `totals` adds a run's turns up; `cost` prices them with the settings' prices
(`THINKEDIT_PRICE_GPU_HOUR`, `THINKEDIT_PRICE_MILLION_TOKENS`), which are never part of a run's record: the same run
costs what today's prices say.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Tokens:
    """A thinker's prompt and completion tokens for one answer (or several added up); None: not known."""

    prompt: int | None = None
    completion: int | None = None

    @property
    def known(self) -> bool:
        return self.prompt is not None and self.completion is not None

    @property
    def total(self) -> int | None:
        return self.prompt + self.completion if self.known else None

    def __add__(self, other: Tokens) -> Tokens:
        """Both counts added; a count one side does not know makes the sum unknown, never smaller than it was."""
        return Tokens(_plus(self.prompt, other.prompt), _plus(self.completion, other.completion))

    def record(self) -> dict[str, int | None]:
        return {"prompt": self.prompt, "completion": self.completion}

    @classmethod
    def read(cls, data: Any) -> Tokens:
        """A record's `{"prompt": n, "completion": n}` back (unknown when a run saved before it had none)."""
        data = data if isinstance(data, dict) else {}
        return cls(data.get("prompt"), data.get("completion"))


NO_TOKENS = Tokens(0, 0)  # what a step that asked no thinker spent


def _plus(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


@dataclass(frozen=True)
class Slice:
    """One ZeroGPU call: the seconds it asked `spaces.GPU` for, and the seconds it took from its start to its answer."""

    call: str  # edit, critique or polish
    requested: float
    used: float


def zerogpu_record(slices: Iterable[Slice]) -> dict[str, float] | None:
    """`{"requested": s, "used": s}` of these slices added up; None when there were none (no ZeroGPU)."""
    slices = list(slices)
    if not slices:
        return None
    return {"requested": round(sum(s.requested for s in slices), 3), "used": round(sum(s.used for s in slices), 3)}


@dataclass
class Meter:
    """What a run's backend calls reported while it ran: ZeroGPU slices and tokens no answer carried back."""

    slices: list[Slice] = field(default_factory=list)
    tokens: list[Tokens] = field(default_factory=list)

    def mark(self) -> tuple[int, int]:
        return len(self.slices), len(self.tokens)

    def since(self, mark: tuple[int, int]) -> tuple[list[Slice], Tokens | None]:
        """The slices and the tokens (None: none reported) since `mark`."""
        reported = self.tokens[mark[1] :]
        tokens = sum(reported[1:], reported[0]) if reported else None
        return self.slices[mark[0] :], tokens


_METER: ContextVar[Meter | None] = ContextVar("thinkedit_meter", default=None)


@contextmanager
def metering() -> Iterator[Meter]:
    """A meter for what runs in this context (a run's thread) until the block ends."""
    meter = Meter()
    token = _METER.set(meter)
    try:
        yield meter
    finally:
        _METER.reset(token)


def report_slice(call: str, requested: float, used: float) -> None:
    """A ZeroGPU slice of the run in this context (outside any run it is not counted anywhere)."""
    meter = _METER.get()
    if meter is not None:
        meter.slices.append(Slice(call, float(requested), float(used)))


def report_tokens(tokens: Tokens) -> None:
    """Tokens a backend call spent that its answer does not carry (a polish returns only text)."""
    meter = _METER.get()
    if meter is not None:
        meter.tokens.append(tokens)


def reported_tokens() -> list[Tokens]:
    """What this context's meter holds (a ZeroGPU worker sends it back with its answer)."""
    meter = _METER.get()
    return list(meter.tokens) if meter is not None else []


# -- a run's totals ---------------------------------------------------------------------------------------------


def sum_known(values: Iterable[float | None]) -> float | None:
    """The sum of the values that are numbers; None when none is (no GPU was held at all)."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def totals(turns: list[Any], first: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run's compute from its turns' records (and the first-turn rewrite's, `first`): edits, seconds, GPU seconds,
    tokens (unknown when any critique's is) and ZeroGPU slices."""
    steps = [*([first] if first else []), *turns]
    tokens = NO_TOKENS
    for step in steps:
        tokens = tokens + Tokens.read(step.get("tokens"))
    edit = sum(step.get("edit_seconds") or 0.0 for step in steps)
    think = sum(step.get("think_seconds") or 0.0 for step in steps)
    zerogpu = [step.get("zerogpu") for step in steps if step.get("zerogpu")]
    gpu = sum_known(step.get("gpu_seconds") for step in steps)
    return {
        "edits": len(turns),
        "edit_seconds": round(edit, 4),
        "think_seconds": round(think, 4),
        "seconds": round(edit + think, 4),
        "gpu_seconds": None if gpu is None else round(gpu, 4),
        "tokens": tokens.record(),
        "zerogpu": {key: round(sum(z[key] for z in zerogpu), 3) for key in ("requested", "used")} if zerogpu else None,
    }


# -- what it costs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prices:
    """The operator's prices, in whatever currency they are given: per GPU-hour, per million thinker tokens."""

    gpu_hour: float | None = None
    million_tokens: float | None = None

    @classmethod
    def of(cls, settings: Any) -> Prices:
        return cls(getattr(settings, "price_gpu_hour", None), getattr(settings, "price_million_tokens", None))

    @property
    def any(self) -> bool:
        return self.gpu_hour is not None or self.million_tokens is not None


def cost(gpu_seconds: float | None, tokens: int | float | None, prices: Prices) -> float | None:
    """The estimated cost of this much compute at `prices`: GPU-hours and million thinker tokens (prompt and
    completion together) each at their price. No GPU held costs no GPU time; tokens not known (None) are left out
    (`cost_text` says so). None without prices."""
    if not prices.any:
        return None
    spent = 0.0
    if prices.gpu_hour is not None and gpu_seconds is not None:
        spent += gpu_seconds / 3600 * prices.gpu_hour
    if prices.million_tokens is not None and tokens is not None:
        spent += tokens / 1e6 * prices.million_tokens
    return spent


def cost_text(gpu_seconds: float | None, tokens: Tokens, prices: Prices) -> str | None:
    """'est. cost 0.0123' (and what it leaves out), or None without prices."""
    value = cost(gpu_seconds, tokens.total, prices)
    if value is None:
        return None
    text = f"est. cost {value:.4g}"
    if prices.million_tokens is not None and not tokens.known:
        text += " (thinker tokens not reported: not counted)"
    return text


# -- in words ---------------------------------------------------------------------------------------------------


def tokens_text(tokens: Tokens) -> str:
    """'812+96' (prompt+completion), or '–' when not known."""
    return f"{tokens.prompt}+{tokens.completion}" if tokens.known else "–"


def seconds_text(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.2f}"


def compute_line(compute: dict[str, Any], prices: Prices) -> str:
    """A run's totals in one line: edit and think seconds, GPU seconds and ZeroGPU slices, tokens, cost."""
    tokens = Tokens.read(compute.get("tokens"))
    parts = [f"edit {compute.get('edit_seconds', 0):.2f} s", f"think {compute.get('think_seconds', 0):.2f} s"]
    gpu = compute.get("gpu_seconds")
    parts.append(f"GPU {gpu:.2f} s" if gpu is not None else "no GPU held")
    if compute.get("zerogpu"):
        zerogpu = compute["zerogpu"]
        parts.append(f"ZeroGPU asked {zerogpu['requested']:g} s, used {zerogpu['used']:.2f} s")
    known = tokens.known
    parts.append(f"tokens {tokens.prompt:,} in + {tokens.completion:,} out" if known else "tokens not reported")
    priced = cost_text(gpu, tokens, prices)
    return ", ".join(parts + ([priced] if priced else []))
