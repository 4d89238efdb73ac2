"""What the page shows for one run, built from the loop's events or from a run saved on disk.

Plain data and PIL images only: no Gradio here, so the same view serves the live run, a run reloaded
from History, and the tests. Model text is kept as plain text; the page renders it in text widgets.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .. import drift, loop
from ..compute import Prices, Tokens, compute_line, seconds_text, tokens_text, totals
from ..critique import score_text
from ..drift import Drift, percent
from ..images import fit_within, load_image, png_bytes
from ..schema import shown_best
from ..store import SavedRun, holds_run

DISPLAY_SIDE = 2048  # the page shows images at most this large; the run folder and its zip keep the originals
# The app's one temp folder: a subfolder per browser session, one per view inside it (display copies, zip),
# and the session's History thumbnails. Removed at exit; a session's part when Gradio drops the session.
SCRATCH = tempfile.TemporaryDirectory(prefix="thinkedit-ui-")
TABLE_HEADERS = [
    *("Turn", "Prompt", "Semantic", "Quality", "Edit s", "Think s", "From", "By"),
    *("Changed", "Outside", "GPU s", "Tokens"),
]
WHO = {"instruction": "instruction", "thinker": "thinker", "person": "you"}  # the By column: who wrote the prompt
RATING_MARKS = {"up": " · rated up", "down": " · rated down"}


@dataclass
class TurnView:
    index: int
    prompt: str
    image: str  # path of the display copy
    semantic: float | None
    quality: float | None
    edit_seconds: float
    think_seconds: float
    size: tuple[int, int]  # the turn's own size, which a rotation or a crop changes
    parent: int | None = None  # the turn it continues
    by: str = "instruction"  # who wrote its prompt
    stage: int = 1
    feedback: str | None = None  # the person's words that the thinker answered with this turn's prompt
    drift: Drift | None = None  # None for a turn of another shape (or a run saved before drift was measured)
    gpu_seconds: float | None = None  # device time held; None: no GPU (or a run saved before it was recorded)
    tokens: Tokens = field(default_factory=Tokens)  # the critique's prompt+completion tokens; None parts: not known

    @classmethod
    def of_record(cls, turn: dict[str, Any], image: str, size: tuple[int, int]) -> TurnView:
        feedback = turn.get("feedback")
        return cls(
            turn["index"],
            turn["prompt"],
            image,
            turn["semantic"],
            turn["quality"],
            turn["edit_seconds"],
            turn["think_seconds"],
            size,
            turn["parent"],
            turn["by"],
            turn["stage"],
            feedback["text"] if feedback else None,
            drift.read(turn.get("drift")),
            turn.get("gpu_seconds"),
            Tokens.read(turn.get("tokens")),
        )

    def lineage(self) -> str:
        """Where the turn comes from, when that is not simply the turn before: "from 2, your feedback"."""
        if self.stage > 1 and self.by == "instruction":
            return f"stage {self.stage} on turn {self.parent}"
        how = "your feedback" if self.feedback else "your prompt" if self.by == "person" else ""
        if self.parent in (None, self.index - 1) and not how:
            return ""
        return ", ".join(part for part in (f"from {self.parent}" if self.parent else "", how) if part)


@dataclass
class RunView:
    """One run as the page shows it; `apply` each loop event in order. It keeps paths of display copies and sizes,
    no images, so a session may hold on to the view it shows."""

    source: InitVar[Image.Image | None] = None
    max_turns: int | None = 1  # None: a continuation, which adds turns to a run
    turns: list[TurnView] = field(default_factory=list)
    reasoning: str = ""
    refined: str = ""
    finished_text: tuple[str, str] = ("", "")  # (reasoning, refined prompt) of the last finished turn
    phase: str = ""  # the live status while the run goes on
    step: tuple[int, int] | None = None  # (i, n) of the current edit
    best: int | None = None
    record: dict[str, Any] | None = None  # the trajectory record plus "run_dir", once finished
    started: float = field(default_factory=time.monotonic)
    folder: Path = field(default_factory=lambda: new_folder(SCRATCH.name))
    source_path: str | None = None
    source_size: tuple[int, int] | None = None  # the original's
    public: bool = False  # a public page shows run ids, never the server's paths
    prices: Prices = field(default_factory=Prices)  # the server's prices: the status line's estimated cost
    sent_turns: int = 0  # how many turns the page's gallery has been sent
    picked: int | None = None  # the person's pick (it overrides the thinker's best as `best`)
    ratings: dict[str, str] = field(default_factory=dict)
    stage_sources: dict[int, int | None] = field(default_factory=lambda: {1: None})  # stage → the turn it builds on
    mask: InitVar[Image.Image | None] = None  # the run's mask (L, white may change): outlined in "what changed"
    mask_path: str | None = None

    def __post_init__(self, source: Image.Image | None, mask: Image.Image | None) -> None:
        if source is not None:
            self.source_path, self.source_size = self.display_copy(source, "source"), source.size
        if mask is not None:
            self.mask_path = self.display_copy(mask, "mask")

    def turns_to_send(self) -> bool:
        """Whether turns were added since the page was last sent them (and, from now on, they count as sent)."""
        changed, self.sent_turns = len(self.turns) != self.sent_turns, len(self.turns)
        return changed

    def display_copy(self, image: Image.Image, name: str) -> str:
        """The image written once to a temp file: the page gets a path, so Gradio never rewrites a file
        that a browser may be reading (it re-encodes PIL images on every update). PNG, because the gallery's
        full view and the slider show it and their download buttons save it: people compare fine detail."""
        return display_file(image, self.folder, name)

    def apply(self, event: loop.Event) -> None:
        if isinstance(event, loop.TurnStarted):
            of = f" of {self.max_turns}" if self.max_turns else ""
            self.phase = f"Turn {event.index}{of} · editing…"
            self.step = (0, 1)
        elif isinstance(event, loop.EditStep):
            self.step = (event.step, event.total)
        elif isinstance(event, loop.ThinkingStarted):
            self.reasoning, self.refined, self.step = "", "", None
            self.phase = "Thinking about the instruction…" if event.index == 0 else f"Turn {event.index} · thinking…"
        elif isinstance(event, loop.Reasoning):
            self.reasoning += event.text
        elif isinstance(event, loop.TurnFinished):
            self.add_turn(event.turn)
        elif isinstance(event, loop.RunFinished):
            trajectory = event.trajectory
            run_dir = trajectory.run_dir
            self.show_record({**trajectory.record(), "run_dir": str(run_dir) if holds_run(run_dir) else None})
            self.step = None
            if self.turns:  # a run stopped while thinking keeps the last finished turn's text, not a cleared panel
                self.reasoning, self.refined = self.finished_text

    def add_turn(self, turn: loop.Turn) -> None:
        critique = turn.critique
        image = self.display_copy(turn.image, f"turn_{turn.index:02d}")
        feedback = turn.feedback.text if turn.feedback else None
        shown = TurnView(
            turn.index,
            turn.prompt,
            image,
            critique.semantic,
            critique.quality,
            turn.edit_seconds,
            turn.think_seconds,
            turn.image.size,
            turn.parent,
            turn.by,
            turn.stage,
            feedback,
            turn.drift,
            turn.gpu_seconds,
            turn.tokens,
        )
        self.turns = sorted([t for t in self.turns if t.index != turn.index] + [shown], key=lambda t: t.index)
        if turn.stage not in self.stage_sources and turn.by == "instruction":
            self.stage_sources[turn.stage] = turn.parent  # a new stage: built on the turn it continues
        self.reasoning = critique.reasoning or self.reasoning
        self.refined = critique.refined_prompt or ""
        self.finished_text = (self.reasoning, self.refined)
        self.step = None

    def show_record(self, record: dict[str, Any]) -> None:
        """Show the run's record (with "run_dir"): its best (the person's pick first), ratings and stages, and any
        turn another request added meanwhile."""
        self.record = record
        self.best, self.picked, self.ratings = shown_best(record), record["picked_turn"], dict(record["ratings"])
        self.stage_sources = {stage["stage"]: stage["source_turn"] for stage in record["stages"]}
        have = {turn.index for turn in self.turns}
        missing = [turn for turn in record["turns"] if turn["index"] not in have]
        if missing and self.run_dir is not None:
            saved = SavedRun(self.run_dir, record)
            for turn in missing:
                original = saved.image(turn["index"])
                image = self.display_copy(original, f"turn_{turn['index']:02d}")
                self.turns.append(TurnView.of_record(turn, image, original.size))
            self.turns.sort(key=lambda t: t.index)

    @classmethod
    def from_saved(cls, saved: SavedRun, folder: Path, public: bool = False, prices: Prices | None = None) -> RunView:
        record = saved.record
        view = cls(
            source=saved.source, max_turns=len(record["turns"]) or 1, folder=folder, public=public, mask=saved.mask
        )
        view.prices = prices or Prices()
        for turn in record["turns"]:
            original = saved.image(turn["index"])
            image = view.display_copy(original, f"turn_{turn['index']:02d}")
            view.turns.append(TurnView.of_record(turn, image, original.size))
        last = record["turns"][-1] if record["turns"] else {}
        view.reasoning, view.refined = last.get("reasoning") or "", last.get("refined_prompt") or ""
        view.show_record({**record, "run_dir": str(saved.path)})
        return view

    @classmethod
    def continuing(
        cls, saved: SavedRun, from_turn: int, folder: Path, public: bool = False, prices: Prices | None = None
    ) -> RunView:
        """A saved run about to get new turns from `from_turn`: its turns shown, the new ones added as they finish."""
        view = cls.from_saved(saved, folder, public, prices)
        view.record, view.max_turns, view.phase = None, None, f"Going on from turn {from_turn}…"
        return view

    @property
    def shown_record(self) -> dict[str, Any] | None:
        """The record as the page shows it: on a public page the run folder is its id and messages name no path."""
        if self.record is None or not self.public:
            return self.record
        record = self.record
        return {
            **record,
            "run_dir": self.run_dir.name if self.run_dir else None,
            "error": self.for_visitor(record.get("error")),
            "warnings": [self.for_visitor(warning) for warning in record.get("warnings", [])],
        }

    def for_visitor(self, text: str | None) -> str | None:
        """`text` as this page may show it: on a public page, no folder of the server's appears."""
        if text is None or not self.public:
            return text
        if self.run_dir is not None:
            text = text.replace(str(self.run_dir), self.run_dir.name)
        return without_paths(text)

    @property
    def run_dir(self) -> Path | None:
        return Path(self.record["run_dir"]) if self.record and self.record.get("run_dir") else None

    @property
    def best_turn(self) -> TurnView | None:
        return next((turn for turn in self.turns if turn.index == self.best), None)

    def gallery(self) -> list[tuple[str, str]]:
        return [(turn.image, self.caption(turn)) for turn in self.turns]

    def caption(self, turn: TurnView) -> str:
        lineage = turn.lineage()
        text = f"Turn {turn.index}" + (f" ({lineage})" if lineage else "")
        text += f" · semantic {score_text(turn.semantic)} · quality {score_text(turn.quality)}"
        if turn.drift is not None:
            outside = "" if turn.drift.outside is None else f" ({percent(turn.drift.outside)} outside)"
            text += f" · changed {percent(turn.drift.changed)}{outside}"
        text += RATING_MARKS.get(self.ratings.get(str(turn.index)), "")
        if turn.index == self.best:
            text += " · ★ your pick" if self.picked is not None else " · ★ best"
        return text

    def table(self) -> list[list[Any]]:
        return [
            [
                f"{turn.index} ★" if turn.index == self.best else str(turn.index),
                turn.prompt,
                score_text(turn.semantic),
                score_text(turn.quality),
                round(turn.edit_seconds, 2),
                round(turn.think_seconds, 2),
                "–" if turn.parent is None else turn.parent,
                ("feedback" if turn.feedback else WHO[turn.by])
                + RATING_MARKS.get(self.ratings.get(str(turn.index)), ""),
                percent(turn.drift.changed) if turn.drift else "–",
                percent(turn.drift.outside) if turn.drift else "–",
                seconds_text(turn.gpu_seconds),
                tokens_text(turn.tokens),
            ]
            for turn in self.turns
        ]

    def changes(self, turn: TurnView) -> tuple[str | None, str]:
        """(the "what changed" picture of `turn` against the source, what it shows in words). A turn of another shape
        gets no picture, and the words say why. Drawn once from the display copies into this view's folder."""
        if self.source_size is None or self.source_path is None:
            return None, "This run has no source image to compare with."
        if turn.size != self.source_size:
            turn_size, source_size = (f"{w}×{h}" for w, h in (turn.size, self.source_size))
            return None, drift.SHAPE_CHANGED.format(turn=turn.index, turn_size=turn_size, source_size=source_size) + "."
        path = self.folder / f"changes_{turn.index:02d}.png"
        if not path.is_file():
            source, edited = load_image(self.source_path), load_image(turn.image)
            mask = load_image(self.mask_path).convert("L").resize(source.size) if self.mask_path else None
            path.write_bytes(png_bytes(drift.picture(source, edited, mask)))
        measured = drift.words(turn.drift) if turn.drift else "drift not recorded"
        legend = f"yellow: just noticeable (ΔE00 over {drift.NOTICEABLE:g}), red: strong"
        legend += ", cyan: the mask's edge" if self.mask_path else ""
        return str(path), f"Turn {turn.index} against the source: {measured}. {legend}."

    def slider(self) -> tuple[str, str] | None:
        """The source the best turn edited (the run's, or its stage's) ↔ the best turn, on one frame."""
        best = self.best_turn
        if best is None or self.source_size is None or self.source_path is None:
            return None
        built_on = next((t for t in self.turns if t.index == self.stage_sources.get(best.stage)), None)
        source = (built_on.image, built_on.size) if built_on else (self.source_path, self.source_size)
        return same_frame(source, (best.image, best.size), self.folder)

    def versus(self, other: RunView) -> tuple[str, str] | None:
        """This run's best turn ↔ another run's (Compare), on one frame."""
        mine, theirs = self.best_turn, other.best_turn
        if mine is None or theirs is None:
            return None
        return same_frame((mine.image, mine.size), (theirs.image, theirs.size), self.folder)

    def status(self) -> str:
        if self.record is None:
            return self.phase or "Starting…"
        record = self.shown_record
        reason = loop.stop_message(record)
        turns = len(record["turns"])
        plural, done = "s" if turns != 1 else "", "Paused" if record.get("stop_reason") == "step" else "Finished"
        text = f"{done} after {turns} turn{plural} in {record['seconds']:.1f} s: {reason}."
        if self.max_turns is None:  # a continuation: its seconds are its own, the turns the whole run's
            text = f"{done} in {record['seconds']:.1f} s; the run holds {turns} turn{plural}: {reason}."
        if record.get("error"):
            text += f" {record['error']}"
        if record.get("warnings"):  # the loop warns only when the run could not be saved
            text += " " + " ".join(record["warnings"])
        best = self.best_turn
        if best is not None:
            whose = "your pick: " if self.picked is not None else ""
            scores = f"semantic {score_text(best.semantic)}, quality {score_text(best.quality)}"
            text += f" Best: {whose}turn {best.index} ({scores})."
        text += f" Seed {record['settings'].get('seed')}, {loop.seed_rule(record['settings'])}."
        compute = record.get("compute") or totals(record["turns"], record.get("first_turn_compute"))
        return text + f" Compute: {compute_line(compute, self.prices)}."

    def progress_html(self) -> str:
        """A progress bar for the current edit; only numbers and fixed words go into this HTML."""
        if self.record is not None:
            return progress_bar(100, "done", "te-done")
        if self.step is None:
            return progress_bar(100, "thinking…", "te-busy")
        i, n = self.step
        return progress_bar(round(100 * i / max(n, 1)), f"editing step {i} of {n}" if i else "editing…")

    def summary_row(self, label: str) -> list[Any]:
        """One row of the Compare summary: which backends, best scores, turns used, seconds."""
        record = self.record or {}
        best = self.best_turn
        return [
            label,
            score_text(best.semantic) if best else "–",
            score_text(best.quality) if best else "–",
            len(self.turns),
            round(record.get("seconds", time.monotonic() - self.started), 1),
        ]


