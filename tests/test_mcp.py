"""ThinkEdit as an MCP server: the real `mcp` client over streamable HTTP, against the app on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import runpy
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from helpers import FakeServer, Reply, same_pixels, scene_file, serve
from PIL import Image

from thinkedit import loop
from thinkedit.config import Settings
from thinkedit.editors.classic import ClassicEditor

mcp = pytest.importorskip("mcp")
from gradio_client import Client, handle_file  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

TOOL_ARGUMENTS = ["image", "instruction", "editor", "thinker", "max_turns", "threshold", "seed", "mask"]
TOOL_ARGUMENTS += ["patience", "budget_seconds", "budget_tokens"]  # the early stops, appended


class SteppingEditor(ClassicEditor):
    """The classic editor in four reported steps, so that a run lasts long enough to report progress."""

    def edit(self, image, prompt, *, seed, steps=None, guidance=None, on_step=None):
        for step in range(1, 5):
            if on_step:
                on_step(step, 4)
            time.sleep(0.1)
        return super().edit(image, prompt, seed=seed)


@pytest.fixture(scope="module")
def stepping_editor():
    from thinkedit.editors import EDITORS

    EDITORS["stepping"] = replace(EDITORS["classic"], name="stepping", target="test_mcp:SteppingEditor")
    yield "stepping"
    EDITORS.pop("stepping")


def start(tmp_path_factory, **settings):
    runs = tmp_path_factory.mktemp("runs")
    demo, url = serve(Settings(runs_dir=runs, mcp=True, **settings))
    return demo, url, runs


@pytest.fixture(scope="module")
def app(tmp_path_factory, stepping_editor):
    demo, url, runs = start(tmp_path_factory)
    yield url, runs
    demo.close()


@pytest.fixture(scope="module")
def public_app(tmp_path_factory):
    demo, url, runs = start(tmp_path_factory, public=True)
    yield url, runs
    demo.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    return scene_file(tmp_path_factory.mktemp("img"))


def data_url(path: str | Path, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode()


def with_session(url: str, work):
    """Run `await work(session)` in a fresh MCP client session on the app's streamable HTTP endpoint."""

    async def main():
        async with (
            streamable_http_client(f"{url}gradio_api/mcp/") as (read, write, _),
            mcp.ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await work(session)

    return asyncio.run(main())


def call(url: str, name: str, arguments: dict, progress: list | None = None):
    async def work(session):
        async def on_progress(value, total, message):
            progress.append((value, message))

        return await session.call_tool(name, arguments, progress_callback=on_progress if progress is not None else None)

    return with_session(url, work)


def texts(result) -> list[str]:
    return [c.text for c in result.content if c.type == "text"]


def summary_of(result) -> dict:
    return json.loads(next(text for text in texts(result) if text.startswith("{")))


def test_only_the_agent_tools_are_served_and_they_describe_themselves(app):
    url, _ = app
    tools = {tool.name: tool for tool in with_session(url, lambda session: session.list_tools()).tools}
    assert set(tools) == {"think_edit", "continue_edit", "list_backends"}, "the page's endpoints are not MCP tools"
    schema = httpx.get(f"{url}gradio_api/mcp/schema").json()  # what the Hub reads of an MCP Space
    assert {entry["name"] for entry in schema} == set(tools)
    think_edit = tools["think_edit"]
    assert think_edit.description.startswith("Edit an image with Think-while-Edit")
    assert "Returns: The best turn's image (PNG), and a JSON summary" in think_edit.description
    properties = think_edit.inputSchema["properties"]
    assert list(properties) == TOOL_ARGUMENTS
    assert all(properties[name].get("description") for name in TOOL_ARGUMENTS), "every argument is described"
    assert set(think_edit.inputSchema["required"]) == {"image", "instruction"}
    assert "classic" in properties["editor"]["enum"] and properties["max_turns"]["type"] == "integer"

    refused = call(url, "edit", {"image": "x", "instruction": "make it red"})
    assert refused.isError and "Unknown tool" in texts(refused)[0], "a page endpoint cannot be called over MCP"
    backends = json.loads(texts(call(url, "list_backends", {}))[0])
    classic = next(row for row in backends if row["name"] == "classic" and row["role"] == "editor")
    assert classic["available"] is True
    assert any(row["name"] == "flux-kontext" and row["available"] is False and row["reason"] for row in backends)


def test_the_page_endpoints_stay_public_for_gradio_client(app, photo):
    url, _ = app
    client = Client(url, verbose=False)
    documented = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/edit", "/compare", "/history", "/think_edit", "/list_backends"} <= set(documented)
    *_, record, history = client.predict(handle_file(photo), "make it brighter", max_turns=1, api_name="/edit")
    assert len(record["turns"]) == 1 and len(history) == 1
    assert len(client.predict(api_name="/history")) == 1


def test_think_edit_returns_the_best_image_and_a_summary_with_progress(app, photo, stepping_editor):
    url, runs = app
    progress = []
    arguments = {
        "image": data_url(photo),
        "instruction": "make it look old",
        "editor": stepping_editor,
        "max_turns": 3,
        "seed": 5,
    }
    result = call(url, "think_edit", arguments, progress)
    assert not result.isError, texts(result)

    summary = summary_of(result)
    record = json.loads((runs / summary["run"] / "trajectory.json").read_text())
    assert (summary["editor"], summary["thinker"]) == (stepping_editor, "classic")
    assert summary["turns"] == [
        {
            "turn": t["index"],
            "prompt": t["prompt"],
            "semantic": t["semantic"],
            "quality": t["quality"],
            "refined_prompt": t["refined_prompt"],
            "parent": t["parent"],
            "by": t["by"],
            "drift": t["drift"],
            **{key: t[key] for key in ("edit_seconds", "think_seconds", "gpu_seconds", "tokens")},
        }
        for t in record["turns"]
    ]
    assert all(0 < t["drift"]["changed"] <= 1 and t["drift"]["outside"] is None for t in summary["turns"])
    assert summary["region"] is None
    assert summary["compute"] == record["compute"] and summary["compute"]["edits"] == len(record["turns"])
    assert summary["cost"] is None, "no prices are set on this server"
    assert len(summary["turns"]) >= 2 and summary["turns"][0]["prompt"] == "make it look old"
    assert (summary["best_turn"], summary["stop_reason"]) == (record["best_turn"], record["stop_reason"])
    assert record["settings"]["seed"] == 5 and record["settings"]["max_turns"] == 3
    assert {turn["seed"] for turn in record["turns"]} == {5}  # the docstring's promise: one seed for every turn
    assert summary["stopped_because"] == loop.stop_message(record) and summary["stopped_because"]

    (image,) = [c for c in result.content if c.type == "image"]
    assert image.mimeType == "image/png"
    returned = Image.open(io.BytesIO(base64.b64decode(image.data)))
    assert returned.format == "PNG"
    best = Image.open(runs / summary["run"] / f"turn_{summary['best_turn']:02d}.png")
    assert same_pixels(returned, best), "the best turn, losslessly"

    messages = [message for _, message in progress if message]
    assert any(message.startswith("Progress turn ") for message in messages), messages
    assert [value for value, _ in progress] == sorted(value for value, _ in progress)


def web_page_sentence(url: str, image, instruction: str, editor: str = "classic", max_turns: int = 3) -> str:
    with pytest.raises(Exception) as refusal:  # noqa: PT011 - gradio_client raises its own AppError
        Client(url, verbose=False).predict(image, instruction, editor, max_turns=max_turns, api_name="/edit")
    return str(refusal.value)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("empty instruction", "The instruction is empty"),
        ("no image", "No image"),
        ("not an image", "not an image Pillow can read"),
        ("unavailable editor", "The editor 'flux-kontext' cannot run here"),
        ("too many turns", "max_turns must be from 1 to 10"),
    ],
)
def test_bad_input_gets_the_web_page_s_sentence(app, photo, tmp_path, case, expected):
    url, _ = app
    image, mcp_image, instruction, editor, turns = handle_file(photo), data_url(photo), "make it red", "classic", 3
    if case == "empty instruction":
        instruction = "   "
    elif case == "no image":
        image, mcp_image = None, ""
    elif case == "not an image":
        (tmp_path / "notes.png").write_text("not a picture")
        image, mcp_image = handle_file(str(tmp_path / "notes.png")), data_url(tmp_path / "notes.png", "text/plain")
    elif case == "unavailable editor":
        editor = "flux-kontext"
    else:
        turns = 11
    sentence = web_page_sentence(url, image, instruction, editor, turns)
    assert expected in sentence
    arguments = {"image": mcp_image, "instruction": instruction, "editor": editor, "max_turns": turns}
    result = call(url, "think_edit", arguments)
    assert result.isError and texts(result) == [sentence]
    with_progress = call(url, "think_edit", arguments, progress=[])  # Gradio's other path titles it
    assert with_progress.isError and texts(with_progress) == [f"Error: {sentence}"]


