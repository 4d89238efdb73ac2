"""The web app through its API (gradio_client), against a real server on a free port, offline backends."""

from __future__ import annotations

import io
import platform
import re
import runpy
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

import pytest
from helpers import OUTPUTS, scene_file, serve
from PIL import Image

from thinkedit.config import Settings

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    demo, url = serve(Settings(runs_dir=runs))
    yield url, runs
    demo.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    return scene_file(tmp_path_factory.mktemp("img"))


VAGUE = "make it look old"  # the offline thinker refines this over several turns


def edit(client: Client, photo: str, instruction: str, **options):
    """Run /edit and return every streamed update as a dict of named outputs."""
    job = client.submit(handle_file(photo), instruction, api_name="/edit", **options)
    updates = [dict(zip(OUTPUTS, update, strict=True)) for update in job]
    final = job.outputs()[-1]
    return updates, dict(zip(OUTPUTS, final, strict=True))


def test_edit_streams_turns_and_ends_with_the_trajectory(app, photo):
    url, runs = app
    client = Client(url, verbose=False)
    updates, final = edit(client, photo, VAGUE, max_turns=2, seed=7)

    sizes = [len(u["gallery"]) for u in updates if isinstance(u["gallery"], list)]
    assert sizes[0] == 0 and sizes[-1] == 2 and 1 in sizes, f"the gallery should grow one turn at a time: {sizes}"
    assert sizes == sorted(sizes)
    assert any(isinstance(u["reasoning"], str) and u["reasoning"] for u in updates[:-1]), "reasoning streams"

    record = final["trajectory"]
    assert record["instruction"] == VAGUE
    assert record["editor"] == "classic" and record["thinker"] == "classic"
    assert record["settings"]["seed"] == 7 and record["settings"]["max_turns"] == 2
    assert [turn["seed"] for turn in record["turns"]] == [7, 7] and record["settings"]["seed_per_turn"] == "same"
    assert len(record["turns"]) == 2 and record["stop_reason"] in ("max_turns", "threshold")
    assert record["turns"][1]["prompt"] == record["turns"][0]["refined_prompt"] != VAGUE
    assert record["best_turn"] in [t["index"] for t in record["turns"]]
    run_dir = record["run_dir"]
    assert run_dir.startswith(str(runs)) and (runs / run_dir.rsplit("/", 1)[-1] / "trajectory.json").is_file()

    captions = [item["caption"] for item in final["gallery"]]
    assert len(captions) == len(record["turns"])
    assert all(c.startswith(f"Turn {i} · semantic ") and " · quality " in c for i, c in enumerate(captions, 1))
    assert "Finished after" in final["status"]
    assert final["download"] and final["download"].endswith(".zip")
    assert final["slider"] is not None
    assert final["history"] and len(final["history"]) == 1


SHAPES = [
    ("rotate 90 degrees clockwise", (220, 320)),
    ("crop the left half", (160, 220)),
    ("crop the right half", (160, 220)),
    ("crop the top half", (320, 110)),
    ("crop the bottom half", (320, 110)),
    ("make the image half the size", (160, 110)),
]


@pytest.mark.parametrize(("instruction", "size"), SHAPES)
def test_an_edit_keeps_its_shape_through_the_api(app, photo, instruction, size):
    """The run folder, its zip, the gallery, the slider and the History thumbnail all hold the turn's own shape."""
    url, _ = app
    _, final = edit(Client(url, verbose=False), photo, instruction, max_turns=2)
    record = final["trajectory"]
    assert record["size"] == [320, 220] and [turn["size"] for turn in record["turns"]] == [list(size)]
    assert record["stop_reason"] == "threshold" and record["turns"][0]["semantic"] >= 8
    assert Image.open(Path(record["run_dir"]) / "turn_01.png").size == size
    with zipfile.ZipFile(final["download"]) as archive:
        name = next(n for n in archive.namelist() if n.endswith("turn_01.png"))
        assert Image.open(io.BytesIO(archive.read(name))).size == size
    assert Image.open(final["gallery"][0]["image"]).size == size
    frame = (max(320, size[0]), max(220, size[1]))
    assert [Image.open(path).size for path in final["slider"]] == [frame, frame], "one frame: the slider cuts nothing"
    thumbnail = Image.open(final["history"][0]["image"]).size
    assert thumbnail[0] / thumbnail[1] == pytest.approx(size[0] / size[1], rel=0.02)


