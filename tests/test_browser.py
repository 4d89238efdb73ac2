"""The web app in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright).

Screenshots go to test-artifacts/. Two test-only backends join the registry before the app is built
(which also shows that a new backend row appears in the UI without UI changes): a slow variant of the
classic editor so that Stop has something to stop, and a thinker that writes HTML to prove it is shown
as text, never run.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import scene_file, serve
from PIL import Image

from thinkedit.config import Settings
from thinkedit.critique import format_critique, parse_critique
from thinkedit.editors.classic import ClassicEditor

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EVIL = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium (apt install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


class SlowEditor(ClassicEditor):
    """The classic editor, a second per turn slower, in 8 cancellable steps."""

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        for step in range(1, 9):
            time.sleep(0.12)
            if on_step:
                on_step(step, 8)
        return super().edit(image, prompt, seed=seed)


class HTMLThinker:
    """Writes markup in its reasoning and its refined prompt; never satisfied."""

    model = None

    def __init__(self, spec, settings):
        self.spec = spec
        self.calls = 0

    def critique(self, source, edited, instruction, prompt, *, on_token=None):
        self.calls += 1
        text = format_critique(4, 6, f"Needs more warmth {EVIL}", f"{instruction}, take {self.calls} {EVIL}")
        if on_token:
            on_token(text)
        return parse_critique(text)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from thinkedit.editors import EDITORS
    from thinkedit.thinkers import THINKERS

    EDITORS["slow-classic"] = replace(EDITORS["classic"], name="slow-classic", target="test_browser:SlowEditor")
    THINKERS["html"] = replace(THINKERS["classic"], name="html", target="test_browser:HTMLThinker")
    try:
        from test_baselines import build_baselines_eval
        from test_eval import build_eval

        evals = tmp_path_factory.mktemp("evals")
        build_eval(evals)
        build_baselines_eval(evals)
        demo, url = serve(Settings(runs_dir=tmp_path_factory.mktemp("runs"), evals_dir=evals))
        yield url
        demo.close()
    finally:
        EDITORS.pop("slow-classic")
        THINKERS.pop("html")


@pytest.fixture(scope="module")
def page(app_url, tmp_path_factory):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 800},
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(app_url)
        page.locator("#te-run").wait_for()
        yield page
        context.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    return scene_file(tmp_path_factory.mktemp("img"))


def choose(page, elem_id: str, name: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.locator(f"#{elem_id}").get_by_role("option", name=name, exact=True).click()


def set_number(page, elem_id: str, value: float) -> None:
    if elem_id.startswith("te-") and not page.locator(f"#{elem_id}").is_visible():  # in the closed Advanced panel
        page.locator("#te-advanced").get_by_text("Advanced").click()
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def gallery_captions(page, elem_id: str) -> list[str]:
    return page.locator(f"#{elem_id} .caption-label").all_inner_texts()


def wait_for_captions(page, elem_id: str, count: int) -> list[str]:
    page.wait_for_function(
        "([id, n]) => document.querySelectorAll(`#${id} .caption-label`).length >= n", arg=[elem_id, count]
    )
    return gallery_captions(page, elem_id)


CAPTIONS_ON_SCREEN = """id => {
    const wrap = document.querySelector(`#${id} .grid-wrap`).getBoundingClientRect();
    const label = document.querySelector(`#${id} [data-testid=block-label]`).getBoundingClientRect();
    const tiles = [...document.querySelectorAll(`#${id} .thumbnail-item`)].map(t => t.getBoundingClientRect());
    return [...document.querySelectorAll(`#${id} .caption-label`)].every(c => {
        const box = c.getBoundingClientRect(), style = getComputedStyle(c);
        return box.height > 0 && box.top >= wrap.top && box.bottom <= wrap.bottom && style.opacity === "1"
            && c.scrollWidth <= c.clientWidth;
    }) && tiles.every(t => t.top >= label.bottom);
}"""


def assert_captions_readable(page, elem_id: str) -> None:
    """Every caption (the first row's: these galleries hold one row here) is on screen inside its gallery,
    unclipped and without hovering, and the gallery's label covers no image."""
    page.mouse.move(0, 0)
    assert page.evaluate(CAPTIONS_ON_SCREEN, elem_id), f"#{elem_id}: captions hidden, clipped or covered"


PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10]
FETCH_HEADS = """async urls => Promise.all(urls.map(async url => {
    const response = await fetch(url);
    return [response.headers.get("content-type"), [...new Uint8Array(await response.arrayBuffer()).slice(0, 8)]];
}))"""


