import json
import threading
import time

import pytest
from helpers import RecordingEditor, ScriptedThinker, same_pixels
from PIL import Image

from thinkedit import loop, runtime
from thinkedit.backend import BackendSpec
from thinkedit.errors import BadInput
from thinkedit.store import trajectory_record


def run_all(editor, thinker, request, **kwargs):
    events = list(loop.run(editor, thinker, request, **kwargs))
    assert isinstance(events[-1], loop.RunFinished)
    return events, events[-1].trajectory


def request(scene, **kwargs):
    return loop.make_request(scene, "make it brighter", **kwargs)


def test_stops_when_both_scores_reach_the_threshold(scene):
    thinker = ScriptedThinker([(5, 9, "brighter by 40%"), (8, 8.5, "brighter by 50%"), (10, 10, "x")])
    _, trajectory = run_all(RecordingEditor(), thinker, request(scene, max_turns=5))
    assert trajectory.stop_reason == "threshold"
    assert len(trajectory.turns) == 2


def test_threshold_is_configurable(scene):
    thinker = ScriptedThinker([(5, 9, "a"), (8, 8.5, "b"), (9.5, 9.5, "c")])
    _, trajectory = run_all(RecordingEditor(), thinker, request(scene, max_turns=5, threshold=9))
    assert trajectory.stop_reason == "threshold"
    assert len(trajectory.turns) == 3


def test_stops_when_the_thinker_hands_the_prompt_back(scene):
    thinker = ScriptedThinker([(5, 5, "make it much brighter"), (6, 6, "Make it much brighter.")])
    editor = RecordingEditor()
    _, trajectory = run_all(editor, thinker, request(scene, max_turns=5))
    assert trajectory.stop_reason == "prompt_kept"
    assert editor.prompts == ["make it brighter", "make it much brighter"]


def test_a_reply_without_an_answer_stops_the_run_as_the_reference_does_and_says_so(scene):
    """The reference reads a missing <answer> as the prompt handed back and stops; it never edits again with the
    same prompt as if the thinker had asked for it."""
    thinker = ScriptedThinker([(5, 5, "much brighter"), (5, 5, None), (5, 5, "never asked")])
    editor = RecordingEditor()
    events, trajectory = run_all(editor, thinker, request(scene, max_turns=5))
    assert trajectory.stop_reason == "no_answer" and editor.prompts == ["make it brighter", "much brighter"]
    first, second = trajectory.turns
    assert first.thinker_note is None and "no refined prompt" in second.thinker_note and "stops" in second.thinker_note
    notices = [e.message for e in events if isinstance(e, loop.Notice)]
    assert notices == [f"Turn 2: {second.thinker_note}"]
    record = trajectory_record(trajectory)
    assert record["turns"][1]["thinker_note"] == second.thinker_note and record["settings"]["no_answer"] == "stop"
    assert "no refined prompt (no <answer>)" in loop.stop_message(record)


def test_a_person_may_choose_to_repeat_the_prompt_when_the_answer_is_missing(scene):
    thinker = ScriptedThinker([(5, 5, None), (5, 5, None), (5, 5, None)])
    editor = RecordingEditor()
    _, trajectory = run_all(editor, thinker, request(scene, max_turns=3, no_answer="repeat"))
    assert trajectory.stop_reason == "max_turns"
    assert editor.prompts == ["make it brighter"] * 3
    assert [t.critique.refined_prompt for t in trajectory.turns] == [None, None, None]
    notes = [t.thinker_note for t in trajectory.turns]
    assert "turn 2 edits with the same prompt again" in notes[0] and "turn 3" in notes[1]
    assert "turn 4" not in notes[2]  # the last turn: nothing follows it


def test_max_turns_and_each_turn_uses_the_newest_prompt(scene):
    thinker = ScriptedThinker([(3, 3, "p2"), (4, 4, "p3"), (5, 5, "p4")])
    editor = RecordingEditor()
    _, trajectory = run_all(editor, thinker, request(scene, max_turns=3))
    assert trajectory.stop_reason == "max_turns"
    assert editor.prompts == ["make it brighter", "p2", "p3"]
    assert [t.prompt for t in trajectory.turns] == editor.prompts
    assert [c["prompt"] for c in thinker.calls] == editor.prompts
    assert all(c["instruction"] == "make it brighter" for c in thinker.calls)


