"""Steering through the web app: /edit in step mode, /continue and /rate with gradio_client, across requests and an
app restart, a public page's visitors, runs still running, and the MCP tool continue_edit, against the app served on
127.0.0.1 with the offline backends."""

from __future__ import annotations

import base64
import io
import json
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import OUTPUTS, same_pixels, scene_file, serve
from PIL import Image
from test_mcp import call, data_url, summary_of, texts

from thinkedit import steer
from thinkedit.cli import main
from thinkedit.config import Settings
from thinkedit.editors.classic import ClassicEditor
from thinkedit.store import load_run

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

OLD = "make it look old"
HOLD = threading.Event()  # the held editor edits once this is set


class HeldEditor(ClassicEditor):
    """The classic editor, held before its edit until the test lets it go (`HOLD`)."""

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        while not HOLD.wait(0.05):
            if on_step:
                on_step(0, 1)  # a heartbeat: the loop may stop it
        return super().edit(image, prompt, seed=seed)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from thinkedit.editors import EDITORS

    EDITORS["held"] = replace(EDITORS["classic"], name="held", target="test_steer_app:HeldEditor")
    runs = tmp_path_factory.mktemp("runs")
    demo, url = serve(Settings(runs_dir=runs, mcp=True))
    yield url, runs
    demo.close()
    EDITORS.pop("held")


@pytest.fixture(scope="module")
def public_app(tmp_path_factory):
    runs = tmp_path_factory.mktemp("public-runs")
    demo, url = serve(Settings(runs_dir=runs, public=True, mcp=True))
    yield url, runs
    demo.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    return scene_file(tmp_path_factory.mktemp("img"))


def named(values) -> dict:
    return dict(zip(OUTPUTS, values, strict=True))


def stepped_run(client: Client, photo: str) -> tuple[dict, str]:
    """/edit in step mode: (the final update, the run's id)."""
    final = named(client.predict(handle_file(photo), OLD, max_turns=5, step=True, api_name="/edit"))
    record = final["trajectory"]
    assert (record["stop_reason"], len(record["turns"])) == ("step", 1), "paused after turn 1's critique"
    return final, Path(record["run_dir"]).name


def go_on(client: Client, run: str, turn: int, **asked) -> dict:
    return named(client.predict(run, turn, api_name="/continue", **asked))


def refusal(call_it) -> str:
    with pytest.raises(Exception) as refused:  # noqa: PT011 - gradio_client raises its own AppError
        call_it()
    return str(refused.value)


def test_step_mode_pauses_and_goes_on_across_separate_requests(app, photo):
    url, runs = app
    client = Client(url, verbose=False)
    final, run = stepped_run(client, photo)
    assert "paused after the critique of turn 1" in final["status"]
    weak = "apply a sepia tone at 20% strength"
    final = go_on(client, run, 1, prompt=weak, step=True)
    record = final["trajectory"]
    assert [(t["index"], t["parent"], t["by"]) for t in record["turns"]] == [(1, None, "instruction"), (2, 1, "person")]
    assert record["stop_reason"] == "step" and record["turns"][1]["prompt"] == weak
    captions = [item["caption"] for item in final["gallery"]]
    assert captions[1].startswith("Turn 2 (from 1, your prompt) · semantic")
    assert final["table"]["headers"][-4:] == ["From", "By", "GPU s", "Tokens"]
    assert final["table"]["data"][1][-4:-2] == [1, "you"]
    assert "the run holds 2 turns" in final["status"]

    final = go_on(client, run, 2, feedback="less sepia, keep the vignette")
    third = final["trajectory"]["turns"][2]
    assert (third["parent"], third["by"], third["feedback"]["text"]) == (2, "thinker", "less sepia, keep the vignette")
    assert "Turn 3 (from 2, your feedback)" in final["gallery"][2]["caption"]
    assert load_run(runs / run).record["turns"][2] == third, "saved as it finished"
    assert len(final["history"]) >= 1 and len({item["caption"] for item in final["history"]}) == len(final["history"])


def test_step_mode_goes_on_after_an_app_restart(tmp_path, photo):
    runs = tmp_path / "runs"
    demo, url = serve(Settings(runs_dir=runs))
    try:
        _, run = stepped_run(Client(url, verbose=False), photo)
    finally:
        demo.close()
    demo, url = serve(Settings(runs_dir=runs))  # a new app, a new session, the same runs folder
    try:
        final = go_on(Client(url, verbose=False), run, 1, step=True)
    finally:
        demo.close()
    turns = final["trajectory"]["turns"]
    assert [(t["index"], t["parent"], t["by"]) for t in turns] == [(1, None, "instruction"), (2, 1, "thinker")]
    assert turns[1]["prompt"] == turns[0]["refined_prompt"]
    assert [t["index"] for t in load_run(runs / run).record["turns"]] == [1, 2]