@pytest.fixture
def image_host(photo, monkeypatch):
    """A server on 127.0.0.1 with one image; `allow()` lets Gradio's SSRF-protected download reach it."""
    from gradio import processing_utils

    with FakeServer({("GET", "/photo.png"): lambda _: Reply(body=Path(photo).read_bytes())}) as server:
        server.photo_url = server.url.replace("127.0.0.1", "localhost") + "/photo.png"
        server.allow = lambda: monkeypatch.setattr(
            processing_utils, "PUBLIC_HOSTNAME_WHITELIST", [*processing_utils.PUBLIC_HOSTNAME_WHITELIST, "localhost"]
        )
        yield server


def upload(url: str, path: str) -> str:
    """The file uploaded to the app the way Gradio's upload_file_to_gradio tool does it; its URL."""
    with open(path, "rb") as file:
        response = httpx.post(f"{url}gradio_api/upload", files={"files": file})
    response.raise_for_status()
    return f"{url}gradio_api/file={response.json()[0]}"


def test_public_mode_never_fetches_a_url_the_caller_names(public_app, photo, image_host):
    url, _ = public_app
    from gradio.utils import get_upload_folder

    image_host.allow()  # even an address Gradio would fetch from
    outside_uploads = [f"{url}gradio_api/file=/etc/hostname", f"{url}gradio_api/file={get_upload_folder()}/../hosts"]
    for named in (image_host.photo_url, *outside_uploads):
        result = call(url, "think_edit", {"image": named, "instruction": "make it brighter", "max_turns": 1})
        assert result.isError and "does not fetch images from URLs" in texts(result)[0], named
    assert image_host.seen == [], "no request left the server"

    # an upload is read from Gradio's upload folder; and with no progress asked, Gradio's other path still answers
    # with the image and the summary
    uploaded = call(url, "think_edit", {"image": upload(url, photo), "instruction": "make it brighter", "max_turns": 1})
    assert not uploaded.isError, texts(uploaded)
    assert [c.type for c in uploaded.content] == ["image", "text", "text"]
    assert len(summary_of(uploaded)["turns"]) == 1


