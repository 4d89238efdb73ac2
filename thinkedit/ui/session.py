"""One browser session's state: its runs and their History items, its runs' Stop switches, its temp folder.

Gradio makes one per page load (`new_session`) and drops it an hour after the tab closed (`end_session`). A session
made by an API caller (gradio_client, a script) has no tab to close, and Gradio keeps its state for the life of the
app: so any session unused for `SESSION_IDLE_S` loses its temp files (`sweep_idle`, run whenever a session is made or
used), and gets them back, made anew from its runs, if it comes back.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..store import SavedRun, load_run
from .view import RunView, history_item, new_folder, remove_folder, session_folder

SESSION_IDLE_S = 3600.0  # as long as Gradio keeps a closed tab's state
HISTORY_SIZE = 48  # a session's History lists this many runs, newest first; older ones drop off the list
KEEP_VIEWS = 16  # a session keeps this many views' temp folders; Gradio copied older ones to its cache when shown


@dataclass(eq=False)  # each session is itself: kept in a weak set by identity
class Session:
    """One browser session's own state: its runs (folders, newest last) and their History items, the Stop
    switches of its runs, and its temp folder (display copies, zips, thumbnails, unpacked run zips) with one
    subfolder per view. Only paths and short text: images live in the temp folder."""

    runs: list[str] = field(default_factory=list)
    history: dict[str, tuple[str, str]] = field(default_factory=dict)  # run folder → (thumbnail, caption)
    sides: dict[str, str] = field(default_factory=dict)  # run folder → the Compare side it ran on ("A", "B")
    restored: bool = False  # whether the runs a browser kept (`restore`) are back in History
    cancel: dict[str, threading.Event] = field(default_factory=dict)  # "studio" / "compare" → its Stop switch
    stopped_at: dict[str, float] = field(default_factory=dict)  # "studio" / "compare" → when Stop was last pressed
    folder: str = field(default_factory=session_folder)
    views: list[Path] = field(default_factory=list)
    last_used: float = field(default_factory=time.monotonic)
    running: int = 0  # runs of this session going now: its files are in use, whatever the clock says

    def __post_init__(self) -> None:
        _SESSIONS.add(self)

    def __deepcopy__(self, memo: dict) -> Session:
        return self  # Gradio copies a State's first value; this one is made fresh for each session already

    def used(self) -> None:
        """This session is in use now: its temp folder is there, and other sessions idle too long lose theirs."""
        self.last_used = time.monotonic()
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        sweep_idle(self.last_used)

    showing: RunView | None = None  # the run the Studio shows (live or reopened): "what changed" draws its turns

    def view_folder(self) -> Path:
        """A new temp folder for one view; only the KEEP_VIEWS newest are kept."""
        self.used()
        folder = new_folder(self.folder)
        self.views.append(folder)
        while len(self.views) > KEEP_VIEWS:
            remove_folder(self.views.pop(0))
        return folder

    def remember(self, view: RunView, side: str | None = None) -> None:
        """Add a finished, saved run to History (`side`: the Compare side it ran on). Its item (thumbnail, caption) is
        made once, from the record in hand: a long session does not read its runs' trajectory.json files again at
        each run's end."""
        if view.run_dir is None:
            return
        try:
            saved = SavedRun(view.run_dir, view.record)
            if view.record.get("warnings"):  # a save that failed part way: History lists what is on disk
                saved = load_run(view.run_dir)
        except (BadInput, OSError):
            return  # nothing on disk to reopen
        self.add(saved, side or self.sides.get(str(view.run_dir)))

    def add(self, saved: SavedRun, side: str | None = None) -> None:
        """List a saved run in History, newest first; a run listed already (gone on from, rated) moves up."""
        path = str(saved.path)
        if path in self.history:
            self.runs.remove(path)
            self.forget(path)
        try:
            item = history_item(saved, self.folder, side)
        except (BadInput, OSError):
            return
        self.runs.append(path)
        self.history[path] = item
        if side:
            self.sides[path] = side
        while len(self.runs) > HISTORY_SIZE:
            self.forget(self.runs.pop(0))

    def kept(self) -> list[dict[str, str | None]]:
        """History as the browser keeps it between visits (`restore` reads it back): run ids, oldest first."""
        return [{"run": Path(path).name, "side": self.sides.get(path)} for path in self.runs]

    def restore(self, entries: Any, runs_dir: str | Path) -> None:
        """Put back the runs a browser kept (`kept`): each entry a run id that names a run folder directly in
        `runs_dir`; any other entry (a path, a link, a zip, a run since removed, nonsense) is passed over, so what a
        browser keeps opens nothing the runs folder's own page would not. Done once per session."""
        if self.restored:
            return
        self.restored = True
        runs = Path(runs_dir).resolve()
        for entry in entries[-HISTORY_SIZE:] if isinstance(entries, list) else []:
            run, side = (entry.get("run"), entry.get("side")) if isinstance(entry, dict) else (None, None)
            if not isinstance(run, str) or Path(run).name != run or run in ("", ".", "..") or "\0" in run:
                continue
            folder = runs / run
            if folder.is_symlink() or not folder.is_dir():
                continue
            with contextlib.suppress(BadInput, OSError):
                self.add(load_run(folder), side if side in ("A", "B") else None)

    def forget(self, path: str) -> None:
        """Drop a run's History item (and its thumbnail) once it is no longer listed."""
        if path not in self.runs and path in self.history:
            thumbnail, _ = self.history.pop(path)
            self.sides.pop(path, None)
            Path(thumbnail).unlink(missing_ok=True)

    def owns(self, run: str) -> Path | None:
        """The folder of this session's run named `run` (its folder, or its id: the folder's name), or None."""
        return next((Path(path) for path in reversed(self.runs) if run in (path, Path(path).name)), None)

    def gallery(self) -> list[tuple[str, str]]:
        """History's items, newest first; a thumbnail swept away while the session was idle is made again."""
        self.used()
        for path in self.runs:
            if not Path(self.history[path][0]).is_file():
                with contextlib.suppress(BadInput, OSError):  # the run itself is gone: its item stays as it was
                    self.history[path] = history_item(load_run(path), self.folder, self.sides.get(path))
        return [self.history[path] for path in reversed(self.runs)]