def test_the_persons_pick_changes_the_slider_the_zip_and_show(app, photo, capsys):
    url, runs = app
    client = Client(url, verbose=False)
    record = named(client.predict(handle_file(photo), OLD, max_turns=2, api_name="/edit"))["trajectory"]
    run = Path(record["run_dir"]).name
    assert record["best_turn"] == 2, "the thinker's best is the later turn"
    final = named(client.predict(run, 1, "pick", api_name="/rate"))
    assert final["trajectory"]["picked_turn"] == 1 and final["trajectory"]["best_turn"] == 2
    _, shown = final["slider"]
    assert same_pixels(Image.open(shown), Image.open(runs / run / "turn_01.png")), "the slider shows the pick"
    assert "Best: your pick: turn 1" in final["status"]
    assert final["gallery"][0]["caption"].endswith("★ your pick") and "★" not in final["gallery"][1]["caption"]
    with zipfile.ZipFile(final["download"]) as archive:
        zipped = json.loads(archive.read(f"{run}/trajectory.json"))
    assert zipped["picked_turn"] == 1 and load_run(final["download"], runs.parent).best["index"] == 1
    assert main(["show", str(runs / run)]) == 0
    assert "Best turn:   1 (your pick, marked *; the thinker's best: 2)" in capsys.readouterr().out
    final = named(client.predict(run, 2, "down", api_name="/rate"))
    assert final["trajectory"]["ratings"] == {"2": "down"} and "rated down" in final["gallery"][1]["caption"]
    assert "must be" in refusal(lambda: client.predict(run, "first", "up", api_name="/rate"))
    assert "Unknown verdict 'meh'" in refusal(lambda: client.predict(run, 1, "meh", api_name="/rate"))


def test_two_continuations_of_one_turn_at_once_are_both_kept(app, photo):
    url, runs = app
    client = Client(url, verbose=False)
    _, run = stepped_run(client, photo)
    jobs = [
        client.submit(run, 1, prompt=prompt, api_name="/continue")
        for prompt in ("apply a sepia tone at 30% strength", "apply a sepia tone at 50% strength")
    ]
    for job in jobs:
        job.result()
    turns = load_run(runs / run).record["turns"]
    assert [(t["index"], t["parent"]) for t in turns] == [(1, None), (2, 1), (3, 1)]
    assert {t["prompt"] for t in turns[1:]} == {
        "apply a sepia tone at 30% strength",
        "apply a sepia tone at 50% strength",
    }


@pytest.mark.parametrize(
    ("turn", "asked", "sentence"),
    [
        (9, {}, "This run has no turn 9; its turns are: 1."),
        (1, {"prompt": ""}, "The prompt is empty"),
        (1, {"feedback": "x" * 2001}, "The feedback is 2001 characters long"),
        (1, {"build_on": True}, "The instruction is empty"),
        (1, {"prompt": "a", "feedback": "b"}, "Go on from a turn one way"),
    ],
)
def test_bad_continuations_get_a_sentence_and_lose_nothing(app, photo, turn, asked, sentence):
    url, runs = app
    client = Client(url, verbose=False)
    _, run = stepped_run(client, photo)
    before = (runs / run / "trajectory.json").read_bytes()
    assert sentence in refusal(lambda: go_on(client, run, turn, **asked))
    assert (runs / run / "trajectory.json").read_bytes() == before


def test_a_run_reopened_from_its_zip_goes_on_as_a_copy_in_the_runs_folder(app, photo, tmp_path):
    url, runs = app
    client = Client(url, verbose=False)
    final, run = stepped_run(client, photo)
    archive = Path(final["download"])
    before = archive.read_bytes()
    opened = named(client.predict(handle_file(str(archive)), "", api_name="/open_run"))["trajectory"]
    assert not Path(opened["run_dir"]).is_relative_to(runs), "a zip is unpacked in the session's temp folder"
    record = go_on(client, opened["run_dir"], 1, prompt="apply a sepia tone at 30% strength")["trajectory"]
    copy = Path(record["run_dir"])
    assert copy.parent == runs and copy.name != run and [t["by"] for t in record["turns"]] == ["instruction", "person"]
    assert [t["index"] for t in load_run(runs / run).record["turns"]] == [1], "the original run is as it was"
    assert archive.read_bytes() == before


def test_a_run_folder_outside_the_runs_folder_is_refused(app, tmp_path):
    url, runs = app
    client = Client(url, verbose=False)
    for outside in (str(tmp_path), "../elsewhere", "/etc"):
        assert "Only runs in the runs folder" in refusal(lambda outside=outside: go_on(client, outside, 1))
        assert "Only runs in the runs folder" in refusal(
            lambda outside=outside: client.predict(outside, 1, "pick", api_name="/rate")
        )


