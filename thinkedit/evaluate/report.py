"""What an eval folder says: the summary, `report.md`, `report.png`, and `read_eval`, the whole of it for a viewer
(the web app's Benchmarks tab, a notebook).

The numbers follow each benchmark's own rule. GEdit-Bench (`calculate_statistics.py`): per language, per
category the mean over its judged samples, overall the mean over categories of those means (a macro average),
for SC, PQ and O alike, and the same for its Intersection subset; English is the headline (the paper's
GEdit-Bench-EN) and every language has its own block. ImgEdit (EditThinker's step 2): overall the mean over all
judged images, with the mean over edit types beside it. Your own folder: the macro average. Samples that
failed or whose verdict was unreadable count in `failed` / `unreadable`, not in the means.

Beside the scores, each mode's `drift` (`thinkedit/drift.py`): the mean over its samples of the share of the image
that changed noticeably, and of the share outside the region over the samples that had one (a mask, or the
editor's own selection); a turn of another shape has no drift and is not counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import drift
from ..compute import Prices
from ..critique import score_text
from ..errors import BadInput
from ..loop import seed_rule
from ..schema import versions
from ..store import own_file, write_json_atomic, write_text_atomic
from . import tradeoff
from .data import LANGUAGES
from .folder import REQUEST, best_of, config_of, mode_order, read_rows, row_id

STAGES = ("load", "edit", "think", "judge", "store", "place", "loop", "harness", "wall")
METRICS = ("sc", "pq", "o")
PROTOCOLS = {"ours": "our questions", "viescore": "VIEScore's official request"}
HEADLINE_LANGUAGE = "en"  # GEdit-Bench-EN is what the paper reports


def mode_label(name: str) -> str:
    """A series as tables and charts name it: the mode, and "loop last" for the loop's last turn."""
    return "loop last" if name == "last" else name


# -- the arithmetic --------------------------------------------------------------------------------------------


def mean(values) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def macro(rows: list[dict[str, Any]], pick: Callable[[dict], dict | None]) -> dict[str, Any]:
    """SC, PQ and O: per category the mean over its judged samples, overall the mean of the category means.
    A sample counts once both of its verdicts were read (it has an O); failures and nulls are counted apart."""
    by_category: dict[str, list[dict]] = {}
    for scores, row in _judged(rows, pick):
        by_category.setdefault(row["category"], []).append(scores)
    categories = {
        name: {"n": len(scores), **{metric: mean(s[metric] for s in scores) for metric in METRICS}}
        for name, scores in sorted(by_category.items())
    }
    overall = {metric: mean(c[metric] for c in categories.values()) for metric in METRICS}
    return {**overall, "n": sum(c["n"] for c in categories.values()), "categories": categories}


def over_images(rows: list[dict[str, Any]], pick: Callable[[dict], dict | None]) -> dict[str, Any]:
    """ImgEdit's overall as EditThinker's step 2 computes it: the mean over every judged image, with the mean over
    categories (edit types) beside it as `over_categories`."""
    block = macro(rows, pick)
    judged = [scores for scores, _ in _judged(rows, pick)]
    return {
        **block,
        **{metric: mean(s[metric] for s in judged) for metric in METRICS},
        "over_categories": {metric: block[metric] for metric in METRICS},
    }


def _judged(rows: list[dict[str, Any]], pick: Callable[[dict], dict | None]) -> list[tuple[dict, dict]]:
    """(scores, row) of every row that ran and has an O."""
    picked = [(pick(row) if row.get("error") is None else None, row) for row in rows]
    return [(scores, row) for scores, row in picked if scores is not None and scores.get("o") is not None]


def drift_means(rows: list[dict[str, Any]], pick: Callable[[dict], dict | None]) -> dict[str, Any]:
    """The mean drift of the turns `pick` chooses (a line itself: its best turn; `_last`: the loop's last) of the
    rows that ran: `changed` over every turn measured (`n`), `outside` over those with a region (`n_outside`)."""
    measured = [drift.read((pick(row) or {}).get("drift")) for row in rows if row.get("error") is None]
    measured = [moved for moved in measured if moved is not None]
    outside = [moved.outside for moved in measured if moved.outside is not None]
    return {
        "changed": mean(moved.changed for moved in measured),
        "outside": mean(outside),
        "n": len(measured),
        "n_outside": len(outside),
    }