def test_the_studio_offers_seeds_that_change_every_turn(app, photo):
    url, _ = app
    _, final = edit(Client(url, verbose=False), photo, VAGUE, max_turns=2, seed=7, seed_per_turn="increment")
    record = final["trajectory"]
    assert [turn["seed"] for turn in record["turns"]] == [7, 8] and record["settings"]["seed_per_turn"] == "increment"


def test_the_status_line_names_the_real_reason_a_run_stopped(scene, tmp_path):
    """A turn scored semantic 0 whose thinker handed the prompt back did not stop because the edit was good."""
    from helpers import RecordingEditor, ScriptedThinker

    from thinkedit import loop
    from thinkedit.store import load_run
    from thinkedit.ui.view import RunView

    for script, says in (
        (
            [(0, 5, "make it brighter")],
            "handed the prompt back unchanged although its scores are below the threshold 8 "
            "(semantic 0, quality 5): it had no better prompt to offer",
        ),
        ([(9, 8, "x")], "both scores reached the threshold 8 (semantic 9, quality 8)"),
        ([(4, 4, None)], "held no refined prompt (no <answer>), so the run stopped"),
    ):
        request = loop.make_request(scene, "make it brighter", max_turns=3)
        view = RunView(source=request.image, folder=tmp_path / "views")
        run_dir = tmp_path / "runs" / str(len(list((tmp_path).glob("runs/*"))))
        for event in loop.run(RecordingEditor(), ScriptedThinker(script), request, run_dir=run_dir):
            view.apply(event)
        assert says in view.status() and "good enough" not in view.status()
        reopened = RunView.from_saved(load_run(run_dir), tmp_path / "reopened")
        assert says in reopened.status()


def test_sliders_show_turns_of_another_shape_whole_at_their_true_scale(scene, tmp_path):
    """Gradio's slider lays its second image over the first one's box, so a taller or wider image was cut: both
    go on one transparent frame, centred. Same-shaped images are shown as they are."""
    from thinkedit import loop
    from thinkedit.registry import build_backend
    from thinkedit.store import load_run
    from thinkedit.ui.view import RunView, history_item

    def view_of(instruction: str) -> RunView:
        request = loop.make_request(scene, instruction, max_turns=1)
        view = RunView(source=request.image, folder=tmp_path / "views" / instruction)
        for event in loop.run(
            build_backend("editor", Settings()),
            build_backend("thinker", Settings()),
            request,
            run_dir=tmp_path / "runs" / instruction,
        ):
            view.apply(event)
        return view

    def opaque(paths) -> list[tuple]:
        return [(Image.open(path).size, Image.open(path).getbbox()) for path in paths]

    rotated, cropped, warmer = (view_of(i) for i in ("rotate 90 degrees clockwise", "crop the left half", "warmer"))
    assert Image.open(rotated.gallery()[0][0]).size == (64, 96)
    assert opaque(rotated.slider()) == [((96, 96), (0, 16, 96, 80)), ((96, 96), (16, 0, 80, 96))]
    assert opaque(rotated.versus(cropped)) == [((64, 96), (0, 0, 64, 96)), ((64, 96), (8, 16, 56, 80))]
    assert warmer.slider() == (warmer.source_path, warmer.turns[0].image)
    saved = load_run(rotated.run_dir)
    assert opaque(RunView.from_saved(saved, tmp_path / "reopened").slider()) == opaque(rotated.slider())
    assert Image.open(history_item(saved, tmp_path)[0]).size == (64, 96)