def test_a_run_still_running_gets_a_sentence(app, photo):
    url, runs = app
    client = Client(url, verbose=False)
    HOLD.clear()
    before = set(runs.iterdir())
    job = client.submit(handle_file(photo), OLD, editor="held", max_turns=1, api_name="/edit")
    try:
        while not set(runs.iterdir()) - before:  # the run's folder appears as it starts
            job.status()
        (folder,) = set(runs.iterdir()) - before
        assert "is still making its turns; go on from it when it has finished" in refusal(
            lambda: go_on(client, folder.name, 1)
        )
    finally:
        HOLD.set()
    record = named(job.result())["trajectory"]
    assert len(go_on(client, Path(record["run_dir"]).name, 1)["trajectory"]["turns"]) == 2


def test_public_visitors_go_on_from_their_own_runs_only(public_app, photo, tmp_path):
    url, runs = public_app
    mine, theirs = Client(url, verbose=False), Client(url, verbose=False)
    final, run = stepped_run(mine, photo)
    assert final["trajectory"]["run_dir"] == run, "a public page names runs by their id"
    for attempt in (
        lambda: go_on(theirs, run, 1),
        lambda: theirs.predict(run, 1, "pick", api_name="/rate"),
        lambda: go_on(mine, str(runs / run), 1),
        lambda: go_on(mine, "../" + run, 1),
    ):
        sentence = refusal(attempt)
        assert "not one of this session's runs" in sentence and str(runs) not in sentence
    assert "The prompt is " in refusal(lambda: go_on(mine, run, 1, prompt="p" * 2001))
    assert len(go_on(mine, run, 1, prompt="apply a sepia tone at 30% strength")["trajectory"]["turns"]) == 2
    assert named(mine.predict(run, 2, "pick", api_name="/rate"))["trajectory"]["picked_turn"] == 2


# -- MCP -----------------------------------------------------------------------------------------------


def test_an_agent_steers_with_continue_edit(app, photo):
    url, runs = app
    base = url if url.endswith("/") else url + "/"
    first = summary_of(call(base, "think_edit", {"image": data_url(photo), "instruction": OLD, "max_turns": 1}))
    result = call(base, "continue_edit", {"run": first["run"], "from_turn": 1, "feedback": "less sepia"})
    assert not result.isError, texts(result)
    summary = summary_of(result)
    assert summary["run"] == first["run"] and [(t["turn"], t["parent"], t["by"]) for t in summary["turns"]] == [
        (1, None, "instruction"),
        (2, 1, "thinker"),
    ]
    record = load_run(runs / summary["run"]).record
    assert record["turns"][1]["feedback"]["text"] == "less sepia"
    assert summary["best_turn"] == record["best_turn"] and summary["best_by"] == "thinker"
    built = summary_of(
        call(
            base,
            "continue_edit",
            {"run": first["run"], "from_turn": 2, "build_on": True, "instruction": "crop the left half"},
        )
    )
    assert built["stages"][1]["source_turn"] == 2 and built["turns"][2]["by"] == "instruction"
    refused = call(base, "continue_edit", {"run": first["run"], "from_turn": 7})
    assert refused.isError and "This run has no turn 7" in texts(refused)[0]

    steer.rate(runs / first["run"], 1, "pick")  # the person's pick, made elsewhere, is what the agent is given
    result = call(base, "continue_edit", {"run": first["run"], "from_turn": 3, "prompt": "crop the right half"})
    picked = summary_of(result)
    thinkers = load_run(runs / first["run"]).record["best_turn"]
    assert (picked["best_turn"], picked["best_by"], picked["thinker_best_turn"]) == (1, "person", thinkers)
    assert thinkers in (3, 4), "the thinker's best is of the newest stage"
    (image,) = [c for c in result.content if c.type == "image"]
    assert same_pixels(
        Image.open(io.BytesIO(base64.b64decode(image.data))), Image.open(runs / first["run"] / "turn_01.png")
    )


def test_on_a_public_server_an_agent_names_runs_by_id_only(public_app, photo):
    url, runs = public_app
    base = url if url.endswith("/") else url + "/"
    first = summary_of(call(base, "think_edit", {"image": data_url(photo), "instruction": OLD, "max_turns": 1}))
    assert not call(base, "continue_edit", {"run": first["run"], "from_turn": 1}).isError, "the id is enough"
    for name in (str(runs / first["run"]), "../" + first["run"], "."):
        refused = call(base, "continue_edit", {"run": name, "from_turn": 1})
        assert refused.isError and "Name the run by its id" in texts(refused)[0]
    unknown = call(base, "continue_edit", {"run": "20260101-000000-0123456789abcdef", "from_turn": 1})
    assert unknown.isError and "is not a ThinkEdit run" in texts(unknown)[0] and str(runs) not in texts(unknown)[0]
