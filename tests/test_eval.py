"""`thinkedit eval`, offline: GEdit- and ImgEdit-shaped data built here with `datasets` and Pillow, the classic
backends, OpenAI-compatible servers on 127.0.0.1 as judge and thinker, the tiny Qwen-VL as a judge through
transformers, torchrun on CPU, resume, and the VIEScore arithmetic checked against numbers worked out by hand."""

from __future__ import annotations

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
from thinkedit.evaluate.data import load, select
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
    features = datasets.Features(
        {
            "key": datasets.Value("string"),
            "task_type": datasets.Value("string"),
            "instruction": datasets.Value("string"),
            "instruction_language": datasets.Value("string"),
            "input_image": datasets.Image(),
            "Intersection_exist": datasets.Value("bool"),
        }
    )
    columns = {name: [] for name in features}
    for number, (key, task, instruction, language, intersection, image) in enumerate(GEDIT):
        data = png_bytes(picture(number * 10)) if image == "ok" else b"these bytes are not an image"
        for name, value in zip(
            features, (key, task, instruction, language, {"bytes": data, "path": None}, intersection), strict=True
        ):
            columns[name].append(value)
    path = tmp_path_factory.mktemp("gedit") / "test-00000-of-00001.parquet"
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(path))
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


def without_timing(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("seconds", "process")}


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
    assert [s.id for s in select(samples, categories=["tone_transfer"], limit=2)] == ["en/g3", "cn/g4"]
    assert [s.key for s in select(samples, keys=["g5", "g1"])] == ["g1", "g5"]


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
    assert calls["judge"] == (1 if dropped["last"]["turn"] == dropped["best_turn"] else 2)
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
    assert [{k: v for k, v in s.items() if k != "seconds"} for s in summaries[:1]] == [
        {k: v for k, v in s.items() if k != "seconds"} for s in summaries[1:]
    ]


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
    assert json.loads((out / "summary.json").read_text())["judge"] == {"name": "openai", "model": "judge-model"}


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
    assert run("--bench", "imgedit", "--data", str(root), "--out", str(out), "--modes", "single", "--retry-failed") == 0
    again = lines_of(out)
    assert again[2]["error"] is None and (out / again[2]["image"]).is_file()
    assert [without_timing(r) for r in again[:2]] == [without_timing(r) for r in rows[:2]]


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