@pytest.mark.parametrize(
    ("image", "instruction", "message"),
    [
        (None, "make it red", "No image"),
        ("photo", "   ", "instruction is empty"),
        ("text", "make it red", "not an image"),
        ("huge", "make it red", "megapixels"),
    ],
)
def test_bad_input_gets_a_clear_message_and_the_app_keeps_serving(app, photo, tmp_path, image, instruction, message):
    url, _ = app
    client = Client(url, verbose=False)
    if image == "photo":
        image = handle_file(photo)
    elif image == "text":
        (tmp_path / "notes.png").write_text("not a picture")
        image = handle_file(str(tmp_path / "notes.png"))
    elif image == "huge":
        Image.new("RGB", (7000, 6000), (10, 20, 30)).save(tmp_path / "huge.png")  # 42 MP, a few KB compressed
        image = handle_file(str(tmp_path / "huge.png"))
    with pytest.raises(Exception, match=message):
        client.predict(image, instruction, api_name="/edit")
    _, final = edit(client, photo, "make it brighter", max_turns=1)
    assert len(final["trajectory"]["turns"]) == 1


def test_unavailable_backend_is_refused_with_the_reason(app, photo):
    url, _ = app
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match="The editor 'flux-kontext' cannot run here") as refusal:
        client.predict(handle_file(photo), "make it red", "flux-kontext", api_name="/edit")
    assert "&#" not in str(refusal.value), "API callers read the message as written, not HTML entities"


def test_compare_single_shot_against_the_loop(app, photo):
    url, _ = app
    client = Client(url, verbose=False)
    job = client.submit(
        handle_file(photo), VAGUE, "single-shot vs Think-while-Edit", max_turns=4, seed=11, api_name="/compare"
    )
    updates = list(job)
    gallery_a, gallery_b, _, _, slider, summary, trajectories, history = job.outputs()[-1]
    assert len(updates) >= 3
    a, b = trajectories["a"], trajectories["b"]
    assert (a["editor"], a["thinker"], b["editor"], b["thinker"]) == ("classic", "classic", "classic", "classic")
    assert a["settings"]["seed"] == b["settings"]["seed"] == 11
    assert a["settings"]["max_turns"] == 1 and b["settings"]["max_turns"] == 4
    expected = direct_run(photo, VAGUE, max_turns=4, seed=11)
    assert [t["prompt"] for t in b["turns"]] == [t.prompt for t in expected.turns]
    assert b["stop_reason"] == expected.stop_reason and len(b["turns"]) >= 2
    assert len(a["turns"]) == 1, "single-shot: turn 1 only, no refinement"
    one_shot, loop_first = a["turns"][0], b["turns"][0]
    assert one_shot["prompt"] == loop_first["prompt"] == VAGUE
    assert one_shot["semantic"] is not None and one_shot["quality"] is not None, "single-shot is scored by the thinker"
    assert (one_shot["semantic"], one_shot["quality"]) == (loop_first["semantic"], loop_first["quality"])
    first_a, first_b = (Image.open(f"{t['run_dir']}/{t['turns'][0]['image']}") for t in (a, b))
    assert first_a.tobytes() == first_b.tobytes(), "same seed, same prompt: turn 1 is the same edit on both sides"
    assert len(gallery_a) == 1 and len(gallery_b) == len(b["turns"])
    assert all("semantic –" not in item["caption"] for item in gallery_a + gallery_b), "every side shows scores"
    assert slider is not None
    sides = {row[0]: row for row in summary["data"]}
    single = next(row for label, row in sides.items() if "single-shot (turn 1, scored by the thinker)" in label)
    assert single[1:4] == [f"{one_shot['semantic']:g}", f"{one_shot['quality']:g}", 1]
    assert [row[3] for row in summary["data"]] == [1, len(b["turns"])]
    assert len(history) == 2


def direct_run(photo: str, instruction: str, **options):
    """The same request straight through the loop, for what a side of a comparison should do."""
    from thinkedit import loop
    from thinkedit.registry import build_backend

    settings = Settings()
    events = loop.run(
        build_backend("editor", settings),
        build_backend("thinker", settings),
        loop.make_request(photo, instruction, **options),
    )
    return [e for e in events if isinstance(e, loop.RunFinished)][0].trajectory


