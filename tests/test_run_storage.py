"""Run folders under stress, through the CLI and the web app: a disk that fills mid-run, `--out` an existing run,
images whose metadata a run must not copy, and run zips or records the app must refuse with a sentence.

The app runs in this process (as in test_ui_api), so a patched write reaches its saves and its temp folder is
visible here.
"""

from __future__ import annotations

import errno
import json
import os
import re
import struct
import zipfile
from pathlib import Path

import pytest
from helpers import register, run_edit, scene_file, serve, steady
from PIL import Image, ImageCms

from thinkedit import store
from thinkedit.cli import main
from thinkedit.config import Settings

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

RED, BLUE = (220, 20, 20), (20, 20, 220)
FULL_AFTER_TURN_1 = "it keeps source.png, turn_01.png and a trajectory.json of turn 1; the rest is not kept"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        register(mp, "thinker", "thinker-steady", "FaultThinker", output=steady())
        runs = tmp_path_factory.mktemp("runs")
        demo, url = serve(Settings(runs_dir=runs))
        yield url
        demo.close()


@pytest.fixture
def steady_thinker(monkeypatch) -> str:
    """A thinker that is never satisfied, so a run goes to its last turn (registered for the CLI's backends)."""
    return register(monkeypatch, "thinker", "thinker-steady", "FaultThinker", output=steady())


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    return scene_file(tmp_path_factory.mktemp("img"))


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def record_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "trajectory.json").read_text(encoding="utf-8"))


# -- a disk that fills mid-run -----------------------------------------------------------------------


def fill_the_disk_after_turn_1(monkeypatch) -> None:
    """From turn 2 on the images no longer fit (ENOSPC); the small trajectory.json still does."""
    real = store._write_atomic

    def write(path: Path, data: bytes) -> None:
        if path.name.startswith("turn_") and path.name != "turn_01.png":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(store, "_write_atomic", write)


def test_cli_on_a_disk_that_fills_mid_run_keeps_turn_1_says_so_and_exits_1(
    photo, tmp_path, capsys, monkeypatch, steady_thinker
):
    fill_the_disk_after_turn_1(monkeypatch)
    out_dir = tmp_path / "run"
    code, out, err = cli(
        capsys,
        "edit",
        "--image",
        photo,
        "--instruction",
        "make it brighter",
        "--editor",
        "classic",
        "--thinker",
        steady_thinker,
        "--max-turns",
        "3",
        "--out",
        str(out_dir),
    )
    assert code == 1, "a run that could not be saved completely is a failure"
    assert "Turn 3" in out and "Stopped: max_turns" in out and "Saved:" not in out
    assert err.count("could not be saved") == 1 and FULL_AFTER_TURN_1 in err and "No space left on device" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["source.png", "trajectory.json", "turn_01.png"]
    record = record_of(out_dir)
    assert [turn["index"] for turn in record["turns"]] == [1] and record["best_turn"] == 1
    assert record["stop_reason"] == "max_turns", "the final trajectory.json is written though images were not"
    assert len(record["warnings"]) == 1 and FULL_AFTER_TURN_1 in record["warnings"][0]
    assert main(["show", str(out_dir)]) == 0, "what was kept reopens"


def test_when_only_trajectory_json_fails_the_one_warning_follows_what_the_folder_keeps(
    photo, tmp_path, capsys, monkeypatch, steady_thinker
):
    real = store._write_atomic

    def write(path: Path, data: bytes) -> None:
        if path.name == "trajectory.json" and (path.parent / "turn_02.png").exists():
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        real(path, data)

    monkeypatch.setattr(store, "_write_atomic", write)
    out_dir = tmp_path / "run"
    code, out, err = cli(
        capsys,
        "edit",
        "--image",
        photo,
        "--instruction",
        "make it brighter",
        "--thinker",
        steady_thinker,
        "--max-turns",
        "3",
        "--out",
        str(out_dir),
        "--json",
    )
    kept = "it keeps source.png, turn_01.png, turn_02.png{} and a trajectory.json of turn 1; the rest is not kept"
    notes = [line for line in err.splitlines() if "could not be saved" in line]
    assert len(notes) == 2 and kept.format("") in notes[0] and kept.format(", turn_03.png") in notes[1], notes
    final = json.loads(out[out.index("\n{") :])
    assert len(final["warnings"]) == 1 and kept.format(", turn_03.png") in final["warnings"][0], "the newest only"
    assert code == 1 and len(record_of(out_dir)["turns"]) == 1


