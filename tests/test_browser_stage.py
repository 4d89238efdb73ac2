"""The page on stage (issue 29) in a real headless Chromium: on a laptop and on a phone (390×844), measured from
element positions. Screenshots go to test-artifacts/ (stage-*.png, phone-*.png)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from helpers import scene_file, serve
from test_browser import ARTIFACTS, CHROMIUM, FLAGS, choose, close_toasts, wait_for_captions, wait_until
from test_eval import GROUPS, run, write_folder

from thinkedit.config import Settings

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium", allow_module_level=True)

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app with a runs folder and an eval of seven samples (two rows of samples even on a laptop's six
    columns)."""
    evals, runs = tmp_path_factory.mktemp("evals"), tmp_path_factory.mktemp("runs")
    edits = [(group, english, group) for group, (english, _) in list(GROUPS.items())[:7]]
    data = write_folder(tmp_path_factory.mktemp("eval-set"), edits)
    assert run("--bench", "folder", "--data", str(data), "--out", str(evals / "seven")) == 0
    demo, url = serve(Settings(runs_dir=runs, evals_dir=evals))
    yield url, runs
    demo.close()


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield launched
        launched.close()


def open_page(browser, url: str, **device):
    context = browser.new_context(**({"viewport": {"width": 1280, "height": 800}} | device))
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.locator("#te-run").wait_for()
    return page


@pytest.fixture(scope="module")
def laptop(browser, served):
    page = open_page(browser, served[0])
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    return scene_file(tmp_path_factory.mktemp("img"))


ERROR_COVERS = """() => [...document.querySelectorAll('[data-testid=status-tracker]')].filter(tracker => {
    const box = tracker.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && /Error/.test(tracker.innerText);
}).length"""


def studio_run(page, photo: str | None, instruction: str) -> None:
    if photo:
        page.locator("#te-image input[type=file]").set_input_files(photo)
    page.locator("#te-instruction textarea").fill(instruction)
    page.locator("#te-run").click()


def wait_finished(page) -> str:
    page.wait_for_function("/^(Finished|Stopped)/.test(document.querySelector('#te-status textarea').value)")
    return page.locator("#te-status textarea").input_value()


def test_a_refusal_leaves_the_page_as_it_was(laptop, photo):
    """Run with no image after a run: one sentence (the toast), no "Error" over the outputs, the turns still shown."""
    page = laptop
    studio_run(page, photo, "make it brighter")
    status = wait_finished(page)
    page.wait_for_function("document.querySelector('#te-gallery').innerText.includes('★ best')")
    shown = page.locator("#te-gallery .caption-label").all_inner_texts()
    page.locator('#te-image button[aria-label="Remove Image"]').click()
    page.locator("#te-run").click()
    page.locator("[data-testid=toast-body]").first.wait_for()
    assert "image" in page.locator("[data-testid=toast-body]").first.inner_text().lower()
    page.wait_for_function("!document.querySelector('#te-run[disabled]')")  # the refused event is over
    assert page.evaluate(ERROR_COVERS) == 0, "no output is covered by an Error badge"
    assert page.locator("#te-gallery .caption-label").all_inner_texts() == shown, "the turns stay"
    assert page.locator("#te-status textarea").input_value() == status
    assert page.locator("[data-testid=toast-body]").count() == 1, "the sentence in one place"
    page.screenshot(path=str(ARTIFACTS / "stage-refusal.png"))
    close_toasts(page)


def test_a_backend_that_cannot_run_here_says_why_before_run(laptop):
    page = laptop
    note = page.locator("#te-editor-note")
    assert not note.is_visible()
    choose(page, "te-editor", "flux-kontext (cannot run here)")
    note.wait_for(state="visible")
    assert "flux-kontext cannot run here: weights not in the local cache" in note.inner_text()
    page.screenshot(path=str(ARTIFACTS / "stage-unavailable.png"))
    choose(page, "te-editor", "classic")
    note.wait_for(state="hidden")


def finished_record(runs: Path, before: set[Path]) -> dict:
    """The record of the run that the page started after `before` (the runs folder's listing), once it has ended."""

    def ended() -> dict | None:
        for folder in set(runs.iterdir()) - before:
            with contextlib.suppress(OSError, ValueError):
                record = json.loads((folder / "trajectory.json").read_text())
                if record.get("stop_reason"):
                    return record
        return None

    return wait_until(ended, "the run to end")


