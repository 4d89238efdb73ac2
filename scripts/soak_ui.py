"""Soak the web app: many classic runs through /edit, with the server's memory (RSS) before and after.

    python scripts/soak_ui.py                      # starts `python app.py` on a free port, 200 runs
    python scripts/soak_ui.py --runs 50 --side 512
    python scripts/soak_ui.py --url http://127.0.0.1:7860 --pid 1234   # an app that is already running

RSS is read from /proc (Linux). "before" is taken after a few warm-up runs, so that one-time costs
(imports, the first run's caches) do not count as growth. Temp files the app leaves behind are counted too.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import free_port  # noqa: E402

from thinkedit.bench import scene  # noqa: E402

INSTRUCTIONS = ("make it brighter", "make it look old", "add a red frame", "make it black and white")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def temp_files() -> tuple[int, int]:
    """Files in the app's temp folders (display copies, zips, thumbnails) and in Gradio's cache of what it served."""
    root = Path(tempfile.gettempdir())
    ours = sum(1 for folder in root.glob("thinkedit-ui-*") for path in folder.rglob("*") if path.is_file())
    cache = Path(os.environ.get("GRADIO_TEMP_DIR") or root / "gradio")
    return ours, sum(1 for path in cache.rglob("*") if path.is_file())


def test_image(path: Path, side: int) -> str:
    scene(side, side * 3 // 4).save(path)
    return str(path)


def soak(url: str, pid: int, runs: int, image: str, warmup: int = 5, runs_per_session: int = 20) -> dict:
    """`runs` /edit runs one after another (a new session every `runs_per_session`); RSS and temp files around them."""
    from gradio_client import Client, handle_file

    def run(client, i: int) -> None:
        client.predict(handle_file(image), INSTRUCTIONS[i % len(INSTRUCTIONS)], max_turns=2, seed=i, api_name="/edit")

    client = Client(url, verbose=False)
    for i in range(warmup):
        run(client, i)
    before, files_before, started = rss_mb(pid), temp_files(), time.perf_counter()
    for i in range(runs):
        if i % runs_per_session == 0:
            client = Client(url, verbose=False)
        run(client, i)
    seconds = time.perf_counter() - started
    (ours, cache), (ours_before, cache_before) = temp_files(), files_before
    return {
        "runs": runs,
        "rss_before_mb": before,
        "rss_after_mb": rss_mb(pid),
        "seconds": seconds,
        "temp_files_added": ours - ours_before,
        "gradio_cache_files_added": cache - cache_before,
    }


def start_app(runs_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "THINKEDIT_RUNS_DIR": str(runs_dir), "THINKEDIT_PORT": str(port), "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, url
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"app.py exited with {server.returncode}") from None
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("app.py did not start listening within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--side", type=int, default=1024, help="width of the test image (height is 3/4 of it)")
    parser.add_argument("--url", help="an app already running (then --pid is its process id)")
    parser.add_argument("--pid", type=int)
    args = parser.parse_args()
    if args.url and not args.pid:
        parser.error("--url needs --pid, the process id of that app (its memory is what is measured)")
    with tempfile.TemporaryDirectory(prefix="thinkedit-soak-") as folder:
        image = test_image(Path(folder) / "soak.png", args.side)
        server = None
        if args.url:
            url, pid = args.url, args.pid
        else:
            server, url = start_app(Path(folder) / "runs")
            pid = server.pid
        try:
            result = soak(url, pid, args.runs, image)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
    growth = result["rss_after_mb"] - result["rss_before_mb"]
    print(
        f"{result['runs']} runs ({args.side}×{args.side * 3 // 4}, 2 turns each) in {result['seconds']:.0f} s "
        f"({result['seconds'] / result['runs']:.2f} s/run)"
    )
    print(
        f"server RSS before {result['rss_before_mb']:.0f} MB, after {result['rss_after_mb']:.0f} MB, "
        f"growth {growth:+.0f} MB ({growth / result['runs'] * 1024:+.0f} KB/run)"
    )
    print(
        f"files added to the app's temp folder: {result['temp_files_added']:+d}, "
        f"to Gradio's cache: {result['gradio_cache_files_added']:+d}"
    )


if __name__ == "__main__":
    main()
