"""Flood a public app with simultaneous Compare runs of large images; print the app's peak memory and what it said.

    python scripts/flood_public.py                                   # 6 × 40-megapixel Compares, as the issue did
    python scripts/flood_public.py --megapixels 4 --calls 6 --run-memory-gb 0.5
    python scripts/flood_public.py --public-max-megapixels 48         # let 40 MP through the public limit too

It starts `python app.py --public` on a free port (its memory budget from --run-memory-gb, else the default: half
the machine's memory), uploads one PNG of that many megapixels (flat colours: a few hundred kilobytes on the wire),
fires every Compare at once, and samples the app's resident memory (/proc, Linux) until they are answered. A
visitor the budget cannot take is told to wait or to send a smaller image; the app must stay up for everyone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import free_port  # noqa: E402

from thinkedit.ui.actions import COMPARE_FIELDS  # noqa: E402
from thinkedit.ui.form import positional  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def striped(path: Path, megapixels: float) -> Path:
    """A large image that compresses to little: stripes of two colours."""
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(megapixels * 1e6 / width)
    image = Image.new("RGB", (width, height), (120, 160, 200))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 400):
        draw.rectangle([x, 0, x + 200, height], fill=(200, 80, 60))
    image.save(path, optimize=True)
    return path


def start_app(port: int, env: dict[str, str]) -> subprocess.Popen:
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--public", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return app
        except httpx.HTTPError:
            time.sleep(0.3)
        if app.poll() is not None:
            raise SystemExit(f"the app did not start:\n{app.stderr.read()}")
    app.kill()
    raise SystemExit("the app did not start within 120 s")


def compare(url: str, upload: str) -> str:
    """One Compare through the plain HTTP API: 'done', or the app's refusal in its own words."""
    image = {"path": upload, "meta": {"_type": "gradio.FileData"}}
    body = json.dumps({"data": positional(COMPARE_FIELDS, image=image, instruction="make it brighter", max_turns=2)})
    started = httpx.post(f"{url}/gradio_api/call/compare", content=body, headers={"Content-Type": "application/json"})
    event = started.json()["event_id"]
    with httpx.stream("GET", f"{url}/gradio_api/call/compare/{event}", timeout=600) as stream:
        text = "".join(stream.iter_text())
    if "event: complete" in text:
        return "done"
    lines = [line for line in text.splitlines() if line.startswith("data:")]
    return lines[-1][5:].strip() if lines else text[-200:]


def flood(megapixels: float, calls: int, env: dict[str, str]) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        image = striped(Path(folder) / "big.png", megapixels)
        png_kb = round(image.stat().st_size / 1024)
        env = {**env, "THINKEDIT_RUNS_DIR": str(Path(folder) / "runs")}
        app = start_app(port, env)
        try:
            idle = rss_mb(app.pid)
            with open(image, "rb") as file:
                upload = httpx.post(f"{url}/gradio_api/upload", files={"files": ("big.png", file, "image/png")})
            path = upload.json()[0]
            answers: list[str] = []
            threads = [threading.Thread(target=lambda: answers.append(compare(url, path))) for _ in range(calls)]
            for thread in threads:
                thread.start()
            peak = idle
            while any(thread.is_alive() for thread in threads):
                peak = max(peak, rss_mb(app.pid))
                time.sleep(0.05)
            alive = app.poll() is None and httpx.get(f"{url}/", timeout=10).status_code == 200
        finally:
            app.terminate()
            app.wait(timeout=30)
    return {
        "megapixels": round(megapixels, 1),
        "png_kb": png_kb,
        "calls": calls,
        "idle_mb": round(idle),
        "peak_mb": round(peak),
        "done": answers.count("done"),
        "refused": len(answers) - answers.count("done"),
        "refusals": sorted({answer for answer in answers if answer != "done"}),
        "alive": alive,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=40.0)
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--run-memory-gb", type=float, help="THINKEDIT_RUN_MEMORY_GB (default: the app's own)")
    parser.add_argument("--public-max-megapixels", type=float, help="THINKEDIT_PUBLIC_MAX_MEGAPIXELS (default 16)")
    args = parser.parse_args(argv)
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    if args.run_memory_gb:
        env["THINKEDIT_RUN_MEMORY_GB"] = str(args.run_memory_gb)
    if args.public_max_megapixels:
        env["THINKEDIT_PUBLIC_MAX_MEGAPIXELS"] = str(args.public_max_megapixels)
    print(json.dumps(flood(args.megapixels, args.calls, env), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