def test_history_lists_and_reloads_a_run(app, photo):
    url, _ = app
    client = Client(url, verbose=False)
    assert client.predict(api_name="/history") == []
    _, first = edit(client, photo, "add a red frame", max_turns=1)
    _, second = edit(client, photo, "make it darker", max_turns=1)
    listed = client.predict(api_name="/history")
    assert [item["caption"].split(" · ")[0] for item in listed] == ["make it darker", "add a red frame"]
    assert all("best " in item["caption"] for item in listed)

    reloaded = dict(zip(OUTPUTS[:-1], client.predict(1, api_name="/history_open"), strict=True))
    assert reloaded["trajectory"]["instruction"] == "add a red frame"
    assert reloaded["trajectory"]["run_dir"] == first["trajectory"]["run_dir"]
    assert len(reloaded["gallery"]) == len(first["trajectory"]["turns"])
    assert reloaded["download"].endswith(".zip")

    other = Client(url, verbose=False)
    assert other.predict(api_name="/history") == [], "another session must not see these runs"

    from thinkedit.ui.view import SCRATCH

    stray = set(Path(tempfile.gettempdir()).glob("thinkedit-run-*"))
    opened = client.predict(handle_file(first["download"]), "", api_name="/open_run")
    record = opened[OUTPUTS.index("trajectory")]
    assert record["instruction"] == "add a red frame"
    unpacked = Path(record["run_dir"])
    assert unpacked.parent.parent == Path(SCRATCH.name), "the zip is unpacked in the session's own temp folder"
    assert unpacked.parent.name.startswith("session-") and (unpacked / "trajectory.json").is_file()
    assert set(Path(tempfile.gettempdir()).glob("thinkedit-run-*")) == stray, "nothing unpacked outside it"
    assert len(opened[-1]) == 3, "the opened run joins the session's History"


def test_history_items_are_made_once_per_run_and_the_list_is_bounded(app, photo, monkeypatch):
    """A finished run's History item is kept in the session: later runs do not read its trajectory.json again
    (here it is gone, and the item stays); the list keeps the HISTORY_SIZE newest runs."""
    from thinkedit.ui import session

    monkeypatch.setattr(session, "HISTORY_SIZE", 2)
    url, _ = app
    client = Client(url, verbose=False)
    _, first = edit(client, photo, "add a red frame", max_turns=1)
    Path(first["trajectory"]["run_dir"], "trajectory.json").unlink()
    _, second = edit(client, photo, "make it darker", max_turns=1)
    assert [item["caption"].split(" · ")[0] for item in second["history"]] == ["make it darker", "add a red frame"]
    _, third = edit(client, photo, "make it brighter", max_turns=1)
    assert [item["caption"].split(" · ")[0] for item in third["history"]] == ["make it brighter", "make it darker"]
    assert client.predict(api_name="/history") == third["history"]


def test_the_server_caps_malloc_arenas_unless_told_otherwise(monkeypatch):
    """Every run starts threads, and glibc's per-thread arenas kept the freed image buffers: the server grew by
    ~1 MB a run (scripts/soak_ui.py). app.py caps the arenas before any thread starts."""
    limit_malloc_arenas = runpy.run_path(str(Path(__file__).resolve().parents[1] / "app.py"))["limit_malloc_arenas"]
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas() is (platform.libc_ver()[0] == "glibc")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert limit_malloc_arenas() is False, "a MALLOC_ARENA_MAX from the environment wins"


def test_analytics_are_off_even_without_the_environment_variable(monkeypatch):
    from thinkedit.ui import build_app

    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    demo = build_app(Settings())
    assert demo.analytics_enabled is False and demo.get_config_file()["analytics_enabled"] is False


