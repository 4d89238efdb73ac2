"""`thinkedit eval`, offline: GEdit- and ImgEdit-shaped data built here with `datasets` and Pillow, the classic
backends, OpenAI-compatible servers on 127.0.0.1 as judge and thinker, the tiny Qwen-VL as a judge through
transformers, torchrun on CPU, resume, and the VIEScore arithmetic checked against numbers worked out by hand."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import datasets
import pytest
from helpers import CHAT, FakeServer, chat_chunks, decode_b64_image, json_reply, openai_server, sse_reply
from PIL import Image, ImageDraw

from thinkedit import runtime
from thinkedit.cli import main
from thinkedit.config import Settings
from thinkedit.editors.classic import ClassicEditor
from thinkedit.evaluate import read_eval
from thinkedit.evaluate.data import filter_samples, load
from thinkedit.evaluate.harness import Backends
from thinkedit.images import png_bytes
from thinkedit.judges.classic import ClassicJudge
from thinkedit.judges.viescore import read_scores
from thinkedit.registry import build_backend
from thinkedit.thinkers.classic import ClassicThinker
from thinkedit.thinkers.qwen_vl import QwenVLThinker

# key, task_type, instruction, language, Intersection_exist, image
GEDIT = [
    ("g1", "color_alter", "make it black and white", "en", True, "ok"),
    ("g2", "color_alter", "make it look like summer", "en", False, "ok"),
    ("g3", "tone_transfer", "make it brighter", "en", True, "ok"),
    ("g4", "tone_transfer", "make it warmer", "cn", False, "ok"),  # Chinese: left out of --language en
    ("g5", "tone_transfer", "make it cooler", "en", False, "broken"),  # bytes that are not an image
    ("g6", "color_alter", None, "en", False, "ok"),  # no instruction
]
RAN = ["g1", "g2", "g3"]
FEATURES = datasets.Features(
    {
        "key": datasets.Value("string"),
        "task_type": datasets.Value("string"),
        "instruction": datasets.Value("string"),
        "instruction_language": datasets.Value("string"),
        "input_image": datasets.Image(),
        "Intersection_exist": datasets.Value("bool"),
    }
)


def picture(shade: int = 0) -> Image.Image:
    image = Image.new("RGB", (40, 28), (135, 190 - shade, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 18, 39, 27], fill=(60, 150, 60))
    draw.rectangle([5, 5, 15, 15], fill=(220, 30, 30))
    return image


@pytest.fixture(scope="module", autouse=True)
def datasets_cache(tmp_path_factory):
    """`datasets` prepares local parquet files in its cache: keep that out of the home folder."""
    cache = tmp_path_factory.mktemp("datasets-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
        patch.setenv("HF_DATASETS_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="module")
def gedit(tmp_path_factory) -> Path:
    """A GEdit-Bench-shaped parquet file (the hub's columns), with a broken image and a missing instruction."""
    columns = {name: [] for name in FEATURES}
    for number, (key, task, instruction, language, intersection, image) in enumerate(GEDIT):
        data = png_bytes(picture(number * 10)) if image == "ok" else b"these bytes are not an image"
        for name, value in zip(
            FEATURES, (key, task, instruction, language, {"bytes": data, "path": None}, intersection), strict=True
        ):
            columns[name].append(value)
    path = tmp_path_factory.mktemp("gedit") / "test-00000-of-00001.parquet"
    datasets.Dataset.from_dict(columns, features=FEATURES).to_parquet(str(path))
    return path


def write_folder(folder: Path, edits: list[tuple[str, str, str]]) -> Path:
    """An edits.jsonl set: (key, instruction, category) each on its own copy of the picture."""
    folder.mkdir(parents=True, exist_ok=True)
    picture().save(folder / "scene.png")
    lines = [
        {"key": key, "image": "scene.png", "instruction": text, "category": category} for key, text, category in edits
    ]
    (folder / "edits.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def run(*args: str) -> int:
    return main(["eval", *args, "--no-progress"])


def judged_single(data: Path, out: Path, *judge: str) -> int:
    """`eval` of a folder set in single mode with the judge `judge` names (`--judge` and what follows it)."""
    return run("--bench", "folder", "--data", str(data), "--out", str(out), "--modes", "single", "--judge", *judge)


def lines_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def by_key(out: Path, mode: str) -> dict[str, dict]:
    return {row["key"]: row for row in lines_of(out) if row["mode"] == mode}


# What differs between two runs of the same eval: clocks (and what is worked out from them), and which process ran it.
TIMING = {"seconds", "edit_seconds", "think_seconds", "gain_per_second", "verdict", "process"}


def without_timing(value):
    """A line or a summary without what the clock decides, at any depth."""
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


# -- GEdit-Bench with the classic backends --------------------------------------------------------------------


def test_gedit_run_writes_the_benchmark_layout_and_records_bad_rows(gedit, tmp_path, capsys):
    out = tmp_path / "eval"
    assert run("--bench", "gedit", "--data", str(gedit), "--out", str(out), "--max-turns", "3") == 0
    printed = capsys.readouterr().out

    rows = lines_of(out)
    assert [(r["key"], r["mode"]) for r in rows] == [
        (k, m) for k in ("g1", "g2", "g3", "g5", "g6") for m in ("single", "loop")
    ]
    for row in rows:
        if row["key"] not in RAN:
            continue
        assert row["error"] is None and row["language"] == "en"
        folder = out / "images" / row["mode"] / "fullset" / row["category"] / "en"
        assert row["image"] == str((folder / f"{row['key']}.png").relative_to(out))
        assert Image.open(out / row["image"]).size == (40, 28)
        source = Image.open(folder / f"{row['key']}_SRCIMG.png")  # what GEdit's scorer compares against
        assert source.tobytes() == Image.open(out / row["run"] / "source.png").tobytes()
        assert (out / row["run"] / "trajectory.json").is_file()
        assert row["o"] == pytest.approx(math.sqrt(row["sc"] * row["pq"]))
        assert row["sc"] == min(row["scores"]["semantic"]) and row["pq"] == min(row["scores"]["quality"])
        seconds = row["seconds"]  # the harness is what runs outside loop.run and the judge
        assert seconds["harness"] == pytest.approx(seconds["wall"] - seconds["loop"] - seconds["judge"], abs=1e-4)
        assert seconds["loop"] >= seconds["edit"] + seconds["think"] + seconds["store"] - 1e-4
        if row["mode"] == "loop":
            assert (out / row["last"]["image"]).is_file() and "loop-last" in row["last"]["image"]
    failures = {(r["key"], r["mode"]): r["error"] for r in rows if r["error"]}
    assert set(failures) == {(k, m) for k in ("g5", "g6") for m in ("single", "loop")}
    assert failures["g5", "single"].startswith("bad data:") and "not an image" in failures["g5", "single"]
    assert failures["g6", "loop"] == "bad data: the row has no instruction"

    summary = json.loads((out / "summary.json").read_text())
    single = summary["modes"]["single"]
    assert (single["samples"], single["failed"], single["n"]) == (5, 2, 3)
    assert set(single["categories"]) == {"color_alter", "tone_transfer"}
    assert single["intersection"]["n"] == 2  # g1 and g3
    assert summary["language"] == "en" and summary["judge"]["name"] == "classic"
    assert "self-grading" in summary["warnings"][0] and "self-grading" in printed
    assert 0 < summary["seconds"]["harness_share"] < 1 and summary["seconds"]["per_sample"]["edit"] > 0
    report = (out / "report.md").read_text()
    assert "| mean over categories |" in report and "| intersection subset |" in report and report in printed
    assert Image.open(out / "report.png").format == "PNG"
    assert not (out / "shards").exists()


def test_selection_keeps_the_benchmark_order(gedit):
    samples = load("gedit", str(gedit), language="all")
    assert [s.key for s in samples] == ["g1", "g2", "g3", "g4", "g5", "g6"]
    assert [s.id for s in filter_samples(samples, categories=["tone_transfer"], limit=2)] == ["en/g3", "cn/g4"]
    assert [s.key for s in filter_samples(samples, keys=["g5", "g1"])] == ["g1", "g5"]


def test_bad_commands_and_missing_data_say_so_in_one_line(gedit, tmp_path, capsys):
    assert run("--bench", "gedit", "--data", "nobody/NoSuchBench", "--out", str(tmp_path / "a")) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "HF_HUB_OFFLINE=1" in message and "hf download stepfun-ai/GEdit-Bench" in message
    assert run("--data", str(gedit), "--out", str(tmp_path / "b"), "--modes", "single,twice") == 2
    assert "--modes" in capsys.readouterr().err
    assert run("--data", str(gedit), "--out", str(tmp_path / "c"), "--categories", "dragons") == 2
    assert "color_alter, tone_transfer" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


# -- resume and interruption ---------------------------------------------------------------------------------


@pytest.fixture
def calls(monkeypatch) -> dict[str, int]:
    """Counts every edit, critique and judgement of the classic backends."""
    counted = {"edit": 0, "critique": 0, "judge": 0}
    for cls, name in ((ClassicEditor, "edit"), (ClassicThinker, "critique"), (ClassicJudge, "judge")):
        original = getattr(cls, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            counted[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, counting)
    return counted


def test_resume_asks_nothing_new_and_an_interrupt_loses_only_what_was_in_flight(gedit, tmp_path, calls, monkeypatch):
    out = tmp_path / "eval"
    command = ("--data", str(gedit), "--out", str(out), "--max-turns", "3")
    edit = ClassicEditor.edit
    stopped, stop = threading.Event(), Backends.stop

    def stopping(self) -> None:
        stop(self)
        stopped.set()

    monkeypatch.setattr(Backends, "stop", stopping)

    def interrupted(self, image, prompt, *, on_step=None, **kwargs):
        if calls["edit"] == 4:  # Ctrl-C during the fifth edit, which then stops at its next step
            # Python drops a KeyboardInterrupt raised while the main thread runs a finalizer ("Exception ignored"),
            # which the garbage of a long test session makes likely: press again, as a person would, until the
            # harness has stopped the runs in flight.
            os.kill(os.getpid(), signal.SIGINT)
            while not stopped.wait(2.0):
                os.kill(os.getpid(), signal.SIGINT)
            while True:
                on_step(0, 1)  # raises Cancelled: the harness stopped this run
        return edit(self, image, prompt, on_step=on_step, **kwargs)

    monkeypatch.setattr(ClassicEditor, "edit", interrupted)
    assert run(*command) == 130
    kept = [json.loads(line) for line in (out / "shards" / "rank-0.jsonl").read_text().splitlines()]
    # the three runs finished before the interrupt are kept; the one in flight (g2's loop) is not
    assert [(k["key"], k["mode"]) for k in kept] == [("g1", "single"), ("g1", "loop"), ("g2", "single")]
    assert not (out / "samples.jsonl").exists() and not (out / "runs" / "loop" / "en" / "g3").exists()

    monkeypatch.setattr(ClassicEditor, "edit", edit)
    assert run(*command) == 0
    rows = lines_of(out)
    assert len(rows) == 10 and not (out / "shards").exists()
    assert [without_timing(r) for r in rows if (r["key"], r["mode"]) in {(k["key"], k["mode"]) for k in kept}] == [
        without_timing(k) for k in kept
    ]  # what finished before the interrupt was kept, not redone

    before = {name: 0 for name in calls}
    calls.update(before)
    written = (out / "samples.jsonl").read_text()
    assert run(*command) == 0
    assert calls == before and (out / "samples.jsonl").read_text() == written

    # a lost line and a line cut short by a crash: exactly that (key, mode) runs again
    dropped = next(r for r in rows if (r["key"], r["mode"]) == ("g3", "loop"))
    (out / "samples.jsonl").write_text(
        "".join(line + "\n" for line in written.splitlines() if json.loads(line) != dropped)
    )
    (out / "shards").mkdir()
    (out / "shards" / "rank-0.jsonl").write_text('{"key": "g3", "mode": "lo')
    assert run(*command) == 0
    assert calls["edit"] == dropped["turns"] and calls["critique"] == dropped["turns"]
    assert calls["judge"] == dropped["turns"]  # each turn judged once: the loop's O after every turn
    assert [without_timing(r) for r in lines_of(out)] == [without_timing(r) for r in rows]


def test_continuing_with_other_settings_is_refused(gedit, tmp_path, capsys):
    out = tmp_path / "eval"
    assert run("--data", str(gedit), "--out", str(out), "--modes", "single", "--limit", "1") == 0
    assert run("--data", str(gedit), "--out", str(out), "--modes", "single", "--max-turns", "5") == 2
    assert "max_turns 3 → 5" in capsys.readouterr().err


# -- sharding -------------------------------------------------------------------------------------------------


def test_two_torchrun_processes_give_the_same_samples_as_one(gedit, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["eval", "--data", str(gedit), "--max-turns", "2", "--no-progress"]
    assert main([*common, "--out", str(one)]) == 0
    launched = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "thinkedit",
            *common,
            "--out",
            str(two),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]

    alone, sharded = lines_of(one), lines_of(two)
    assert [without_timing(r) for r in sharded] == [without_timing(r) for r in alone]
    order = ["g1", "g2", "g3", "g5", "g6"]
    assert {r["key"]: r["process"] for r in sharded} == {key: i % 2 for i, key in enumerate(order)}
    assert {r["process"] for r in alone} == {0}
    assert not (two / "shards").exists() and launched.stdout.count("| mean over categories |") == 1
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (one, two)]
    assert without_timing(summaries[0]) == without_timing(summaries[1])


# -- the judges ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, scores",
    [
        ('{"score": [7, 9], "reasoning": "two of the 3 dogs"}', [7, 9]),
        ('Here:\n```json\n{"score" : [5,10],\n"reasoning": "ok"}\n```', [5, 10]),
        ('||V^=^V||\n{\n"score" : [3, 4],\n"reasoning" : "x"\n}\n||V^=^V||', [3, 4]),
        ('<think>maybe [1, 2]</think>\n{"score": ["6", "8"]}', [6, 8]),
        ("[6, 0]", [6, 0]),
        ("7, 9", [7, 9]),
        ("score: 4.5, 5 since the sky changed", [4.5, 5]),
        ("It looks fine to me.", None),
        ('{"score": [7]}', None),
        ('{"score": [11, 3]}', None),
        ("", None),
    ],
)
def test_verdicts_are_read_tolerantly(reply, scores):
    assert read_scores(reply) == scores


def test_classic_judge_measures_what_was_asked():
    source = picture()
    judge = ClassicJudge(None, None)
    done = judge.judge(source, source.convert("L").convert("RGB"), "make it black and white")
    untouched = judge.judge(source, source, "make it black and white")
    assert done.semantic == [10.0, 10.0] and done.sc == 10.0
    assert untouched.semantic[0] == 0.0 and untouched.sc == 0.0 and untouched.o == 0.0
    assert json.loads(untouched.semantic_reply)["score"] == untouched.semantic


def completion(text: str) -> dict:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "judge-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setenv("THINKEDIT_RETRY_BACKOFF", "0.05")


def chat_server(answer, streaming: bool = True, model: str = "judge-model") -> FakeServer:
    """An OpenAI-compatible server whose reply is `answer(seen, images, text)`, streamed or whole."""

    def reply(seen):
        parts = seen.json()["messages"][0]["content"]
        images = [decode_b64_image(p["image_url"]["url"]) for p in parts if p["type"] == "image_url"]
        text = answer(seen, images, parts[-1]["text"])
        if not streaming:
            return json_reply(completion(text))
        return sse_reply(chat_chunks([text[i : i + 7] for i in range(0, len(text), 7)]))

    return openai_server(reply, model)


# instruction -> semantic replies (one per question asked), quality replies
SCRIPT = {
    "make it brighter": (['{"score": [6, 8], "reasoning": "a"}'], ["[9, 7]"]),
    "make it darker": (['```json\n{"score": [4, 10], "reasoning": "b"}\n```'], ['{"score": [9, 9]}']),
    "make it warmer": (["I cannot tell.", "9, 9"], ['<think>hmm [1, 1]</think>{"score": [4, 5]}']),
    "make it cooler": (['{"score": [7, 8]}'], ["Looks fine."]),  # quality never readable: null, counted
}


@pytest.mark.parametrize("streaming", [True, False], ids=["streamed", "whole"])
def test_openai_judge_follows_viescore_and_the_macro_average(streaming, tmp_path, monkeypatch):
    monkeypatch.setenv("THINKEDIT_JUDGE_API_KEY", "judge-key-1234")
    monkeypatch.setenv("THINKEDIT_THINKER_API_KEY", "thinker-key-9999")
    data = write_folder(
        tmp_path / "set",
        [
            ("s1", "make it brighter", "alpha"),
            ("s2", "make it darker", "alpha"),
            ("s3", "make it warmer", "beta"),
            ("s4", "make it cooler", "beta"),
        ],
    )
    templates = None
    if not streaming:  # --judge-templates: another folder's texts are what the judge is asked
        templates = tmp_path / "templates"
        templates.mkdir()
        (templates / "judge_semantic.txt").write_text("GRADE THE EDIT: {instruction}")
        (templates / "judge_quality.txt").write_text("GRADE THE LOOK")
    asked: dict[tuple[str, str], int] = {}
    current = {}

    def answer(seen, images, text):
        if len(images) == 2:  # semantic consistency: source then edited, and the instruction
            lines = text.splitlines()
            current["instruction"] = next(i for i in SCRIPT if any(line.endswith((f": {i}", i)) for line in lines))
            assert images[0].tobytes() == picture().tobytes()  # the untouched source comes first
            kind = "semantic"
        else:  # perceptual quality: the edited image alone
            assert len(images) == 1
            kind = "quality"
        instruction = current["instruction"]
        replies = SCRIPT[instruction][0 if kind == "semantic" else 1]
        number = asked.get((instruction, kind), 0)
        asked[instruction, kind] = number + 1
        if templates is not None:
            assert text.startswith("GRADE THE EDIT: " if kind == "semantic" else "GRADE THE LOOK")
        else:
            assert ("Editing success" in text) == (kind == "semantic") and ("Naturalness" in text) == (
                kind == "quality"
            )
        if number:
            assert "JSON object alone" in text  # a retry reminds the judge of the format
        return replies[min(number, len(replies) - 1)]

    with chat_server(answer, streaming) as server:
        out = tmp_path / "eval"
        extra = ["--judge-templates", str(templates)] if templates else []
        assert judged_single(data, out, "openai", "--judge-url", f"{server.url}/v1", *extra) == 0
        keys = {seen.headers.get("authorization") for seen in server.requests(*CHAT)}
    assert keys == {"Bearer judge-key-1234"}

    rows = by_key(out, "single")
    assert (rows["s1"]["sc"], rows["s1"]["pq"], rows["s1"]["o"]) == (6, 7, pytest.approx(math.sqrt(42)))
    assert (rows["s2"]["sc"], rows["s2"]["pq"], rows["s2"]["o"]) == (4, 9, 6)
    assert (rows["s3"]["sc"], rows["s3"]["pq"], rows["s3"]["judge"]["asked"]) == (9, 4, 3)
    assert rows["s3"]["judge"]["semantic"] == "9, 9"  # the reply that was read is the one kept
    s4 = rows["s4"]
    assert (s4["sc"], s4["pq"], s4["o"], s4["unreadable"]) == (7, None, None, ["quality"])
    assert s4["judge"]["asked"] == 1 + 3 and asked["make it cooler", "quality"] == 3  # asked, then 2 retries
    assert all(r["judge_model"] == "judge-model" for r in rows.values())

    # by hand: alpha = (6, 7, √42) and (4, 9, 6) → SC 5, PQ 8, O (√42+6)/2; beta = (9, 4, 6) only (s4 has no PQ)
    alpha_o = (math.sqrt(42) + 6) / 2
    single = json.loads((out / "summary.json").read_text())["modes"]["single"]
    assert single["categories"]["alpha"] == {"n": 2, "sc": 5, "pq": 8, "o": pytest.approx(alpha_o, abs=1e-4)}
    assert single["categories"]["beta"] == {"n": 1, "sc": 9, "pq": 4, "o": 6}
    # the mean over categories, not over samples (that would give SC (6+4+9)/3)
    assert (single["sc"], single["pq"]) == (7, 6) and single["o"] == pytest.approx((alpha_o + 6) / 2, abs=1e-4)
    assert (single["n"], single["failed"], single["unreadable"]) == (3, 0, 1)
    judge = json.loads((out / "summary.json").read_text())["judge"]
    assert judge == {"name": "openai", "model": "judge-model", "protocol": "ours"}


def test_concurrency_keeps_several_samples_in_flight(tmp_path):
    data = write_folder(tmp_path / "set", [("a", "make it brighter", "x"), ("b", "make it darker", "x")])
    together = threading.Barrier(2)

    def answer(seen, images, text):
        if len(images) == 2:
            together.wait(timeout=30)  # both samples' first questions must be open at once
        return '{"score": [8, 8]}'

    with chat_server(answer) as server:
        out = tmp_path / "eval"
        assert judged_single(data, out, "openai", "--judge-url", f"{server.url}/v1", "--concurrency", "2") == 0
    assert [(r["key"], r["error"], r["o"]) for r in lines_of(out)] == [("a", None, 8.0), ("b", None, 8.0)]


def test_a_loop_is_judged_on_its_best_turn_and_on_its_last(tmp_path):
    data = write_folder(tmp_path / "set", [("k", "make it brighter by 10%", "light")])
    critiques = iter(
        [
            '<think>a bit dark</think><score>{"semantic": 7, "quality": 7}</score>'
            "<answer>make it brighter by 60%</answer>",
            '<think>far too bright</think><score>{"semantic": 3, "quality": 4}</score>'
            "<answer>make it brighter by 5%</answer>",
        ]
    )
    with chat_server(lambda seen, images, text: next(critiques), model="served-thinker") as thinker:
        out = tmp_path / "eval"
        assert (
            run(
                "--bench",
                "folder",
                "--data",
                str(data),
                "--out",
                str(out),
                "--thinker",
                "openai",
                "--thinker-url",
                f"{thinker.url}/v1",
                "--max-turns",
                "2",
            )
            == 0
        )
    row = by_key(out, "loop")["k"]
    assert (row["turns"], row["best_turn"], row["last"]["turn"]) == (2, 1, 2)
    assert row["prompts"] == ["make it brighter by 10%", "make it brighter by 60%"]
    run_dir = out / row["run"]
    assert (out / row["image"]).read_bytes() == (run_dir / "turn_01.png").read_bytes()
    assert (out / row["last"]["image"]).read_bytes() == (run_dir / "turn_02.png").read_bytes()
    assert row["last"]["judge"]["semantic"] != row["judge"]["semantic"]  # judged apart: a 60% brightening
    summary = json.loads((out / "summary.json").read_text())
    assert summary["modes"]["loop"]["last"]["o"] == pytest.approx(row["last"]["o"], abs=1e-4)
    assert summary["thinker"]["model"] == "served-thinker" and summary["warnings"] == []


def test_hf_inference_judge_goes_through_inference_client(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the server is still 127.0.0.1
    monkeypatch.setenv("HF_TOKEN", "hf-token-5678")
    with chat_server(lambda seen, images, text: "[8, 6]" if len(images) == 2 else '{"score": [9, 7]}') as server:
        judge = build_backend(
            "judge", Settings(judge="hf-inference", judge_url=f"{server.url}/v1", judge_model="org/vlm")
        )
        verdict = judge.judge(picture(), picture(30), "make it bluer")
        requests = server.requests(*CHAT)
    assert (verdict.semantic, verdict.quality, verdict.sc, verdict.pq) == ([8, 6], [9, 7], 6, 7)
    assert [r.json()["model"] for r in requests] == ["org/vlm", "org/vlm"]
    assert {r.headers["authorization"] for r in requests} == {"Bearer hf-token-5678"}


def test_backends_lists_the_judges(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    judges = out[out.index("judges (thinkedit eval):") :]
    assert "classic" in judges and "openai" in judges and "no endpoint configured" in judges


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory) -> str:
    from tiny_qwen_vl import build_tiny_qwen_vl

    return str(build_tiny_qwen_vl(tmp_path_factory.mktemp("tiny-judge") / "qwen2_5_vl", "qwen2_5_vl"))


def test_tiny_qwen_vl_judges_through_transformers(tiny_judge, tmp_path, monkeypatch):
    for name, value in (
        ("THINKER_MAX_NEW_TOKENS", "6"),
        ("THINKER_IMAGE_SIDE", "64"),
        ("DEVICE", "cpu"),
        ("JUDGE_RETRIES", "1"),
    ):
        monkeypatch.setenv(f"THINKEDIT_{name}", value)
    asks = []
    original = QwenVLThinker.ask

    def recording(self, images, text, **kwargs):
        reply = original(self, images, text, **kwargs)
        asks.append((len(images), text, reply, self.role))
        return reply

    monkeypatch.setattr(QwenVLThinker, "ask", recording)
    data = write_folder(tmp_path / "set", [("k", "make the red square blue", "color")])
    out = tmp_path / "eval"
    try:
        assert judged_single(data, out, "qwen-vl", "--judge-model", tiny_judge) == 0
    finally:
        runtime.CACHE.clear()
    row = by_key(out, "single")["k"]
    assert row["error"] is None and row["judge_model"] == tiny_judge
    assert asks[0][0] == 2 and "make the red square blue" in asks[0][1] and "Editing success" in asks[0][1]
    assert asks[-1][0] == 1 and "Naturalness" in asks[-1][1] and {a[3] for a in asks} == {"judge"}
    assert all(reply for _, _, reply, _ in asks)  # the random model really generated text
    assert row["judge"]["asked"] == len(asks) == 2 + len(row["unreadable"])  # each null asked once more
    assert row["judge"]["semantic"] == [a for a in asks if a[0] == 2][-1][2]
    assert json.loads((out / "summary.json").read_text())["modes"]["single"]["unreadable"] == len(row["unreadable"])


# -- ImgEdit, folders, the report ----------------------------------------------------------------------------


def test_imgedit_basic_set_writes_key_png(tmp_path):
    root = tmp_path / "Benchmark" / "singleturn"
    for folder, name in (("animal", "000342021.jpg"), ("style", "000278574.png")):
        (root / folder).mkdir(parents=True)
        picture().save(root / folder / name)
    entries = {
        "1082": {"id": "animal/000342021.jpg", "prompt": "make it black and white", "edit_type": "adjust"},
        "673": {"id": "style/000278574.png", "prompt": "make it look old", "edit_type": "style"},
        "97": {"id": "animal/000000001.jpg", "prompt": "make it brighter", "edit_type": "adjust"},
    }
    (root / "basic_edit.json").write_text(json.dumps(entries))
    out = tmp_path / "eval"
    assert run("--bench", "imgedit", "--data", str(root), "--out", str(out), "--modes", "single") == 0
    rows = lines_of(out)
    assert [(r["key"], r["category"]) for r in rows] == [("1082", "adjust"), ("673", "style"), ("97", "adjust")]
    assert [r["image"] for r in rows[:2]] == ["images/single/1082.png", "images/single/673.png"]
    assert all((out / r["image"]).is_file() for r in rows[:2]) and not list(out.glob("images/**/*_SRCIMG.png"))
    assert rows[2]["error"].startswith("bad data: No image file")
    assert "intersection" not in json.loads((out / "summary.json").read_text())["modes"]["single"]

    picture().save(root / "animal" / "000000001.jpg")  # the missing image arrives: only that failure runs again
    assert run("--bench", "imgedit", "--data", str(root), "--out", str(out), "--modes", "single") == 0
    assert lines_of(out)[2]["error"] is not None  # a plain rerun keeps what is recorded
    # ImgEdit's official step 1 fails on a key without a result: the edit_json beside images/single/ names only
    # the keys that have one, exactly as basic_edit.json has them
    scored = json.loads((out / "images" / "single_basic_edit.json").read_text())
    assert scored == {key: entries[key] for key in ("1082", "673")}
    assert run("--bench", "imgedit", "--data", str(root), "--out", str(out), "--modes", "single", "--retry-failed") == 0
    again = lines_of(out)
    assert again[2]["error"] is None and (out / again[2]["image"]).is_file()
    assert [without_timing(r) for r in again[:2]] == [without_timing(r) for r in rows[:2]]
    assert json.loads((out / "images" / "single_basic_edit.json").read_text()) == entries

    # the headline is EditThinker's step 2 overall, the mean over all images; the mean over edit types beside it
    summary = json.loads((out / "summary.json").read_text())
    single = summary["modes"]["single"]
    by_type = {t: [r["o"] for r in again if r["category"] == t] for t in ("adjust", "style")}
    over_types = sum(sum(v) / len(v) for v in by_type.values()) / 2
    assert summary["averaged"] == "over images" and single["o"] == pytest.approx(
        sum(r["o"] for r in again) / 3, abs=1e-4
    )
    assert single["over_categories"]["o"] == pytest.approx(over_types, abs=1e-4)
    assert abs(single["o"] - single["over_categories"]["o"]) > 1e-3  # the two rules give different numbers here
    report = (out / "report.md").read_text()
    assert report.index("| mean over images |") < report.index("| mean over categories |")


def test_report_again_and_what_the_benchmarks_tab_reads(tmp_path):
    data = write_folder(
        tmp_path / "set", [("bw", "make it black and white", "color"), ("summer", "make it look like summer", "look")]
    )
    out = tmp_path / "eval"
    assert run("--bench", "folder", "--data", str(data), "--out", str(out)) == 0
    summary = json.loads((out / "summary.json").read_text())
    for name in ("summary.json", "report.md", "report.png"):
        (out / name).unlink()
    assert run("--report", str(out)) == 0
    again = json.loads((out / "summary.json").read_text())
    assert {k: v for k, v in again.items() if k != "versions"} == {k: v for k, v in summary.items() if k != "versions"}
    assert (out / "report.md").is_file() and (out / "report.png").is_file()

    view = read_eval(out)
    assert view["summary"]["modes"] == summary["modes"]
    assert len(view["headers"]) == len(view["table"][0]) and view["table"][-1][0] == "mean over categories"
    assert {(p["category"], p["series"]) for p in view["chart"]} == {
        (c, s) for c in ("color", "look", "mean") for s in ("single", "loop", "loop last")
    }
    first, second = view["samples"]
    assert first["key"] == "summer" and first["gain"] > 0 and second["gain"] == 0  # sorted by the loop's gain
    assert first["loop"]["prompts"][0] == "make it look like summer" and len(first["loop"]["prompts"]) > 1
    for path in (first["source"], first["single"]["image"], first["loop"]["image"], first["loop"]["last"]["image"]):
        assert Path(path).is_file()
    assert run("--report", str(tmp_path)) == 2  # not an eval folder


def build_eval(evals: Path) -> Path:
    """A small eval folder (classic backends, two samples: one the loop improves, one it does not) in `evals`."""
    data = write_folder(
        evals.parent / "eval-set",
        [("bw", "make it black and white", "color"), ("summer", "make it look like summer", "look")],
    )
    out = evals / "classic-folder"
    assert run("--bench", "folder", "--data", str(data), "--out", str(out)) == 0
    return out


# -- reproducing the paper and the official scorers ---------------------------------------------------------

# GEdit-Bench's 11 task types, in calculate_statistics.py's order; one English instruction the classic editor
# does without changing the shape (the official scorer resizes every result to the source's size) and one Chinese
# instruction it cannot read, so the two languages score far apart
GROUPS = {
    "background_change": ("make it black and white", "把背景换成海滩"),
    "color_alter": ("make the red square blue", "把红色方块变成蓝色"),
    "material_alter": ("make it look old", "让它看起来像木头"),
    "motion_change": ("increase the contrast", "让人物跳起来"),
    "ps_human": ("make it brighter", "让人更瘦一些"),
    "style_change": ("make it look like a sketch", "变成油画风格"),
    "subject-add": ("add a thin red frame", "加一只猫"),
    "subject-remove": ("make it sepia", "去掉红色方块"),
    "subject-replace": ("make it warmer", "把天空换成晚霞"),
    "text_change": ("make it darker", "把文字改成你好"),
    "tone_transfer": ("make it cooler", "变成黄昏的色调"),
}


def gedit_dataset(rows: list[tuple[str, str, str, str, bool]]) -> datasets.Dataset:
    """A GEdit-Bench-shaped dataset of (key, task_type, instruction, language, Intersection_exist) rows."""
    columns = {name: [] for name in FEATURES}
    for number, (key, task, instruction, language, intersection) in enumerate(rows):
        image = {"bytes": png_bytes(picture(number % 7 * 10)), "path": None}
        for name, value in zip(FEATURES, (key, task, instruction, language, image, intersection), strict=True):
            columns[name].append(value)
    return datasets.Dataset.from_dict(columns, features=FEATURES)


def both_languages() -> datasets.Dataset:
    """Every task type twice in English (one of them in the Intersection subset, one a second, cooler picture)
    and once in Chinese."""
    rows = []
    for group, (english, chinese) in GROUPS.items():
        rows += [
            (f"{group}-1", group, english, "en", True),
            (f"{group}-2", group, english + " and blur it", "en", False),
        ]
        rows.append((f"{group}-3", group, chinese, "cn", True))
    return gedit_dataset(rows)


def official_statistics(rows: list[dict], language: str, intersection: bool = False) -> dict:
    """calculate_statistics.py's arithmetic, done here apart from ThinkEdit's: the rows of one language (and of
    the Intersection subset), per task type the plain mean of SC, PQ and √(SC·PQ), then the plain mean over the
    11 task types."""
    groups = {}
    for group in GROUPS:
        mine = [
            r
            for r in rows
            if r["category"] == group and r["language"] == language and (r["intersection"] or not intersection)
        ]
        groups[group] = [
            sum(r["sc"] for r in mine) / len(mine),
            sum(r["pq"] for r in mine) / len(mine),
            sum(math.sqrt(r["sc"] * r["pq"]) for r in mine) / len(mine),
        ]
    average = [sum(values[i] for values in groups.values()) / len(groups) for i in range(3)]
    return {"groups": groups, "average": average}


def assert_same_numbers(block: dict, expected: dict) -> None:
    """Our summary block against the official statistics, to three decimals (what calculate_statistics prints)."""
    assert [block["sc"], block["pq"], block["o"]] == pytest.approx(expected["average"], abs=5e-4)
    for group, values in expected["groups"].items():
        ours = block["categories"][group]
        assert [ours["sc"], ours["pq"], ours["o"]] == pytest.approx(values, abs=5e-4), group


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory) -> tuple[Path, Path]:
    """GEdit-Bench with both languages as `save_to_disk` writes a dataset dict, and its eval in --language all."""
    data = tmp_path_factory.mktemp("bilingual") / "GEdit-Bench"
    datasets.DatasetDict({"train": both_languages()}).save_to_disk(str(data))
    out = data.parent / "eval"
    assert (
        run("--bench", "gedit", "--data", str(data), "--language", "all", "--modes", "single", "--out", str(out)) == 0
    )
    return data, out


def test_gedit_summary_is_per_language_as_the_official_statistics_are(bilingual):
    _, out = bilingual
    rows = lines_of(out)
    assert {r["language"] for r in rows} == {"en", "cn"} and all(r["error"] is None for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["languages"]) == ["en", "cn"] and summary["headline_language"] == "en"
    assert summary["modes"] == summary["languages"]["en"]  # the headline is English, as the paper's table
    for language in ("en", "cn"):
        block = summary["languages"][language]["single"]
        assert block["samples"] == (22 if language == "en" else 11)
        assert_same_numbers(block, official_statistics(rows, language))
        assert_same_numbers(block["intersection"], official_statistics(rows, language, intersection=True))
    pooled = {r["category"]: [x for x in rows if x["category"] == r["category"]] for r in rows}
    english = summary["languages"]["en"]["single"]["categories"]
    gaps = [abs(sum(x["o"] for x in rows) / len(rows) - english[group]["o"]) for group, rows in pooled.items()]
    assert max(gaps) > 0.5  # pooling the languages would have moved a category this far
    report = (out / "report.md").read_text()
    assert report.startswith("# gedit eval (all), headline numbers: en") and "## cn" in report


FORMS = ["parquet file", "parquet shards", "arrow file", "arrow shards", "saved dataset", "saved dict", "hub download"]


def write_form(dataset: datasets.Dataset, form: str, root: Path) -> Path:
    """The dataset in one of the forms a hub download or a user's copy takes; the path to pass as --data."""
    root.mkdir(parents=True)
    if form == "parquet file":
        dataset.to_parquet(str(root / "train.parquet"))
        return root / "train.parquet"
    if form == "parquet shards":
        for number in range(2):
            dataset.shard(2, number, contiguous=True).to_parquet(str(root / f"train-0000{number}-of-00002.parquet"))
        return root
    if form in ("saved dict", "hub download"):  # a hub download of such a folder may hold it one folder down
        saved = root / "data" if form == "hub download" else root
        datasets.DatasetDict({"train": dataset}).save_to_disk(str(saved))
        return root
    saved = root / "saved"
    dataset.save_to_disk(str(saved), num_shards=2)
    if form == "arrow file":
        return saved / "data-00000-of-00002.arrow"
    if form == "arrow shards":  # the shards alone, without save_to_disk's state.json
        shards = root / "shards"
        shards.mkdir()
        for file in saved.glob("*.arrow"):
            file.rename(shards / file.name)
        return shards
    return saved


@pytest.mark.parametrize("form", FORMS)
def test_gedit_loads_in_every_form_the_hub_or_a_copy_takes(form, tmp_path):
    dataset = gedit_dataset(
        [("a", "color_alter", "make it brighter", "en", True), ("b", "tone_transfer", "x", "cn", 0)]
    )
    data = write_form(dataset, form, tmp_path / "data")
    samples = load("gedit", str(data), language="all")
    expected = ["a"] if form == "arrow file" else ["a", "b"]  # one shard of two
    assert [s.key for s in samples] == expected and samples[0].category == "color_alter"
    out = tmp_path / "eval"
    assert run("--data", str(data), "--out", str(out), "--modes", "single", "--limit", "1") == 0
    assert lines_of(out)[0]["error"] is None and (out / lines_of(out)[0]["image"]).is_file()


def test_the_hub_id_asks_datasets_for_the_train_split(monkeypatch, tmp_path):
    dataset = gedit_dataset([("a", "color_alter", "make it brighter", "en", True)])
    asked = []

    def from_the_hub(path, *args, **kwargs):  # what `datasets` would fetch, had the test a network
        asked.append((path, kwargs.get("split")))
        return dataset

    monkeypatch.setattr(datasets, "load_dataset", from_the_hub)
    assert run("--out", str(tmp_path / "eval"), "--modes", "single") == 0
    assert asked == [("stepfun-ai/GEdit-Bench", "train")] and lines_of(tmp_path / "eval")[0]["error"] is None


def test_a_folder_that_is_not_gedit_says_which_forms_are_read(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("nothing here")
    assert run("--data", str(tmp_path), "--out", str(tmp_path / "eval")) == 2
    assert "parquet, Arrow shards or a `save_to_disk` folder" in capsys.readouterr().err


# A stand-in for VIEScore's vie_prompts.py: the constants the official "tie" task joins, in the same shape (our own
# words, never theirs), and a line that ends any process that runs the file instead of reading it
STAND_IN_PROMPTS = '''
import os

_context_no_delimit = """CONTEXT: grade the images.
Answer {"score": [...], "reasoning": "..."}"""

_prompts_0shot_two_image_edit_rule = """RULES: the first image is the original, the second the edit."""

_prompts_0shot_tie_rule_SC = """
Rate editing success and over-editing from 0 to 10.
Editing instruction: <instruction>
"""

_prompts_0shot_rule_PQ = """RULES: rate naturalness and artifacts from 0 to 10."""

raise SystemExit("the prompt file was run; it must only be read")
'''


def jpeg_image(url: str) -> Image.Image:
    assert url.startswith("data:image/jpeg;base64,"), url[:40]
    image = Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2])))
    assert image.format == "JPEG"
    return image