def test_outside_public_mode_urls_follow_gradio_s_rules(app, photo, image_host):
    url, runs = app
    arguments = {"image": image_host.photo_url, "instruction": "make it brighter", "max_turns": 1}
    refused = call(url, "think_edit", arguments)
    assert refused.isError and "could not be downloaded" in texts(refused)[0], "Gradio refuses a loopback address"
    assert image_host.seen == []

    image_host.allow()
    fetched = call(url, "think_edit", arguments)
    assert not fetched.isError, texts(fetched)
    assert [seen.path for seen in image_host.seen] == ["/photo.png"]
    source = Image.open(runs / summary_of(fetched)["run"] / "source.png")
    assert same_pixels(source, Image.open(photo))


def test_mcp_is_off_unless_asked_and_every_switch_turns_it_on(monkeypatch):
    from thinkedit import ui

    assert ui.launch_options(Settings())["mcp_server"] is False, "GRADIO_MCP_SERVER alone does not turn it on"
    assert Settings.from_env({"THINKEDIT_MCP": "1"}).mcp is True
    launched = []
    monkeypatch.setattr(ui, "launch", lambda demo, settings, share=False: launched.append((demo, settings)))
    main = runpy.run_path(str(Path(__file__).resolve().parents[1] / "app.py"))["main"]
    main(["--mcp"])
    demo, settings = launched[0]
    assert settings.mcp is True and ui.launch_options(settings)["mcp_server"] is True
    assert {"think_edit", "list_backends", "edit"} <= {
        name.lstrip("/") for name in demo.get_api_info()["named_endpoints"]
    }
