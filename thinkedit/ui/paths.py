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
    """`name` (a bare name is looked up in `root`) as a path that lies in `root` once symlinks are resolved; a name
    that cannot be a path at all (text with a NUL, not text) is refused with the same sentence."""
    if not isinstance(name, str) or "\0" in name:
        raise refused(refusal, public)
    root = Path(root).resolve()
    try:
        path = (root / name).resolve()  # an absolute `name` stays itself
    except (OSError, RuntimeError, ValueError):  # a name too long, a link loop
        raise refused(refusal, public) from None
    if not path.is_relative_to(root):
        raise refused(refusal, public)
    return path
