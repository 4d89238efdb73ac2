"""Runs on disk: `source.png`, `turn_01.png`, …, `trajectory.json` — written atomically, read back whole.

The `trajectory.json` contract (schema_version 1) is documented in the README; the tests and the
export formats rely on it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from PIL import Image

from . import __version__
from .errors import BadInput
from .images import load_image, png_bytes

SCHEMA_VERSION = 1
MAX_MEMBER_BYTES = 256 * 2**20  # a run's PNG or JSON; anything larger in an uploaded zip is refused
_RUN_IMAGE = re.compile(r"source\.png|turn_\d{2,}\.png")


def new_run_dir(runs_root: str | Path) -> Path:
    """A fresh, unique folder name under the runs root (not created yet)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(runs_root) / f"{stamp}-{secrets.token_hex(3)}"


def save_run(trajectory, run_dir: str | Path) -> Path:
    """Write what is new (images once, the JSON every time). Raises OSError when the disk says no."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "source.png").exists():
        _write_image(trajectory.request.image, run_dir / "source.png")
    for turn in trajectory.turns:
        path = run_dir / turn_file(turn.index)
        if not path.exists():
            _write_image(turn.image, path)
    write_json_atomic(run_dir / "trajectory.json", trajectory_record(trajectory))
    return run_dir


def turn_file(index: int) -> str:
    return f"turn_{index:02d}.png"


def trajectory_record(trajectory) -> dict[str, Any]:
    """The trajectory as the JSON contract: plain data, no images, no secrets."""
    request = trajectory.request
    best = trajectory.best_turn
    return {
        "schema_version": SCHEMA_VERSION,
        "instruction": request.instruction,
        "editor": trajectory.editor,
        "thinker": trajectory.thinker,
        "settings": trajectory.settings,
        "versions": versions(),
        "source": "source.png",
        "size": list(request.image.size),
        "first_turn_prompt": trajectory.first_turn_prompt,
        "first_turn_reasoning": trajectory.first_turn_reasoning,
        "turns": [
            {
                "index": turn.index,
                "prompt": turn.prompt,
                "image": turn_file(turn.index),
                "semantic": turn.critique.semantic,
                "quality": turn.critique.quality,
                "reasoning": turn.critique.reasoning,
                "refined_prompt": turn.critique.refined_prompt,
                "raw": turn.critique.raw,
                "seed": turn.seed,
                "edit_seconds": round(turn.edit_seconds, 4),
                "think_seconds": round(turn.think_seconds, 4),
                "editor_note": turn.editor_note,
            }
            for turn in trajectory.turns
        ],
        "best_turn": best.index if best else None,
        "stop_reason": trajectory.stop_reason,
        "error": trajectory.error,
        "warnings": list(trajectory.warnings),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(trajectory.started)),
        "seconds": round(trajectory.seconds, 3),
    }


def versions(*more: str) -> dict[str, str | None]:
    """thinkedit's version and its main libraries' (and the `more` packages'), None where one is not installed."""
    found: dict[str, str | None] = {"thinkedit": __version__}
    for package in ("torch", "diffusers", "transformers", "gradio", *more):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def write_json_atomic(path: Path, data: Any) -> None:
    _write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8"))


def write_text_atomic(path: Path, text: str) -> None:
    _write_atomic(path, text.encode("utf-8"))


def _write_image(image: Image.Image, path: Path) -> None:
    _write_atomic(path, png_bytes(image))


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename: readers see the old file or the new one, never half."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@dataclass
class SavedRun:
    """A run read back from disk: the JSON record plus lazy access to its images."""

    path: Path
    record: dict[str, Any]

    @property
    def source(self) -> Image.Image:
        return _open(self.file(self.record.get("source", "source.png")))

    def image(self, index: int) -> Image.Image:
        turn = next(t for t in self.record["turns"] if t["index"] == index)
        return _open(self.file(turn["image"]))

    def file(self, name: str) -> Path:
        """A file of this run by the name its record gives: only `source.png` / `turn_NN.png` inside the run."""
        if not isinstance(name, str) or not _RUN_IMAGE.fullmatch(name):
            raise BadInput(f"The run at {self.path} names an image '{name}' that is not one of its own files.")
        path = self.path / name
        if not path.is_file():
            raise BadInput(f"The run at {self.path} has no {name}.")
        return path

    @property
    def best(self) -> dict[str, Any] | None:
        best = self.record.get("best_turn")
        return next((t for t in self.record["turns"] if t["index"] == best), None)


def load_run(path: str | Path, unpack_to: str | Path | None = None) -> SavedRun:
    """Read a run folder (or a run's zip) back; `BadInput` when it is not a run. A zip is unpacked into a new
    folder inside `unpack_to` (default: the system temp folder), which the caller removes when done."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        path = _unzip(path, unpack_to)
    file = path / "trajectory.json"
    if not file.is_file():
        raise BadInput(f"{path} is not a ThinkEdit run: it has no trajectory.json.")
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BadInput(f"{file} is not valid JSON: {exc}") from None
    if not _follows_contract(record):
        raise BadInput(f"{file} does not follow the trajectory format (instruction, turns with index and image).")
    return SavedRun(path, record)


def _follows_contract(record: Any) -> bool:
    if not isinstance(record, dict) or not isinstance(record.get("instruction"), str):
        return False
    turns = record.get("turns")
    return isinstance(turns, list) and all(
        isinstance(t, dict) and isinstance(t.get("index"), int) and isinstance(t.get("image"), str) for t in turns
    )


def zip_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """The run folder as a zip (PNGs + trajectory.json), next to the folder unless `out` is given."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir.with_suffix(".zip")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(run_dir.iterdir()):
            if file.is_file() and not file.name.startswith("."):
                archive.write(file, arcname=f"{run_dir.name}/{file.name}")
    return out


def _unzip(archive_path: Path, unpack_to: str | Path | None) -> Path:
    target = Path(tempfile.mkdtemp(prefix="thinkedit-run-", dir=unpack_to))
    with zipfile.ZipFile(archive_path) as archive:
        for member in archive.infolist():
            name = Path(member.filename).name
            if member.is_dir() or not name or name.startswith("."):
                continue
            if not (name == "trajectory.json" or _RUN_IMAGE.fullmatch(name)):
                continue
            if member.file_size > MAX_MEMBER_BYTES:
                raise BadInput(
                    f"{archive_path.name} holds a {member.file_size / 2**20:.0f} MB {name}; not a run's zip."
                )
            (target / name).write_bytes(archive.read(member))
    return target


def _open(path: Path) -> Image.Image:
    return load_image(path)