def test_advanced_shows_the_editor_s_default_as_empty_and_refuses_zero_steps(laptop, served, photo):
    page = laptop
    page.locator("#te-advanced").get_by_text("Advanced").click()
    boxes = [
        page.locator(f"#te-advanced label:has-text('{name}') input[type=number]") for name in ("Steps", "Guidance")
    ]
    assert [box.input_value() for box in boxes] == ["", ""], "empty: the editor's default, not 0"
    assert all(box.get_attribute("placeholder") == "the editor's default" for box in boxes)
    page.locator("#te-image input[type=file]").set_input_files(photo)
    before = set(served[1].iterdir())
    page.locator("#te-run").click()
    settings = finished_record(served[1], before)["settings"]
    assert settings["steps"] is None and settings["guidance"] is None, "the run records the default as null"

    boxes[0].fill("0")
    page.locator("#te-run").click()
    toast = page.locator("[data-testid=toast-body]").first
    toast.wait_for()
    assert "steps must be from 1 to 500, not 0" in toast.inner_text()
    close_toasts(page)
    boxes[0].fill("")
    boxes[0].press("Tab")


def test_history_labels_compare_sides_reopens_into_the_boxes_and_outlives_a_reload(laptop, photo):
    page = laptop
    page.get_by_role("tab", name="Compare").click()
    page.locator("#te-c-image input[type=file]").set_input_files(photo)
    page.locator("#te-c-instruction textarea").fill("make it look old")
    page.locator("#te-c-run").click()
    wait_for_captions(page, "te-c-gallery-b", 1)
    page.wait_for_function("document.querySelector('#te-c-status-b textarea').value.startsWith('Finished')")
    page.get_by_role("tab", name="History").click()
    captions = wait_for_captions(page, "te-history", 2)  # with the Studio runs of the tests before, if any
    assert captions[0].startswith("B · Think-while-Edit · make it look old"), captions
    assert captions[1].startswith("A · single-shot · make it look old"), captions
    page.screenshot(path=str(ARTIFACTS / "stage-history.png"))

    page.locator("#te-history .thumbnail-item").nth(1).click()  # side A
    page.get_by_role("tab", name="Studio", selected=True).wait_for()
    page.wait_for_function("document.querySelector('#te-instruction textarea').value === 'make it look old'")
    page.locator("#te-image img").wait_for()
    assert page.evaluate("document.querySelector('#te-image img').naturalWidth") > 0, "the run's source is in Image"

    page.reload()
    page.locator("#te-run").wait_for()
    page.get_by_role("tab", name="History").click()
    kept = wait_for_captions(page, "te-history", len(captions))
    assert kept == captions, "History outlives a reload"
    assert "kept across reloads" in page.locator("#te-h-note").inner_text()
    page.screenshot(path=str(ARTIFACTS / "stage-history-reloaded.png"))


def test_a_public_history_says_why_it_is_empty_after_a_reload(browser, tmp_path):
    demo, url = serve(Settings(runs_dir=tmp_path / "runs", public=True))
    try:
        page = open_page(browser, url)
        page.get_by_role("tab", name="History").click()
        assert "reloading it empties History" in page.locator("#te-h-note").inner_text()
        page.context.close()
    finally:
        demo.close()


TOP_IN_VIEW = """ids => ids.some(id => {
    const element = document.getElementById(id);
    if (!element) return false;
    const box = element.getBoundingClientRect();
    return box.height > 0 && box.top >= 0 && box.top < window.innerHeight;
})"""

WHOLE_IN_VIEW = """id => {
    const box = document.getElementById(id).getBoundingClientRect();
    return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;
}"""

# each caption: its text, whether it fits its own box, and whether every box around it up to the gallery that clips
# what overflows it (overflow other than visible) holds the caption whole
CAPTIONS_WHOLE = """id => [...document.querySelectorAll(`#${id} .caption-label`)].map(c => {
    const box = c.getBoundingClientRect(), gallery = document.getElementById(id);
    const clippers = [];
    for (let e = c.parentElement; e && gallery.contains(e); e = e.parentElement) {
        const style = getComputedStyle(e);
        if (style.overflowX !== 'visible' || style.overflowY !== 'visible') clippers.push(e.getBoundingClientRect());
    }
    return {text: c.innerText, seen: box.height > 0,
            whole: c.scrollWidth <= c.clientWidth + 1 && c.scrollHeight <= c.clientHeight + 1
                && clippers.every(r => box.top >= r.top - 1 && box.bottom <= r.bottom + 1
                                       && box.left >= r.left - 1 && box.right <= r.right + 1)};
})"""

