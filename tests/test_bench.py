"""`python -m thinkedit bench` runs and prints its table; no timing is asserted (numbers go in the notes)."""

from thinkedit import runtime
from thinkedit.cli import main

COLUMNS = [
    "request",
    "loads",
    "load s",
    "turns",
    "edit s/turn",
    "think s/turn",
    "store s/turn",
    "wall s",
    "overhead",
    "overhead w/o store",
    "peak RSS MB",
]


def table(out: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose first column is `header`, as lists of cells."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return [rows[0]] + rows[2:]


def test_classic_bench_prints_a_row_per_request_and_the_bare_ratio(capsys):
    assert main(["bench", "-n", "2", "--turns", "2", "--side", "64", "--vs-bare"]) == 0
    out = capsys.readouterr().out
    header, *rows = table(out, "request")
    assert header == COLUMNS
    assert [row[0] for row in rows] == ["1", "2"]
    assert all(row[1] == "0" and 1 <= int(row[3]) <= 2 and row[8].endswith("%") for row in rows)
    assert "requests after the first loaded 0 model(s)" in out
    header, bare = table(out, "turns")
    assert header[2] == "bare call s/turn" and float(bare[2]) > 0


def test_tiny_pipelines_load_on_the_first_request_only(capsys):
    try:
        code = main(["bench", "--tiny", "instruct-pix2pix", "-n", "2", "--turns", "1", "--side", "32", "--steps", "1"])
    finally:
        runtime.CACHE.clear()
    assert code == 0
    out = capsys.readouterr().out
    _, first, second = table(out, "request")
    assert (first[1], second[1]) == ("2", "0")  # the editor's pipeline and the thinker, then nothing
    assert float(first[2]) > 0 and float(second[2]) == 0
    assert "editor instruct-pix2pix" in out and "thinker qwen-vl" in out


def test_speed_fast_vs_bare_times_both_speeds_on_one_pipeline(capsys):
    try:
        code = main(
            [
                "bench",
                "--tiny",
                "instruct-pix2pix",
                "--speed",
                "fast",
                "--vs-bare",
                "-n",
                "1",
                "--turns",
                "2",
                "--side",
                "32",
                "--steps",
                "1",
            ]
        )
    finally:
        runtime.CACHE.clear()
    assert code == 0
    header, default, fast = table(capsys.readouterr().out, "speed")
    assert header == ["speed", "first call s", "s/edit after the first", "fast / default", "peak RSS MB"]
    assert (default[0], default[3], fast[0]) == ("default", "1.000", "fast")
    assert all(float(cell) > 0 for cell in default[1:] + fast[1:])
