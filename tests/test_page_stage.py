"""The page on stage (issue 29), below the browser: refusals in a visitor's or an operator's terms, History kept by a
browser and what it may name, Compare's runs labelled in History, scores written one way, chart legends beside their
axes, and the repository ignoring what the eval command writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import scene_file, serve
from test_eval import build_eval

from thinkedit.config import Settings
from thinkedit.errors import BadInput
from thinkedit.evaluate import tradeoff
from thinkedit.evaluate.report import chart_figure, read_eval
from thinkedit.registry import backend_rows, build_backend
from thinkedit.store import load_run
from thinkedit.ui.choices import CANNOT_RUN, backend_choices, backends_note, shown_rows
from thinkedit.ui.session import Session

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_a_backend_that_cannot_run_is_refused_in_the_reader_s_terms():
    """FLUX.1 Kontext's weights are not here (HF_HUB_OFFLINE=1): the operator is told which flag to set, a visitor of
    a public page only that the server lacks them."""
    with pytest.raises(BadInput) as operator:
        build_backend("editor", Settings(), "flux-kontext")
    assert "--editor-model" in str(operator.value)
    with pytest.raises(BadInput) as visitor:
        build_backend("editor", Settings(public=True), "flux-kontext")
    said = str(visitor.value)
    assert "The editor 'flux-kontext' cannot run here" in said and "weights not on this server" in said
    assert "--" not in said and "HF_HUB" not in said and "THINKEDIT_" not in said, said


def test_dropdowns_mark_what_cannot_run_and_the_note_says_why():
    rows = shown_rows(backend_rows(Settings()), public=False)
    editors = dict((value, label) for label, value in backend_choices(rows, "editor", False, "classic"))
    assert editors["classic"] == "classic" and editors["flux-kontext"] == f"flux-kontext ({CANNOT_RUN})"
    note = backends_note(rows, False, [("editor", "flux-kontext"), ("thinker", "classic")])
    assert "**flux-kontext** cannot run here: weights not in the local cache" in note and "classic" not in note
    assert backends_note(rows, False, [("editor", "classic"), ("thinker", "classic")]) == ""

    public = shown_rows(backend_rows(Settings(public=True)), public=True)
    listed = [value for _, value in backend_choices(public, "editor", True, "classic")]
    assert "classic" in listed and "flux-kontext" not in listed, "a visitor cannot set the rest up"
    told = backends_note(public, True, [("editor", "classic"), ("thinker", "classic")])
    assert "Not set up on this server:" in told and "flux-kontext" in told and "--" not in told


def saved_run(runs: Path, name: str, photo: str, mask: str | None = None) -> Path:
    """A one-turn run folder (fenced by `mask`), as the Studio saves one."""
    from thinkedit import loop
    from thinkedit.images import load_image
    from thinkedit.requests import make_request

    settings = Settings(runs_dir=runs)
    editor, thinker = build_backend("editor", settings, "classic"), build_backend("thinker", settings, "classic")
    request = make_request(load_image(photo), "make it brighter", max_turns=1, mask=mask)
    for _ in loop.run_jobs([loop.Job(editor, thinker, request, runs / name)]):
        pass
    return runs / name


def test_kept_history_opens_only_run_folders_in_the_runs_folder(tmp_path):
    """What a browser keeps is its runs' ids; put back, each must name a run folder directly in the runs folder: a
    path, a link to a run elsewhere, a zip, a removed run or nonsense opens nothing."""
    photo = scene_file(tmp_path)
    runs, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    mine = saved_run(runs, "20260101-000000-aaaa", photo)
    other = saved_run(elsewhere, "20260101-000000-bbbb", photo)
    (runs / "linked").symlink_to(other)
    shutil.make_archive(str(runs / "zipped"), "zip", other)
    session = Session()
    session.add(load_run(mine), "A")
    kept = session.kept()
    assert kept == [{"run": mine.name, "side": "A"}]

    entries = [
        *kept,
        {"run": str(other)},
        {"run": f"../elsewhere/{other.name}"},
        {"run": "linked"},
        {"run": "zipped.zip"},
        {"run": "gone"},
        {"run": ".."},
        {"run": 7},
        "nonsense",
        {"run": mine.name, "side": "<b>C</b>"},
    ]
    fresh = Session()
    fresh.restore(entries, runs)
    assert fresh.runs == [str(mine)], fresh.runs
    assert fresh.sides == {}, "a side other than A or B is dropped"
    again = Session()
    again.restore(kept, runs)
    assert again.gallery()[0][1].startswith("A · single-shot · make it brighter · best ")
    again.restore([], runs)
    assert again.runs == [str(mine)], "a session is restored once (the page may ask twice: on load, on its state)"
    nonsense = Session()
    nonsense.restore("not a list", runs)
    assert nonsense.runs == [] and nonsense.restored


def test_a_reopened_run_fills_the_studio_s_image_instruction_and_mask(tmp_path):
    """What History, a zip or a Compare side opens, the Studio's boxes then hold (so Run or a continuation goes on
    from there): the run's source, its instruction and its mask, as saved."""
    import gradio as gr
    from PIL import Image

    from thinkedit.ui.actions import saved_view, studio_inputs

    photo, mask = scene_file(tmp_path), tmp_path / "mask.png"
    with Image.open(photo) as picture:
        region = Image.new("L", picture.size, 0)
    region.paste(255, (0, 0, region.width // 2, region.height))
    region.save(mask)
    run = saved_run(tmp_path / "runs", "20260101-000000-dddd", photo, str(mask))
    session = Session()
    assert studio_inputs(session) == (gr.skip(),) * 3, "nothing shown: the boxes are left as they are"
    session.showing = saved_view(run, session, Settings(runs_dir=tmp_path / "runs"))
    image, instruction, fence = studio_inputs(session)
    assert instruction == "make it brighter"
    assert Path(image).parent != run and Path(fence).parent != run, "copies the page may be sent, not the run's files"
    with Image.open(image) as shown, Image.open(run / "source.png") as source:
        assert shown.tobytes() == source.convert(shown.mode).tobytes()
    with Image.open(fence) as shown:
        assert shown.convert("L").getpixel((2, 2)) == 255 and shown.convert("L").getpixel((region.width - 2, 2)) == 0


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    demo, url = serve(Settings(runs_dir=(runs := tmp_path_factory.mktemp("runs"))))
    yield url, runs
    demo.close()


def test_compare_runs_show_in_history_as_a_and_b_with_their_kind(app, tmp_path):
    url, _ = app
    client = Client(url, verbose=False)
    photo = scene_file(tmp_path)
    client.predict(handle_file(photo), "make it look old", "single-shot vs Think-while-Edit", api_name="/compare")
    captions = [item["caption"] for item in client.predict(api_name="/history")]
    assert captions[0].startswith("B · Think-while-Edit · make it look old · best "), captions
    assert captions[1].startswith("A · single-shot · make it look old · best "), captions
    client.predict(handle_file(photo), "make it warmer", "editor A vs editor B", max_turns=1, api_name="/compare")
    captions = [item["caption"] for item in client.predict(api_name="/history")]
    assert [caption.split(" · ")[0] for caption in captions[:2]] == ["B", "A"]


def test_a_zip_and_a_folder_at_once_are_refused(app, tmp_path):
    url, runs = app
    client = Client(url, verbose=False)
    photo = scene_file(tmp_path)
    run = saved_run(runs, "20260101-000000-cccc", photo)
    archive = shutil.make_archive(str(tmp_path / "run"), "zip", run)
    with pytest.raises(Exception, match="either a run's zip or its folder, not both"):
        client.predict(handle_file(archive), run.name, api_name="/open_run")
    assert client.predict(api_name="/history") == [], "nothing opened"


def test_benchmarks_charts_keep_their_legends_off_the_axes(tmp_path):
    summary = read_eval(build_eval(tmp_path / "evals"))["summary"]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for figure in (chart_figure(summary), tradeoff.figure(summary)):
        canvas = FigureCanvasAgg(figure)  # laid out as savefig lays it out
        canvas.draw()
        renderer = canvas.get_renderer()
        for axes in figure.axes:
            legend = axes.get_legend()
            if legend is None:
                continue
            box, inside = legend.get_window_extent(renderer), axes.get_window_extent(renderer)
            assert box.x0 >= inside.x1, "the legend lies beside the axes, covering no bar, point or tick"
            assert box.x1 <= figure.bbox.x1 + 1, "and inside the picture"
            ticks = [label.get_window_extent(renderer) for label in axes.get_yticklabels() + axes.get_xticklabels()]
            assert not any(box.overlaps(tick) for tick in ticks if tick.width)


def test_git_ignores_what_the_eval_command_writes():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "evals/my-eval/summary.json"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".gitignore should hold evals/"
