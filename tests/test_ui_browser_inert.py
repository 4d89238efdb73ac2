"""Markup from every channel stays inert in a real headless Chromium: the person's instruction, an editor's
note (a warning toast), a thinker's reasoning and refined prompt, and a backend's error (a warning toast and
the status line). test_browser.py covers the reasoning and table of a run stopped by hand.
"""

from __future__ import annotations

import pytest
from helpers import EVIL, register, scene_file, serve
from test_browser import CHROMIUM, FLAGS

from thinkedit.config import Settings
from thinkedit.critique import format_critique

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")


def test_markup_from_every_channel_is_shown_as_text_and_never_runs(tmp_path, monkeypatch):
    register(
        monkeypatch,
        "editor",
        "noting",
        "FaultEditor",
        fault="raise",
        on_call=2,
        message=f"Server said {EVIL}",
        note=EVIL,
    )
    register(
        monkeypatch,
        "thinker",
        "marking",
        "FaultThinker",
        output=format_critique(3, 3, f"Reasoning {EVIL}", f"{{prompt}} {EVIL}"),
    )
    demo, url = serve(Settings(runs_dir=tmp_path / "runs", editor="noting", thinker="marking", max_turns=3))
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(30_000)
            page.goto(url)
            page.locator("#te-image input[type=file]").set_input_files(scene_file(tmp_path))
            page.locator("#te-instruction textarea").fill(f"make it brighter {EVIL}")
            page.locator("#te-run").click()
            page.wait_for_function("document.querySelector('#te-status textarea').value.startsWith('Finished')")
            page.wait_for_function(  # Gradio groups warnings into one toast: the editor's notes, then the error
                "[...document.querySelectorAll('[data-testid=toast-body]')].some(t => t.innerText.includes('Server said'))"
            )

            toasts = " ".join(page.locator("[data-testid=toast-body]").all_inner_texts())
            assert f"Turn 1: {EVIL}" in toasts and f"Server said {EVIL}" in toasts, f"markup shown as text: {toasts}"
            assert EVIL in page.locator("#te-status textarea").input_value()
            assert EVIL in page.locator("#te-refined textarea").input_value()
            assert EVIL in page.locator("#te-reasoning textarea").input_value()
            assert page.locator("#te-table").get_by_text("window.__pwned", exact=False).count() >= 1
            page.get_by_role("tab", name="History").click()
            page.locator("#te-history .caption-label").first.wait_for()
            assert "make it brighter <img" in page.locator("#te-history .caption-label").first.inner_text()

            assert page.evaluate("window.__pwned") is None, "markup must never run"
            assert page.locator("img[src='x']").count() == 0 and page.locator("script:has-text('__pwned')").count() == 0
            browser.close()
    finally:
        demo.close()