def test_every_turn_edits_the_source_not_the_previous_edit(scene):
    editor = RecordingEditor()
    thinker = ScriptedThinker([(1, 1, "a"), (2, 2, "b"), (3, 3, "c")])
    _, trajectory = run_all(editor, thinker, request(scene, max_turns=3))
    assert len(editor.inputs) == 3
    assert all(same_pixels(image, scene) for image in editor.inputs)
    assert all(same_pixels(call["source"], scene) for call in thinker.calls)
    assert [same_pixels(call["edited"], t.image) for call, t in zip(thinker.calls, trajectory.turns, strict=True)] == [
        True
    ] * 3


def test_best_turn_is_the_highest_geometric_mean_and_ties_go_later(scene):
    thinker = ScriptedThinker([(9, 4, "a"), (7, 7, "b"), (4, 9, "c"), (7, 7, "d")])
    _, trajectory = run_all(RecordingEditor(), thinker, request(scene, max_turns=4))
    # sqrt(36)=6, 7, 6, 7 → the later of the two 7s
    assert trajectory.best_turn.index == 4


def test_unreadable_scores_rank_lowest(scene):
    thinker = ScriptedThinker([(2, 2, "a"), (None, None, "b")])
    _, trajectory = run_all(RecordingEditor(), thinker, request(scene, max_turns=2))
    assert trajectory.best_turn.index == 1


def test_a_failing_turn_keeps_the_earlier_turns_on_disk(scene, tmp_path):
    editor = RecordingEditor(fail_on_call=2)
    thinker = ScriptedThinker([(3, 3, "a"), (4, 4, "b")])
    _, trajectory = run_all(editor, thinker, request(scene, max_turns=3), run_dir=tmp_path / "run")
    assert trajectory.stop_reason == "error"
    assert "the editor broke" in trajectory.error
    assert len(trajectory.turns) == 1
    saved = json.loads((tmp_path / "run" / "trajectory.json").read_text())
    assert saved["stop_reason"] == "error" and len(saved["turns"]) == 1
    assert (tmp_path / "run" / "turn_01.png").is_file()


def test_cancel_between_steps_keeps_finished_turns(scene):
    cancel = threading.Event()
    editor = RecordingEditor(steps=5, step_seconds=0.2)
    thinker = ScriptedThinker([(3, 3, "a"), (4, 4, "b"), (5, 5, "c")])
    seen = []
    for event in loop.run(editor, thinker, request(scene, max_turns=3), cancel=cancel):
        seen.append(event)
        if isinstance(event, loop.EditStep) and event.index == 2 and event.step == 2:
            cancel.set()
    trajectory = seen[-1].trajectory
    assert trajectory.stop_reason == "cancelled"
    assert [t.index for t in trajectory.turns] == [1]
    steps_of_turn_2 = [e.step for e in seen if isinstance(e, loop.EditStep) and e.index == 2]
    assert steps_of_turn_2[:2] == [1, 2] and len(steps_of_turn_2) < 5  # stopped at the next step


def test_cancel_while_thinking_stops_at_the_next_token(scene):
    cancel = threading.Event()
    thinker = ScriptedThinker([(3, 3, "a long refined prompt " * 5)], chunk=3, chunk_seconds=0.1)
    seen = []
    for event in loop.run(RecordingEditor(), thinker, request(scene, max_turns=2), cancel=cancel):
        seen.append(event)
        if isinstance(event, loop.Reasoning):
            cancel.set()
    assert seen[-1].trajectory.stop_reason == "cancelled"
    assert seen[-1].trajectory.turns == []
    chunks = sum(isinstance(e, loop.Reasoning) for e in seen)
    assert chunks < 5  # of about 50: generation stopped at the next token


def test_events_stream_in_order_with_reasoning_chunks(scene):
    thinker = ScriptedThinker([(9, 9, "done")], chunk=5)
    events, trajectory = run_all(RecordingEditor(steps=4), thinker, request(scene, max_turns=2))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "TurnStarted"
    assert kinds.count("EditStep") == 4
    assert kinds.index("ThinkingStarted") > kinds.index("EditStep")
    chunks = [e.text for e in events if isinstance(e, loop.Reasoning)]
    assert len(chunks) > 3 and "".join(chunks) == trajectory.turns[0].critique.raw
    assert kinds[-2:] == ["TurnFinished", "RunFinished"]


