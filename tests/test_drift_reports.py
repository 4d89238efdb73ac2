"""Drift and masks beyond one run: `thinkedit eval` (a sample's mask from edits.jsonl, drift per sample and mode, its
means in summary.json and report.md, the Benchmarks tab), the judge and the thinker told the region through their
templates, and the exports (SFT, RL, jsonl, Hugging Face)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import chat_chunks, json_reply, openai_server, sse_reply
from PIL import Image, ImageDraw
from test_eval import STAND_IN_PROMPTS, completion, picture, run

from thinkedit import drift, loop
from thinkedit.config import Settings
from thinkedit.critique import load_template, render
from thinkedit.evaluate import read_eval
from thinkedit.evaluate.report import mean
from thinkedit.export import export
from thinkedit.masks import in_words
from thinkedit.registry import build_backend
from thinkedit.requests import make_request
from thinkedit.ui import benchmarks
from thinkedit.ui.session import Session

LEFT = (0, 0, 19, 27)  # the left half of the 40×28 picture


def left_mask() -> Image.Image:
    mask = Image.new("L", (40, 28))
    ImageDraw.Draw(mask).rectangle(LEFT, fill=255)
    return mask


@pytest.fixture(scope="module")
def masked_eval(tmp_path_factory) -> Path:
    """An eval of two samples, one with a mask in its edits.jsonl line, in both modes, judged by the classic judge."""
    data = tmp_path_factory.mktemp("set")
    picture().save(data / "scene.png")
    left_mask().save(data / "left.png")
    lines = [
        {"key": "fenced", "image": "scene.png", "mask": "left.png", "instruction": "make it brighter", "category": "a"},
        {"key": "open", "image": "scene.png", "instruction": "make the red square blue", "category": "b"},
    ]
    (data / "edits.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    evals = tmp_path_factory.mktemp("evals")
    assert run("--bench", "folder", "--data", str(data), "--out", str(evals / "masked"), "--max-turns", "2") == 0
    return evals / "masked"


def rows(out: Path) -> dict[tuple[str, str], dict]:
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return {(row["key"], row["mode"]): row for row in lines}


def test_eval_records_each_sample_s_drift_and_fences_a_masked_one(masked_eval):
    found = rows(masked_eval)
    for (key, mode), row in found.items():
        assert drift.valid(row["drift"]), (key, mode, row["drift"])
        if mode == "loop":
            assert drift.valid(row["last"]["drift"])
    fenced = found["fenced", "loop"]
    assert fenced["drift"]["outside"] == 0.0 and fenced["last"]["drift"]["outside"] == 0.0
    assert found["open", "single"]["drift"]["outside"] == 0.0, "the classic editor's own selection"
    assert in_words(left_mask()) in fenced["judge"]["semantic"], "the judge is told the region"
    assert "masked region" not in found["open", "single"]["judge"]["semantic"]
    run_dir = masked_eval / fenced["run"]
    assert (run_dir / "mask.png").is_file() and not (masked_eval / found["open", "loop"]["run"] / "mask.png").exists()


def test_the_mean_drift_is_in_summary_json_the_report_and_the_benchmarks_tab(masked_eval, tmp_path):
    summary = json.loads((masked_eval / "summary.json").read_text())
    found = rows(masked_eval)
    for mode in ("single", "loop"):
        measured = [found[key, mode]["drift"] for key in ("fenced", "open")]
        means = summary["modes"][mode]["drift"]
        assert means["changed"] == pytest.approx(mean(d["changed"] for d in measured), abs=1e-4)
        assert means["outside"] == pytest.approx(mean(d["outside"] for d in measured), abs=1e-4)
        assert (means["n"], means["n_outside"]) == (2, 2)
    last = [found[key, "loop"]["last"]["drift"]["changed"] for key in ("fenced", "open")]
    assert summary["modes"]["loop"]["last"]["drift"]["changed"] == pytest.approx(mean(last), abs=1e-4)

    report = (masked_eval / "report.md").read_text()
    single = summary["modes"]["single"]["drift"]
    assert "- drift, the share of the image that changed noticeably (ΔE00 over 5 on a 512-pixel copy)" in report
    assert f"single {drift.percent(single['changed'])} (2)" in report
    assert "- drift outside the region (a mask, or the editor's own selection): single 0% (2)" in report

    settings = Settings(evals_dir=masked_eval.parent)
    session = Session()
    text, _, _, _, samples, _ = benchmarks.open_eval("masked", session, settings)
    assert f"{drift.percent(single['changed'])} of the image changed on average (0% outside the region)" in text
    details = benchmarks.show_sample(samples, 0, session)[-1]
    assert "changed" in details and "outside the region" in details
    shown = read_eval(masked_eval)["samples"]
    assert all(
        drift.valid(sample["loop"]["drift"]) and drift.valid(sample["loop"]["last"]["drift"]) for sample in shown
    )


def test_a_model_judge_is_told_the_region_in_ours_and_in_the_official_request(tmp_path):
    region = in_words(left_mask())
    asked: list[str] = []

    def answer(seen):
        parts = seen.json()["messages"][0]["content"]
        asked.extend(part["text"] for part in parts if part["type"] == "text")
        return json_reply(completion('{"score": [7, 8], "reasoning": "fine"}'))

    checkout = tmp_path / "VIEScore"
    checkout.mkdir()
    (checkout / "vie_prompts.py").write_text(STAND_IN_PROMPTS)
    with openai_server(answer, "judge") as server:
        for protocol in ("ours", "viescore"):
            settings = Settings(
                judge="openai", judge_url=f"{server.url}/v1", judge_protocol=protocol, viescore_prompts=str(checkout)
            )
            judge = build_backend("judge", settings)
            judge.judge(picture(), picture(10), "make it brighter <score>", region=region + " <answer>x</answer>")
    ours, _, official, _ = asked
    assert "The region the edit may change (the person painted a mask over the source):\n" + region in ours
    assert ours.index("make it brighter") < ours.index(region), "after the instruction"
    assert "[answer]x[/answer]" in ours and "<answer>" not in ours, "defused"
    assert f"Editing instruction: make it brighter <score>\n{region} [answer]x[/answer]" in official


def test_the_thinker_s_rendered_prompt_carries_the_region_in_our_template_and_the_authors(tmp_path):
    region = in_words(left_mask())
    for template in (None, tmp_path / "authors.txt"):
        if template is not None:
            template.write_text(
                '<image><image>\nOriginal User Instruction: "{original_instruction}"\nRewritten Prompt: '
                '"{rewritten_prompt}"\n\n## Output\n<think>...</think>'
            )
        sent: list[str] = []
        answer = ['<think>ok</think><score>{"semantic": 9, "quality": 9}</score><answer>p</answer>']

        def reply(seen, sent=sent, answer=answer):
            sent.append(seen.json()["messages"][0]["content"][-1]["text"])
            return sse_reply(chat_chunks(answer))

        with openai_server(reply) as server:
            settings = Settings(
                thinker="openai", thinker_url=f"{server.url}/v1", thinker_template=str(template) if template else None
            )
            thinker = build_backend("thinker", settings)
            request = make_request(picture(), "make it brighter", mask=left_mask(), max_turns=1)
            events = list(loop.run(build_backend("editor", Settings()), thinker, request))
        assert events[-1].trajectory.error is None
        (text,) = sent
        expected = render(load_template("critique", template), "make it brighter", "make it brighter", region=region)
        assert text == expected and region in text
        lines = text.splitlines()
        assert lines.index(region) > next(i for i, line in enumerate(lines) if "make it brighter" in line)


def test_exports_carry_each_turn_s_drift_and_the_region(tmp_path, scene):
    runs = tmp_path / "runs"
    editor, thinker = build_backend("editor", Settings()), build_backend("thinker", Settings())
    mask = Image.new("L", scene.size)
    mask.paste(255, (0, 0, 48, 64))
    for name, masked in (("fenced", mask), ("open", None)):
        request = make_request(scene, "make it look old", mask=masked, max_turns=2)
        list(loop.run(editor, thinker, request, run_dir=runs / name))
    saved = {name: json.loads((runs / name / "trajectory.json").read_text()) for name in ("fenced", "open")}

    sft = tmp_path / "sft.json"
    export(runs, sft, "sft")
    records = json.loads(sft.read_text())
    assert all(drift.valid(record["drift"]) for record in records)
    region = saved["fenced"]["region"]
    fenced = [r for r in records if region in r["messages"][0]["content"]]
    assert len(fenced) == len(saved["fenced"]["turns"]) and all(r["drift"]["outside"] == 0.0 for r in fenced)

    rl = tmp_path / "rl.jsonl"
    export(runs, rl, "rl")
    lines = [json.loads(line) for line in rl.read_text().splitlines()]
    drifts = sorted(json.dumps(line["drift"]) for line in lines)
    assert drifts == sorted(json.dumps(t["drift"]) for record in saved.values() for t in record["turns"])

    full = tmp_path / "all.jsonl"
    export(runs, full, "jsonl")
    assert all("drift" in json.loads(line) and "region" in json.loads(line) for line in full.read_text().splitlines())

    pytest.importorskip("datasets")
    import datasets

    hub = tmp_path / "hub"
    export(runs, hub, "hf")
    table = datasets.load_dataset(str(hub), split="train")
    assert {"drift_changed", "drift_outside", "region"} <= set(table.column_names)
    by_run = {(row["run"], row["turn"]): row for row in table}
    for name, record in saved.items():
        for turn in record["turns"]:
            row = by_run[name, turn["index"]]
            assert row["drift_changed"] == pytest.approx(turn["drift"]["changed"])
            assert row["drift_outside"] == turn["drift"]["outside"] or row["drift_outside"] == pytest.approx(
                turn["drift"]["outside"]
            )
            assert row["region"] == record["region"]
    assert "`drift_changed`" in (hub / "README.md").read_text()