def test_queue_limits_come_from_the_settings(tmp_path):
    settings = Settings.from_env({"THINKEDIT_UI_CONCURRENCY": "2", "THINKEDIT_MAX_QUEUE": "5"}, runs_dir=tmp_path)
    demo, _ = serve(settings)
    try:
        assert demo._queue.max_size == 5
        runs = {fn.api_name: fn.concurrency_limit for fn in demo.fns.values() if fn.api_name in ("edit", "compare")}
        assert runs == {"edit": 2, "compare": 2}
    finally:
        demo.close()


def test_a_session_keeps_a_bounded_number_of_temp_folders_and_removes_them_when_it_ends():
    from thinkedit.ui.session import KEEP_VIEWS, Session, end_session
    from thinkedit.ui.view import SCRATCH

    session = Session()
    assert Path(session.folder).parent == Path(SCRATCH.name), "one temp folder per app, removed at exit"
    folders = [session.view_folder() for _ in range(KEEP_VIEWS + 3)]
    assert [folder.is_dir() for folder in folders] == [False] * 3 + [True] * KEEP_VIEWS
    cancel = session.cancel["studio"] = threading.Event()
    end_session(session)
    assert not Path(session.folder).exists() and cancel.is_set()


def test_public_mode_has_no_model_or_url_boxes_and_no_server_folders():
    from thinkedit.ui import build_app

    def labels(settings):
        demo = build_app(settings)
        return {getattr(block, "label", None) for block in demo.blocks.values() if getattr(block, "visible", True)}

    assert {"Editor URL", "Thinker URL", "Editor model", "Thinker model", "Speed"} <= labels(Settings())
    public = labels(Settings(public=True))
    assert not public & {
        "Editor URL",
        "Thinker URL",
        "Editor model",
        "Thinker model",
        "Speed",
        "Run folder on the server",
    }


def test_open_by_folder_reaches_only_the_runs_folder(app, photo, tmp_path):
    """Outside public mode a run opens by its folder — only one inside the runs folder, symlinks resolved."""
    url, runs = app
    client = Client(url, verbose=False)
    _, first = edit(client, photo, "add a red frame", max_turns=1)
    run_dir = Path(first["trajectory"]["run_dir"])
    by_name = client.predict(None, run_dir.name, api_name="/open_run")
    assert by_name[OUTPUTS.index("trajectory")]["instruction"] == "add a red frame"

    elsewhere = tmp_path / "elsewhere"  # a real run of another instance, outside this app's runs folder
    shutil.copytree(run_dir, elsewhere)
    (runs / "link").symlink_to(elsewhere, target_is_directory=True)
    for folder in (str(elsewhere), f"../{elsewhere.name}", "../../../../etc", "/etc", "link", f"{run_dir.name}/../.."):
        with pytest.raises(Exception, match="Only runs in the runs folder"):
            client.predict(None, folder, api_name="/open_run")


def test_a_public_page_names_runs_by_id_and_never_a_server_path(tmp_path, photo):
    runs, evals = tmp_path / "runs", tmp_path / "evals"
    demo, url = serve(Settings(runs_dir=runs, evals_dir=evals, public=True))
    try:
        client = Client(url, verbose=False)
        _, final = edit(client, photo, "add a red frame", max_turns=1)
        record = final["trajectory"]
        assert record["run_dir"] == next(runs.iterdir()).name, "the run id, not its folder"
        broken = tmp_path / "broken.zip"  # a run zip without its turn image: the refusal names where it was unpacked
        with zipfile.ZipFile(final["download"]) as whole, zipfile.ZipFile(broken, "w") as part:
            for member in whole.namelist():
                if not member.endswith("turn_01.png"):
                    part.writestr(member, whole.read(member))
        with pytest.raises(Exception, match="has no turn_01.png") as refusal:
            client.predict(handle_file(str(broken)), "", api_name="/open_run")
        compared = client.predict(
            handle_file(photo), "add a red frame", "editor A vs editor B", max_turns=1, api_name="/compare"
        )
        _, _, status_a, status_b, _, _, trajectories, _ = compared
        assert {trajectories[side]["run_dir"] for side in "ab"} <= {p.name for p in runs.iterdir()}
        with pytest.raises(Exception, match="evals folder") as outside:
            client.predict("../runs", api_name="/benchmark")
        texts = [
            str(refusal.value),
            final["status"],
            str(record),
            status_a,
            status_b,
            str(trajectories),
            str(outside.value),
        ]
        for text in texts:
            assert str(tmp_path) not in text and tempfile.gettempdir() + "/" not in text, text
    finally:
        demo.close()