def test_polish_strategy_drives_turn_one(scene):
    editor = RecordingEditor()
    thinker = ScriptedThinker([(9, 9, "x")], polished="increase brightness by 30%")
    events, trajectory = run_all(editor, thinker, request(scene, first_turn="polish"))
    assert editor.prompts[0] == "increase brightness by 30%"
    assert trajectory.first_turn_prompt == "increase brightness by 30%"
    assert any(isinstance(e, loop.Reasoning) and e.index == 0 for e in events)
    assert thinker.calls[0]["instruction"] == "make it brighter"


def test_polish_without_a_polish_method_falls_back_with_a_notice(scene):
    class NoPolish(ScriptedThinker):
        polish = None

    editor = RecordingEditor()
    events, _ = run_all(editor, NoPolish([(9, 9, "x")]), request(scene, first_turn="polish"))
    assert editor.prompts[0] == "make it brighter"
    assert any(isinstance(e, loop.Notice) for e in events)


def test_critique_source_strategy_critiques_the_untouched_source_first(scene):
    editor = RecordingEditor()
    thinker = ScriptedThinker([(0, 10, "brighten the sky by 25%"), (9, 9, "x")])
    _, trajectory = run_all(editor, thinker, request(scene, first_turn="critique-source"))
    first = thinker.calls[0]
    assert same_pixels(first["source"], scene) and same_pixels(first["edited"], scene)
    assert editor.prompts[0] == "brighten the sky by 25%"
    assert trajectory.first_turn_prompt == "brighten the sky by 25%"


def test_single_shot_without_a_thinker(scene):
    editor = RecordingEditor()
    _, trajectory = run_all(editor, None, request(scene, max_turns=5))
    assert len(trajectory.turns) == 1 and trajectory.thinker == "none"
    assert trajectory.turns[0].critique.semantic is None


def test_every_turn_edits_with_the_same_seed_by_default_as_the_reference_does(scene):
    editor = RecordingEditor()
    thinker = ScriptedThinker([(1, 1, "a"), (2, 2, "b"), (3, 3, "c")])
    _, trajectory = run_all(editor, thinker, request(scene, max_turns=3, seed=41))
    assert editor.seeds == [41, 41, 41] == [t.seed for t in trajectory.turns]
    assert trajectory.settings["seed_per_turn"] == "same"


def test_seeds_may_increment_per_turn(scene):
    editor = RecordingEditor()
    thinker = ScriptedThinker([(1, 1, "a"), (2, 2, "b")])
    _, trajectory = run_all(editor, thinker, request(scene, max_turns=2, seed=2**32 - 1, seed_per_turn="increment"))
    assert editor.seeds == [2**32 - 1, 0] == [t.seed for t in trajectory.turns]  # wraps as generators need
    assert trajectory.settings["seed_per_turn"] == "increment"


STOPS = [  # (script, max_turns, reason, what the message must say)
    ([(8, 9, "x")], 3, "threshold", "both scores reached the threshold 8 (semantic 8, quality 9)"),
    (
        [(0, 6, "make it brighter")],
        3,
        "prompt_kept",
        "handed the prompt back unchanged although its scores are below the threshold 8 (semantic 0, quality 6)",
    ),
    ([(3, 3, "a"), (4, 4, "b")], 2, "max_turns", "reached the turn limit of 2"),
    ([(3, 3, None)], 3, "no_answer", "no refined prompt"),
]


@pytest.mark.parametrize(("script", "max_turns", "reason", "says"), STOPS, ids=[s[2] for s in STOPS])
def test_every_stop_names_its_real_reason(scene, script, max_turns, reason, says):
    _, trajectory = run_all(RecordingEditor(), ScriptedThinker(script), request(scene, max_turns=max_turns))
    record = trajectory_record(trajectory)
    assert record["stop_reason"] == reason and says in loop.stop_message(record)
    assert "good enough" not in loop.stop_message(record)


def test_a_single_shot_stop_and_the_rest_are_named_too(scene):
    _, trajectory = run_all(RecordingEditor(), None, request(scene, max_turns=3))
    assert loop.stop_message(trajectory_record(trajectory)) == loop.STOP_REASONS["single_shot"]
    assert loop.stop_message({"stop_reason": "cancelled"}).startswith("stopped by you")
    assert loop.stop_message({"stop_reason": "error", "turns": []}) == "stopped by an error"
    assert loop.stop_message({"stop_reason": "a_rule_from_later"}) == "a_rule_from_later"
    assert set(loop.STOP_REASONS) >= {"threshold", "prompt_kept", "no_answer", "max_turns", "cancelled", "error"}