def test_web_run_on_a_disk_that_fills_mid_run_ends_with_the_stop_reason_and_what_was_kept(app, photo, monkeypatch):
    fill_the_disk_after_turn_1(monkeypatch)
    client = Client(app, verbose=False)
    final, toasts = run_edit(client, handle_file(photo), "make it brighter", thinker="thinker-steady", max_turns=3)
    trajectory = final["trajectory"]
    assert len(final["gallery"]) == len(trajectory["turns"]) == 3, "every turn is shown"
    assert trajectory["stop_reason"] == "max_turns" and "reached the turn limit" in final["status"]
    warnings = [text for text, level in toasts if level == "warning"]
    assert len(warnings) == 1 and FULL_AFTER_TURN_1 in warnings[0], toasts
    assert trajectory["warnings"] == warnings and FULL_AFTER_TURN_1 in final["status"]
    run_dir = Path(trajectory["run_dir"])
    assert sorted(p.name for p in run_dir.iterdir()) == ["source.png", "trajectory.json", "turn_01.png"]
    assert record_of(run_dir)["stop_reason"] == "max_turns" and len(record_of(run_dir)["turns"]) == 1
    assert final["download"].endswith(".zip")
    assert [item["caption"].split(" · ")[0] for item in final["history"]] == ["make it brighter"]
    reopened = client.predict(0, api_name="/history_open")
    assert len(reopened[0]) == 1, "History reopens what is on disk: turn 1"


# -- --out an existing run ---------------------------------------------------------------------------


def test_out_a_folder_that_holds_a_run_is_refused_or_replaced_with_overwrite(photo, tmp_path, capsys, steady_thinker):
    out_dir = tmp_path / "run"
    first = ["edit", "--image", photo, "--editor", "classic", "--thinker", steady_thinker, "--out", str(out_dir)]
    assert cli(capsys, *first, "--instruction", "make it darker", "--max-turns", "3")[0] == 0
    (out_dir / "notes.txt").write_text("the person's own file")
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}

    code, _, err = cli(capsys, *first, "--instruction", "make it brighter", "--max-turns", "1")
    assert code == 2 and err.count("\n") == 1
    assert (
        f"{out_dir} already holds a run (source.png, trajectory.json, turn_01.png, …)" in err and "--overwrite" in err
    )
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before, "nothing was touched"

    code, _, _ = cli(capsys, *first, "--instruction", "make it brighter", "--max-turns", "1", "--overwrite")
    assert code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["notes.txt", "source.png", "trajectory.json", "turn_01.png"]
    assert (out_dir / "notes.txt").read_text() == "the person's own file", "only the run's own files are removed"
    record = record_of(out_dir)
    assert record["instruction"] == "make it brighter" and len(record["turns"]) == 1


# -- image metadata ----------------------------------------------------------------------------------