def test_history_numbers_count_from_the_newest_and_nothing_else_opens(app, photo):
    url, _ = app
    client = Client(url, verbose=False)
    for instruction in ("add a red frame", "make it brighter"):
        edit(client, photo, instruction, max_turns=1)
    newest = client.predict(0, api_name="/history_open")[OUTPUTS.index("trajectory")]
    assert newest["instruction"] == "make it brighter"
    for index in (-1, 2, 1.5, "x"):  # -1 once opened the oldest run
        with pytest.raises(Exception, match="not in this session's history"):
            client.predict(index, api_name="/history_open")


def test_the_slider_and_the_gallery_show_the_turns_losslessly(app, photo):
    """They show (and their buttons download) PNG copies with the run's own pixels, not WebP approximations."""
    from helpers import same_pixels

    url, _ = app
    _, final = edit(Client(url, verbose=False), photo, VAGUE, max_turns=2)
    record = final["trajectory"]
    run_dir = Path(record["run_dir"])
    shown = [Image.open(path) for path in final["slider"]]
    assert [image.format for image in shown] == ["PNG", "PNG"]
    assert same_pixels(shown[0], Image.open(run_dir / "source.png"))
    assert same_pixels(shown[1], Image.open(run_dir / f"turn_{record['best_turn']:02d}.png"))
    for item, turn in zip(final["gallery"], record["turns"], strict=True):
        image = Image.open(item["image"])
        assert image.format == "PNG" and same_pixels(image, Image.open(run_dir / turn["image"]))


def test_the_benchmarks_tab_shows_an_eval_by_the_loop_s_gain(tmp_path):
    from test_eval import build_eval

    evals = tmp_path / "evals"
    build_eval(evals)
    demo, url = serve(Settings(runs_dir=tmp_path / "runs", evals_dir=evals))
    try:
        client = Client(url, verbose=False)
        summary, table, chart, gallery, spent = client.predict("classic-folder", api_name="/benchmark")
        assert "**folder** · editor classic, thinker classic, judge classic" in summary and "self-grading" in summary
        # scores as the rest of the page writes them (at most two decimals), every sentence capitalised
        assert "Single: O 9.18 over 2 samples" in summary and "loop: O 10 over 2 samples" in summary
        assert all(letter.isupper() for letter in re.findall(r"[.!?] (\w)", summary)), summary
        assert table["headers"][:2] == ["category", "n"] and table["data"][-1][0] == "mean over categories"
        scores = [cell for row in table["data"] for cell in row[2:]]
        assert all(re.fullmatch(r"[+-]?\d+(\.\d{1,2})?|–", str(cell)) for cell in scores), scores
        assert "9.18" in scores and "+0.82" in scores
        assert Image.open(chart).size[0] > 300, "the per-category bar chart"
        assert Image.open(spent).size[0] > 300, "quality against compute"
        assert "gives the most O per second" in summary or "no mode beat single-shot" in summary
        captions = [item["caption"] for item in gallery]
        assert captions[0].startswith("summer · gain +") and captions[1].startswith("bw · gain +0 ")
        source, single, looped, details = client.predict(0, api_name="/benchmark_sample")
        assert all(Path(path).is_file() for path in (source, single, looped))
        assert "summer (look): make it look like summer" in details and "turn 2 prompt:" in details
        for name in ("../runs", "/etc", "nope"):
            with pytest.raises(Exception, match="evals folder|could not be read"):
                client.predict(name, api_name="/benchmark")
        with pytest.raises(Exception, match="not in this eval"):
            client.predict(7, api_name="/benchmark_sample")
    finally:
        demo.close()
