"""How the page is put together: each run handler's parameters and inputs come from one table of fields, its
updates are keyed by component, the documented API keeps its order, and a caller's own URLs and keys travel apart
from the server's settings."""

from __future__ import annotations

import inspect

import gradio as gr
import pytest

from thinkedit import loop
from thinkedit.config import DEFAULTS, Caller, Settings
from thinkedit.errors import BadInput
from thinkedit.requests import EditRequest, make_request
from thinkedit.ui import actions, agent, build_app, form
from thinkedit.ui.choices import user_settings

# docs/api.md: what gradio_client callers pass by position (and by these names), and what they get back.
EDIT_PARAMETERS = [
    ("image", None),
    ("instruction", None),
    ("editor", "classic"),
    ("thinker", "classic"),
    ("max_turns", 3),
    ("threshold", 8.0),
    ("first_turn", "none"),
    ("seed", 0),
    ("randomize", False),
    ("steps", None),
    ("guidance", None),
    ("editor_model", None),
    ("editor_url", None),
    ("thinker_model", None),
    ("thinker_url", None),
    ("editor_key", None),
    ("thinker_key", None),
    ("speed", "default"),
    ("seed_per_turn", "same"),  # added after the documented order: callers by position are unaffected
    ("step", False),
    ("mask", None),
    ("painted", None),
    ("patience", None),  # the early stops (issue 26), appended the same way
    ("budget_seconds", None),
    ("budget_tokens", None),
]
EDIT_RETURNS = ["Gallery", "Html", "Textbox", "Textbox", "Dataframe", "Imageslider", "Textbox", "File", "Json"]
COMPARE_PARAMETERS = [
    ("image", None),
    ("instruction", None),
    ("mode", "single-shot vs Think-while-Edit"),
    ("editor_a", "classic"),
    ("editor_b", "classic"),
    ("thinker_a", "classic"),
    ("thinker_b", "classic"),
    ("max_turns", 3),
    ("threshold", 8.0),
    ("seed", 0),
    ("mask", None),
    ("painted", None),
]


def test_the_edit_and_compare_apis_keep_their_documented_order_names_and_defaults():
    api = build_app(Settings()).get_api_info()["named_endpoints"]

    def parameters(name: str) -> list[tuple]:
        return [(p["parameter_name"], p["parameter_default"]) for p in api[name]["parameters"]]

    def returns(name: str) -> list[str]:
        return [r["component"] for r in api[name]["returns"]]

    assert parameters("/edit") == EDIT_PARAMETERS
    assert returns("/edit") == [*EDIT_RETURNS, "Gallery"]  # the viewer, then History
    assert parameters("/compare") == COMPARE_PARAMETERS
    assert returns("/compare") == ["Gallery", "Gallery", "Textbox", "Textbox", "Imageslider", "Dataframe", "Json"] + [
        "Gallery"
    ]
    assert returns("/history_open") == EDIT_RETURNS and returns("/open_run") == [*EDIT_RETURNS, "Gallery"]
    public = build_app(Settings(public=True)).get_api_info()["named_endpoints"]
    visible = [name for name, _ in EDIT_PARAMETERS[:11] + EDIT_PARAMETERS[18:]]  # no model, URL, key or speed boxes
    assert [p["parameter_name"] for p in public["/edit"]["parameters"]] == visible


def test_a_handler_takes_its_fields_by_position_or_by_name_and_hands_them_over_by_name():
    received = []

    def run(values, session):
        received.append((vars(values), session))
        yield {"done": True}

    fields = {"image": form.REQUIRED, "instruction": form.REQUIRED, "max_turns": 3, "speed": None}
    handler = form.handler(fields, run, "Edit.")
    assert inspect.isgeneratorfunction(handler), "Gradio streams a generator function's updates"
    parameters = ["image", "instruction", "max_turns", "speed", "session", "request"]  # Gradio fills the request
    assert list(inspect.signature(handler).parameters) == parameters
    assert handler.__doc__ == "Edit." and handler.__name__ == "run"
    assert list(handler("photo", "warmer", 5, session="state")) == [{"done": True}]
    list(handler("photo", instruction="warmer", speed="fast"))
    called = {"queued_at": None}  # not a field: when the event joined Gradio's queue (unknown from Python)
    assert received == [
        ({"image": "photo", "instruction": "warmer", "max_turns": 5, "speed": None, **called}, "state"),
        ({"image": "photo", "instruction": "warmer", "max_turns": 3, "speed": "fast", **called}, None),
    ]
    with pytest.raises(TypeError):
        list(handler("photo"))  # the instruction is required