def swapped_primaries_profile(padding: int) -> bytes:
    """An ICC profile that is sRGB with its red and blue primaries swapped (so applying it is visible: stored red
    shows as blue), padded to `padding` bytes as oversized profiles from some cameras and editors are."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = struct.unpack_from(">I", data, 128)[0]
    entries = {bytes(data[132 + 12 * i : 136 + 12 * i]): 136 + 12 * i for i in range(count)}  # tag → offset, size
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    data[red : red + 8], data[blue : blue + 8] = data[blue : blue + 8], data[red : red + 8]
    return bytes(data) + bytes(padding - len(data))


def test_a_jpeg_with_an_8_mb_colour_profile_is_converted_to_srgb_and_its_run_reopens(tmp_path, capsys):
    photo = tmp_path / "profiled.jpg"
    Image.new("RGB", (64, 48), RED).save(photo, "JPEG", quality=95, icc_profile=swapped_primaries_profile(8 * 2**20))
    out_dir = tmp_path / "run"
    code, _, err = cli(
        capsys,
        "edit",
        "--image",
        str(photo),
        "--instruction",
        "make it brighter",
        "--max-turns",
        "1",
        "--out",
        str(out_dir),
    )
    assert code == 0, err
    source = store.load_run(out_dir).source  # today: refused, the 8 MB profile exceeds MAX_TEXT_CHUNK
    assert all(abs(a - b) <= 12 for a, b in zip(source.getpixel((32, 24)), BLUE, strict=True)), "profile applied"
    with Image.open(out_dir / "source.png") as stored:
        assert "icc_profile" not in stored.info and "exif" not in stored.info
    assert (out_dir / "source.png").stat().st_size < 64 * 2**10


def png_with_a_10_mb_profile(path: Path) -> str:
    Image.new("RGB", (64, 48), RED).save(path, "PNG", icc_profile=os.urandom(10 * 2**20))
    return str(path)


METADATA_SENTENCE = "metadata (a colour profile or text) over 1 MB"


def test_a_png_with_a_10_mb_profile_is_refused_with_a_sentence(app, tmp_path, capsys):
    png = png_with_a_10_mb_profile(tmp_path / "profiled.png")
    code, _, err = cli(
        capsys, "edit", "--image", png, "--instruction", "make it brighter", "--out", str(tmp_path / "run")
    )
    assert code == 2 and METADATA_SENTENCE in err and "save it again without its metadata" in err
    assert "MAX_TEXT_CHUNK" not in err and not (tmp_path / "run").exists()
    with pytest.raises(Exception, match=re.escape(METADATA_SENTENCE)) as refusal:
        Client(app, verbose=False).predict(handle_file(png), "make it brighter", api_name="/edit")
    assert "MAX_TEXT_CHUNK" not in str(refusal.value)


# -- run zips and records that are refused -----------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[dict, dict[str, bytes]]:
    """A real 3-turn run: (its record, its images' bytes, source first)."""
    folder = tmp_path_factory.mktemp("saved")
    run_dir = folder / "run"
    with pytest.MonkeyPatch.context() as mp:
        thinker = register(mp, "thinker", "thinker-steady", "FaultThinker", output=steady())
        assert (
            main(
                [
                    "edit",
                    "--image",
                    scene_file(folder),
                    "--instruction",
                    "make it look old",
                    "--thinker",
                    thinker,
                    "--max-turns",
                    "3",
                    "--out",
                    str(run_dir),
                ]
            )
            == 0
        )
    return record_of(run_dir), {p.name: p.read_bytes() for p in sorted(run_dir.glob("*.png"))}


def run_zip(path: Path, record: dict | str, images: dict[str, bytes | int], extra: int = 0) -> Path:
    """A run's zip: the record (or raw text for trajectory.json), images (bytes, or a size in zero bytes) and
    `extra` empty files beside them."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("run/trajectory.json", record if isinstance(record, str) else json.dumps(record))
        for name, data in images.items():
            with archive.open(f"run/{name}", "w", force_zip64=True) as file:
                if isinstance(data, bytes):
                    file.write(data)
                else:
                    for _ in range(data // 2**20):
                        file.write(bytes(2**20))
        for number in range(extra):
            archive.writestr(f"run/notes/{number}.txt", "")
    return path


def damaged(path: Path, record: dict, images: dict[str, bytes]) -> Path:
    """A run's zip whose last image fails its CRC check half way through unpacking."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("run/trajectory.json", json.dumps(record))
        for name, data in images.items():
            archive.writestr(f"run/{name}", data)
    with zipfile.ZipFile(path) as archive:
        last = archive.infolist()[-1]
    data = bytearray(path.read_bytes())
    data[last.header_offset + 30 + len(last.filename) + 10] ^= 0xFF  # a byte of the stored image
    path.write_bytes(bytes(data))
    return path


def with_turn(record: dict, **changes) -> dict:
    return {**record, "turns": [{**record["turns"][0], **changes}, *record["turns"][1:]]}


def ten_turns(record: dict) -> dict:
    turn = record["turns"][0]
    return {
        **record,
        "turns": [{**turn, "index": i, "image": f"turn_{i:02d}.png"} for i in range(1, 11)],
        "best_turn": 1,
    }


BOMB_IMAGES = {name: 100 * 2**20 for name in ["source.png", *(f"turn_{i:02d}.png" for i in range(1, 11))]}
# name → (how to make the zip from the saved run, what the one-sentence refusal says)
REFUSED_ZIPS = {
    "bomb": (
        lambda p, r, f: run_zip(p, ten_turns(r), BOMB_IMAGES),
        "unpacks to 1100 MB; a run's zip may hold at most 1024 MB",
    ),  # noqa: E501
    "members": (lambda p, r, f: run_zip(p, r, f, extra=100), "holds 105 files; a run's zip holds at most 64"),
    "turns": (
        lambda p, r, f: run_zip(p, {**r, "turns": r["turns"] * 1000}, f),
        "it has 3000 turns, and a run has at most 50",
    ),  # noqa: E501
    "nested": (
        lambda p, r, f: run_zip(p, "[" * 100_000 + "]" * 100_000, f),
        "is nested too deeply to be a run's record",
    ),  # noqa: E501
    "score-text": (
        lambda p, r, f: run_zip(p, with_turn(r, semantic="high"), f),
        'turn 1\'s "semantic" is text, where a number or null belongs',
    ),
    "turns-object": (
        lambda p, r, f: run_zip(p, {**r, "turns": {"1": r["turns"][0]}}, f),
        'the record\'s "turns" is an object, where a list belongs',
    ),
    "seconds-text": (
        lambda p, r, f: run_zip(p, {**r, "seconds": "fast"}, f),
        'the record\'s "seconds" is text, where a number belongs',
    ),
    "warnings-numbers": (
        lambda p, r, f: run_zip(p, {**r, "warnings": [1]}, f),
        'the record\'s "warnings" is a list, where a list of text belongs',
    ),
    "threshold-list": (
        lambda p, r, f: run_zip(p, {**r, "settings": {**r["settings"], "threshold": [8]}}, f),
        'the settings\' "threshold" is a list, where a number belongs',
    ),
    "no-prompt": (
        lambda p, r, f: run_zip(p, {**r, "turns": [{"index": 1, "image": "turn_01.png"}]}, f),
        'turn 1 has no "prompt"',
    ),
    "nan": (lambda p, r, f: run_zip(p, json.dumps(with_turn(r, quality=float("nan"))), f), "NaN is not a JSON number"),
    "missing-image": (
        lambda p, r, f: run_zip(p, r, {k: v for k, v in f.items() if k != "turn_02.png"}),
        "has no turn_02.png, which its trajectory.json names",
    ),
    "damaged": (lambda p, r, f: damaged(p, r, f), "could not be unpacked (Bad CRC-32 for file 'run/turn_03.png')"),
}


@pytest.fixture(scope="module")
def refused_zips(saved, tmp_path_factory) -> dict[str, Path]:
    record, files = saved
    folder = tmp_path_factory.mktemp("zips")
    return {name: make(folder / f"{name}.zip", record, files) for name, (make, _) in REFUSED_ZIPS.items()}


@pytest.mark.parametrize("name", REFUSED_ZIPS)
def test_show_refuses_a_bad_run_zip_with_a_sentence_and_exit_2(refused_zips, capsys, name):
    code, out, err = cli(capsys, "show", str(refused_zips[name]))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and REFUSED_ZIPS[name][1] in err, err


def test_show_refuses_a_bad_run_folder_with_a_sentence_and_exit_2(saved, tmp_path, capsys):
    record, _ = saved
    (tmp_path / "trajectory.json").write_text(json.dumps(with_turn(record, edit_seconds=None)))
    code, _, err = cli(capsys, "show", str(tmp_path))
    assert code == 2 and 'turn 1\'s "edit_seconds" is null, where a number belongs' in err


@pytest.mark.parametrize("name", ["bomb", "turns", "nested", "score-text", "damaged", "undecodable"])
def test_open_run_refuses_a_bad_run_zip_with_a_sentence_and_unpacks_nothing(app, saved, refused_zips, tmp_path, name):
    from thinkedit.ui.view import SCRATCH

    if name == "undecodable":  # a zip that passes every check, but one of its images is not an image
        record, files = saved
        archive, message = (
            run_zip(tmp_path / "undecodable.zip", record, {**files, "turn_02.png": b"no"}),
            "not an image",
        )
    else:
        archive, message = refused_zips[name], REFUSED_ZIPS[name][1]
    unpacked = set(Path(SCRATCH.name).glob("session-*/thinkedit-run-*"))
    with pytest.raises(Exception) as refusal:
        Client(app, verbose=False).predict(handle_file(str(archive)), "", api_name="/open_run")
    assert message in str(refusal.value)
    assert set(Path(SCRATCH.name).glob("session-*/thinkedit-run-*")) == unpacked, "nothing is left unpacked"
