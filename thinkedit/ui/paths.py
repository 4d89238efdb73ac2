"""Folders the page may open by name: a run in the runs folder, an eval in the evals folder — nothing else on the
server, whatever `..` or symlinks the name holds."""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from .messages import refused


def confined(folder: str, settings: Settings) -> Path:
    """A run folder (or zip) named on the server: it must lie in the runs folder once symlinks are resolved."""
    return inside(
        folder,
        settings.runs_dir,
        f"Only runs in the runs folder ({settings.runs_dir}) can be opened by name; upload its zip.",
        settings.public,
    )


def inside(name: str, root: str | Path, refusal: str, public: bool) -> Path:
    """`name` (a bare name is looked up in `root`) as a path that lies in `root` once symlinks are resolved."""
    root = Path(root).resolve()
    path = (root / name).resolve()  # an absolute `name` stays itself
    if not path.is_relative_to(root):
        raise refused(refusal, public)
    return path
