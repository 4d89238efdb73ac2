"""Runs on disk: `source.png`, `mask.png` (with a mask), `turn_01.png`, …, `trajectory.json` — written atomically,
read back whole.

The `trajectory.json` contract is declared in `schema.py` (and documented in docs/runs.md); the tests and the
export formats rely on it.

Several requests may write one run: its first request, continuations of its turns (from this process or another)
and the person's verdicts. Each writes under the run folder's lock (`record_lock`: an OS lock on the folder) and
merges what it adds into the record it reads there, so nothing another request wrote is lost. The first request
holds `.running` locked while it makes its turns (`running`); the OS lets go of it when the process ends, however
it ends, so `still_running` is true exactly while that request goes on.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .errors import BadInput, ThinkEditError
from .images import load_image, png_bytes
from .schema import MASK_FILE, MAX_TURNS, check_record, merged_record, shown_best, trajectory_record, turn_file

MAX_MEMBER_BYTES = 256 * 2**20  # a run's PNG; anything larger in an uploaded zip is refused
MAX_RECORD_BYTES = 64 * 2**20  # a trajectory.json (10 turns of long reasoning take a few MB)
MAX_RUN_BYTES = 2**30  # all that a run's zip may unpack to
MAX_ZIP_MEMBERS = 64  # a run's zip holds at most 12 files; a zip of its folder made by hand adds a few entries
NOT_SAVED = "The run could not be saved"  # how every `NotSaved` message begins
RUNNING = ".running"  # locked by a run's first request while it makes its turns; removed when it ends
_RUN_IMAGE = re.compile(r"source\.png|mask\.png|turn_\d{2,}\.png")


class NotSaved(ThinkEditError):
    """The run folder could not be written completely; the message says exactly what it keeps."""


def new_run_dir(runs_root: str | Path) -> Path:
    """A fresh, unique folder name under the runs root (not created yet)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(runs_root) / f"{stamp}-{secrets.token_hex(8)}"  # 64 random bits: an id no one guesses


def save_run(trajectory, run_dir: str | Path) -> dict[str, Any]:
    """Write what is new (images once, the JSON every time) and return the record written: this request's turns
    merged, under the folder's lock, into the record on disk (`schema.merged_record`). A new turn whose number another
    request took meanwhile gets the next free one. When the disk says no, trajectory.json (small) still lists the
    turns whose images are on disk, and `NotSaved` says what the folder keeps."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / "source.png").exists():
            _write_image(trajectory.request.image, run_dir / "source.png")
        if trajectory.request.mask is not None and not (run_dir / MASK_FILE).exists():
            _write_image(trajectory.request.mask, run_dir / MASK_FILE)
    except OSError as exc:
        raise NotSaved(_what_is_kept(run_dir, exc)) from None
    first = trajectory.continues is None
    with record_lock(run_dir):
        disk = _record_on_disk(run_dir, first)
        kept, failure = _write_turns(trajectory, run_dir, disk)
        stages = [s for s in trajectory.stages if first or any(turn.stage == s.number for turn in kept)]
        mine = trajectory_record(dataclasses.replace(trajectory, turns=kept, stages=stages))
        record = merged_record(disk, mine, first)
        trajectory.on_disk = disk
        try:
            write_json_atomic(run_dir / "trajectory.json", record)
        except OSError as exc:
            failure = failure or exc
    if failure is not None:
        raise NotSaved(str(failure) if isinstance(failure, RunFull) else _what_is_kept(run_dir, failure))
    return record


class RunFull(ThinkEditError):
    """A run already holds as many turns as a run may."""


def _record_on_disk(run_dir: Path, first: bool) -> dict[str, Any] | None:
    """The record the folder holds now (None before the first save). A run's first request replaces a record it
    cannot read (its own, half there); a continuation stops with the reason."""
    file = run_dir / "trajectory.json"
    if not file.is_file():
        return None
    try:
        return _read_record(file.read_bytes(), str(file))
    except (BadInput, OSError) as exc:
        if first:
            return None
        raise ThinkEditError(f"The run at {run_dir} could not be read back to add this turn ({exc}).") from None


def _write_turns(trajectory, run_dir: Path, disk: dict[str, Any] | None) -> tuple[list, Exception | None]:
    """Give each new turn of `trajectory` a free number and write its image; (the turns on disk, the first failure).
    The turns after one that could not be written are not kept either: a turn's parent is always kept."""
    taken = {turn["index"] for turn in disk["turns"]} if disk else set()
    _claim_stage(trajectory, disk)
    kept = []
    for turn in trajectory.turns:
        if turn.index not in trajectory.claimed:
            on_disk = {int(p.stem[5:]) for p in run_dir.glob("turn_*.png") if p.stem[5:].isdigit()}
            if turn.index in taken | on_disk:
                turn.index = max(taken | on_disk | trajectory.claimed) + 1
            if len(taken | trajectory.claimed) >= MAX_TURNS:
                return kept, RunFull(
                    f"{NOT_SAVED} completely: it holds {MAX_TURNS} turns, the most a run keeps; "
                    f"turn {turn.index} and what follows are shown, not kept."
                )
            try:
                _write_image(turn.image, run_dir / turn_file(turn.index))
            except OSError as exc:
                return kept, exc
            trajectory.claimed.add(turn.index)
        kept.append(turn)
    return kept, None


