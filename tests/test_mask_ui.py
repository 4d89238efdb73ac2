"""Masks and drift through the web app's API (gradio_client against a real server), the MCP tool's summary, the CLI's
`--mask` and `show`, and the page's own pieces (the painter's canvas, the layers it keeps, "what changed")."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gradio.components.image_editor import EditorDataBlobs
from helpers import OUTPUTS, run_edit, scene_file, serve
from PIL import Image, ImageDraw

from thinkedit import masks
from thinkedit.cli import main
from thinkedit.config import Settings
from thinkedit.drift import percent
from thinkedit.images import png_bytes
from thinkedit.store import load_run
from thinkedit.ui import actions

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    demo, url = serve(Settings(runs_dir=runs, mcp=True))
    yield url, runs
    demo.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("mask-files")
    photo = scene_file(folder)  # 320×220
    mask = Image.new("L", (320, 220))
    ImageDraw.Draw(mask).rectangle((0, 0, 159, 219), fill=255)  # the left half may change
    mask.save(folder / "left.png")
    Image.new("L", (320, 220)).save(folder / "empty.png")
    (folder / "notes.txt").write_text("not an image")
    Image.new("L", (100, 100), 255).crop((0, 0, 100, 100)).save(folder / "square.png")
    return {name: str(folder / f"{name}.png") for name in ("left", "empty", "square")} | {
        "photo": photo,
        "text": str(folder / "notes.txt"),
    }


def outside_kept(source: Image.Image, result: Image.Image) -> bool:
    return bool((np.asarray(result)[:, 160:] == np.asarray(source.convert("RGB"))[:, 160:]).all())


def test_a_mask_through_the_api_fences_every_turn_and_the_page_shows_the_drift(app, files):
    url, runs = app
    client = Client(url, verbose=False)
    final, toasts = run_edit(
        client, handle_file(files["photo"]), "make it look old", max_turns=2, mask=handle_file(files["left"])
    )
    record = final["trajectory"]
    assert record["error"] is None and record["mask"] == "mask.png"
    assert record["region"].startswith("Only a masked region may change: 50% of the image, on the left")
    saved = load_run(record["run_dir"])
    assert np.array_equal(np.asarray(saved.mask) >= 128, np.asarray(Image.open(files["left"])) >= 128)
    source = Image.open(files["photo"])
    for turn in record["turns"]:
        assert outside_kept(source, saved.image(turn["index"])), f"turn {turn['index']} changed outside the mask"
        assert turn["drift"]["outside"] == 0.0 and 0.2 < turn["drift"]["changed"] <= 0.5
    table = final["table"]
    changed = table["headers"].index("Changed")
    assert table["headers"][changed : changed + 2] == ["Changed", "Outside"]
    shown = [row[changed : changed + 2] for row in table["data"]]
    assert shown == [[percent(t["drift"]["changed"]), "0%"] for t in record["turns"]]
    assert all(" · changed " in item["caption"] and "(0% outside)" in item["caption"] for item in final["gallery"])
    assert not [text for text, _ in toasts if "mask" in text.lower()], "a mask of the image's size says nothing"

    picture, note = client.predict(0, api_name="/changes")
    assert Path(picture).suffix == ".png" and Image.open(picture).size == source.size
    assert note.startswith("Turn 1 against the source: ") and "0% outside the region" in note
    assert "cyan: the mask's edge" in note
    with pytest.raises(Exception, match="That turn is not in the run shown"):
        client.predict(7, api_name="/changes")


def test_what_changed_follows_history_and_says_so_for_another_shape(app, files):
    url, _ = app
    client = Client(url, verbose=False)
    assert client.predict(0, api_name="/changes") == (None, actions.NOTHING_SHOWN)
    run_edit(client, handle_file(files["photo"]), "rotate 90 degrees", max_turns=1)
    picture, note = client.predict(0, api_name="/changes")
    assert picture is None and "turn 1 is 220×320 and the source 320×220" in note
    assert "no pixel-by-pixel difference" in note
    run_edit(client, handle_file(files["photo"]), "make the red square blue", max_turns=1)
    client.predict(1, api_name="/history_open")  # the rotation again
    assert client.predict(0, api_name="/changes")[0] is None
    reopened = dict(zip(OUTPUTS[:-1], client.predict(0, api_name="/history_open"), strict=True))
    outside = reopened["table"]["headers"].index("Outside")
    assert reopened["table"]["data"][0][outside] == "0%", "the classic editor's own selection: nothing outside it"
    picture, note = client.predict(0, api_name="/changes")
    assert picture and "outside the region" in note and "cyan" not in note, "no mask: no outline"


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("empty", "The mask is empty: nothing in it is white"),
        ("text", "The mask must be an image: white where the edit may change"),
    ],
)
def test_a_mask_that_cannot_fence_anything_is_refused_with_a_sentence(app, files, which, message):
    url, runs = app
    before = set(Path(runs).iterdir())
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match=message):
        client.predict(
            handle_file(files["photo"]), "make it brighter", mask=handle_file(files[which]), api_name="/edit"
        )
    assert set(Path(runs).iterdir()) == before, "refused before any run folder was made"


def test_a_mask_of_another_shape_is_stretched_and_the_person_is_told(app, files):
    url, _ = app
    final, toasts = run_edit(
        Client(url, verbose=False), handle_file(files["photo"]), "make it brighter", max_turns=1,
        mask=handle_file(files["square"]),
    )  # fmt: skip
    assert final["trajectory"]["mask"] is None, "a white square fences nothing"
    texts = [text for text, _ in toasts]
    assert any("The mask is 100×100 and the image 320×220: the mask was stretched" in text for text in texts), texts
    assert any("covers the whole image, so it fences nothing in" in text for text in texts), texts


def test_compare_fences_both_sides_with_the_mask(app, files):
    url, _ = app
    *_, trajectories, _ = Client(url, verbose=False).predict(
        handle_file(files["photo"]), "make it look old", max_turns=1, mask=handle_file(files["left"]),
        api_name="/compare",
    )  # fmt: skip
    source = Image.open(files["photo"])
    for side in ("a", "b"):
        record = trajectories[side]
        assert record["mask"] == "mask.png" and record["turns"]
        saved = load_run(record["run_dir"])
        assert all(outside_kept(source, saved.image(turn["index"])) for turn in record["turns"])


def test_the_painter_shows_the_image_and_what_is_painted_becomes_the_mask(files):
    big = Image.new("RGB", (3000, 1500), (10, 120, 200))
    shown = actions.mask_canvas(big)
    assert shown["layers"] == [] and shown["background"].size == (1024, 512)
    assert actions.mask_canvas(None) is None
    assert actions.mask_canvas({"path": files["text"]}) is None, "an unreadable image leaves the painter empty"

    painter = actions.gr.ImageEditor(type="pil", image_mode="RGBA")
    layer = Image.new("RGBA", (1024, 512), (0, 0, 0, 0))
    ImageDraw.Draw(layer).ellipse((100, 100, 300, 300), fill=(255, 45, 149, 153))
    painter.blob_storage["stroke"] = EditorDataBlobs(background=None, layers=[png_bytes(layer)], composite=None)
    mask = actions.mask_input(None, {"id": "stroke"}, painter)
    assert mask.size == (1024, 512) and np.asarray(mask)[200, 200] == 255 and np.asarray(mask)[20, 20] == 0
    assert "stroke" not in painter.blob_storage, "read once, then dropped"
    nothing = EditorDataBlobs(background=None, layers=[png_bytes(Image.new("RGBA", (64, 64)))], composite=None)
    painter.blob_storage["blank"] = nothing
    assert actions.mask_input(None, {"id": "blank"}, painter) is None, "nothing painted: no mask"

    uploaded = Image.new("L", (1024, 512))
    uploaded.paste(255, (900, 0, 1024, 512))
    both = np.asarray(masks.joined(uploaded, mask))
    assert both[200, 200] == 255 and both[10, 1000] == 255 and both[10, 10] == 0, "painted or white: may change"


def data_url(path: str) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def test_the_mcp_tool_takes_a_mask_and_reports_drift(app, files):
    from test_mcp import call, summary_of

    url, runs = app
    arguments = {"image": data_url(files["photo"]), "instruction": "make it look old", "max_turns": 1}
    result = call(url, "think_edit", arguments | {"mask": data_url(files["left"])})
    assert not result.isError
    summary = summary_of(result)
    assert summary["region"].startswith("Only a masked region may change: 50%")
    assert summary["turns"][0]["drift"]["outside"] == 0.0
    saved = load_run(Path(runs) / summary["run"])
    assert outside_kept(Image.open(files["photo"]), saved.image(1))


def test_the_cli_takes_a_mask_and_show_prints_the_drift(files, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["edit", "--image", files["photo"], "--instruction", "make it brighter", "--mask", files["left"],
         "--max-turns", "1", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "changed, 0% outside the region" in printed
    assert (out / "mask.png").is_file()
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "Mask:        Only a masked region may change: 50% of the image, on the left" in shown
    assert "  changed  outside  prompt" in shown and "     0%  make it brighter" in shown

    result = subprocess.run(
        [sys.executable, "-m", "thinkedit", "edit", "--image", files["photo"], "--instruction", "x",
         "--mask", files["text"], "--out", str(tmp_path / "bad")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.startswith("error: The mask must be an image: white where")
    assert json.dumps(result.stderr).count("\\n") == 1, "one line"