_SESSIONS: weakref.WeakSet[Session] = weakref.WeakSet()


def sweep_idle(now: float) -> None:
    """Remove the temp files of every session unused for over SESSION_IDLE_S (`now`: `time.monotonic`) and not
    running: what an API caller's sessions would otherwise keep for the life of the app."""
    for session in list(_SESSIONS):
        if now - session.last_used > SESSION_IDLE_S and not session.running and Path(session.folder).exists():
            remove_folder(session.folder)
            session.views.clear()


def new_session() -> Session:
    """A browser session's state, made when its page loads (a function: Gradio would copy a dataclass's fields).
    Sessions idle too long lose their temp files now."""
    session = Session()
    sweep_idle(session.last_used)
    return session


def end_session(session: Session) -> None:
    """Gradio drops a closed session's state (an hour after the tab closed): stop its runs, remove its temp files."""
    for cancel in session.cancel.values():
        cancel.set()
    remove_folder(session.folder)


def stop(session: Session | None, which: str) -> None:
    """Stop the session's running `which` run between steps (what is finished stays on screen and on disk), and
    any `which` run still waiting in the queue, before it starts (`stopped_while_queued`)."""
    if session is None:
        return
    session.stopped_at[which] = time.monotonic()
    cancel = session.cancel.get(which)
    if cancel is not None:
        cancel.set()


def stopped_while_queued(session: Session, which: str, queued_at: float | None) -> bool:
    """Whether Stop was pressed for `which` after a run that joined the queue at `queued_at` (`time.monotonic`)."""
    return queued_at is not None and session.stopped_at.get(which, float("-inf")) > queued_at