def _claim_stage(trajectory, disk: dict[str, Any] | None) -> None:
    """A stage this request began (building on a turn) takes the next free number if another took its own."""
    numbers = {stage["stage"]: stage for stage in disk["stages"]} if disk else {}
    for stage in trajectory.stages:
        on_disk = numbers.get(stage.number)
        if on_disk is None or (on_disk["source_turn"], on_disk["instruction"]) == (
            stage.source_turn,
            stage.instruction,
        ):
            continue
        old, stage.number = stage.number, max(numbers) + 1
        for turn in trajectory.turns:
            turn.stage = stage.number if turn.stage == old else turn.stage


def record_lock(run_dir: Path):
    """Hold the run folder's lock (an OS lock on the folder itself, across processes) while the record is read,
    merged and written. A folder that cannot be opened is written without it (and the write says why it failed)."""
    return _locked(Path(run_dir), os.O_RDONLY)


@contextmanager
def running(run_dir: Path) -> Iterator[None]:
    """Mark the run as still running while its first request makes its turns: `.running` in its folder, locked.
    The OS lets go of the lock when the process ends, however it ends; the file is removed when the request ends."""
    path = Path(run_dir) / RUNNING
    with suppress(OSError):  # a disk that says no: the run goes on unmarked, and says what it keeps
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _locked(path, os.O_CREAT | os.O_RDWR):
            yield
    finally:
        with suppress(OSError):
            path.unlink()


