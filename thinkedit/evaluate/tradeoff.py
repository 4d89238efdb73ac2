"""Quality against compute: does the loop pay for itself on this editor?

Every line of `samples.jsonl` carries what its run spent (`compute`: edit and think seconds, GPU seconds, thinker
tokens), and the loop's and best-of-N's lines carry, after each turn k, the judge's O of the turn the run would have
returned had it stopped there (`by_turn`: the best turn so far, and turn k itself) with what it had spent by then.
A run stopped after turn k is exactly what `--max-turns k` gives (every stop rule looks only at the turns so far),
so these are real points of a shorter budget, not estimates.

Per mode (and per turn), O is averaged by the benchmark's own rule (the `average` the report uses) and compute is
the plain mean over the same judged samples. Each point's gain is its O minus single-shot's, per extra second (per
GPU-second where every point held a GPU) and per extra thinker token; `verdict` says in one sentence which point
gives the most O per unit of compute. With prices (`--price-gpu-hour`, `--price-million-tokens`) each point also has
its estimated `cost` per sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..compute import Prices, Tokens, cost
from ..critique import score_text

Average = Callable[[list[dict[str, Any]], Callable[[dict], dict | None]], dict[str, Any]]
AMOUNTS = ("seconds", "gpu_seconds", "tokens", "edits")
UNITS = {"gpu_seconds": ("GPU-second", "GPU-seconds"), "seconds": ("second", "seconds")}


def point_compute(spent: dict[str, Any]) -> dict[str, Any]:
    """What a run (or its first k turns) spent, as a point's amounts: seconds of editing and thinking, GPU seconds
    (None: no GPU held), thinker tokens, prompt and completion together (None: not reported), edits."""
    return {
        "seconds": spent.get("seconds"),
        "gpu_seconds": spent.get("gpu_seconds"),
        "tokens": Tokens.read(spent.get("tokens")).total,
        "edits": spent.get("edits"),
    }


def _as_run(row: dict[str, Any]) -> dict[str, Any] | None:
    """A line's verdict on its result with what its run spent (lines written before compute was recorded: none)."""
    if not row.get("compute"):
        return None
    return {"sc": row["sc"], "pq": row["pq"], "o": row["o"], "compute": point_compute(row["compute"])}


def _after_turn(k: int, which: str) -> Callable[[dict], dict | None]:
    """A line's point after turn k: the best turn so far (`best`) or turn k itself (`last`), and the compute spent up
    to turn k (a run that stopped before k stays at its end)."""

    def pick(row: dict[str, Any]) -> dict[str, Any] | None:
        points = row.get("by_turn")
        if not points:
            return None
        entry = points[min(k, len(points)) - 1]
        verdict = points[entry["best"] - 1] if which == "best" else entry
        return {"sc": verdict["sc"], "pq": verdict["pq"], "o": verdict["o"], "compute": entry["compute"]}

    return pick


def point(rows: list[dict[str, Any]], pick: Callable[[dict], dict | None], average: Average) -> dict[str, Any]:
    """O by the benchmark's rule and the mean compute over the same judged lines, and how many there are."""
    block = average(rows, pick)
    judged = [p for row in rows if row.get("error") is None and (p := pick(row)) and p.get("o") is not None]
    means = {}
    for amount in AMOUNTS:
        known = [p["compute"][amount] for p in judged if p["compute"].get(amount) is not None]
        means[amount] = sum(known) / len(known) if known and len(known) == len(judged) else None
    return {"o": block["o"], "n": len(judged), **means}


def mode_compute(rows: list[dict[str, Any]], average: Average) -> dict[str, Any]:
    """A mode's point as it ran."""
    return point(rows, _as_run, average)


def turn_points(rows: list[dict[str, Any]], average: Average, picks: tuple[str, ...]) -> list[dict[str, Any]]:
    """For a mode judged on every turn: after each turn k, the point of its best turn so far (`best`) and, for the
    loop, of turn k itself (`last`: what the paper judged)."""
    turns = max((len(row.get("by_turn") or []) for row in rows), default=0)
    return [
        {"turn": k, **{which: point(rows, _after_turn(k, which), average) for which in picks}}
        for k in range(1, turns + 1)
    ]


# -- the points, their gains, the sentence ------------------------------------------------------------------------


def points(modes: dict[str, Any]) -> list[dict[str, Any]]:
    """Every point of one language's modes: each mode as it ran, then each multi-turn mode after each turn."""
    found = []
    for mode, block in modes.items():
        if block.get("compute"):
            found.append({"mode": mode, "turn": None, "pick": None, **block["compute"]})
        for step in block.get("by_turn") or []:
            for which in ("best", "last"):
                if which in step:
                    found.append({"mode": mode, "turn": step["turn"], "pick": which, **step[which]})
    return found


def unit(found: list[dict[str, Any]]) -> str:
    """GPU seconds when every point held a GPU; else seconds of editing and thinking."""
    held = found and all(p.get("gpu_seconds") is not None for p in found)
    return "gpu_seconds" if held else "seconds"


def with_gains(found: list[dict[str, Any]], prices: Prices) -> list[dict[str, Any]]:
    """Each point with its O gain over single-shot per extra second, GPU-second and token (None where it spent no
    more, or a number is missing), and its estimated cost per sample at `prices` (None without)."""
    base = next((p for p in found if p["mode"] == "single" and p["turn"] is None), None)
    for p in found:
        p["cost"] = cost(p.get("gpu_seconds"), p.get("tokens"), prices)
        for amount, key in (("seconds", "gain_per_second"), ("gpu_seconds", "gain_per_gpu_second")):
            p[key] = _per(p, base, amount)
        p["gain_per_token"] = _per(p, base, "tokens")
    return found