def assert_png(page, urls: list[str]) -> None:
    """What the browser gets at each URL is a PNG file, served as one."""
    assert urls and page.evaluate(FETCH_HEADS, urls) == [["image/png", PNG_SIGNATURE]] * len(urls), urls


def assert_downloads_png(page, button) -> None:
    with page.expect_download() as download:
        button.click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".png") and list(Path(path).read_bytes()[:8]) == PNG_SIGNATURE


def assert_slider_is_png(page, elem_id: str) -> None:
    """Both sides of the slider and its download are lossless PNG (Gradio's default for them is WebP)."""
    page.locator(f"#{elem_id} img").first.wait_for(state="visible")
    assert_png(page, page.evaluate(f"[...document.querySelectorAll('#{elem_id} img')].map(i => i.src)"))
    assert_downloads_png(page, page.locator(f"#{elem_id} button[aria-label=Download]"))


def close_toasts(page) -> None:
    page.evaluate("document.querySelectorAll('[data-testid=toast-close]').forEach(b => b.click())")
    page.wait_for_function("!document.querySelector('[data-testid=toast-body]')")


def test_studio_run_then_stop(page, photo):
    page.locator("#te-image input[type=file]").set_input_files(photo)
    page.locator("#te-instruction textarea").fill("make it look old")  # vague: the thinker refines it
    page.locator("#te-run").click()

    captions = wait_for_captions(page, "te-gallery", 2)
    assert all(caption.startswith("Turn ") and "semantic" in caption and "quality" in caption for caption in captions)
    page.wait_for_function("document.querySelector('#te-status textarea').value.startsWith('Finished')")
    assert page.locator("#te-reasoning textarea").input_value().strip()
    assert_slider_is_png(page, "te-slider")
    page.locator("#te-gallery").scroll_into_view_if_needed()
    assert_captions_readable(page, "te-gallery")
    page.screenshot(path=str(ARTIFACTS / "studio.png"))
    page.screenshot(path=str(ARTIFACTS / "studio-full.png"), full_page=True)
    page.locator("#te-gallery .thumbnail-item").first.click()  # the full view of turn 1, and its download
    assert_png(page, [page.locator("#te-gallery .media-button img").get_attribute("src")])
    assert_downloads_png(page, page.locator("#te-gallery button[aria-label=Download]"))
    page.locator("#te-gallery button[aria-label=Close]").click()

    page.locator("#te-advanced").get_by_text("Advanced").click()
    choose(page, "te-editor", "slow-classic")
    choose(page, "te-thinker", "html")
    set_number(page, "te-max-turns", 10)
    page.locator("#te-run").click()
    # any turn from 3 on: a busy machine may coalesce status updates and skip the exact "Turn 3" frame
    page.wait_for_function("/^Turn ([3-9]|10)\\b/.test(document.querySelector('#te-status textarea').value)")
    page.locator("#te-stop").click()
    page.wait_for_function("document.querySelector('#te-status textarea').value.includes('stopped by you')")
    kept = gallery_captions(page, "te-gallery")
    assert 2 <= len(kept) < 10, f"finished turns should stay after Stop: {kept}"
    assert EVIL in page.locator("#te-reasoning textarea").input_value(), "model markup is shown as text"
    assert page.evaluate("window.__pwned") is None, "model markup must never run in the page"
    assert page.locator("img[src='x']").count() == 0, "model markup must never become elements (toasts included)"
    assert page.locator("#te-table").get_by_text("window.__pwned", exact=False).count() >= 1
    page.screenshot(path=str(ARTIFACTS / "studio-stopped.png"), full_page=True)