@contextmanager
def _locked(path: Path, flags: int) -> Iterator[None]:
    """An exclusive OS lock on `path` (opened with `flags`) while the block runs; when it cannot be opened, none."""
    try:
        handle = os.open(path, flags, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing lets go of the lock


def still_running(run_dir: Path) -> bool:
    """Whether the run's first request is still making its turns, in this process or another."""
    try:
        handle = os.open(Path(run_dir) / RUNNING, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(handle)


def update_record(run_dir: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read the run's record under its lock, let `change` alter it, check it against the contract and write it;
    the record written. What other requests wrote meanwhile is kept: the record is read under the lock."""
    run_dir = Path(run_dir)
    with record_lock(run_dir):
        record = load_run(run_dir).record
        change(record)
        check_record(record, str(run_dir / "trajectory.json"))
        write_json_atomic(run_dir / "trajectory.json", record)
    return record


def _what_is_kept(run_dir: Path, failure: OSError) -> str:
    """The sentence for a failed save, naming what the run folder holds now (read from the folder itself)."""
    reason = failure.strerror or str(failure)
    images = sorted(p.name for p in run_dir.iterdir() if _RUN_IMAGE.fullmatch(p.name)) if run_dir.is_dir() else []
    if "source.png" not in images:
        return f"{NOT_SAVED} to {run_dir} ({reason}); it is shown, not kept."
    try:
        listed = [turn["index"] for turn in json.loads((run_dir / "trajectory.json").read_bytes())["turns"]]
        record = f"a trajectory.json of {_turns_text(listed)}"
    except (OSError, ValueError, KeyError, TypeError):
        record = "no trajectory.json"
    return f"{NOT_SAVED} completely to {run_dir} ({reason}): it keeps {', '.join(images)} and {record}; the rest is not kept."


def _turns_text(indexes: list[int]) -> str:
    """[1] → "turn 1", [1, 2, 3] → "turns 1, 2 and 3"."""
    if not indexes:
        return "no turns"
    words = [str(index) for index in indexes]
    if len(words) == 1:
        return f"turn {words[0]}"
    return f"turns {', '.join(words[:-1])} and {words[-1]}"


def holds_run(run_dir: Path | None) -> bool:
    """Whether `run_dir` holds a saved run (its trajectory.json was written, if not every image was)."""
    return run_dir is not None and (run_dir / "trajectory.json").is_file()


def prepare_run_dir(run_dir: str | Path, overwrite: bool = False) -> Path:
    """The folder a new run is written to. One that already holds a run is refused, so two runs never mix; with
    `overwrite` that run's own files (trajectory.json, source.png, mask.png, turn_NN.png) are removed first, nothing else."""
    run_dir = Path(run_dir)
    found = sorted(p for p in run_dir.iterdir() if _is_run_file(p.name)) if run_dir.is_dir() else []
    if found and not overwrite:
        names = ", ".join(p.name for p in found[:3]) + (", …" if len(found) > 3 else "")
        raise BadInput(
            f"{run_dir} already holds a run ({names}); choose another folder, or overwrite it (--overwrite)."
        )
    for path in found:
        path.unlink()
    return run_dir


def _is_run_file(name: str) -> bool:
    return name == "trajectory.json" or bool(_RUN_IMAGE.fullmatch(name))


def write_json_atomic(path: Path, data: Any) -> None:
    _write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8"))


def write_text_atomic(path: Path, text: str) -> None:
    _write_atomic(path, text.encode("utf-8"))


def copy_file_atomic(source: Path, target: Path) -> None:
    """`source`'s bytes as `target`, written the atomic way: a full disk leaves no half of it."""
    _write_atomic(target, source)


def _write_image(image: Image.Image, path: Path) -> None:
    _write_atomic(path, png_bytes(image))


def _write_atomic(path: Path, data: bytes | Path) -> None:
    """Temp file in the same folder, fsync, rename: readers see the old file or the new one, never half.
    `data` is the bytes, or a file to copy."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            if isinstance(data, Path):
                with data.open("rb") as source:
                    shutil.copyfileobj(source, file)
            else:
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
        """A file of this run by the name its record gives: only `source.png` / `turn_NN.png`, a file in the run's
        own folder once links are resolved. Every reader of a run (show, export, History, zips) reads through here."""
        if not isinstance(name, str) or not _RUN_IMAGE.fullmatch(name):
            raise BadInput(f"The run at {self.path} names an image '{name}' that is not one of its own files.")
        path = own_file(self.path, name)
        if path is None:  # missing, or a link out of the folder: one sentence, so nothing is learned of what is outside
            raise BadInput(
                f"The run at {self.path} has no {name}, which its trajectory.json names "
                "(a run's files are files in its own folder; links out of it are not followed)."
            )
        return path

    def turn(self, index: int) -> dict[str, Any] | None:
        return next((t for t in self.record["turns"] if t["index"] == index), None)

    def stage(self, turn: dict[str, Any]) -> dict[str, Any]:
        """The stage `turn` belongs to: the source it edited and the instruction it followed."""
        return next(s for s in self.record["stages"] if s["stage"] == turn["stage"])

    def source_of(self, turn: dict[str, Any]) -> Path:
        """The image `turn` edited: the run's source, or the image of the turn its stage was built on."""
        return self.file(self.stage(turn)["source"])

    @property
    def mask(self) -> Image.Image | None:
        """The run's mask (L, white may change) when it had one: a continuation fences its edits in with it too."""
        name = self.record.get("mask")
        return _open(self.file(name)).convert("L") if name else None

    @property
    def best(self) -> dict[str, Any] | None:
        """The turn shown as the run's best: the person's pick, else the thinker's best turn."""
        return self.turn(shown_best(self.record))


def load_run(path: str | Path, unpack_to: str | Path | None = None) -> SavedRun:
    """Read a run folder (or a run's zip) back; `BadInput` with the reason when it is not a run that follows the
    trajectory.json contract. A zip is checked before anything is unpacked, then unpacked into a new folder inside
    `unpack_to` (default: the system temp folder), which the caller removes when done."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return _load_zip(path, unpack_to)
    file = own_file(path, "trajectory.json")
    if file is None:
        raise BadInput(f"{path} is not a ThinkEdit run: it has no trajectory.json of its own.")
    _check_size(file.stat().st_size, MAX_RECORD_BYTES, file.name, str(path))
    label = str(path / "trajectory.json")
    saved = SavedRun(path, _read_record(file.read_bytes(), label))
    for name in _run_images(saved.record, label):
        saved.file(name)
    return saved


def own_file(folder: Path, name: str) -> Path | None:
    """`folder / name` with its links resolved, when that is a file inside `folder` (resolved too); else None."""
    try:
        root = folder.resolve()
        path = (folder / name).resolve()
    except (OSError, RuntimeError, ValueError):  # a loop of links, a NUL in a name
        return None
    return path if path.is_relative_to(root) and path.is_file() else None


def _load_zip(archive_path: Path, unpack_to: str | Path | None) -> SavedRun:
    """Check the zip's listing and its trajectory.json, then unpack only the files the record names."""
    name, target = archive_path.name, None
    try:
        with zipfile.ZipFile(archive_path) as archive:
            files = _run_members(archive, name)
            if "trajectory.json" not in files:
                raise BadInput(f"{name} is not a ThinkEdit run: it has no trajectory.json.")
            _check_size(files["trajectory.json"].file_size, MAX_RECORD_BYTES, "trajectory.json", name)
            record = _read_record(archive.read(files["trajectory.json"]), f"{name}'s trajectory.json")
            wanted = [files["trajectory.json"]]
            for image in _run_images(record, f"{name}'s trajectory.json"):
                if image not in files:
                    raise BadInput(f"{name} has no {image}, which its trajectory.json names.")
                _check_size(files[image].file_size, MAX_MEMBER_BYTES, image, name)
                wanted.append(files[image])
            total = sum(member.file_size for member in wanted)
            if total > MAX_RUN_BYTES:
                raise BadInput(
                    f"{name} unpacks to {total / 2**20:.0f} MB; a run's zip may hold at most "
                    f"{MAX_RUN_BYTES / 2**20:.0f} MB."
                )
            target = Path(tempfile.mkdtemp(prefix="thinkedit-run-", dir=unpack_to))
            for member in wanted:
                with archive.open(member) as packed, open(target / Path(member.filename).name, "wb") as unpacked:
                    shutil.copyfileobj(packed, unpacked)
    except Exception as exc:  # noqa: BLE001 - a damaged, encrypted or refused zip leaves nothing unpacked
        if target is not None:
            shutil.rmtree(target, ignore_errors=True)
        if isinstance(exc, BadInput):
            raise
        raise BadInput(f"{name} could not be unpacked ({exc}); it is not a run's zip ThinkEdit can read.") from None
    return SavedRun(target, record)


def _run_members(archive: zipfile.ZipFile, name: str) -> dict[str, zipfile.ZipInfo]:
    """The zip's files a run may hold, by file name, wherever they sit in it; two of one name are refused."""
    members = archive.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise BadInput(f"{name} holds {len(members)} files; a run's zip holds at most {MAX_ZIP_MEMBERS}.")
    files: dict[str, zipfile.ZipInfo] = {}
    for member in members:
        base = Path(member.filename).name
        if member.is_dir() or not _is_run_file(base):
            continue
        if base in files:
            raise BadInput(f"{name} holds two files named {base}; a run's zip holds one run.")
        files[base] = member
    return files


def _check_size(size: int, limit: int, file: str, where: str) -> None:
    if size > limit:
        raise BadInput(f"{where} holds a {size / 2**20:.1f} MB {file}; a run's {file} is at most {limit / 2**20:g} MB.")


def _read_record(data: bytes, label: str) -> dict[str, Any]:
    """A trajectory.json's bytes as its record; `BadInput` naming what is wrong (`label` names the file)."""
    try:
        record = json.loads(data, parse_constant=_not_json, parse_int=_whole_number, parse_float=_finite_number)
    except RecursionError:
        raise BadInput(f"{label} is nested too deeply to be a run's record.") from None
    except OutOfRange as exc:
        raise BadInput(f"{label} holds {exc}; a run's numbers are finite and whole ones fit in 64 bits.") from None
    except ValueError as exc:
        raise BadInput(f"{label} is not valid JSON: {exc}") from None
    return check_record(record, label)


class OutOfRange(ValueError):
    """A number in a record that no run writes, and that the page and the libraries cannot carry."""


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _whole_number(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**64:  # a seed or an index beyond 64 bits breaks the page's JSON encoder
        raise OutOfRange(f"the number {text[:24]}{'…' if len(text) > 24 else ''}")
    return value


def _finite_number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 reads as infinity
        raise OutOfRange(f"the number {text[:24]}")
    return value


def _run_images(record: dict[str, Any], label: str) -> list[str]:
    """The image files a record names, source first; `BadInput` for a name that is not one of a run's own files."""
    names = [record.get("source", "source.png")] + [turn["image"] for turn in record["turns"]]
    names += [record["mask"]] if record.get("mask") is not None else []
    stray = next((name for name in names if not _RUN_IMAGE.fullmatch(name)), None)
    if stray is not None:
        raise BadInput(f"{label} names an image '{stray}' that is not one of its own files.")
    return names


def zip_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """The run folder as a zip (its PNGs and trajectory.json), next to the folder unless `out` is given."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir.with_suffix(".zip")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(p.name for p in run_dir.iterdir() if _is_run_file(p.name)):
            file = own_file(run_dir, name)
            if file is not None:  # a link out of the run is not the run's: it stays out of its zip
                archive.write(file, arcname=f"{run_dir.name}/{name}")
    return out


def import_run(saved: SavedRun, runs_root: str | Path) -> Path:
    """A copy of a run read from elsewhere (a zip) as a new run in the runs folder, so that it can be continued there:
    its record and the images it names."""
    target = new_run_dir(runs_root)
    target.mkdir(parents=True)
    for name in {saved.record.get("source", "source.png"), *(turn["image"] for turn in saved.record["turns"])}:
        copy_file_atomic(saved.file(name), target / name)
    write_json_atomic(target / "trajectory.json", saved.record)
    return target


def _open(path: Path) -> Image.Image:
    return load_image(path)
