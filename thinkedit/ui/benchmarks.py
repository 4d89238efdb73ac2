"""The Benchmarks tab: `thinkedit eval` folders in the evals folder, read back (`evaluate.report.read_eval`) and
shown as a summary, a table, a chart, quality against compute, and the samples sorted by the loop's gain, with one
sample side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..compute import Prices
from ..config import ROLES, Settings
from ..critique import score_text
from ..drift import percent, read, words
from ..errors import BadInput
from ..evaluate import tradeoff
from ..evaluate.folder import eval_folders
from ..evaluate.report import backend_label, plot, read_eval, shown_table
from ..images import load_image
from ..requests import number
from .messages import refused
from .paths import inside
from .session import Session
from .view import display_file, thumbnail_file, without_paths


def eval_choices(settings: Settings) -> list[str]:
    """The eval folders under the evals folder (THINKEDIT_EVALS_DIR), by their path inside it, newest first."""
    root = Path(settings.evals_dir)
    return [str(folder.relative_to(root)) for folder in eval_folders(root)]


def open_eval(name: Any, session: Session, settings: Settings) -> tuple:
    """(summary text, table, chart, gallery, samples, quality-against-compute plot) of one eval folder in the evals
    folder.

    The gallery shows each sample's loop result, sorted by how much the loop gained over single-shot;
    the samples (plain data) go to the page's state for `show_sample`.
    """
    if not isinstance(name, str) or not name.strip():
        raise refused("Choose an eval folder (made by `thinkedit eval --out …` in the evals folder).", settings.public)
    folder = inside(
        name.strip(),
        settings.evals_dir,
        f"Only evals in the evals folder ({settings.evals_dir}) open here.",
        settings.public,
    )
    try:
        found = read_eval(folder, Prices.of(settings))
    except (BadInput, OSError, ValueError, KeyError) as exc:
        raise refused(f"{name} could not be read as an eval folder ({exc}).", settings.public) from None
    view = session.view_folder()
    samples = found["samples"]
    gallery = []
    for position, sample in enumerate(samples):
        shown = sample.get("loop") or sample.get("single") or {}
        if shown.get("image"):
            preview = thumbnail_file(view / f"sample-{position}.webp", lambda path=shown["image"]: load_image(path))
            gallery.append((preview, sample_caption(sample)))
    chart, spent = view / "chart.png", view / "compute.png"  # drawn from the summary, as `thinkedit eval` draws them
    plot(found["summary"], chart)
    tradeoff.plot(found["summary"], spent)
    table = pd.DataFrame(shown_table(found["headers"], found["table"]), columns=found["headers"])
    text = eval_summary(found["summary"])  # names its backends' models, which may be the server's folders
    return without_paths(text) if settings.public else text, table, str(chart), gallery, samples, str(spent)


def eval_summary(summary: dict[str, Any]) -> str:
    """One paragraph of sentences: which benchmark, which backends, the overall O of each mode, and any warning."""
    backends = ", ".join(f"{role} {backend_label(summary[role])}" for role in ROLES if summary.get(role))
    modes = "; ".join(
        f"{mode}: O {score_text(block.get('o'))} over {block.get('samples')} samples ({block.get('failed', 0)} failed)"
        + _drift_text(block.get("drift"))
        for mode, block in summary["modes"].items()
    )
    language = f" ({summary['headline_language']})" if summary.get("headline_language") else ""
    verdict = (summary.get("compute") or {}).get("verdict")  # evals summarised before compute was recorded: none
    sentences = [f"{modes}.", *([verdict] if verdict else []), *summary.get("warnings", [])]
    return " ".join([f"**{summary.get('bench')}**{language} · {backends}.", *map(capitalised, sentences)])


def capitalised(sentence: str) -> str:
    """`sentence` with its first letter upper case (a mode's name or a warning may begin it in lower case)."""
    return sentence[:1].upper() + sentence[1:]


def _drift_text(means: dict[str, Any] | None) -> str:
    """', 12% of the image changed on average (0.4% outside the region)' for a mode's drift means; '' without."""
    if not means or not means.get("n"):
        return ""
    outside = f" ({percent(means['outside'])} outside the region)" if means.get("n_outside") else ""
    return f", {percent(means['changed'])} of the image changed on average{outside}"


def sample_caption(sample: dict[str, Any]) -> str:
    single, looped = sample.get("single") or {}, sample.get("loop") or {}
    gain = sample.get("gain")
    change = f"gain {score_text(gain, signed=True)}"
    return f"{sample['key']} · {change} · single O {score_text(single.get('o'))} → loop O {score_text(looped.get('o'))}"


def show_sample(samples: list[dict[str, Any]] | None, index: Any, session: Session, public: bool = False) -> tuple:
    """(source, single-shot, loop result, what was asked and how the loop refined it) of one sample; on a public
    page its text names no folder or URL of the server's."""
    try:
        sample = (samples or [])[number(index, "The sample", 0, len(samples or []) - 1, whole=True)]
    except BadInput:
        raise refused("That sample is not in this eval.", True) from None
    view = session.view_folder()
    images = [sample.get("source"), (sample.get("single") or {}).get("image"), (sample.get("loop") or {}).get("image")]
    shown = [display_file(path, view, f"pick-{n}") if path else None for n, path in enumerate(images)]
    lines = [f"{sample['key']} ({sample['category']}): {sample['instruction']}"]
    for mode in sample.get("modes") or ("single", "loop"):
        result = sample.get(mode)
        if result:
            lines.append(
                f"{mode}: SC {score_text(result.get('sc'))}, PQ {score_text(result.get('pq'))}, O {score_text(result.get('o'))}"
                + (f", {words(read(result.get('drift')))}" if result.get("drift") else "")
                + (f", error: {result['error']}" if result.get("error") else "")
            )
    prompts = (sample.get("loop") or {}).get("prompts") or []
    lines += [f"turn {turn} prompt: {prompt}" for turn, prompt in enumerate(prompts, 1)]
    text = "\n".join(lines)
    return (*shown, without_paths(text) if public else text)
