"""What every turn spends: edit and think seconds, GPU seconds (a stand-in local GPU editor, ZeroGPU's slices under
`spaces.GPU`'s stand-in), thinker tokens (a tiny local Qwen-VL counts them; an OpenAI-compatible server reports them
in `usage`, or they are unknown, never 0), the run's totals and an estimated cost, on every surface that shows them;
and the early stops that end a loop when it stops paying (patience, a seconds budget, a tokens budget)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from gradio_client import Client, handle_file
from helpers import CHAT, RecordingEditor, ScriptedThinker, chat_chunks, json_reply, openai_server, serve, sse_reply
from PIL import Image
from test_zerogpu import ForkingGPU
from tiny_qwen_vl import build_tiny_qwen_vl

from thinkedit import compute, loop, steer, zerogpu
from thinkedit.cli import main
from thinkedit.compute import Prices, Tokens
from thinkedit.config import Settings
from thinkedit.critique import format_critique
from thinkedit.editors import EDITORS
from thinkedit.errors import BadInput
from thinkedit.export import export
from thinkedit.registry import build_backend
from thinkedit.schema import trajectory_record
from thinkedit.store import load_run
from thinkedit.thinkers import THINKERS
from thinkedit.ui import agent


def run_all(editor, thinker, request, **kwargs):
    events = list(loop.run(editor, thinker, request, **kwargs))
    return events, events[-1].trajectory


class CountingThinker(ScriptedThinker):
    """A scripted thinker that says what each answer cost: call n read 100·n tokens and wrote 10·n; its polish
    reports 7 + 3 to the run's meter, as a model thinker's does (its answer is only text)."""

    def critique(self, source, edited, instruction, prompt, *, on_token=None, feedback=None):
        critique = super().critique(source, edited, instruction, prompt, on_token=on_token)
        critique.tokens = Tokens(100 * len(self.calls), 10 * len(self.calls))
        return critique

    def polish(self, source, instruction, *, on_token=None):
        compute.report_tokens(Tokens(7, 3))
        return super().polish(source, instruction, on_token=on_token)


# -- what a turn records ----------------------------------------------------------------------------------------


def test_each_turn_records_its_tokens_and_the_run_its_totals_with_the_first_turn_rewrite(scene):
    thinker = CountingThinker([(5, 5, "brighter by 30%"), (6, 6, "brighter by 40%")], polished="brighter by 20%")
    request = loop.make_request(scene, "make it brighter", max_turns=2, first_turn="polish")
    _, trajectory = run_all(RecordingEditor(), thinker, request)
    record = trajectory_record(trajectory)
    assert [t["tokens"] for t in record["turns"]] == [
        {"prompt": 100, "completion": 10},
        {"prompt": 200, "completion": 20},
    ]
    assert [t["gpu_seconds"] for t in record["turns"]] == [None, None], "no GPU on this box"
    assert record["first_turn_compute"]["tokens"] == {"prompt": 7, "completion": 3}
    totals = record["compute"]
    assert totals["tokens"] == {"prompt": 307, "completion": 33} and totals["edits"] == 2
    edit = sum(t["edit_seconds"] for t in record["turns"])
    think = sum(t["think_seconds"] for t in record["turns"]) + record["first_turn_compute"]["think_seconds"]
    assert totals["edit_seconds"] == pytest.approx(edit, abs=1e-3)
    assert totals["think_seconds"] == pytest.approx(think, abs=1e-3)
    assert totals["gpu_seconds"] is None and totals["zerogpu"] is None


def test_a_turn_that_answers_feedback_counts_the_answer_and_the_run_counts_every_request(scene, tmp_path):
    thinker = CountingThinker([(5, 5, "brighter by 30%"), (6, 6, "brighter by 20%"), (7, 7, "brighter by 25%")])
    run_dir = tmp_path / "run"
    run_all(RecordingEditor(), thinker, loop.make_request(scene, "make it brighter", max_turns=1), run_dir=run_dir)
    request, continuation = steer.plan(steer.open_run(run_dir), 1, feedback="a bit less", thinker=thinker)
    _, trajectory = run_all(RecordingEditor(), thinker, request, run_dir=run_dir, continues=continuation)
    (turn,) = trajectory.turns
    assert turn.feedback is not None and turn.think_seconds >= turn.feedback.seconds > 0
    assert turn.tokens == Tokens(200 + 300, 20 + 30), "the answer to the feedback (call 2) and the critique (call 3)"
    record = load_run(run_dir).record
    assert record["compute"]["edits"] == 2 and record["compute"]["tokens"] == {"prompt": 600, "completion": 60}


def test_a_single_shot_spends_no_tokens_and_a_thinker_that_cannot_count_says_unknown(scene):
    request = loop.make_request(scene, "make it brighter", max_turns=2)
    _, single = run_all(RecordingEditor(), None, request)
    assert trajectory_record(single)["compute"]["tokens"] == {"prompt": 0, "completion": 0}
    _, unknown = run_all(RecordingEditor(), ScriptedThinker([(5, 5, "a"), (6, 6, "b")]), request)
    record = trajectory_record(unknown)
    assert [t["tokens"] for t in record["turns"]] == [{"prompt": None, "completion": None}] * 2
    assert record["compute"]["tokens"] == {"prompt": None, "completion": None}, "unknown, never a partial sum or 0"


def test_a_run_holding_a_local_gpu_records_its_device_time_per_turn(monkeypatch, scene, tmp_path):
    """A stand-in local model on device "cuda": the run takes the GPU turn, and every turn's GPU seconds are the
    seconds it held the device (its edit and its critique)."""
    monkeypatch.setitem(EDITORS, "gpu-classic", replace(EDITORS["classic"], name="gpu-classic", kind="local"))
    weights = tmp_path / "weights"
    weights.mkdir()
    editor = build_backend("editor", Settings(editor="gpu-classic", editor_model=str(weights), device="cuda"))
    request = loop.make_request(scene, "make it brighter", max_turns=2)
    _, trajectory = run_all(editor, ScriptedThinker([(5, 5, "a"), (6, 6, "b")]), request)
    assert loop.holds_gpu(editor, None)
    record = trajectory_record(trajectory)
    for turn in record["turns"]:
        assert turn["gpu_seconds"] == pytest.approx(turn["edit_seconds"] + turn["think_seconds"], abs=1e-3)
    assert record["compute"]["gpu_seconds"] == pytest.approx(sum(t["gpu_seconds"] for t in record["turns"]), abs=1e-3)
    on_cpu = build_backend("editor", Settings(editor="gpu-classic", editor_model=str(weights), device="cpu"))
    assert not loop.holds_gpu(on_cpu, None), "a local model on the CPU holds no GPU"


class LocalCountingThinker(CountingThinker):
    """The counting thinker posing as a local model (so that ZeroGPU slices it), built from the registry."""

    def __init__(self, spec, settings):
        super().__init__([(5, 5, "brighter by 30%"), (6, 6, "brighter by 40%")], polished="brighter by 20%")
        self.spec, self.settings = spec, settings


def test_zero_gpu_slices_record_what_they_asked_for_and_what_they_used(spaces_module, monkeypatch, scene, tmp_path):
    gpu = ForkingGPU()
    monkeypatch.setattr(spaces_module, "GPU", gpu)
    monkeypatch.setattr(zerogpu, "_SLICES", {})
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setitem(EDITORS, "zero-classic", replace(EDITORS["classic"], name="zero-classic", kind="local"))
    monkeypatch.setitem(
        THINKERS,
        "zero-counting",
        replace(THINKERS["classic"], name="zero-counting", kind="local", target="test_compute:LocalCountingThinker"),
    )
    (tmp_path / "weights").mkdir()
    settings = Settings(
        editor="zero-classic",
        editor_model=str(tmp_path / "weights"),
        thinker="zero-counting",
        thinker_model=str(tmp_path / "weights"),
        thinker_max_new_tokens=90,
    )
    editor, thinker = build_backend("editor", settings), build_backend("thinker", settings)
    assert isinstance(editor, zerogpu.Sliced) and isinstance(thinker, zerogpu.Sliced)
    request = loop.make_request(scene, "make it brighter", max_turns=2, first_turn="polish")
    _, trajectory = run_all(editor, thinker, request)
    record = trajectory_record(trajectory)
    edit, think = zerogpu.edit_seconds(editor, None), zerogpu.think_seconds(thinker)
    assert gpu.durations == [think, edit, think, edit, think], "polish, then an edit and a critique per turn"
    first = record["first_turn_compute"]
    assert first["zerogpu"]["requested"] == think and first["tokens"] == {"prompt": 7, "completion": 3}, (
        "the polish's tokens came back from the GPU worker"
    )
    for turn in record["turns"]:
        assert turn["zerogpu"]["requested"] == edit + think
        assert 0 < turn["zerogpu"]["used"] == pytest.approx(turn["gpu_seconds"], abs=1e-3)
        assert turn["gpu_seconds"] >= turn["edit_seconds"] - 1e-3, "a slice lasts at least as long as its work"
    assert record["compute"]["zerogpu"]["requested"] == think + 2 * (edit + think)
    # each call runs on a fresh copy of the thinker in its worker, so each critique there is its first: 100 + 10
    assert [t["tokens"] for t in record["turns"]] == [{"prompt": 100, "completion": 10}] * 2
    assert record["compute"]["tokens"] == {"prompt": 207, "completion": 23}


# -- tokens from real thinkers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_thinker(tmp_path_factory) -> str:
    return str(build_tiny_qwen_vl(tmp_path_factory.mktemp("tiny-qwen") / "qwen2_5_vl", "qwen2_5_vl", seed=1))


def test_a_tiny_local_qwen_vl_thinker_counts_what_it_read_and_wrote(tiny_thinker, monkeypatch, scene):
    settings = Settings(
        thinker="qwen-vl", thinker_model=tiny_thinker, thinker_max_new_tokens=12, thinker_image_side=64, device="cpu"
    )
    thinker = build_backend("thinker", settings)
    _, processor, _ = thinker.load()
    read: list[int] = []
    original = type(processor).__call__

    def spy(self, *args, **kwargs):
        inputs = original(self, *args, **kwargs)
        read.append(int(inputs["input_ids"].shape[-1]))
        return inputs

    monkeypatch.setattr(type(processor), "__call__", spy)
    request = loop.make_request(scene, "make it brighter", max_turns=2, first_turn="polish", no_answer="repeat")
    _, trajectory = run_all(RecordingEditor(), thinker, request)
    record = trajectory_record(trajectory)
    assert len(read) == 3, "the polish and two critiques"
    assert record["first_turn_compute"]["tokens"] == {"prompt": read[0], "completion": 12}
    assert [t["tokens"] for t in record["turns"]] == [
        {"prompt": read[1], "completion": 12},
        {"prompt": read[2], "completion": 12},
    ], "the random model writes exactly max_new_tokens; the prompt counts the images' tokens too"
    assert read[1] > read[0], "a critique reads two images, the polish one"
    assert record["compute"]["tokens"] == {"prompt": sum(read), "completion": 36}


def usage_stream(text: str, usage: dict | None) -> list[dict]:
    """A streamed answer in three pieces, then (when the server reports it) the usage chunk OpenAI and vLLM send."""
    pieces = [text[: len(text) // 3], text[len(text) // 3 : 2 * len(text) // 3], text[2 * len(text) // 3 :]]
    events = chat_chunks(pieces)
    if usage is not None:
        events.append({"id": "chat-1", "object": "chat.completion.chunk", "choices": [], "usage": usage})
    return events


ANSWER = format_critique(5, 6, "too dark", "make it much brighter")


@pytest.mark.parametrize(
    "usage, expected",
    [
        ({"prompt_tokens": 812, "completion_tokens": 96, "total_tokens": 908}, {"prompt": 812, "completion": 96}),
        (None, {"prompt": None, "completion": None}),
        ({"prompt_tokens": "many", "completion_tokens": -1}, {"prompt": None, "completion": None}),
    ],
    ids=["reports-usage", "no-usage", "nonsense-usage"],
)
def test_an_openai_compatible_server_reports_tokens_or_they_are_unknown(usage, expected, scene, tmp_path, capsys):
    with openai_server(lambda seen: sse_reply(usage_stream(ANSWER, usage))) as server:
        code = main(
            [
                "edit",
                "--image",
                str(save(scene, tmp_path)),
                "--instruction",
                "make it brighter",
                "--max-turns",
                "2",
                "--thinker",
                "openai",
                "--thinker-url",
                f"{server.url}/v1",
                "--out",
                str(tmp_path / "run"),
                "--price-million-tokens",
                "2.5",
            ]
        )
        asked = [seen.json() for seen in server.requests(*CHAT)]
    assert code == 0
    assert all(body["stream_options"] == {"include_usage": True} for body in asked)
    record = load_run(tmp_path / "run").record
    assert [t["tokens"] for t in record["turns"]] == [expected] * 2
    printed = capsys.readouterr().out
    if expected["prompt"] is not None:
        assert record["compute"]["tokens"] == {"prompt": 1624, "completion": 192}
        assert "tokens 1,624 in + 192 out" in printed and f"est. cost {1816 / 1e6 * 2.5:.4g}" in printed
        assert "tokens 812+96" in printed
    else:
        assert record["compute"]["tokens"] == expected
        assert "tokens not reported" in printed and "(thinker tokens not reported: not counted)" in printed


def test_a_server_that_refuses_stream_options_is_asked_without_them(scene):
    def refuse_the_option(seen):
        if "stream_options" in seen.json():
            return json_reply({"error": {"message": "Unrecognized request argument: stream_options"}}, 400)
        return sse_reply(usage_stream(ANSWER, None))

    with openai_server(refuse_the_option) as server:
        thinker = build_backend("thinker", Settings(thinker="openai", thinker_url=f"{server.url}/v1"))
        first = thinker.critique(scene, scene, "make it brighter", "make it brighter")
        second = thinker.critique(scene, scene, "make it brighter", "make it brighter")
        asked = [seen.json() for seen in server.requests(*CHAT)]
    assert first.refined_prompt == second.refined_prompt == "make it much brighter"
    assert [("stream_options" in body) for body in asked] == [True, False, False], "asked once, then never again"
    assert first.tokens == second.tokens == Tokens()


def test_a_whole_answer_carries_its_usage_too(scene):
    completion = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 4},
    }
    with openai_server(lambda seen: json_reply(completion)) as server:
        thinker = build_backend("thinker", Settings(thinker="openai", thinker_url=f"{server.url}/v1"))
        critique = thinker.critique(scene, scene, "make it brighter", "make it brighter")
    assert critique.tokens == Tokens(30, 4) and critique.semantic == 5


def save(image: Image.Image, folder) -> str:
    path = folder / "source.png"
    image.save(path)
    return str(path)


# -- early stops ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("patience, turns", [(1, 3), (2, 4), (3, 5)])
def test_patience_ends_the_loop_once_the_best_score_has_not_risen_for_k_turns(patience, turns, scene):
    # overall √(s·q): 5, 6 (a rise), 6 (no rise), 5.5 (no rise), 5.9 (no rise), 7 (a rise) …
    script = [(5, 5, "a"), (6, 6, "b"), (6, 6, "c"), (5.5, 5.5, "d"), (5.9, 5.9, "e"), (7, 7, "f")]
    request = loop.make_request(scene, "make it brighter", max_turns=6, patience=patience)
    _, trajectory = run_all(RecordingEditor(), ScriptedThinker(script), request)
    assert (trajectory.stop_reason, len(trajectory.turns), trajectory.best_turn.index) == ("patience", turns, 3)
    record = trajectory_record(trajectory)
    assert record["settings"]["patience"] == patience
    assert loop.stop_message(record).startswith(f"the best score had not risen for {patience} turn(s)")


def test_a_seconds_budget_ends_the_loop_at_the_turn_that_reaches_it(scene):
    request = loop.make_request(scene, "make it brighter", max_turns=10, budget_seconds=0.12)
    script = [(5, 5, f"brighter by {n}0%") for n in range(1, 11)]
    _, trajectory = run_all(RecordingEditor(steps=1, step_seconds=0.05), ScriptedThinker(script), request)
    assert trajectory.stop_reason == "budget_seconds" and 2 <= len(trajectory.turns) < 10
    spent = [t.edit_seconds + t.think_seconds for t in trajectory.turns]
    assert sum(spent[:-1]) < 0.12 <= sum(spent), "it stopped at the first turn that reached the budget"
    record = trajectory_record(trajectory)
    assert record["settings"]["budget_seconds"] == 0.12 and "budget of 0.12 s" in loop.stop_message(record)


def test_a_tokens_budget_ends_the_loop_when_the_thinker_has_spent_it(scene):
    script = [(5, 5, f"brighter by {n}0%") for n in range(1, 6)]
    request = loop.make_request(scene, "make it brighter", max_turns=5, budget_tokens=300, first_turn="polish")
    _, trajectory = run_all(RecordingEditor(), CountingThinker(script, polished="brighter by 5%"), request)
    # the polish spent 10 tokens, turn 1 110, turn 2 220: 340 ≥ 300 after turn 2
    assert (trajectory.stop_reason, len(trajectory.turns)) == ("budget_tokens", 2)
    assert "tokens reached the budget of 300" in loop.stop_message(trajectory_record(trajectory))


def test_a_tokens_budget_with_a_thinker_that_does_not_count_says_so_and_goes_on(scene):
    request = loop.make_request(scene, "make it brighter", max_turns=3, budget_tokens=1)
    events, trajectory = run_all(RecordingEditor(), ScriptedThinker([(5, 5, "a"), (6, 6, "b"), (7, 7, "c")]), request)
    assert trajectory.stop_reason == "max_turns"
    notices = [e.message for e in events if isinstance(e, loop.Notice)]
    assert notices == ["The thinker does not report its tokens, so the tokens budget cannot end this run."]


@pytest.mark.parametrize(
    "options, words",
    [
        ({"patience": 11}, "patience must be from 0 to 10"),
        ({"patience": 2.5}, "patience must be a whole number"),
        ({"budget_seconds": -1}, "The seconds budget must be from 0"),
        ({"budget_seconds": float("nan")}, "must be a finite number"),
        ({"budget_tokens": -5}, "The tokens budget must be from 0"),
        ({"budget_tokens": "lots"}, "The tokens budget must be a whole number"),
    ],
)
def test_odd_early_stop_values_are_refused_with_a_sentence(options, words, scene):
    with pytest.raises(BadInput, match=words):
        loop.make_request(scene, "make it brighter", **options)


def test_zero_turns_an_early_stop_off_as_the_pages_empty_number_box_sends_it(scene):
    request = loop.make_request(scene, "make it brighter", patience=0, budget_seconds="0", budget_tokens=0.0)
    assert (request.patience, request.budget_seconds, request.budget_tokens) == (None, None, None)


def test_the_cli_takes_the_early_stops_and_records_them(scene, tmp_path, capsys):
    source = save(scene, tmp_path)
    common = ["edit", "--image", source, "--instruction", "make it brighter and add a vignette", "--max-turns", "5"]
    assert main([*common, "--patience", "1", "--budget-seconds", "600", "--out", str(tmp_path / "a")]) == 0
    settings = load_run(tmp_path / "a").record["settings"]
    assert (settings["patience"], settings["budget_seconds"], settings["budget_tokens"]) == (1, 600.0, None)
    with pytest.raises(SystemExit) as refused:
        main([*common, "--patience", "11"])
    assert refused.value.code == 2
    assert "--patience: must be a whole number from 0 to 10, not '11'" in capsys.readouterr().err
    assert main([*common, "--budget-seconds", "0", "--out", str(tmp_path / "b")]) == 0
    assert load_run(tmp_path / "b").record["settings"]["budget_seconds"] is None, "0: off"


# -- the surfaces ---------------------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path):
    demo, url = serve(Settings(runs_dir=tmp_path / "runs", price_gpu_hour=2.0, price_million_tokens=1.0))
    yield url
    demo.close()


def test_the_studio_api_takes_the_early_stops_and_shows_compute_in_the_table_and_the_status(served, scene, tmp_path):
    client = Client(served, verbose=False)
    *_, table, _, status, _, record, _ = client.predict(
        handle_file(save(scene, tmp_path)),
        "make it brighter and add a vignette",
        max_turns=5,
        threshold=10,
        patience=1,
        budget_seconds=600,
        api_name="/edit",
    )
    assert record["settings"]["patience"] == 1 and record["settings"]["budget_seconds"] == 600
    assert table["headers"][-2:] == ["GPU s", "Tokens"]
    assert [row[-2:] for row in table["data"]] == [["–", "–"]] * len(record["turns"]), "classic: no GPU, no tokens"
    assert "Compute: edit " in status and "no GPU held, tokens not reported, est. cost 0" in status
    with pytest.raises(Exception, match="The tokens budget must be from 0"):
        client.predict(handle_file(save(scene, tmp_path)), "make it brighter", budget_tokens=-3, api_name="/edit")


def test_show_and_the_exports_carry_each_turns_compute(scene, tmp_path, capsys):
    thinker = CountingThinker([(5, 5, "brighter by 30%"), (6, 6, "brighter by 40%")])
    request = loop.make_request(scene, "make it brighter", max_turns=2)
    run_dir = tmp_path / "runs" / "counted"
    run_all(RecordingEditor(), thinker, request, run_dir=run_dir)
    assert main(["show", str(run_dir), "--price-million-tokens", "1000"]) == 0
    shown = capsys.readouterr().out
    assert "100+10" in shown and "200+20" in shown
    assert "Compute:     edit" in shown and "tokens 300 in + 30 out, est. cost 0.33" in shown
    assert export(tmp_path / "runs", tmp_path / "out.jsonl", "jsonl") == 2
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [line["tokens"] for line in lines] == [{"prompt": 100, "completion": 10}, {"prompt": 200, "completion": 20}]
    assert all(line["gpu_seconds"] is None and line["compute"]["tokens"]["prompt"] == 300 for line in lines)
    import datasets

    assert export(tmp_path / "runs", tmp_path / "hf", "hf") == 2
    rows = datasets.load_dataset(str(tmp_path / "hf"), split="train")
    assert rows["prompt_tokens"] == [100, 200] and rows["completion_tokens"] == [10, 20]
    assert rows["gpu_seconds"] == [None, None] and all(s >= 0 for s in rows["edit_seconds"])


@pytest.mark.parametrize(
    "tokens, gpu, words",
    [
        ({"prompt": "many", "completion": 3}, 1.0, 'turn 1\'s "tokens" is an object, where an object of token counts'),
        ({"prompt": -1, "completion": 3}, 1.0, 'turn 1\'s "tokens" is an object'),
        ({"prompt": 1, "completion": 3}, "fast", 'turn 1\'s "gpu_seconds" is text, where a number or null belongs'),
    ],
)
def test_a_record_whose_compute_breaks_the_contract_is_refused_with_the_field_named(
    tokens, gpu, words, scene, tmp_path
):
    run_dir = tmp_path / "run"
    run_all(
        RecordingEditor(), CountingThinker([(9, 9, "a")]), loop.make_request(scene, "x", max_turns=1), run_dir=run_dir
    )
    path = run_dir / "trajectory.json"
    record = json.loads(path.read_text())
    record["turns"][0].update(tokens=tokens, gpu_seconds=gpu)
    path.write_text(json.dumps(record))
    with pytest.raises(BadInput, match=words):
        load_run(run_dir)


def test_a_run_saved_before_compute_was_recorded_reads_as_unknown(scene, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_all(
        RecordingEditor(), CountingThinker([(9, 9, "a")]), loop.make_request(scene, "x", max_turns=1), run_dir=run_dir
    )
    path = run_dir / "trajectory.json"
    record = json.loads(path.read_text())
    for name in ("compute", "first_turn_compute"):
        record.pop(name)
    for name in ("tokens", "gpu_seconds", "zerogpu"):
        record["turns"][0].pop(name)
    path.write_text(json.dumps(record))
    assert main(["show", str(run_dir)]) == 0
    assert "no GPU held, tokens not reported" in capsys.readouterr().out


def test_the_mcp_summary_prices_the_run(scene):
    thinker = CountingThinker([(5, 5, "a"), (9, 9, "b")])
    _, trajectory = run_all(RecordingEditor(), thinker, loop.make_request(scene, "make it brighter", max_turns=2))
    summary = agent.summary(trajectory, [], Prices(gpu_hour=3.0, million_tokens=2.0))
    assert summary["compute"]["tokens"] == {"prompt": 300, "completion": 30}
    assert summary["cost"] == pytest.approx(330 / 1e6 * 2.0)
    assert summary["turns"][1]["tokens"] == {"prompt": 200, "completion": 20}
    assert agent.summary(trajectory, [])["cost"] is None


def test_prices_are_settings_a_nan_or_a_negative_one_is_refused():
    assert Settings.from_env({"THINKEDIT_PRICE_GPU_HOUR": "2.5"}).price_gpu_hour == 2.5
    for bad in ("nan", "-1", "inf"):
        with pytest.raises(BadInput, match="THINKEDIT_PRICE_MILLION_TOKENS must be a number from 0"):
            Settings.from_env({"THINKEDIT_PRICE_MILLION_TOKENS": bad})


@pytest.fixture
def spaces_module(monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    return pytest.importorskip("spaces")


def test_timing_is_measured_not_assumed(scene):
    """The recorded seconds follow what the backends really took (a slow editor shows as slow)."""
    request = loop.make_request(scene, "make it brighter", max_turns=1)
    _, trajectory = run_all(RecordingEditor(steps=2, step_seconds=0.05), None, request)
    assert trajectory.turns[0].edit_seconds >= 0.1 and trajectory_record(trajectory)["compute"]["seconds"] >= 0.1