def _last(row: dict) -> dict | None:
    return row.get("last")


def _unreadable(row: dict) -> int:
    """Null verdicts of a line: its best turn's, and its last turn's when that was judged apart."""
    last = row.get("last") or {}
    apart = last.get("turn") not in (None, row.get("best_turn"))
    return len(row.get("unreadable") or []) + (len(last.get("unreadable") or []) if apart else 0)


def summarize(rows: list[dict[str, Any]], config: dict[str, Any], prices: Prices | None = None) -> dict[str, Any]:
    """summary.json: the eval's settings and, per mode, the averages, failures and unreadable verdicts. GEdit's
    numbers are per language (`languages`); `modes` is the headline language's (`headline_language`)."""
    bench = config.get("bench")
    summary: dict[str, Any] = {
        "bench": bench,
        "data": config.get("data"),
        "language": config.get("language"),
        "editor": {"name": config.get("editor"), "model": config.get("editor_model")},
        "thinker": {
            "name": config.get("thinker"),
            "model": _first(rows, "thinker_model") or config.get("thinker_model"),
        },
        "judge": {
            "name": config.get("judge"),
            "model": config.get("judge_model") or _first(rows, "judge_model"),
            "protocol": config.get("judge_protocol") or "ours",
        },
        "settings": {name: config.get(name) for name in REQUEST} | {"modes": _present(rows)},
        "versions": versions("datasets", "accelerate"),
        "samples": len({row_id(r) for r in rows}),
        "averaged": "over images" if bench == "imgedit" else "over categories",
    }
    if bench == "gedit":
        languages = {
            language: mode_blocks([r for r in rows if r.get("language") == language], bench)
            for language in sorted({r.get("language") for r in rows}, key=_language_order)
        }
        headline = HEADLINE_LANGUAGE if HEADLINE_LANGUAGE in languages else next(iter(languages), None)
        summary.update(languages=languages, headline_language=headline, modes=languages.get(headline, {}))
    else:
        summary["modes"] = mode_blocks(rows, bench)
    modes = summary["modes"]
    if "single" in modes and "loop" in modes:
        summary["gain"] = {
            "best": _gain(modes["loop"], modes["single"]),
            "last": _gain(modes["loop"]["last"], modes["single"]),
        }
    summary["compute"] = tradeoff.tradeoff(modes, prices)
    summary["seconds"] = seconds(rows)
    warning = self_grading(
        {
            **config,
            "modes": summary["settings"]["modes"],
            "judge_model": summary["judge"]["model"],
            "thinker_model": summary["thinker"]["model"],
        }
    )
    summary["warnings"] = [warning] if warning else []
    return _rounded(summary)


def mode_blocks(rows: list[dict[str, Any]], bench: str | None) -> dict[str, Any]:
    """Per mode: the averages (best turn; for the loop also its last turn; GEdit's Intersection subset too),
    how many samples, how many failed, how many verdicts were unreadable."""
    average = over_images if bench == "imgedit" else macro
    modes = {}
    for mode in _present(rows):
        mine = [r for r in rows if r["mode"] == mode]
        block = average(mine, lambda row: row)
        block["drift"] = drift_means(mine, lambda row: row)
        if mode == "loop":
            block["last"] = average(mine, _last)
            block["last"]["drift"] = drift_means(mine, _last)
        if bench == "gedit":
            subset = [r for r in mine if r.get("intersection")]
            block["intersection"] = average(subset, lambda row: row)
            if mode == "loop":
                block["last"]["intersection"] = average(subset, _last)
        block["samples"] = len(mine)
        block["failed"] = sum(r.get("error") is not None for r in mine)
        block["unreadable"] = sum(_unreadable(r) for r in mine)
        block["compute"] = tradeoff.mode_compute(mine, average)
        if mode == "loop" or best_of(mode) is not None:
            block["by_turn"] = tradeoff.turn_points(mine, average, ("best", "last") if mode == "loop" else ("best",))
        modes[mode] = block
    return modes