def test_an_edit_keeps_its_own_size_and_becomes_rgb(scene, tmp_path):
    """A rotation or a crop changes the shape: the loop keeps the editor's size, shows it to the thinker next to
    the source and saves it as it is; `size` in the record stays the source's."""
    turned = scene.transpose(Image.Transpose.ROTATE_90).crop((0, 0, 64, 50))
    editor = RecordingEditor(returns=lambda image: turned.convert("RGBA"))
    thinker = ScriptedThinker([(9, 9, "x")])
    _, trajectory = run_all(editor, thinker, request(scene), run_dir=tmp_path / "run")
    image = trajectory.turns[0].image
    assert image.size == (64, 50) and image.mode == "RGB" and same_pixels(image, turned)
    assert (thinker.calls[0]["source"].size, thinker.calls[0]["edited"].size) == (scene.size, (64, 50))
    assert Image.open(tmp_path / "run" / "turn_01.png").size == (64, 50)
    assert json.loads((tmp_path / "run" / "trajectory.json").read_text())["size"] == [96, 64]


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ((0, 12), "The editor's result has no pixels (0×12)."),
        ((8000, 6000), "The editor's result is 8000×6000 = 48 megapixels; the limit is 40 megapixels."),
    ],
)
def test_an_edit_of_no_pixels_or_over_the_limit_ends_with_a_clear_error(scene, size, message):
    editor = RecordingEditor(returns=lambda image: Image.new("1", size))
    _, trajectory = run_all(editor, ScriptedThinker([(9, 9, "x")]), request(scene))
    assert (trajectory.stop_reason, trajectory.error, trajectory.turns) == ("error", message, [])


def test_an_editor_returning_nothing_ends_with_a_clear_error(scene):
    _, trajectory = run_all(RecordingEditor(returns=lambda image: None), ScriptedThinker([(9, 9, "x")]), request(scene))
    assert trajectory.stop_reason == "error"
    assert trajectory.error == "The editor returned no image."


def test_an_editor_that_hangs_is_abandoned_after_its_timeout(scene, monkeypatch):
    monkeypatch.setattr(loop, "CANCEL_GRACE_S", 0.2)
    release = threading.Event()
    editor = RecordingEditor(hang=release)
    _, trajectory = run_all(editor, ScriptedThinker([(9, 9, "x")]), request(scene), edit_timeout=0.3)
    assert not release.is_set(), "the run ended while the editor was still stuck"
    release.set()
    assert trajectory.stop_reason == "error"
    assert "did not answer within 0.3 s" in trajectory.error


class LocalEditor(RecordingEditor):
    """A RecordingEditor that says it runs a model on this machine's GPU."""

    spec = BackendSpec("local-recording", "helpers:RecordingEditor", "local", "test editor")


def test_an_abandoned_local_backend_keeps_the_gpu_until_it_really_returns(scene, monkeypatch):
    monkeypatch.setattr(loop, "CANCEL_GRACE_S", 0.2)
    release, cancel = threading.Event(), threading.Event()
    editor = LocalEditor(hang=release)
    for event in loop.run(editor, ScriptedThinker([(9, 9, "x")]), request(scene), cancel=cancel):
        if isinstance(event, loop.TurnStarted):
            cancel.set()
    assert event.trajectory.stop_reason == "cancelled"
    assert runtime._GPU_LOCK.locked(), "the stuck editor still uses the GPU: no other run may start on it"
    release.set()
    assert runtime._GPU_LOCK.acquire(timeout=30), "the GPU is free once the editor has returned"
    runtime._GPU_LOCK.release()
    assert editor.steps_done == 0, "the editor stopped at its first step after Stop"


def test_editor_note_becomes_a_notice_and_is_kept(scene):
    def noted(image):
        out = image.copy()
        out.info["editor_note"] = "could not do: 'add a dragon'"
        return out

    events, trajectory = run_all(RecordingEditor(returns=noted), ScriptedThinker([(9, 9, "x")]), request(scene))
    assert any(isinstance(e, loop.Notice) and "dragon" in e.message for e in events)
    assert trajectory.turns[0].editor_note == "could not do: 'add a dragon'"


