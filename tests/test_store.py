import json
import os

import pytest
from helpers import RecordingEditor, ScriptedThinker, same_pixels

from thinkedit import loop, schema, store
from thinkedit.errors import BadInput

CONTRACT_TOP = {
    "schema_version",
    "instruction",
    "editor",
    "thinker",
    "settings",
    "versions",
    "turns",
    "best_turn",
    "stop_reason",
    "error",
}
CONTRACT_TURN = {
    "index",
    "prompt",
    "image",
    "semantic",
    "quality",
    "reasoning",
    "refined_prompt",
    "raw",
    "seed",
    "edit_seconds",
    "think_seconds",
}


def finished_run(scene, run_dir, script=((4, 6, "brighter by 40%"), (8, 9, "brighter by 40%"))):
    request = loop.make_request(scene, "make it brighter", max_turns=3, seed=7, steps=12, guidance=3.5)
    *_, last = loop.run(RecordingEditor(), ScriptedThinker(script), request, run_dir=run_dir)
    return last.trajectory


def test_round_trip_follows_the_contract(scene, tmp_path):
    trajectory = finished_run(scene, tmp_path / "run")
    saved = store.load_run(tmp_path / "run")
    record = saved.record
    assert set(record) >= CONTRACT_TOP
    assert record["schema_version"] == 2
    assert record["instruction"] == "make it brighter"
    assert record["stop_reason"] == "threshold" and record["error"] is None
    assert record["best_turn"] == 2
    assert record["settings"]["seed"] == 7 and record["settings"]["steps"] == 12
    assert record["settings"]["editor_model"] == "recording-editor"
    assert set(record["versions"]) >= {"thinkedit", "torch", "diffusers", "transformers"}
    assert [set(t) >= CONTRACT_TURN for t in record["turns"]] == [True, True]
    first = record["turns"][0]
    assert (first["index"], first["image"], first["semantic"], first["quality"]) == (1, "turn_01.png", 4, 6)
    assert first["refined_prompt"] == "brighter by 40%" and first["seed"] == 7
    assert same_pixels(saved.source, scene)
    assert same_pixels(saved.image(2), trajectory.turns[1].image)
    assert saved.best["index"] == 2


def test_writes_are_atomic(scene, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    finished_run(scene, run_dir)
    before = (run_dir / "trajectory.json").read_text()

    def crash(*args, **kwargs):
        raise OSError("disk pulled out")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.write_json_atomic(run_dir / "trajectory.json", {"half": "written"})
    assert (run_dir / "trajectory.json").read_text() == before
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []


def test_each_turn_is_on_disk_as_soon_as_it_finishes(scene, tmp_path):
    request = loop.make_request(scene, "x", max_turns=3)
    run_dir = tmp_path / "run"
    seen_on_disk = []
    for event in loop.run(
        RecordingEditor(), ScriptedThinker([(1, 1, "a"), (2, 2, "b"), (3, 3, "c")]), request, run_dir=run_dir
    ):
        if isinstance(event, loop.TurnFinished):
            seen_on_disk.append(len(json.loads((run_dir / "trajectory.json").read_text())["turns"]))
    assert seen_on_disk == [1, 2, 3]


def test_zip_round_trip(scene, tmp_path):
    finished_run(scene, tmp_path / "run")
    archive = store.zip_run(tmp_path / "run", tmp_path / "run.zip")
    saved = store.load_run(archive)
    assert saved.record["best_turn"] == 2
    assert same_pixels(saved.source, scene)


def test_not_a_run(tmp_path):
    with pytest.raises(BadInput, match="no trajectory.json"):
        store.load_run(tmp_path)
    (tmp_path / "trajectory.json").write_text("{not json")
    with pytest.raises(BadInput, match="not valid JSON"):
        store.load_run(tmp_path)


def test_new_run_dirs_are_unique(tmp_path):
    assert len({store.new_run_dir(tmp_path) for _ in range(50)}) == 50


def test_a_run_can_only_name_its_own_images(scene, tmp_path):
    finished_run(scene, tmp_path / "run")
    secret = tmp_path / "elsewhere.png"
    scene.save(secret)
    record = json.loads((tmp_path / "run" / "trajectory.json").read_text())
    for name in (str(secret), "../elsewhere.png", "turn_01.png/../../elsewhere.png"):
        record["turns"][0]["image"] = name
        (tmp_path / "run" / "trajectory.json").write_text(json.dumps(record))
        with pytest.raises(BadInput, match="not one of its own files"):
            store.load_run(tmp_path / "run").image(1)


def test_uploaded_zips_are_bounded_and_unpacked_where_asked(scene, tmp_path, monkeypatch):
    finished_run(scene, tmp_path / "run")
    archive = store.zip_run(tmp_path / "run", tmp_path / "run.zip")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert store.load_run(archive, unpack_to=scratch).path.parent == scratch
    monkeypatch.setattr(store, "MAX_MEMBER_BYTES", 100)
    with pytest.raises(BadInput, match="holds a 0.0 MB source.png; a run's source.png is at most"):
        store.load_run(archive, unpack_to=scratch)
    assert len(list(scratch.iterdir())) == 1, "a refused zip is refused before anything is unpacked"


def test_records_that_break_the_contract_are_refused(tmp_path):
    for record in ({"turns": []}, {"instruction": "x", "turns": [{"index": "1", "image": "turn_01.png"}]}, []):
        (tmp_path / "trajectory.json").write_text(json.dumps(record))
        with pytest.raises(BadInput, match="does not follow the trajectory format"):
            store.load_run(tmp_path)


def test_every_key_the_writer_writes_is_declared_in_the_schema(scene, tmp_path):
    """The record, its settings and its turns hold exactly the declared fields, each of a declared kind: the writer
    and the reader's validation come from one declaration (`thinkedit/schema.py`)."""
    request = loop.make_request(scene, "make it brighter", max_turns=2, first_turn="polish")
    thinker = ScriptedThinker([(4, 6, "brighter by 40%"), (5, 6, "brighter by 50%")], polished="brighten it")
    *_, last = loop.run(RecordingEditor(), thinker, request, run_dir=tmp_path / "run")
    written = json.loads((tmp_path / "run" / "trajectory.json").read_text())
    assert last.trajectory.first_turn_prompt == "brighten it" and len(written["turns"]) == 2
    assert list(written) == list(schema.RECORD)
    assert set(written["settings"]) == set(schema.SETTINGS)
    assert [list(turn) for turn in written["turns"]] == [list(schema.TURN)] * 2
    assert schema.check_record(written, "the run") == written


def test_the_writer_refuses_a_setting_the_schema_does_not_declare(scene, tmp_path):
    trajectory = finished_run(scene, tmp_path / "run")
    trajectory.settings["temperature"] = 2
    with pytest.raises(ValueError, match="Declare the settings temperature"):
        store.trajectory_record(trajectory)


def test_runs_of_an_older_format_are_upgraded_as_they_are_read_and_newer_ones_are_refused(scene, tmp_path, monkeypatch):
    finished_run(scene, tmp_path / "run")
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    monkeypatch.setitem(schema.UPGRADES, 2, lambda record: {**record, "schema_version": 3, "upgraded": True})
    record = store.load_run(tmp_path / "run").record
    assert record["schema_version"] == 3 and record["upgraded"] is True

    newer = json.loads((tmp_path / "run" / "trajectory.json").read_text()) | {"schema_version": 4}
    (tmp_path / "run" / "trajectory.json").write_text(json.dumps(newer))
    with pytest.raises(BadInput, match="follows trajectory format 4; this ThinkEdit reads formats 1 to 3"):
        store.load_run(tmp_path / "run")