def _present(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({r["mode"] for r in rows}, key=mode_order)


def _language_order(language: str | None) -> tuple[int, str]:
    return (LANGUAGES.index(language) if language in LANGUAGES else len(LANGUAGES), str(language))


def _gain(loop: dict, single: dict) -> dict[str, float | None]:
    return {m: None if loop[m] is None or single[m] is None else loop[m] - single[m] for m in METRICS}


def seconds(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Seconds per (sample, mode) in each stage, and shares of the wall time: the harness itself (everything
    outside `loop.run` and the judge), the same without reading the benchmark's images, and the loop's own
    overhead (inside `loop.run` but neither editing, thinking nor saving the run folder)."""
    ran = [r["seconds"] for r in rows if (r.get("seconds") or {}).get("loop")]
    totals = {stage: sum(s.get(stage, 0.0) for s in ran) for stage in STAGES}
    wall = totals["wall"] or 1.0
    return {
        "per_sample": {stage: totals[stage] / len(ran) if ran else None for stage in STAGES},
        "harness_share": totals["harness"] / wall,
        "harness_share_without_loading": (totals["harness"] - totals["load"]) / wall,
        "loop_overhead_share": (totals["loop"] - totals["edit"] - totals["think"] - totals["store"]) / wall,
    }


def self_grading(config: dict[str, Any]) -> str | None:
    """A warning when the judge is the model that steered the loop: it would grade its own work."""
    thinker, judge = config.get("thinker"), config.get("judge")
    picks = [mode for mode in config.get("modes") or ["loop"] if mode == "loop" or best_of(mode) is not None]
    if thinker is None or not picks:  # only the loop and best-of-N choose their result by the thinker's scores
        return None
    same = (
        (thinker == judge == "classic")
        or (config.get("judge_model") is not None and config.get("judge_model") == config.get("thinker_model"))
        or (
            thinker == judge == "openai"
            and config.get("judge_url") == config.get("thinker_url")
            and None in (config.get("judge_model"), config.get("thinker_model"))
        )
    )
    if not same:
        return None
    who = config.get("judge_model") or judge
    return (
        f"the judge ({who}) is the thinker's own model: the loop is graded by what steered it (self-grading). "
        "Use an independent judge for numbers you report."
    )


def _first(rows: list[dict], name: str) -> Any:
    return next((r[name] for r in rows if r.get(name)), None)


def _rounded(value: Any) -> Any:
    """Four decimals; a small number (a gain per second or per token) keeps three significant digits instead."""
    if isinstance(value, float):
        return round(value, 4) if abs(value) >= 0.01 or not math.isfinite(value) else float(f"{value:.3g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


# -- what people read ----------------------------------------------------------------------------------------


def table(modes: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Category × mode: SC, PQ and O per mode, the loop's last turn, and the loop's gain in O."""
    series = _series(modes)
    headers = ["category", "n"]
    for name, _ in series:
        label = mode_label(name)
        headers += [f"{label} O"] if name == "last" else [f"{label} SC", f"{label} PQ", f"{label} O"]
    both = "single" in modes and "loop" in modes
    headers += ["gain O (best)", "gain O (last)"] if both else []

    def line(label: str, n: int | str, pick: Callable[[dict], dict | None]) -> list[Any]:
        cells: list[Any] = [label, n]
        for name, block in series:
            scores = pick(block) or {}
            cells += [scores.get("o")] if name == "last" else [scores.get(metric) for metric in METRICS]
        if both:
            single, best, last = (
                (pick(modes["single"]) or {}),
                (pick(modes["loop"]) or {}),
                (pick(modes["loop"]["last"]) or {}),
            )
            cells += [_minus(best.get("o"), single.get("o")), _minus(last.get("o"), single.get("o"))]
        return cells

    names = sorted({c for _, block in series for c in block["categories"]})
    counts = {c: max(block["categories"].get(c, {}).get("n", 0) for _, block in series) for c in names}
    rows = [line(c, counts[c], lambda block, c=c: block["categories"].get(c)) for c in names]
    total = sum(counts.values())
    if series and "over_categories" in series[0][1]:  # ImgEdit: the mean over images leads, as the paper's does
        rows.append(line("mean over images", total, lambda block: block))
        rows.append(line("mean over categories", total, lambda block: block["over_categories"]))
    else:
        rows.append(line("mean over categories", total, lambda block: block))
    if series and "intersection" in series[0][1]:
        rows.append(line("intersection subset", series[0][1]["intersection"]["n"], lambda block: block["intersection"]))
    return headers, rows


def shown_table(headers: list[str], rows: list[list[Any]]) -> list[list[Any]]:
    """`table`'s rows for people (report.md, the Benchmarks tab): scores as `score_text` writes them, gains signed."""
    gains = {i for i, header in enumerate(headers) if header.startswith("gain")}
    return [
        [
            score_text(value, signed=i in gains) if isinstance(value, float) or value is None else value
            for i, value in enumerate(row)
        ]
        for row in rows
    ]


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 4)


def markdown(summary: dict[str, Any]) -> str:
    headline = summary.get("headline_language")
    title = f"# {summary['bench']} eval" + (f" ({summary['language']})" if summary.get("language") else "")
    lines = [title + (f", headline numbers: {headline}" if headline and headline != summary["language"] else ""), ""]
    thinker = summary["thinker"]
    lines.append(
        f"editor {backend_label(summary['editor'])} · thinker {backend_label(thinker) if thinker['name'] else '–'} · judge "
        f"{backend_label(summary['judge'])}, {PROTOCOLS.get(summary['judge'].get('protocol'), 'our questions')}  "
    )
    settings = summary["settings"]
    lines += [
        f"max turns {settings['max_turns']} · threshold {settings['threshold']} · first turn "
        f"{settings['first_turn']} · seed {settings['seed']}, {seed_rule(settings)} · {summary['samples']} samples",
        "",
    ]
    languages = summary.get("languages") or {headline: summary["modes"]}
    for language, modes in languages.items():
        if len(languages) > 1:
            lines += [f"## {language}" + (" (headline)" if language == headline else ""), ""]
        lines += _table_lines(modes)
    timing = summary["seconds"]
    per = timing["per_sample"]
    if per["wall"] is not None:
        lines.append("- seconds per sample and mode: " + " · ".join(f"{stage} {per[stage]:.3f}" for stage in STAGES))
        lines.append(
            f"- the harness itself (reading samples, placing images, bookkeeping): "
            f"{timing['harness_share']:.2%} of the wall time, {timing['harness_share_without_loading']:.2%} "
            f"without decoding the benchmark's images; the loop's own overhead "
            f"{timing['loop_overhead_share']:.2%}"
        )
    lines += tradeoff_lines(summary["compute"])
    lines += [f"- warning: {w}" for w in summary["warnings"]]
    return "\n".join(lines) + "\n"


def tradeoff_lines(found: dict[str, Any]) -> list[str]:
    """Quality against compute as markdown: every point, its gains over single-shot, and the sentence."""
    if not found["points"]:
        return []
    singular = tradeoff.UNITS[found["unit"]][0]
    lines = [
        "",
        "## Quality against compute",
        "",
        "Means per sample; gains are O over single-shot per extra unit (`compute.png` plots them).",
        "",
        f"| what | n | O | seconds | GPU s | tokens | edits | O gain per {singular} | O gain per 1k tokens |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    per = "gain_per_gpu_second" if found["unit"] == "gpu_seconds" else "gain_per_second"
    priced = any(p["cost"] is not None for p in found["points"])
    if priced:
        lines[-2] += " est. cost |"
        lines[-1] += "---:|"

    def cell(value: Any, digits: str) -> str:
        return "–" if value is None else format(value, digits)

    for p in found["points"]:
        thousand = None if p["gain_per_token"] is None else p["gain_per_token"] * 1000
        lines.append(
            f"| {tradeoff.label(p)} | {p['n']} | {score_text(p['o'])} | {cell(p['seconds'], '.3g')} | "
            f"{cell(p['gpu_seconds'], '.3g')} | {cell(p['tokens'], ',.0f')} | {cell(p['edits'], '.2g')} | "
            f"{cell(p[per], '+.3g')} | {cell(thousand, '+.3g')} |" + (f" {cell(p['cost'], '.4g')} |" if priced else "")
        )
    return lines + ["", found["verdict"], ""]


def _table_lines(modes: dict[str, Any]) -> list[str]:
    """One language's (or the whole eval's) table and its counts, as markdown lines."""
    headers, rows = table(modes)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in shown_table(headers, rows)]
    lines.append("")
    for mode, block in modes.items():
        lines.append(
            f"- {mode}: {block['n']} judged of {block['samples']}, {block['failed']} failed, "
            f"{block['unreadable']} unreadable verdicts"
        )
    return lines + drift_lines(modes) + [""]


def drift_lines(modes: dict[str, Any]) -> list[str]:
    """The drift of each series (single, loop, loop last) as markdown lines: what changed, and outside the region."""
    series = [(mode_label(name), block.get("drift") or {}) for name, block in _series(modes)]
    if not any(means.get("n") for _, means in series):
        return []

    def each(key: str, count: str) -> str:
        return ", ".join(f"{label} {drift.percent(means.get(key))} ({means.get(count, 0)})" for label, means in series)

    lines = [
        f"- drift, the share of the image that changed noticeably (ΔE00 over {drift.NOTICEABLE:g} on a "
        f"{drift.WORK_SIDE}-pixel copy), mean over samples (how many): {each('changed', 'n')}"
    ]
    if any(means.get("n_outside") for _, means in series):
        lines.append(
            f"- drift outside the region (a mask, or the editor's own selection): {each('outside', 'n_outside')}"
        )
    return lines


def backend_label(backend: dict) -> str:
    """A backend as the reports name it: its name, and its model when it has one."""
    return f"{backend['name']} ({backend['model']})" if backend.get("model") else str(backend["name"])


def _series(modes: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """What the report compares: each mode, and the loop's last turn beside its best."""
    return [*modes.items()] + ([("last", modes["loop"]["last"])] if "loop" in modes else [])


def chart(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-category O for each series (single, loop, loop last), plus the mean: rows for a bar chart."""
    modes = summary["modes"]
    series = _series(modes)
    points = []
    for name, block in series:
        for category, scores in block["categories"].items():
            points.append({"category": category, "series": mode_label(name), "o": scores["o"]})
        points.append({"category": "mean", "series": mode_label(name), "o": block["o"]})
    return points


def plot(summary: dict[str, Any], path: Path) -> None:
    """report.png: O per category, one bar per series."""
    chart_figure(summary).savefig(path, dpi=110)


def chart_figure(summary: dict[str, Any]):
    """The figure of `plot`: the bars, and their legend beside the axes, where it covers no bar or tick."""
    from matplotlib.figure import Figure

    points = chart(summary)
    categories = list(dict.fromkeys(p["category"] for p in points))
    labels = list(dict.fromkeys(p["series"] for p in points))
    figure = Figure(figsize=(max(7.5, 0.9 * len(categories) + 3.5), 4.2), layout="constrained")
    axes = figure.subplots()
    width = 0.8 / len(labels)
    for number, label in enumerate(labels):
        values = {p["category"]: p["o"] for p in points if p["series"] == label}
        heights = [values.get(c) or 0.0 for c in categories]
        axes.bar(
            [i + (number - (len(labels) - 1) / 2) * width for i in range(len(categories))], heights, width, label=label
        )
    axes.set_xticks(range(len(categories)), categories, rotation=35, ha="right")
    axes.set_ylim(0, 10)
    axes.set_ylabel("O = √(SC·PQ)")
    axes.set_title(
        f"{summary['bench']}: {backend_label(summary['editor'])}, judged by {backend_label(summary['judge'])}",
        fontsize=9,
    )
    tradeoff.legend_beside(axes, 8)
    return figure


def write_reports(
    out: Path, rows: list[dict[str, Any]], config: dict[str, Any], quiet: bool = False, prices: Prices | None = None
) -> dict:
    summary = summarize(rows, config, prices)
    write_json_atomic(out / "summary.json", summary)
    if config.get("bench") == "imgedit":
        write_edit_jsons(out, rows)
    text = markdown(summary)
    write_text_atomic(out / "report.md", text)
    plot(summary, out / "report.png")
    tradeoff.plot(summary, out / "compute.png")
    if not quiet:
        written = ", ".join(str(out / name) for name in ("summary.json", "report.md", "report.png", "compute.png"))
        print("\n" + text + f"\nWritten: {written}", flush=True)
    return summary


def write_edit_jsons(out: Path, rows: list[dict[str, Any]]) -> None:
    """Beside each `images/<folder>/`, `images/<folder>_basic_edit.json`: ImgEdit's `basic_edit.json` holding exactly
    the keys that have a result there. ImgEdit's official step 1 fails on a key without a result image, so a partial
    or filtered run is scored officially with this file as `--edit_json`."""
    entries: dict[str, dict[str, dict]] = {}
    for row in rows:
        for image in (row.get("image"), (row.get("last") or {}).get("image")):
            if image and row.get("id") and (out / image).is_file():
                entry = {"id": row["id"], "prompt": row["instruction"], "edit_type": row["category"]}
                entries.setdefault(Path(image).parent.name, {})[row["key"]] = entry
    for folder, keys in entries.items():
        write_json_atomic(out / "images" / f"{folder}_basic_edit.json", keys)


def refresh(folder: Path, prices: Prices | None = None) -> dict[str, Any]:
    """`thinkedit eval --report DIR`: the summary again from what the folder holds (estimated costs at `prices`,
    which no eval folder keeps), the plots redrawn."""
    folder = Path(folder)
    config = config_of(folder)
    rows = list(read_rows(folder).values())
    if not rows:
        raise BadInput(f"{folder} has no recorded samples yet: run its `thinkedit eval --out {folder}` first.")
    return write_reports(folder, rows, config, prices=prices)


# -- an eval read back whole --------------------------------------------------------------------------------------


def read_eval(folder: str | Path, prices: Prices | None = None) -> dict[str, Any]:
    """Everything a viewer shows of one eval folder (the web app's Benchmarks tab shows all of it): the summary, its table (headers, rows), the
    per-category chart points, and the samples sorted by the loop's gain in O (largest first; samples
    without both scores last), each with absolute image paths, scores and the loop's prompts."""
    folder = Path(folder)
    config = config_of(folder)
    rows = list(read_rows(folder).values())
    summary = summarize(rows, config, prices)
    headers, table_rows = table(summary["modes"])
    return {
        "summary": summary,
        "headers": headers,
        "table": table_rows,
        "chart": chart(summary),
        "samples": gallery(folder, rows),
    }


def gallery(folder: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_sample: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_sample.setdefault(row_id(row), {})[row["mode"]] = row
    items = []
    for modes in by_sample.values():
        first = next(iter(modes.values()))
        item = {
            "key": first["key"],
            "category": first["category"],
            "instruction": first["instruction"],
            "source": _path(folder, f"{first['run']}/source.png"),
            "modes": sorted(modes, key=mode_order),
        }
        for mode, row in modes.items():
            item[mode] = {
                "image": _path(folder, row.get("image")),
                "sc": row["sc"],
                "pq": row["pq"],
                "o": row["o"],
                "turns": row.get("turns"),
                "best_turn": row.get("best_turn"),
                "prompts": row.get("prompts"),
                "error": row.get("error"),
                "drift": row.get("drift"),
            }
            if row.get("last"):
                last = row["last"]
                item[mode]["last"] = {
                    "turn": last.get("turn"),
                    "image": _path(folder, last.get("image")),
                    "sc": last.get("sc"),
                    "pq": last.get("pq"),
                    "o": last.get("o"),
                    "drift": last.get("drift"),
                }
        single, loop = item.get("single", {}).get("o"), item.get("loop", {}).get("o")
        item["gain"] = _minus(loop, single)
        items.append(item)
    items.sort(key=lambda item: (item["gain"] is None, -(item["gain"] or 0.0)))
    return items


def _path(folder: Path, relative: Any) -> str | None:
    """The image a line names, when it is a file in the eval folder once links are resolved; else None."""
    path = own_file(folder, relative) if isinstance(relative, str) and relative else None
    return str(path) if path else None