def test_compare_tab(page, photo):
    page.get_by_role("tab", name="Compare").click()
    page.locator("#te-c-image input[type=file]").set_input_files(photo)
    page.locator("#te-c-instruction textarea").fill("make it look old")
    page.locator("#te-c-run").click()
    assert len(wait_for_captions(page, "te-c-gallery-a", 1)) == 1
    wait_for_captions(page, "te-c-gallery-b", 1)
    assert_slider_is_png(page, "te-c-slider")
    assert page.locator("#te-c-summary").get_by_text("scored by the thinker", exact=False).count() >= 1
    assert "semantic –" not in " ".join(gallery_captions(page, "te-c-gallery-a")), "the single-shot side is scored"
    for elem_id in ("te-c-gallery-a", "te-c-gallery-b"):
        assert_captions_readable(page, elem_id)
    close_toasts(page)  # the Stop run's warnings, still on screen
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "compare.png"))
    page.screenshot(path=str(ARTIFACTS / "compare-full.png"), full_page=True)


def test_history_reopens_a_run(page):
    page.get_by_role("tab", name="History").click()
    captions = wait_for_captions(page, "te-history", 4)  # two Studio runs, then both sides of the comparison
    assert all(" · best " in caption or " · no turns" in caption for caption in captions)
    page.wait_for_function("[...document.querySelectorAll('#te-history img')].every(i => i.naturalWidth > 0)")
    assert_captions_readable(page, "te-history")
    close_toasts(page)
    page.screenshot(path=str(ARTIFACTS / "history.png"))
    page.locator("#te-history .thumbnail-item").nth(len(captions) - 1).click()  # the oldest: the first Studio run
    page.get_by_role("tab", name="Studio", selected=True).wait_for()
    page.wait_for_function("document.querySelector('#te-instruction textarea') !== null")
    assert wait_for_captions(page, "te-gallery", 2)
    status = page.locator("#te-status textarea").input_value()
    assert "both scores reached the threshold" in status or "turn limit" in status, status


def test_closing_the_page_removes_the_session_s_temp_files(page, monkeypatch):
    """Gradio drops a closed session's state (after an hour; a second in its e2e mode) and calls the session
    State's delete_callback, which removes the session's temp folder."""
    from thinkedit.ui.view import SCRATCH

    monkeypatch.setenv("GRADIO_IS_E2E_TEST", "1")  # short heartbeat and closed-session lifetime
    before = set(Path(SCRATCH.name).glob("session-*"))
    other = page.context.new_page()
    other.goto(page.url)
    other.locator("#te-run").wait_for()
    opened = wait_until(lambda: set(Path(SCRATCH.name).glob("session-*")) - before, "a session folder on page load")
    assert len(opened) == 1, "the page load gives the session its own temp folder"
    folder = opened.pop()
    other.close()
    wait_until(lambda: not folder.exists(), "the closed session's temp folder to be removed")


def wait_until(condition, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.1)
    return result


def test_benchmarks_tab_shows_where_the_loop_helps(page):
    page.get_by_role("tab", name="Benchmarks").click()
    choose(page, "te-b-eval", "classic-folder")
    page.locator("#te-b-open").click()
    captions = wait_for_captions(page, "te-b-gallery", 2)
    assert captions[0].startswith("summer · gain +") and captions[1].startswith("bw · gain +0 ")
    page.locator("#te-b-table span.text", has_text="mean over categories").wait_for()
    page.locator("#te-b-chart img").wait_for()
    page.locator("#te-b-gallery .thumbnail-item").first.click()
    for name in ("source", "single", "loop"):
        page.locator(f"#te-b-{name} img").wait_for()
    details = page.locator("#te-b-details textarea").input_value()
    assert "turn 2 prompt:" in details and "% changed" in details, details
    assert "of the image changed on average" in page.locator("#te-b-summary").inner_text(), "drift figures shown"
    page.screenshot(path=str(ARTIFACTS / "benchmarks.png"), full_page=True)