def _per(p: dict[str, Any], base: dict[str, Any] | None, amount: str) -> float | None:
    if base is None or p is base or None in (p["o"], base["o"], p.get(amount), base.get(amount)):
        return None
    more = p[amount] - base[amount]
    return (p["o"] - base["o"]) / more if more > 0 else None


def label(p: dict[str, Any]) -> str:
    """A point in words: 'loop', 'loop stopped after turn 2', 'loop's turn 2 alone', 'best-of-3 stopped after 2
    edits'."""
    if p["turn"] is None:
        return p["mode"]
    if p["mode"] == "loop":
        return f"loop stopped after turn {p['turn']}" if p["pick"] == "best" else f"loop's turn {p['turn']} alone"
    return f"{p['mode']} stopped after {p['turn']} edit{'s' if p['turn'] != 1 else ''}"


def verdict(found: list[dict[str, Any]], amount: str) -> str:
    """One sentence: which point gives the most O per unit of compute on this run, over single-shot."""
    base = next((p for p in found if p["mode"] == "single" and p["turn"] is None), None)
    if base is None or base["o"] is None:
        return "Run --modes single as well: gains per unit of compute are measured against single-shot."
    singular, plural = UNITS[amount]
    better = [p for p in found if p is not base and p["o"] is not None and p["o"] > base["o"]]
    if not better:
        return f"On this run no mode beat single-shot's O of {score_text(base['o'])}, so single-shot gives the most O per {singular}."

    def efficiency(p: dict[str, Any]) -> float:
        more = (p.get(amount) or 0.0) - (base.get(amount) or 0.0)
        return math.inf if more <= 0 else (p["o"] - base["o"]) / more

    best = max(better, key=efficiency)
    more = (best.get(amount) or 0.0) - (base.get(amount) or 0.0)
    gain = best["o"] - base["o"]
    if more <= 0:
        return f"On this run {label(best)} gives the most O per {singular}: {score_text(gain, signed=True)} O over single-shot at no extra compute."
    return (
        f"On this run {label(best)} gives the most O per {singular}: {score_text(gain, signed=True)} O over single-shot for "
        f"{more:.3g} more {plural} per sample ({gain / more:.3g} O per {singular})."
    )


def tradeoff(modes: dict[str, Any], prices: Prices | None = None) -> dict[str, Any]:
    """summary.json's `compute`: the unit, every point with its gains (and cost at `prices`), and the sentence."""
    found = with_gains(points(modes), prices or Prices())
    amount = unit(found)
    return {"unit": amount, "points": found, "verdict": verdict(found, amount)}


# -- the plot ----------------------------------------------------------------------------------------------------


def plot(summary: dict[str, Any], path: Path) -> None:
    """compute.png: mean O against mean compute (time, and thinker tokens when known): each mode as it ran, and the
    loop's and best-of-N's curves after each turn (the best turn so far, solid; turn k alone, dotted)."""
    figure(summary).savefig(path, dpi=110)


def figure(summary: dict[str, Any]):
    """The figure of `plot`."""
    from matplotlib.figure import Figure

    found = summary["compute"]["points"]
    amount = summary["compute"]["unit"]
    held = amount == "gpu_seconds"
    time = "mean GPU-seconds held per sample" if held else "mean seconds of editing and thinking per sample"
    axes_for = [(amount, time)]
    if any(p.get("tokens") for p in found):
        axes_for.append(("tokens", "mean thinker tokens per sample (prompt + completion)"))
    drawn = Figure(figsize=(5.2 * len(axes_for) + 2.2, 4.2), layout="constrained")
    for axes, (key, title) in zip(drawn.subplots(1, len(axes_for), squeeze=False)[0], axes_for, strict=True):
        _draw(axes, found, key)
        axes.set_xlabel(title)
        axes.set_ylabel("mean O = √(SC·PQ)")
        axes.grid(alpha=0.3)
    drawn.suptitle(f"{summary['bench']}: quality against compute", fontsize=10)
    drawn.supxlabel(summary["compute"]["verdict"], fontsize=8, wrap=True)
    return drawn


def _draw(axes, found: list[dict[str, Any]], key: str) -> None:
    """One panel: curves for the multi-turn modes, a labelled marker for each mode as it ran."""
    modes = list(dict.fromkeys(p["mode"] for p in found))
    colors = {mode: f"C{number}" for number, mode in enumerate(modes)}
    for mode in modes:
        for which, style in (("best", "-"), ("last", ":")):
            curve = [p for p in found if p["mode"] == mode and p["pick"] == which]
            curve = [p for p in curve if p.get(key) is not None and p["o"] is not None]
            if curve:
                name = f"{mode}, best so far" if which == "best" else f"{mode}, turn k alone"
                axes.plot([p[key] for p in curve], [p["o"] for p in curve], style, color=colors[mode], label=name)
                for p in curve if which == "best" else []:
                    axes.annotate(
                        str(p["turn"]), (p[key], p["o"]), textcoords="offset points", xytext=(3, 3), fontsize=7
                    )
    for p in found:
        if p["turn"] is None and p.get(key) is not None and p["o"] is not None:
            axes.scatter([p[key]], [p["o"]], s=46, color=colors[p["mode"]], edgecolors="black", zorder=3)
            axes.annotate(p["mode"], (p[key], p["o"]), textcoords="offset points", xytext=(5, -10), fontsize=8)
    if axes.get_legend_handles_labels()[0]:
        legend_beside(axes, 7)


def legend_beside(axes, fontsize: float) -> None:
    """The axes' legend to their right, outside them (a constrained layout makes room): inside, wherever matplotlib
    puts it, it may cover a bar, a point or a tick."""
    axes.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