def test_controls_that_do_not_match_a_handlers_fields_are_refused_when_the_page_is_built():
    fields = {"image": form.REQUIRED, "instruction": form.REQUIRED, "max_turns": 3}
    with gr.Blocks():
        image, instruction, turns, extra = gr.Image(), gr.Textbox(), gr.Slider(), gr.Checkbox()
    assert form.inputs(fields, {"max_turns": turns, "image": image, "instruction": instruction}) == [
        image,
        instruction,
        turns,
    ]
    with pytest.raises(ValueError, match=r"missing \['max_turns'\], not fields \['randomize'\]"):
        form.inputs(fields, {"image": image, "instruction": instruction, "randomize": extra})


def test_the_studios_updates_are_keyed_by_the_viewers_components(tmp_path, scene):
    from helpers import studio_handler

    edit, viewer, history = studio_handler(Settings(runs_dir=tmp_path / "runs"))
    updates = list(edit(scene, "make it brighter", max_turns=1))
    first, last = updates[0], updates[-1]
    assert viewer.trajectory not in first and history not in first, "the record and History come at the end"
    assert set(last) == {*form.outputs(viewer), history}
    assert last[viewer.trajectory]["turns"][0]["prompt"] == "make it brighter"
    assert last[viewer.download].endswith(".zip") and len(last[history]) == 1


def test_every_surface_takes_the_loops_defaults_from_one_block():
    settings, request = Settings(), EditRequest(image=None, instruction="x")
    for name in ("max_turns", "threshold", "first_turn"):
        assert getattr(settings, name) == getattr(request, name) == getattr(DEFAULTS, name), name
        assert inspect.signature(make_request).parameters[name].default == getattr(DEFAULTS, name)
    assert (settings.editor, settings.thinker, settings.judge) == (DEFAULTS.editor, DEFAULTS.thinker, DEFAULTS.judge)
    assert (settings.edit_timeout, settings.thinker_timeout) == (DEFAULTS.edit_timeout, DEFAULTS.thinker_timeout)
    timeouts = inspect.signature(loop.run_jobs).parameters
    assert timeouts["edit_timeout"].default == DEFAULTS.edit_timeout
    assert timeouts["think_timeout"].default == DEFAULTS.thinker_timeout
    assert actions.EDIT_FIELDS["max_turns"] == actions.COMPARE_FIELDS["max_turns"] == DEFAULTS.max_turns
    tool = inspect.signature(agent.make_think_edit(settings)).parameters
    assert (tool["max_turns"].default, tool["threshold"].default) == (DEFAULTS.max_turns, DEFAULTS.threshold)


def test_a_url_the_caller_names_is_marked_theirs_and_their_keys_travel_in_the_requests_caller(tmp_path):
    server = Settings(thinker="openai", thinker_url="http://gpu-box:8000/v1", thinker_model="served")
    choices = {"thinker_url": " http://elsewhere:9000/v1 ", "thinker_key": "own-key", "editor_url": "", "speed": "fast"}
    run = user_settings(server, "classic", "openai", choices)
    thinker = run.role("thinker")
    assert (thinker.backend, thinker.url, thinker.model) == ("openai", "http://elsewhere:9000/v1", "served")
    assert thinker.caller_named_url and thinker.caller_key == "own-key" and run.speed == "fast"
    assert run.caller == Caller(named_urls=frozenset({"thinker"}), keys={"thinker": "own-key"})
    assert "own-key" not in repr(run) and "own-key" not in repr(thinker)
    assert not run.role("editor").caller_named_url and server.caller == Caller(), "the server's settings are untouched"

    same = user_settings(server, "classic", "openai", {"thinker_url": "http://gpu-box:8000/v1/"})
    assert not same.role("thinker").caller_named_url, "the server's own URL, typed again, keeps the server's key"
    public = user_settings(server.replace(public=True), "classic", None, choices)
    assert public.caller == Caller() and public.thinker_url == server.thinker_url and public.speed == "default"
    with pytest.raises(ValueError, match="Unknown role"):
        server.role("painter")

    assert Settings.from_env({"THINKEDIT_CALLER": "thinker"}).caller == Caller(), "never from the environment"
    file = tmp_path / "thinkedit_settings.json"
    file.write_text('{"caller": {"named_urls": ["thinker"]}}')
    with pytest.raises(BadInput, match="unknown settings: caller"):
        Settings.from_env({"THINKEDIT_SETTINGS_FILE": str(file)})