def test_studio_steering_flow(page, photo, tmp_path):
    """Step mode, the refined prompt edited and continued, feedback, a turn picked and the zip downloaded, then a
    Compare side gone on from in the Studio."""
    page.get_by_role("tab", name="Studio").click()
    page.locator("#te-image input[type=file]").set_input_files(photo)
    page.locator("#te-instruction textarea").fill("make it look old")
    choose(page, "te-editor", "classic")
    choose(page, "te-thinker", "classic")
    page.locator("#te-step input[type=checkbox]").check()
    page.locator("#te-run").click()
    page.wait_for_function(
        "document.querySelector('#te-status textarea').value.includes('paused after the critique of turn 1')"
    )
    page.wait_for_function("document.querySelector('#te-turn input').value === '1'")  # the run's newest turn
    refined = page.locator("#te-refined textarea")
    assert refined.input_value().startswith("apply a sepia tone")
    close_toasts_if_any(page)
    page.mouse.move(0, 0)
    save_steering_picture(page, ARTIFACTS / "steering.png")

    mine = "apply a sepia tone at 30% strength and add a vignette at 30% strength"
    refined.fill(mine)
    page.locator("#te-continue").click()
    assert wait_for_captions(page, "te-gallery", 2)[1].startswith("Turn 2 (from 1, your prompt)")
    page.wait_for_function("document.querySelector('#te-turn input').value === '2'")
    page.locator("#te-feedback textarea").fill("less sepia, keep the vignette")
    page.locator("#te-send-feedback").click()
    assert wait_for_captions(page, "te-gallery", 3)[2].startswith("Turn 3 (from 2, your feedback)")
    page.wait_for_function("document.querySelector('#te-turn input').value === '3'")
    assert "you" in page.locator("#te-table").inner_text() and "feedback" in page.locator("#te-table").inner_text()
    page.screenshot(path=str(ARTIFACTS / "steering-continued.png"), full_page=True)

    page.locator("#te-gallery .thumbnail-item").first.click()  # choose turn 1
    page.wait_for_function("document.querySelector('#te-turn input').value === '1'")
    assert refined.input_value() != mine, "the chosen turn's own refined prompt"
    page.locator("#te-gallery button[aria-label=Close]").click()
    page.locator("#te-accept").click()
    page.wait_for_function(
        "[...document.querySelectorAll('#te-gallery .caption-label')][0]?.innerText.endsWith('★ your pick')"
    )
    assert "your pick: turn 1" in page.locator("#te-status textarea").input_value()
    with page.expect_download() as download:
        page.locator("#te-download a").first.click()
    with zipfile.ZipFile(download.value.path()) as archive:
        name = next(n for n in archive.namelist() if n.endswith("trajectory.json"))
        record = json.loads(archive.read(name))
    assert record["picked_turn"] == 1 and [t["parent"] for t in record["turns"]] == [None, 1, 2]
    assert [t["by"] for t in record["turns"]] == ["instruction", "person", "thinker"]
    page.screenshot(path=str(ARTIFACTS / "steering-picked.png"), full_page=True)

    page.get_by_role("tab", name="Compare").click()
    page.locator("#te-c-continue-b").click()  # the comparison made earlier in this module
    page.get_by_role("tab", name="Studio", selected=True).wait_for()
    page.wait_for_function("document.querySelector('#te-turn input').value !== '' ")
    page.locator("#te-continue").click()
    page.wait_for_function("document.querySelector('#te-status textarea').value.includes('the run holds')")