HEADERS = """() => {
    const table = document.querySelector('#te-table table');
    const scroller = [...document.querySelectorAll('#te-table *')].find(e => e.scrollWidth > e.clientWidth + 4
        && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX));
    const cells = [...document.querySelectorAll('#te-table thead th')].map(th => {
        const range = document.createRange();
        range.selectNodeContents(th);
        return {text: th.innerText.trim(), height: th.getBoundingClientRect().height, width: range.getBoundingClientRect().width,
                lineHeight: parseFloat(getComputedStyle(th).lineHeight) || 20};
    });
    return {scrolls: Boolean(scroller), cells, tableWidth: table.getBoundingClientRect().width};
}"""

ALL_ROWS_SEEN = """id => {
    const wrap = document.querySelector(`#${id} .grid-wrap`);
    const box = wrap.getBoundingClientRect();
    const tiles = [...document.querySelectorAll(`#${id} .thumbnail-item`)].map(t => t.getBoundingClientRect());
    return {tiles: tiles.length, rows: new Set(tiles.map(t => Math.round(t.top))).size,
            inside: tiles.every(t => t.top >= box.top - 1 && t.bottom <= box.bottom + 1),
            scrolls: wrap.scrollHeight > wrap.clientHeight + 2};
}"""


def test_a_phone_sees_the_run_start_whole_captions_a_scrolling_table_and_every_tab(browser, served, photo):
    page = open_page(browser, served[0], viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        tabs = page.get_by_role("tab")
        names = [name.strip() for name in tabs.all_inner_texts()]
        assert names == ["Studio", "Compare", "History", "Benchmarks"], names
        for tab in tabs.all():
            box = tab.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], "every tab in the tab bar"
        assert page.locator("#te-tabs .overflow-menu button:visible").count() == 0, 'no tab behind "…"'

        page.locator("#te-image input[type=file]").set_input_files(photo)
        page.locator("#te-instruction textarea").fill("make it look old")
        page.evaluate("window.scrollTo(0, 0)")
        assert page.evaluate(WHOLE_IN_VIEW, "te-run"), "Run is on screen, not below its bottom edge"
        page.screenshot(path=str(ARTIFACTS / "phone-before-run.png"))
        page.locator("#te-run").tap()
        # within a second of the tap, where the results begin (the status, or the first turn) is on screen
        page.wait_for_function(TOP_IN_VIEW, arg=["te-status", "te-gallery"], timeout=1_000)
        page.screenshot(path=str(ARTIFACTS / "phone-run-started.png"))
        wait_for_captions(page, "te-gallery", 2)
        wait_finished(page)
        page.locator("#te-gallery").scroll_into_view_if_needed()
        page.mouse.move(0, 0)
        captions = page.evaluate(CAPTIONS_WHOLE, "te-gallery")
        assert captions and all(c["whole"] and c["seen"] for c in captions), captions
        assert any("★ best" in c["text"] for c in captions), captions
        page.screenshot(path=str(ARTIFACTS / "phone-turns.png"))

        page.locator("#te-table").scroll_into_view_if_needed()
        table = page.evaluate(HEADERS)
        assert table["scrolls"], "the turn table scrolls sideways on a phone"
        for cell in table["cells"]:
            assert cell["height"] < 3.2 * cell["lineHeight"] + 16, f"header wraps letter by letter: {cell}"
        page.screenshot(path=str(ARTIFACTS / "phone-table.png"))

        samples = open_samples(page, tap=True)
        assert samples["rows"] >= 2 and samples["inside"] and not samples["scrolls"], samples
        page.screenshot(path=str(ARTIFACTS / "phone-benchmarks.png"), full_page=True)
    finally:
        page.context.close()


def open_samples(page, tap: bool = False) -> dict:
    """Open the seven-sample eval in the Benchmarks tab: how its samples gallery lays them out, captions whole."""
    press = "tap" if tap else "click"
    getattr(page.get_by_role("tab", name="Benchmarks"), press)()
    choose(page, "te-b-eval", "seven")
    getattr(page.locator("#te-b-open"), press)()
    wait_for_captions(page, "te-b-gallery", 7)
    page.locator("#te-b-gallery").scroll_into_view_if_needed()
    page.mouse.move(0, 0)
    captions = page.evaluate(CAPTIONS_WHOLE, "te-b-gallery")
    assert all(c["whole"] for c in captions), captions
    return page.evaluate(ALL_ROWS_SEEN, "te-b-gallery")


def test_the_laptop_s_samples_gallery_shows_its_second_row(laptop):
    page = laptop
    samples = open_samples(page)
    assert samples["rows"] == 2 and samples["inside"] and not samples["scrolls"], samples
    page.locator("#te-b-summary").wait_for()
    assert page.locator("#te-b-summary").inner_text().split(" · ")[1].split(". ")[1][:1].isupper()
    page.screenshot(path=str(ARTIFACTS / "stage-benchmarks.png"), full_page=True)
