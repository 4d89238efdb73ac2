"""The README's picture of the Studio mid-run: docs/images/studio.png.

    .venv/bin/python scripts/studio_picture.py          # writes docs/images/studio.png (needs /usr/bin/chromium)

Starts the web app in this process, offline (the classic editor and thinker, a temporary runs folder), runs
"make it look old" on assets/chelsea.jpg in Debian's headless Chromium, and takes the picture while turn 2 is
editing: turn 1 in the gallery with its scores, the thinker's reasoning and refined prompt, the progress of turn 2.
The classic editor holds turn 2's edit until the picture is taken (an event, not a clock), so every run
of this script shows the same moment. The picture is reduced to 128 colours to stay small.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import sys
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

os.environ.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", GRADIO_ANALYTICS_ENABLED="False")
PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from PIL import Image  # noqa: E402

from thinkedit.config import Settings  # noqa: E402
from thinkedit.editors import EDITORS  # noqa: E402
from thinkedit.editors.classic import ClassicEditor  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]
FLAGS += ["--disable-component-update", "--disable-sync"]
PHOTO = PROJECT / "assets" / "chelsea.jpg"
INSTRUCTION = "make it look old"
BOTTOM_OF_REASONING = "document.querySelector('#te-reasoning').getBoundingClientRect().bottom + window.scrollY"
TAKEN = threading.Event()  # set once the picture is taken: turn 2's edit goes on


class HeldClassicEditor(ClassicEditor):
    """The classic editor, holding its second edit until the picture is taken."""

    edits = 0

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None, mask=None):
        HeldClassicEditor.edits += 1
        if HeldClassicEditor.edits == 2:
            TAKEN.wait(120)
        return super().edit(image, prompt, seed=seed, steps=steps, guidance=guidance, on_step=on_step, mask=mask)


def take(url: str, out: Path, width: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        page.locator("#te-image input[type=file]").set_input_files(str(PHOTO))
        page.locator("#te-instruction textarea").fill(INSTRUCTION)
        page.locator("#te-run").click()
        page.locator("#te-gallery .caption-label").first.wait_for()
        page.wait_for_function("document.querySelector('#te-refined textarea').value.length > 0")
        page.wait_for_function("document.querySelector('#te-status textarea').value.startsWith('Turn 2')")
        page.mouse.move(0, 0)
        bottom = page.evaluate(BOTTOM_OF_REASONING)
        shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
        TAKEN.set()
        page.wait_for_function("document.querySelector('#te-status textarea').value.startsWith('Finished')")
        context.close()
    shot = shot.crop((0, 0, shot.width, round(bottom) + 12))
    shot = shot.resize((width, round(shot.height * width / shot.width)), Image.LANCZOS)
    shot.quantize(128).save(out, optimize=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT / "docs" / "images" / "studio.png")
    parser.add_argument("--width", type=int, default=960, help="the picture's width in pixels (default 960)")
    args = parser.parse_args(argv)
    EDITORS["classic"] = replace(EDITORS["classic"], target="__main__:HeldClassicEditor")
    with tempfile.TemporaryDirectory(prefix="thinkedit-picture-") as scratch:
        os.environ["GRADIO_TEMP_DIR"] = str(Path(scratch, "gradio"))
        from thinkedit.ui import build_app, launch

        settings = Settings(runs_dir=Path(scratch, "runs"), evals_dir=Path(scratch, "evals"), port=free_port())
        demo = build_app(settings)
        _, url, _ = launch(demo, settings, prevent_thread_lock=True, quiet=True)
        try:
            take(url, args.out, args.width)
        finally:
            TAKEN.set()
            demo.close()
    print(f"{args.out}: {args.out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
