"""One browser session's state: its runs and their History items, its runs' Stop switches, its temp folder.

Gradio makes one per page load (`new_session`) and drops it an hour after the tab closed (`end_session`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput
from ..store import SavedRun, load_run
from .view import RunView, history_item, new_folder, remove_folder, session_folder

HISTORY_SIZE = 48  # a session's History lists this many runs, newest first; older ones drop off the list
KEEP_VIEWS = 16  # a session keeps this many views' temp folders; Gradio copied older ones to its cache when shown


@dataclass
class Session:
    """One browser session's own state: its runs (folders, newest last) and their History items, the Stop
    switches of its runs, and its temp folder (display copies, zips, thumbnails, unpacked run zips) with one
    subfolder per view. Only paths and short text: images live in the temp folder."""

    runs: list[str] = field(default_factory=list)
    history: dict[str, tuple[str, str]] = field(default_factory=dict)  # run folder → (thumbnail, caption)
    cancel: dict[str, threading.Event] = field(default_factory=dict)  # "studio" / "compare" → its Stop switch
    folder: str = field(default_factory=session_folder)
    views: list[Path] = field(default_factory=list)
    showing: RunView | None = None  # the run the Studio shows (live or reopened): "what changed" draws its turns

    def view_folder(self) -> Path:
        """A new temp folder for one view; only the KEEP_VIEWS newest are kept."""
        folder = new_folder(self.folder)
        self.views.append(folder)
        while len(self.views) > KEEP_VIEWS:
            remove_folder(self.views.pop(0))
        return folder

    def remember(self, view: RunView) -> None:
        """Add a finished, saved run to History. Its item (thumbnail, caption) is made once, from the record in
        hand: a long session does not read its runs' trajectory.json files again at each run's end."""
        if view.run_dir is None:
            return
        path = str(view.run_dir)
        try:
            saved = SavedRun(view.run_dir, view.record)
            if view.record.get("warnings"):  # a save that failed part way: History lists what is on disk
                saved = load_run(view.run_dir)
            item = history_item(saved, self.folder)
        except (BadInput, OSError):
            return  # nothing on disk to reopen
        self.runs.append(path)
        self.history[path] = item
        while len(self.runs) > HISTORY_SIZE:
            dropped = self.runs.pop(0)
            if dropped not in self.runs:
                thumbnail, _ = self.history.pop(dropped)
                Path(thumbnail).unlink(missing_ok=True)

    def gallery(self) -> list[tuple[str, str]]:
        return [self.history[path] for path in reversed(self.runs)]


def new_session() -> Session:
    """A browser session's state, made when its page loads (a function: Gradio would copy a dataclass's fields)."""
    return Session()


def end_session(session: Session) -> None:
    """Gradio drops a closed session's state (an hour after the tab closed): stop its runs, remove its temp files."""
    for cancel in session.cancel.values():
        cancel.set()
    remove_folder(session.folder)


def stop(session: Session | None, which: str) -> None:
    """Stop the session's running `which` run between steps; what is finished stays on screen and on disk."""
    cancel = session.cancel.get(which) if session is not None else None
    if cancel is not None:
        cancel.set()