def test_the_viescore_protocol_sends_the_official_request_from_the_users_prompt_file(tmp_path, monkeypatch):
    monkeypatch.setenv("THINKEDIT_JUDGE_API_KEY", "judge-key-1234")
    checkout = tmp_path / "Step1X-Edit" / "GEdit-Bench" / "viescore"
    checkout.mkdir(parents=True)
    (checkout / "vie_prompts.py").write_text(STAND_IN_PROMPTS)
    data = write_folder(tmp_path / "set", [("turn", "rotate 90 degrees clockwise", "motion")])
    replies = iter(["It looks fine to me.", '||V^=^V||{"score": [6, 9], "reasoning": "x"}||V^=^V||'])

    def answer(seen):
        content = seen.json()["messages"][0]["content"]
        quality = len(content) == 2
        text = '{"score" : [8], "reasoning": "one number, as VIEScore takes it"}' if quality else next(replies)
        return json_reply(completion(text))

    out = tmp_path / "eval"
    with openai_server(answer, "gpt-4.1") as server:
        common = ("--judge-url", f"{server.url}/v1", "--judge-protocol", "viescore")
        assert judged_single(data, out, "openai", *common, "--viescore-prompts", str(tmp_path / "Step1X-Edit")) == 0
        asked = [seen.json() for seen in server.requests(*CHAT)]
    semantic = [a["messages"][0]["content"] for a in asked if len(a["messages"][0]["content"]) == 3]
    quality = [a["messages"][0]["content"] for a in asked if len(a["messages"][0]["content"]) == 2]
    assert len(semantic) == 2 and len(quality) == 1 and {a["max_tokens"] for a in asked} == {1400}
    expected = (
        'CONTEXT: grade the images.\nAnswer {"score": [...], "reasoning": "..."}\nRULES: the first image is the '
        "original, the second the edit.\n\nRate editing success and over-editing from 0 to 10.\nEditing "
        "instruction: rotate 90 degrees clockwise\n"
    )
    assert semantic[0][0] == {"type": "text", "text": expected} == semantic[1][0]  # text first; asked again as is
    assert quality[0][0]["text"].startswith("CONTEXT: grade the images.") and "RULES: rate" in quality[0][0]["text"]
    source, edited = (jpeg_image(part["image_url"]["url"]) for part in semantic[0][1:])
    assert source.size == edited.size == (40, 28)  # the 28×40 rotation, resized to the source's size
    assert jpeg_image(quality[0][1]["image_url"]["url"]).size == (40, 28)

    row = by_key(out, "single")["turn"]
    assert (row["sc"], row["pq"], row["scores"]["quality"], row["judge"]["asked"]) == (6, 8, [8], 3)
    assert row["o"] == pytest.approx(math.sqrt(48))
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["judge"]["protocol"] == "viescore" and "VIEScore's official request" in (out / "report.md").read_text()
    )