SUMMARY_HEADERS = ["Side", "Best semantic", "Best quality", "Turns", "Seconds"]


_SERVER_FOLDERS = re.compile(r"(?<![\w:/.])/(?:[^\s/'\"`<>]+/)+")  # the folders of an absolute path, not of a URL
_URLS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"`<>]+", re.IGNORECASE)


def without_paths(text: str) -> str:
    """What a public page may show of `text`: every absolute path cut to its last part (a run id, a file name), and
    every URL (a server the operator configured, a model server's address) said as "its server"."""
    return _SERVER_FOLDERS.sub("", _URLS.sub("its server", text))


def display_file(image: Image.Image | str | Path, folder: Path, name: str) -> str:
    """A display copy of `image` (or of the image file at that path) as `folder`/`name`.png, at most DISPLAY_SIDE
    a side: what the page is sent, never the original (which may lie outside what Gradio serves)."""
    if not isinstance(image, Image.Image):
        image = load_image(image)
    folder.mkdir(parents=True, exist_ok=True)  # back if the session dropped it (KEEP_VIEWS)
    path = folder / f"{name}.png"
    path.write_bytes(png_bytes(fit_within(image, DISPLAY_SIDE)))
    return str(path)


def same_frame(
    first: tuple[str, tuple[int, int]], second: tuple[str, tuple[int, int]], folder: Path
) -> tuple[str, str]:
    """Two display copies (path, size of the original) centred on one transparent frame at their true relative
    scale. The slider lays its second image over the first one's box, so a taller or wider one was cut off."""
    if first[1] == second[1]:
        return first[0], second[0]
    frame = (max(first[1][0], second[1][0]), max(first[1][1], second[1][1]))
    scale = min(1.0, DISPLAY_SIDE / max(frame))

    def scaled(size: tuple[int, int]) -> tuple[int, int]:
        return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))

    folder.mkdir(parents=True, exist_ok=True)
    names = "-".join(Path(path).stem for path, _ in (first, second))
    framed = []
    for side, (path, size) in enumerate((first, second)):
        out = folder / f"frame-{names}-{side}.webp"
        if not out.is_file():  # written once: a browser may be reading it
            image = Image.open(path).convert("RGBA").resize(scaled(size), Image.Resampling.LANCZOS)
            canvas = Image.new("RGBA", scaled(frame), (0, 0, 0, 0))
            canvas.paste(image, ((canvas.width - image.width) // 2, (canvas.height - image.height) // 2))
            canvas.save(out, "WEBP", quality=92)
        framed.append(str(out))
    return framed[0], framed[1]


def progress_bar(percent: int, label: str, state: str = "") -> str:
    return f'<div class="te-progress {state}"><div style="width:{percent}%"></div><span>{label}</span></div>'


IDLE_PROGRESS = progress_bar(0, "ready")


def session_folder() -> str:
    """A new browser session's own part of the app's temp folder."""
    return tempfile.mkdtemp(prefix="session-", dir=SCRATCH.name)


def remove_folder(folder: str | Path | None) -> None:
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def new_folder(parent: str | Path) -> Path:
    """A new temp folder for one view inside `parent` (a session's folder, or the app's)."""
    return Path(tempfile.mkdtemp(prefix="view-", dir=parent))


def thumbnail_file(path: Path, image: Callable[[], Image.Image], side: int = 256) -> str:
    """A small WebP preview at `path`, made once: `image` is read only when the preview is not there yet."""
    if not path.is_file():
        picture = image()
        picture.thumbnail((side, side))
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path, "WEBP", quality=90)
    return str(path)


def history_item(saved: SavedRun, folder: str | Path, side: str | None = None) -> tuple[str, str]:
    """A thumbnail (written once per run into `folder`) and a one-line caption for History: instruction, best score,
    time; a Compare side's (`side`) begins with the side and what kind of run it was."""
    record = saved.record
    best = saved.best
    shown = f"{saved.path.resolve()}:{best['index'] if best else None}"  # a new pick or turn shows a new thumbnail
    thumbnail = thumbnail_file(
        Path(folder) / f"{hashlib.sha1(shown.encode()).hexdigest()[:16]}.webp",
        lambda: saved.image(best["index"]) if best else saved.source,
    )
    instruction = record["instruction"]
    if len(instruction) > 48:
        instruction = instruction[:47] + "…"
    scores = (
        f"best semantic {score_text(best['semantic'])}, quality {score_text(best['quality'])}" if best else "no turns"
    )
    started = str(record.get("started", ""))[11:16]
    caption = f"{instruction} · {scores} · {started}"
    return thumbnail, f"{side} · {run_kind(record)} · {caption}" if side else caption


def run_kind(record: dict[str, Any]) -> str:
    """What a run is, in Compare's words: one of its baselines (single-shot, rewrite once, best-of-N), or the loop
    (Think-while-Edit). A single-shot run gone on from is the loop's."""
    settings = record.get("settings") or {}
    if settings.get("baseline") == "best-of-n":
        return f"best-of-{settings.get('max_turns')}"
    if settings.get("max_turns") == 1 and len(record["turns"]) <= 1:
        polished = settings.get("baseline") == "rewrite" or settings.get("first_turn") == "polish"
        return "rewrite once" if polished else "single-shot"
    return "Think-while-Edit"