def save_steering_picture(page, path: Path) -> None:
    """The Studio's run view from its status to the steering buttons: the picture of docs/images/steering.png."""
    view = page.locator("#te-view")
    boxes = [page.locator(f"#{elem_id}").first.bounding_box() for elem_id in ("te-view", "te-status", "te-steer")]
    whole = Image.open(io.BytesIO(view.screenshot()))
    top, bottom = boxes[1]["y"] - boxes[0]["y"], boxes[2]["y"] + boxes[2]["height"] - boxes[0]["y"]
    whole.crop((0, round(top), whole.width, round(bottom))).convert("RGB").save(path, optimize=True)


def close_toasts_if_any(page) -> None:
    page.evaluate("document.querySelectorAll('[data-testid=toast-close]').forEach(b => b.click())")


def painted_image_box(canvas) -> tuple[int, int, int, int] | None:
    """Where the scene lies on the painter's canvas (its sky and grass colors), in canvas pixels; None until drawn."""
    shot = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")).astype(int)
    sky = np.abs(shot - np.array([135, 190, 235])).max(axis=2) < 12
    grass = np.abs(shot - np.array([60, 150, 60])).max(axis=2) < 12
    if sky.sum() < 1000 or grass.sum() < 100:
        return None
    rows, columns = np.nonzero(sky)
    return columns.min(), rows.min(), columns.max(), np.nonzero(grass)[0].max()


def test_studio_paints_a_mask_keeps_the_rest_and_shows_what_changed(page, photo, tmp_path):
    page.get_by_role("tab", name="Studio").click()
    choose(page, "te-editor", "classic")
    choose(page, "te-thinker", "classic")
    set_number(page, "te-max-turns", 2)
    page.locator("#te-step input[type=checkbox]").uncheck()  # the steering test left step mode on
    page.locator("#te-mask-panel").get_by_text("Mask (optional)").click()  # the painter's closed panel
    canvas = page.locator("#te-painter canvas").last
    page.locator('#te-image button[aria-label="Remove Image"]').click()  # the earlier upload goes, and the painter
    wait_until(lambda: painted_image_box(canvas) is None, "the painter to be cleared with the image", timeout=90)
    page.locator("#te-image input[type=file]").set_input_files(photo)  # then shows the new one
    box = wait_until(lambda: painted_image_box(canvas), "the painter to show the uploaded image", timeout=90)
    left, top, right, _ = box
    scale, origin = (right - left + 1) / 320, canvas.bounding_box()
    for y in range(15, 220, 20):  # brush strokes over the left third of the 320×220 scene
        page.mouse.move(origin["x"] + left + 6 * scale, origin["y"] + top + y * scale)
        page.mouse.down()
        page.mouse.move(origin["x"] + left + 100 * scale, origin["y"] + top + y * scale, steps=8)
        page.mouse.up()
    # the painter has taken the strokes in (they can be undone): Run sends them
    page.locator("#te-painter button[aria-label=Undo]:not([disabled])").wait_for()
    page.locator("#te-painter").screenshot(path=str(ARTIFACTS / "studio-mask-painted.png"))
    page.locator("#te-instruction textarea").fill("make it look old")
    before = page.evaluate("document.querySelector('#te-download a')?.href ?? null")  # the run reopened from History
    page.locator("#te-run").click()
    page.wait_for_function(  # this run's own zip: each run has its own id
        "old => { const a = document.querySelector('#te-download a'); return a && a.href !== old && a.href.endsWith('.zip'); }",
        arg=before,
    )
    assert page.locator("#te-status textarea").input_value().startswith("Finished")
    captions = wait_for_captions(page, "te-gallery", 1)
    assert all(" · changed " in caption and "(0% outside)" in caption for caption in captions), captions

    with page.expect_download() as download:
        page.locator("#te-download a").first.click()
    with zipfile.ZipFile(download.value.path()) as archive:
        files = {
            Path(n).name: Image.open(io.BytesIO(archive.read(n))) for n in archive.namelist() if n.endswith(".png")
        }
    mask = np.asarray(files["mask.png"].convert("L"))
    assert (mask[:, :90] >= 128).mean() > 0.8 and not (mask[:, 150:] >= 128).any(), "the strokes are the mask"
    source = np.asarray(files["source.png"].convert("RGB"))
    turns = [np.asarray(image.convert("RGB")) for name, image in sorted(files.items()) if name.startswith("turn_")]
    assert turns and all((turn[:, 150:] == source[:, 150:]).all() for turn in turns), "outside the mask: unchanged"
    assert all((turn[:, :80] != source[:, :80]).any() for turn in turns), "inside it: edited"

    page.locator("#te-gallery .thumbnail-item").first.click()
    page.locator("#te-gallery button[aria-label=Close]").click()
    page.wait_for_function("document.querySelector('#te-changes-note textarea').value.startsWith('Turn 1 against')")
    note = page.locator("#te-changes-note textarea").input_value()
    assert "0% outside the region" in note and "cyan: the mask's edge" in note, note
    assert_png(page, [page.locator("#te-changes img").get_attribute("src")])
    page.locator("#te-changes").scroll_into_view_if_needed()
    page.locator("#te-changes").screenshot(path=str(ARTIFACTS / "what-changed.png"))
    shown = np.asarray(Image.open(io.BytesIO(page.locator("#te-changes img").screenshot())).convert("RGB"), int)
    assert ((shown[..., 0] - shown[..., 2] > 80) & (shown[..., 1] < 240)).mean() > 0.05, "the change is marked"
    close_toasts(page)
    page.screenshot(path=str(ARTIFACTS / "studio-mask.png"), full_page=True)


