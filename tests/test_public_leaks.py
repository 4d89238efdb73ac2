"""A public page names no server path or URL anywhere (issue 23, item 5): not in an upload's answer, not in the
backends it lists (its dropdowns and the MCP `list_backends` tool), not in a benchmark sample's error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
from helpers import call_edit, free_port, scene_file, serve, wait_until_serving

from thinkedit.config import Settings
from thinkedit.ui import agent, benchmarks, build_app
from thinkedit.ui.session import Session

ROOT = Path(__file__).resolve().parents[1]
SECRET_FOLDER = "/srv/secret-weights/flux-kontext"
SECRET_HOST = "10.11.12.13:8000"


def test_what_gradio_names_on_a_public_page_is_in_a_random_temp_folder_not_the_operators(tmp_path):
    """`python app.py --public`: Gradio names each file it holds by its path in its folder (an upload's answer, every
    file URL of the page), so a public page's folder is a random one in the system temp folder, never the one the
    operator's GRADIO_TEMP_DIR names (which may say whose server it is); it goes when the app exits."""
    port = free_port()
    operators = tmp_path / "home-of-alice" / "gradio-temp"
    env = {
        **os.environ,
        "THINKEDIT_RUNS_DIR": str(tmp_path / "runs"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(operators),
    }
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--public", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, app)
        with open(scene_file(tmp_path), "rb") as file:
            answer = httpx.post(f"{url}/gradio_api/upload", files={"files": ("scene.png", file, "image/png")})
        (name,) = answer.json()
        folder = Path(name).parents[1]
        assert folder.parent == Path(tempfile.gettempdir()) and folder.name.startswith("thinkedit-gradio-")
        image = {"path": name, "meta": {"_type": "gradio.FileData"}}
        run = call_edit(
            url,
            [image, "make it brighter", "classic", "classic", 1, 8, "none", 0, False, None, None, "same", False]
            + [None, None]  # no mask
            + [None, None, None],  # no early stop
        )
        assert "event: complete" in run
        for text in (answer.text, run):
            assert "home-of-alice" not in text and str(tmp_path) not in text
    finally:
        app.terminate()
        app.wait(timeout=30)
    assert not folder.exists(), "the app's Gradio folder is removed when it exits"


def configured(public: bool) -> Settings:
    return Settings(public=public, editor_model=SECRET_FOLDER, thinker="openai", thinker_url=f"http://{SECRET_HOST}/v1")


def test_the_backends_a_public_page_lists_name_no_folder_or_url():
    for public, shown in ((False, True), (True, False)):  # the control: outside public mode the operator sees all
        listed = agent.make_list_backends(configured(public))()
        config = json.dumps(build_app(configured(public)).get_config_file(), default=str)
        for text in (listed, config):
            assert (SECRET_FOLDER in text or SECRET_HOST in text) is shown, (public, text[:400])
    assert any(not row["available"] for row in json.loads(listed)), "the reasons are still there, in words"


def test_a_benchmark_samples_error_on_a_public_page_names_no_folder():
    sample = {
        "key": "k1",
        "category": "color",
        "instruction": "make it blue",
        "single": {"sc": None, "pq": None, "o": None, "error": f"No image file at {SECRET_FOLDER}/k1.png."},
    }
    *_, private = benchmarks.show_sample([sample], 0, Session())
    *_, public = benchmarks.show_sample([sample], 0, Session(), public=True)
    assert SECRET_FOLDER in private and "/srv" not in public and "k1.png" in public


def test_a_nul_in_a_folder_name_the_page_opens_gets_its_sentence(tmp_path):
    """The History tab's run folder box and the Benchmarks tab's eval name: a NUL (or any name that cannot be a
    path) gets the same sentence as a name outside their folder, not a generic error."""
    from gradio_client import Client

    demo, url = serve(Settings(runs_dir=tmp_path / "runs", evals_dir=tmp_path / "evals"))
    try:
        client = Client(url, verbose=False)
        for name, api, sentence in (
            ("run\0x", "/open_run", "Only runs in the runs folder"),
            ("eval\0x", "/benchmark", "Only evals in the evals folder"),
        ):
            with pytest.raises(Exception, match=sentence):
                client.predict(None, name, api_name=api) if api == "/open_run" else client.predict(name, api_name=api)
    finally:
        demo.close()