def test_the_viescore_protocol_needs_the_users_prompt_file(tmp_path, capsys):
    data = write_folder(tmp_path / "set", [("k", "make it brighter", "light")])
    common = ("--judge-url", "http://127.0.0.1:9/v1", "--judge-protocol", "viescore")
    assert judged_single(data, tmp_path / "a", "openai", *common) == 2
    assert "--viescore-prompts" in capsys.readouterr().err
    assert judged_single(data, tmp_path / "b", "openai", *common, "--viescore-prompts", str(tmp_path)) == 2
    assert "no vie_prompts.py there" in capsys.readouterr().err
    (tmp_path / "vie_prompts.py").write_text('_context_no_delimit = "only this"\n')
    assert judged_single(data, tmp_path / "c", "openai", *common, "--viescore-prompts", str(tmp_path)) == 2
    assert "has no _prompts_0shot_rule_PQ" in capsys.readouterr().err
    assert judged_single(data, tmp_path / "d", "classic", "--judge-protocol", "viescore") == 2
    assert "the classic judge measures instead" in capsys.readouterr().err


# Stand-ins for Step1X-Edit's GEdit-Bench scripts, written by the test with the official functions' signatures and
# arithmetic (never their code): their scorer's judge is our classic judge, so its numbers can be checked against
# the summary; their statistics follow calculate_statistics.py's rule.
STAND_IN_SCORER = {
    "test_gedit_score.py": """
from PIL import Image
from viescore import VIEScore  # found because their folder is the working directory, as with theirs

GROUPS = [
    "background_change", "color_alter", "material_alter", "motion_change", "ps_human", "style_change",
    "subject-add", "subject-remove", "subject-replace", "text_change", "tone_transfer",
]


def process_single_item(item, vie_score, max_retries=10000):
    folder = f"{save_path}/fullset/{group_name}/{item['instruction_language']}/{item['key']}"
    source = Image.open(folder + "_SRCIMG.png")
    edited = Image.open(folder + ".png").convert("RGB").resize(source.size)
    semantics, quality, overall = vie_score.evaluate([source, edited], item["instruction"])
    return {
        "source_image": folder + "_SRCIMG.png", "edited_image": folder + ".png", "instruction": item["instruction"],
        "sementics_score": semantics, "quality_score": quality, "intersection_exist": item["Intersection_exist"],
        "instruction_language": item["instruction_language"],
    }


if __name__ == "__main__":
    raise SystemExit("their __main__ block must not run")
""",
    "viescore/__init__.py": """
import math

from thinkedit.judges.classic import ClassicJudge


class VIEScore:
    def __init__(self, backbone="gpt4o", task="t2i", key_path=None):
        assert task == "tie" and open(key_path).read().strip() == "sk-stand-in"
        self.judge = ClassicJudge(None, None)

    def evaluate(self, image_prompts, text_prompt):
        with open("evaluated.txt", "a") as calls:
            calls.write(text_prompt + "\\n")
        verdict = self.judge.judge(image_prompts[0].convert("RGB"), image_prompts[1], text_prompt)
        return [verdict.sc, verdict.pq, math.sqrt(verdict.sc * verdict.pq)]
""",
    "calculate_statistics.py": """
import csv
import math
import os
from collections import defaultdict

GROUPS = [
    "background_change", "color_alter", "material_alter", "motion_change", "ps_human", "style_change",
    "subject-add", "subject-remove", "subject-replace", "text_change", "tone_transfer",
]


def _mean(values):
    return sum(values) / len(values) if values else float("nan")


def analyze_scores(save_path_dir, evaluate_group, language):
    with open("languages.txt", "a") as asked:
        asked.write(language + "\\n")
    model = evaluate_group[0]
    tables = [defaultdict(dict) for _ in range(6)]
    for group in GROUPS:
        with open(os.path.join(save_path_dir, f"{model}_{group}_gpt_score.csv")) as lines:
            rows = [r for r in csv.DictReader(lines) if r["instruction_language"] == language]
        for subset, offset in ((rows, 0), ([r for r in rows if r["intersection_exist"] == "True"], 3)):
            sc = [float(r["sementics_score"]) for r in subset]
            pq = [float(r["quality_score"]) for r in subset]
            tables[offset][model][group] = _mean(sc)
            tables[offset + 1][model][group] = _mean(pq)
            tables[offset + 2][model][group] = _mean([math.sqrt(a * b) for a, b in zip(sc, pq)])
    for offset in (0, 3):
        for table, name in zip(tables[offset:offset + 3], ("avg_semantics", "avg_quality", "avg_overall")):
            table[model][name] = _mean([table[model][group] for group in GROUPS])
    return tuple(tables)
""",
    "secret_t2.env": "sk-stand-in\n",
}