def test_benchmarks_tab_plots_quality_against_compute(page):
    page.get_by_role("tab", name="Benchmarks").click()
    choose(page, "te-b-eval", "baselines-folder")
    page.locator("#te-b-open").click()
    page.locator("#te-b-table span.text", has_text="best-of-2 O").first.wait_for()
    plot = page.locator("#te-b-compute img")
    plot.wait_for(state="visible")
    page.wait_for_function("document.querySelector('#te-b-compute img').naturalWidth > 600")
    summary = page.locator("#te-b-summary").inner_text()
    assert "rewrite: O" in summary and "best-of-2: O" in summary
    assert "gives the most O per second" in summary or "no mode beat single-shot" in summary
    plot.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "benchmarks-compute.png"))
    page.screenshot(path=str(ARTIFACTS / "benchmarks-compute-full.png"), full_page=True)


def test_the_advanced_panel_s_patience_ends_a_run_and_the_table_shows_compute(page, photo):
    page.get_by_role("tab", name="Studio").click()
    if not page.locator("#te-patience").is_visible():
        page.locator("#te-advanced").get_by_text("Advanced").click()
    page.locator("#te-image input[type=file]").set_input_files(photo)
    page.locator("#te-instruction textarea").fill("make it warmer")
    choose(page, "te-editor", "classic")
    choose(page, "te-thinker", "html")  # the same scores every turn: the best never rises after turn 1
    page.locator("#te-step input[type=checkbox]").uncheck()  # the steering test above left step mode on
    set_number(page, "te-max-turns", 6)
    set_number(page, "te-patience", 1)
    page.locator("#te-run").click()
    page.wait_for_function(
        "document.querySelector('#te-status textarea').value.includes('had not risen for 1 turn')", timeout=60_000
    )
    status = page.locator("#te-status textarea").input_value()
    assert status.startswith("Finished after 2 turns") and "Compute: edit" in status
    headers = page.locator("#te-table thead th").all_inner_texts()
    assert [h.strip() for h in headers][-2:] == ["GPU s", "Tokens"]
    page.locator("#te-patience").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "studio-patience.png"), full_page=True)
