"""The fair baselines and quality against compute: the rewrite baseline (the thinker's polish, then one edit) and
best-of-N (N edits with different seeds, the thinker's pick) in the loop, in `thinkedit eval` end to end offline (the
classic backends; GEdit-Bench's and ImgEdit's official layouts) and in Compare; and the points `summary.json` holds,
worked out by hand on a constructed `samples.jsonl`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from helpers import RecordingEditor, ScriptedThinker, serve
from test_eval import datasets_cache, gedit, lines_of, picture, run, write_folder  # noqa: F401 - fixtures

from thinkedit import loop
from thinkedit.config import Settings
from thinkedit.evaluate import refresh
from thinkedit.schema import trajectory_record
from thinkedit.store import load_run
from thinkedit.ui import actions


def run_all(editor, thinker, request):
    events = list(loop.run(editor, thinker, request))
    return events, events[-1].trajectory


# -- in the loop -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed_per_turn", ["same", "increment"])
def test_best_of_n_edits_exactly_n_times_with_distinct_seeds_and_keeps_the_thinkers_pick(seed_per_turn, scene):
    # turn 2 reaches the threshold and turn 3 hands the prompt back: the loop would stop at either, best-of-N not
    script = [(5, 5, "brighter by 40%"), (9, 9, "brighter"), (6, 6, "make it brighter"), (7, 7, "x")]
    thinker = ScriptedThinker(script)
    request = loop.make_request(
        scene, "make it brighter", max_turns=4, seed=7, seed_per_turn=seed_per_turn, patience=1, baseline="best-of-n"
    )  # patience would stop the loop after turn 3; best-of-N makes its N edits regardless
    editor = RecordingEditor()
    _, trajectory = run_all(editor, thinker, request)
    assert editor.seeds == [7, 8, 9, 10] and editor.prompts == ["make it brighter"] * 4
    assert len(thinker.calls) == 4, "every edit is scored: the thinker picks"
    assert (trajectory.stop_reason, trajectory.best_turn.index) == ("best_of_n", 2)
    record = trajectory_record(trajectory)
    assert (record["settings"]["baseline"], record["settings"]["seed_per_turn"]) == ("best-of-n", "increment")
    assert "4 edits of the same prompt with different seeds" in loop.stop_message(record)


def test_the_rewrite_baseline_polishes_once_edits_once_and_asks_for_no_critique(scene):
    thinker = ScriptedThinker([(9, 9, "never asked")], polished="brighter by 20%")
    editor = RecordingEditor()
    request = loop.make_request(scene, "make it brighter", max_turns=5, baseline="rewrite")
    _, trajectory = run_all(editor, thinker, request)
    assert editor.prompts == ["brighter by 20%"] and thinker.calls == []
    assert trajectory.stop_reason == "rewrite" and trajectory.first_turn_prompt == "brighter by 20%"
    record = trajectory_record(trajectory)
    assert (record["settings"]["max_turns"], record["settings"]["first_turn"]) == (1, "polish")
    assert record["turns"][0]["semantic"] is None and record["turns"][0]["think_seconds"] == 0
    assert record["turns"][0]["tokens"] == {"prompt": 0, "completion": 0}, "no critique, no tokens"
    assert record["first_turn_compute"]["think_seconds"] >= 0 and record["compute"]["edits"] == 1


def test_an_unknown_baseline_is_refused(scene):
    with pytest.raises(Exception, match="Unknown baseline 'best-of-3'; use rewrite or best-of-n"):
        loop.make_request(scene, "make it brighter", baseline="best-of-3")


# -- in thinkedit eval -------------------------------------------------------------------------------------------

BASELINE_MODES = "single,rewrite,best-of-2,loop"


def build_baselines_eval(evals: Path) -> Path:
    """An eval folder of every mode (classic backends, two samples) in `evals`, for the Benchmarks tab."""
    data = write_folder(
        evals.parent / "baselines-set", [("bw", "make it black and white", "color"), ("warm", "make it warmer", "look")]
    )
    out = evals / "baselines-folder"
    assert run("--bench", "folder", "--data", str(data), "--out", str(out), "--modes", BASELINE_MODES) == 0
    return out


def test_rewrite_and_best_of_n_run_end_to_end_beside_single_and_loop(tmp_path):
    data = write_folder(
        tmp_path / "set", [("bw", "make it black and white", "color"), ("warm", "make it warmer", "look")]
    )
    out = tmp_path / "eval"
    modes = "single,rewrite,best-of-3,loop"
    assert run("--bench", "folder", "--data", str(data), "--out", str(out), "--modes", modes, "--seed", "4") == 0
    rows = lines_of(out)
    assert [(r["key"], r["mode"]) for r in rows] == [(k, m) for k in ("bw", "warm") for m in modes.split(",")]
    for row in rows:
        assert row["error"] is None and row["o"] is not None
        assert row["image"] == f"images/{row['mode']}/{row['key']}.png" and (out / row["image"]).is_file()
        assert row["compute"]["edits"] == row["turns"]
    for row in [r for r in rows if r["mode"] == "best-of-3"]:
        record = load_run(out / row["run"]).record
        assert [t["seed"] for t in record["turns"]] == [4, 5, 6], "exactly N edits, each its own seed"
        assert {t["prompt"] for t in record["turns"]} == {row["instruction"]}
        assert (row["turns"], row["stop_reason"], len(row["by_turn"])) == (3, "best_of_n", 3)
        assert row["best_turn"] == max(row["by_turn"], key=lambda p: p["turn"])["best"]
    for row in [r for r in rows if r["mode"] == "rewrite"]:
        record = load_run(out / row["run"]).record
        assert (row["turns"], row["stop_reason"]) == (1, "rewrite")
        assert row["prompts"] == [record["first_turn_prompt"]] and record["first_turn_prompt"] != row["instruction"]
        assert record["turns"][0]["semantic"] is None, "the rewrite's edit is judged, not critiqued"
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["modes"]) == modes.split(",")
    assert [p["mode"] for p in summary["compute"]["points"] if p["turn"] is None] == modes.split(",")
    report = (out / "report.md").read_text()
    assert "| rewrite SC | rewrite PQ | rewrite O | best-of-3 SC |" in report
    assert "## Quality against compute" in report and summary["compute"]["verdict"] in report
    assert (out / "compute.png").stat().st_size > 10_000 and (out / "report.png").is_file()


def test_the_baselines_land_in_gedits_official_layout(gedit, tmp_path):  # noqa: F811 - the fixture
    out = tmp_path / "eval"
    assert run("--data", str(gedit), "--out", str(out), "--modes", "rewrite,best-of-2", "--limit", "2") == 0
    rows = [r for r in lines_of(out) if r["error"] is None]
    assert {r["mode"] for r in rows} == {"rewrite", "best-of-2"} and len(rows) == 4
    for row in rows:
        relative = f"images/{row['mode']}/fullset/{row['category']}/en/{row['key']}.png"
        assert row["image"] == relative and (out / relative).is_file()
        assert (out / relative.replace(".png", "_SRCIMG.png")).is_file(), "the official scorer reads the source"


def test_the_baselines_land_in_imgedits_layout_with_their_edit_json(tmp_path):
    root = tmp_path / "Benchmark"
    (root / "animal").mkdir(parents=True)
    picture().save(root / "animal" / "000342021.jpg")
    entries = {"1082": {"id": "animal/000342021.jpg", "prompt": "make it black and white", "edit_type": "adjust"}}
    (root / "basic_edit.json").write_text(json.dumps(entries))
    out = tmp_path / "eval"
    assert run("--bench", "imgedit", "--data", str(root), "--out", str(out), "--modes", "rewrite,best-of-2") == 0
    for mode in ("rewrite", "best-of-2"):
        assert (out / "images" / mode / "1082.png").is_file()
        assert json.loads((out / "images" / f"{mode}_basic_edit.json").read_text()) == entries


@pytest.mark.parametrize("modes", ["best-of-11", "best-of-0", "best-of-03", "best-of", "rewrite,twice"])
def test_modes_it_does_not_know_are_refused_with_the_ones_it_does(modes, tmp_path, capsys):
    data = write_folder(tmp_path / "set", [("bw", "make it black and white", "color")])
    assert run("--bench", "folder", "--data", str(data), "--out", str(tmp_path / "e"), "--modes", modes) == 2
    error = capsys.readouterr().err
    assert "--modes takes single, rewrite, loop and best-of-N (N from 1 to 10, e.g. best-of-3)" in error


# -- quality against compute, worked out by hand ------------------------------------------------------------------

CATEGORY = {"k1": "a", "k2": "a", "k3": "b"}


def spent(seconds: float, tokens: int) -> dict:
    return {
        "seconds": seconds,
        "gpu_seconds": seconds,
        "tokens": {"prompt": tokens - tokens // 10, "completion": tokens // 10},
    }


def line(key: str, mode: str, o: float, seconds: float, tokens: int, by_turn: list | None = None, **more) -> dict:
    row = {"key": key, "category": CATEGORY[key], "instruction": "x", "mode": mode, "sc": o, "pq": o, "o": o}
    row.update(error=None, run=f"runs/{mode}/{key}", compute={"edits": len(by_turn or [1]), **spent(seconds, tokens)})
    if by_turn is not None:
        row["by_turn"] = [
            {"turn": k, "sc": v, "pq": v, "o": v, "best": best, "compute": point(s, t)}
            for k, (v, best, s, t) in enumerate(by_turn, 1)
        ]
    return row | more


def point(seconds: float, tokens: int) -> dict:
    return {"seconds": seconds, "gpu_seconds": seconds, "tokens": tokens, "edits": 1}


def constructed() -> list[dict]:
    """Three samples in two categories: O is the mean over categories of the category means (the folder's rule)."""
    loop_last = {"last": {"turn": 2, "sc": 8, "pq": 8, "o": 8}}
    return [
        line("k1", "single", 4, 1, 0),
        line("k2", "single", 6, 2, 0),
        line("k3", "single", 8, 3, 0),
        line("k1", "rewrite", 5, 2, 100),
        line("k2", "rewrite", 6, 3, 100),
        line("k3", "rewrite", 8, 4, 100),
        # best-of-2: (O of the edit, the thinker's pick so far, seconds so far, tokens so far)
        line("k1", "best-of-2", 7, 5, 600, [(5, 1, 2.5, 300), (7, 2, 5, 600)]),
        line("k2", "best-of-2", 7, 5, 600, [(6, 1, 2.5, 300), (7, 2, 5, 600)]),
        line("k3", "best-of-2", 8, 5, 600, [(8, 1, 2.5, 300), (8, 2, 5, 600)]),
        # the loop: k1 rises at turn 2; k2 stopped after turn 1; k3's turn 2 fell, its pick stays turn 1
        line("k1", "loop", 8, 5.5, 1000, [(4, 1, 2.5, 500), (8, 2, 5.5, 1000)], **loop_last),
        line("k2", "loop", 6, 2.5, 500, [(6, 1, 2.5, 500)], last={"turn": 1, "sc": 6, "pq": 6, "o": 6}),
        line(
            "k3",
            "loop",
            9,
            5.5,
            1000,
            [(9, 1, 2.5, 500), (7, 1, 5.5, 1000)],
            last={"turn": 2, "sc": 7, "pq": 7, "o": 7},
        ),
    ]


def write_eval(folder: Path, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"bench": "folder", "data": "x", "modes": ["single", "rewrite", "best-of-2", "loop"], "language": None}
    config |= {"editor": "classic", "thinker": "classic", "judge": "openai", "judge_model": "judge"}
    config |= {"max_turns": 2, "threshold": 8.0, "first_turn": "none", "seed": 0, "seed_per_turn": "same"}
    (folder / "eval.json").write_text(json.dumps(config))
    (folder / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_the_quality_against_compute_points_are_computed_right(tmp_path):
    write_eval(tmp_path / "eval", constructed())
    summary = refresh(tmp_path / "eval")
    found = {(p["mode"], p["turn"], p["pick"]): p for p in summary["compute"]["points"]}
    expected = {  # (O: mean over categories a and b, seconds: mean over the three samples, tokens)
        ("single", None, None): (((4 + 6) / 2 + 8) / 2, 2, 0),
        ("rewrite", None, None): (((5 + 6) / 2 + 8) / 2, 3, 100),
        ("best-of-2", None, None): (((7 + 7) / 2 + 8) / 2, 5, 600),
        ("best-of-2", 1, "best"): (((5 + 6) / 2 + 8) / 2, 2.5, 300),
        ("best-of-2", 2, "best"): (((7 + 7) / 2 + 8) / 2, 5, 600),
        ("loop", None, None): (((8 + 6) / 2 + 9) / 2, 4.5, 2500 / 3),
        ("loop", 1, "best"): (((4 + 6) / 2 + 9) / 2, 2.5, 500),
        ("loop", 1, "last"): (((4 + 6) / 2 + 9) / 2, 2.5, 500),
        ("loop", 2, "best"): (((8 + 6) / 2 + 9) / 2, 4.5, 2500 / 3),  # k2 stays at its turn 1, k3 at its pick
        ("loop", 2, "last"): (((8 + 6) / 2 + 7) / 2, 4.5, 2500 / 3),
    }
    for key, (o, seconds, tokens) in expected.items():
        p = found[key]
        assert (p["o"], p["seconds"], p["gpu_seconds"]) == (
            pytest.approx(o),
            pytest.approx(seconds),
            pytest.approx(seconds),
        )
        assert p["tokens"] == pytest.approx(tokens, abs=1e-3) and p["n"] == 3
    single = found[("single", None, None)]
    for key, p in found.items():
        if key != ("single", None, None):
            assert p["gain_per_gpu_second"] == pytest.approx((p["o"] - single["o"]) / (p["gpu_seconds"] - 2), rel=1e-3)
            assert p["gain_per_token"] == pytest.approx((p["o"] - single["o"]) / p["tokens"], rel=1e-2)
    assert summary["compute"]["unit"] == "gpu_seconds"
    assert summary["compute"]["verdict"] == (
        "On this run loop stopped after turn 1 gives the most O per GPU-second: +0.5 O over single-shot for 0.5 more "
        "GPU-seconds per sample (1 O per GPU-second)."
    )
    assert summary["modes"]["loop"]["by_turn"][1]["last"]["o"] == pytest.approx(7.0)
    report = (tmp_path / "eval" / "report.md").read_text()
    assert summary["compute"]["verdict"] in report and "| loop stopped after turn 1 | 3 | 7 |" in report
    assert (tmp_path / "eval" / "compute.png").is_file()
    assert all(p["cost"] is None for p in found.values()), "no prices, no cost"
    # a GPU-hour at 3600 and a million tokens at 1e6: a point costs its GPU seconds plus its tokens
    assert run("--report", str(tmp_path / "eval"), "--price-gpu-hour", "3600", "--price-million-tokens", "1e6") == 0
    priced = json.loads((tmp_path / "eval" / "summary.json").read_text())["compute"]["points"]
    for p in priced:
        assert p["cost"] == pytest.approx(p["gpu_seconds"] + p["tokens"], rel=1e-3)
    assert "| est. cost |" in (tmp_path / "eval" / "report.md").read_text()


def test_without_gpu_seconds_everywhere_the_gain_is_per_second_and_without_single_it_says_what_to_run(tmp_path):
    rows = constructed()
    for row in rows:
        if row["mode"] == "single":
            row["compute"]["gpu_seconds"] = None  # an editor on a remote server: no GPU of ours
    write_eval(tmp_path / "eval", rows)
    summary = refresh(tmp_path / "eval")
    assert summary["compute"]["unit"] == "seconds" and "most O per second" in summary["compute"]["verdict"]
    write_eval(tmp_path / "other", [row for row in rows if row["mode"] != "single"])
    assert refresh(tmp_path / "other")["compute"]["verdict"].startswith("Run --modes single as well")
    worse = [row | {"o": 1, "sc": 1, "pq": 1} if row["mode"] != "single" else row for row in rows]
    for row in worse:
        for entry in row.get("by_turn") or []:
            entry.update(o=1, sc=1, pq=1)
    write_eval(tmp_path / "worse", worse)
    assert "no mode beat single-shot's O of 6.5" in refresh(tmp_path / "worse")["compute"]["verdict"]


def test_lines_written_before_compute_was_recorded_still_summarise(tmp_path):
    rows = [{k: v for k, v in row.items() if k not in ("compute", "by_turn")} for row in constructed()]
    write_eval(tmp_path / "eval", rows)
    summary = refresh(tmp_path / "eval")
    assert summary["modes"]["loop"]["o"] == pytest.approx(8.0) and summary["compute"]["points"][0]["n"] == 0
    assert summary["modes"]["loop"]["by_turn"] == []


# -- in Compare ---------------------------------------------------------------------------------------------------


def test_compare_runs_rewrite_once_and_best_of_n_beside_the_loop(tmp_path, scene):
    demo, url = serve(Settings(runs_dir=tmp_path / "runs"))
    image = tmp_path / "scene.png"
    scene.save(image)
    try:
        client = Client(url, verbose=False)
        results = {}
        for mode in actions.COMPARE_MODES[3:]:
            *_, summary, trajectories, _ = client.predict(
                handle_file(str(image)), "make it brighter", mode=mode, max_turns=3, threshold=10, seed=2,
                api_name="/compare",
            )  # fmt: skip
            results[mode] = (summary, trajectories)
    finally:
        demo.close()
    summary, trajectories = results["rewrite once vs Think-while-Edit"]
    rewrite, looped = trajectories["a"], trajectories["b"]
    assert (rewrite["settings"]["first_turn"], len(rewrite["turns"])) == ("polish", 1)
    assert rewrite["turns"][0]["prompt"] == rewrite["first_turn_prompt"] and rewrite["turns"][0]["semantic"] is not None
    assert looped["settings"]["first_turn"] == "none" and summary["data"][0][0].startswith("A · rewrite once")
    summary, trajectories = results["best-of-N vs Think-while-Edit"]
    best_of = trajectories["a"]
    assert [t["seed"] for t in best_of["turns"]] == [2, 3, 4] and best_of["stop_reason"] == "best_of_n"
    assert summary["data"][0][0] == "A · best-of-3 (seeds differ, the thinker picks)"