def test_the_official_gedit_scorer_runs_unchanged_through_our_wrapper(bilingual, tmp_path, capsys, monkeypatch):
    from thinkedit.evaluate import official

    data, out = bilingual
    scorer = tmp_path / "Step1X-Edit" / "GEdit-Bench"
    for name, text in STAND_IN_SCORER.items():
        (scorer / name).parent.mkdir(parents=True, exist_ok=True)
        (scorer / name).write_text(text)
    monkeypatch.delitem(sys.modules, "viescore", raising=False)
    command = ["--scorer", str(scorer.parent), "--images", str(out / "images"), "--model-name", "single"]
    try:
        assert official.main([*command, "--data", str(data), "--language", "all"]) == 0
        first = (scorer / "evaluated.txt").read_text().splitlines()
        assert official.main([*command, "--data", str(data), "--language", "all"]) == 0  # resumes: asks nothing
    finally:
        sys.modules.pop("viescore", None)
    assert len(first) == 33 and (scorer / "evaluated.txt").read_text().splitlines() == first
    assert (scorer / "languages.txt").read_text().split() == ["en", "cn", "en", "cn"]  # the data's "cn", not "zh"
    assert "background_change: 0 scored now, 3 in all" in capsys.readouterr().out

    results = out / "images" / "single" / "gpt4o" / "eval_results_new"
    with open(results / "single_color_alter_gpt_score.csv", newline="") as lines:
        header = next(iter(lines)).strip()
    assert header == ",".join(official.FIELDS)
    summary = json.loads((out / "summary.json").read_text())
    for language in ("en", "cn"):
        found = json.loads((results / f"statistics_{language}.json").read_text())
        block = summary["languages"][language]["single"]
        assert found["average"] == pytest.approx([block["sc"], block["pq"], block["o"]], abs=5e-4)
        for group, values in found["groups"].items():
            ours = block["categories"][group]
            assert values == pytest.approx([ours["sc"], ours["pq"], ours["o"]], abs=5e-4), group
        inter = block["intersection"]
        assert found["intersection"]["average"] == pytest.approx([inter["sc"], inter["pq"], inter["o"]], abs=5e-4)