def test_an_unwritable_runs_folder_warns_and_the_run_still_completes(scene, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    events, trajectory = run_all(
        RecordingEditor(), ScriptedThinker([(3, 3, "a"), (9, 9, "b")]), request(scene), run_dir=blocker / "run"
    )
    notices = [e.message for e in events if isinstance(e, loop.Notice)]
    assert len(notices) == 1 and "could not be saved" in notices[0]
    assert trajectory.stop_reason == "threshold" and len(trajectory.turns) == 2
    assert trajectory.warnings == notices


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"instruction": ""}, "empty"),
        ({"instruction": "   \n\t"}, "empty"),
        ({"instruction": "x" * 2001}, "limit is 2000"),
        ({"max_turns": 0}, "from 1 to 10"),
        ({"max_turns": 11}, "from 1 to 10"),
        ({"threshold": 10.5}, "from 0 to 10"),
        ({"threshold": -1}, "from 0 to 10"),
        ({"first_turn": "guess"}, "first-turn strategy"),
        ({"seed_per_turn": "random"}, "seed per turn rule 'random'; use same or increment"),
        ({"no_answer": "guess"}, "no answer rule 'guess'; use stop or repeat"),
        ({"image": None}, "No image"),
    ],
)
def test_bad_requests_are_refused_before_any_model_runs(scene, kwargs, message):
    image = kwargs.pop("image", scene)
    instruction = kwargs.pop("instruction", "make it brighter")
    with pytest.raises(BadInput, match=message):
        loop.make_request(image, instruction, **kwargs)


def test_control_characters_are_dropped_from_the_instruction(scene):
    req = loop.make_request(scene, "make\x00 it\x07 brighter")
    assert req.instruction == "make  it  brighter"


def test_request_converts_the_image_to_rgb():
    req = loop.make_request(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), "x")
    assert req.image.mode == "RGB" and req.image.getpixel((0, 0)) == (255, 255, 255)


def test_a_timed_out_editor_is_told_to_stop(scene):
    editor = RecordingEditor(steps=5, silent_seconds=0.6)
    _, trajectory = run_all(editor, ScriptedThinker([(9, 9, "x")]), request(scene), edit_timeout=0.3)
    assert trajectory.stop_reason == "error" and "did not answer within 0.3 s" in trajectory.error
    time.sleep(0.3)
    assert editor.steps_done == 0, "an abandoned backend must not go on using the model"


def test_stop_during_a_step_less_phase_ends_the_run(scene, monkeypatch):
    monkeypatch.setattr(loop, "CANCEL_GRACE_S", 0.3)
    cancel, release = threading.Event(), threading.Event()
    editor = RecordingEditor(steps=3, hang=release)
    for event in loop.run(editor, ScriptedThinker([(9, 9, "x")]), request(scene), cancel=cancel):
        if isinstance(event, loop.TurnStarted):
            cancel.set()
    assert event.trajectory.stop_reason == "cancelled"
    assert not release.is_set(), "the run ended without waiting for the editor to reach a step"
    release.set()


def test_heartbeats_are_not_events(scene):
    class Heartbeats(ScriptedThinker):
        def critique(self, source, edited, instruction, prompt, *, on_token=None):
            for _ in range(5):
                on_token("")
            return super().critique(source, edited, instruction, prompt, on_token=on_token)

    events, _ = run_all(RecordingEditor(), Heartbeats([(9, 9, "x")]), request(scene))
    assert all(e.text for e in events if isinstance(e, loop.Reasoning))


def test_a_backend_that_exits_its_thread_still_ends_the_run(scene):
    class Exits(RecordingEditor):
        def edit(self, image, prompt, **kwargs):
            raise SystemExit("the backend called exit()")

    _, trajectory = run_all(Exits(), ScriptedThinker([(9, 9, "x")]), request(scene))
    assert trajectory.stop_reason == "error" and "exit()" in trajectory.error


def test_a_stop_switch_shared_by_runs_one_after_another_is_left_as_it_was(scene):
    cancel = threading.Event()
    for _ in range(2):
        _, trajectory = run_all(RecordingEditor(), ScriptedThinker([(9, 9, "x")]), request(scene), cancel=cancel)
        assert trajectory.stop_reason == "threshold"
    assert not cancel.is_set()