def test_the_wrapper_says_what_is_missing(tmp_path, capsys):
    from thinkedit.evaluate import official

    assert official.main(["--scorer", str(tmp_path), "--images", str(tmp_path), "--model-name", "single"]) == 2
    assert "holds no test_gedit_score.py and calculate_statistics.py" in capsys.readouterr().err


def test_eval_edits_every_turn_with_one_seed_as_the_reference_unless_asked(tmp_path, capsys):
    data = write_folder(tmp_path / "set", [("old", "make it look old", "look")])
    for rule in ("same", "increment"):
        out = tmp_path / rule
        extra = [] if rule == "same" else ["--seed-per-turn", "increment"]
        assert (
            run("--bench", "folder", "--data", str(data), "--out", str(out), "--modes", "loop", "--seed", "9", *extra)
            == 0
        )
        row = by_key(out, "loop")["old"]
        seeds = [turn["seed"] for turn in json.loads((out / row["run"] / "trajectory.json").read_text())["turns"]]
        assert len(seeds) >= 2 and seeds == ([9] * len(seeds) if rule == "same" else list(range(9, 9 + len(seeds))))
        summary = json.loads((out / "summary.json").read_text())
        assert summary["settings"]["seed_per_turn"] == rule and summary["settings"]["no_answer"] == "stop"
        assert json.loads((out / "eval.json").read_text())["seed_per_turn"] == rule
    same = ("--bench", "folder", "--data", str(data), "--modes", "loop", "--seed", "9")
    assert run(*same, "--out", str(tmp_path / "same"), "--seed-per-turn", "increment") == 2
    assert "seed_per_turn 'same' → 'increment'" in capsys.readouterr().err
