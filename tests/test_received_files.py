"""A request opens only files Gradio received for this app (issue 23, item 1).

`/edit` and `/compare` take their image raw, so Gradio's own upload check does not run for them; a payload naming
any other server path — an image elsewhere on disk, a link out of the upload folder, a file that does not exist, a
plain path string — gets one sentence, the same whether or not the file exists, on a public page and a private one.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from gradio.utils import get_upload_folder
from helpers import call_edit, scene_file, serve, solid, upload
from PIL import Image

from thinkedit.config import Settings
from thinkedit.errors import BadInput
from thinkedit.ui import actions, agent, form
from thinkedit.ui.received import NOT_RECEIVED, received_file

REFUSAL = NOT_RECEIVED.format(what="image")


@pytest.fixture(scope="module", params=[False, True], ids=["private", "public"])
def app(request, tmp_path_factory):
    demo, url = serve(Settings(runs_dir=tmp_path_factory.mktemp("runs"), public=request.param))
    yield url.rstrip("/"), request.param
    demo.close()


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A real image outside Gradio's upload folder: what an attacker would like to read back."""
    folder = tmp_path_factory.mktemp("server-files")
    return Path(solid(folder / "secret.png", (200, 10, 30)))


def payload(path: str | Path) -> dict:
    """Shaped like Gradio's file payload but without its `meta` mark, so Gradio's own upload check passes it on."""
    return {"path": str(path)}


def marked(path: str | Path) -> dict:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


def edit_values(image, public: bool) -> list:
    values = [image, "make it brighter", "classic", "classic", 1, 8, "none", 0, False, None, None]
    return (values if public else values + [None, None, None, None, None, None, "default"]) + [
        "same",
        False,
        None,
        None,
        None,
        None,
        None,
    ]


def compare_values(image) -> list:
    return form.positional(actions.COMPARE_FIELDS, image=image, instruction="make it brighter", max_turns=1)


def link_in_upload_folder(target: Path) -> Path:
    """A symlink inside the upload folder that points at `target` outside it."""
    folder = Path(get_upload_folder()) / f"link-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    link = folder / "innocent.png"
    os.symlink(target, link)
    return link


def refused_alike(answer: str) -> bool:
    return "event: error" in answer and REFUSAL in answer


def test_edit_and_compare_refuse_every_path_that_gradio_did_not_receive(app, outside, tmp_path):
    url, public = app
    missing = outside.parent / "no-such-file.png"
    link = link_in_upload_folder(outside)
    for image in (payload(outside), payload(missing), payload(link), payload("/etc/hostname")):
        for api, values in (("edit", edit_values(image, public)), ("compare", compare_values(image))):
            answer = call_edit(url, values, api)
            assert refused_alike(answer), f"/{api} with {image!r}: {answer[-300:]}"
            assert str(outside) not in answer and "no-such-file" not in answer
    # marked as a file payload, or a bare path, Gradio refuses it before the handler runs: one answer either way
    answers = {
        call_edit(url, edit_values(shape(path), public)) for path in (outside, missing) for shape in (marked, str)
    }
    assert len(answers) == 1 and "event: error" in answers.pop()
    # the control: the same image, uploaded, is edited
    answer = call_edit(url, edit_values(upload(url, scene_file(tmp_path)), public))
    assert "event: complete" in answer and REFUSAL not in answer


MASK = -5  # /edit's mask slot: then `painted` and the three early stops (the last fields)


def test_a_mask_and_painted_layers_follow_the_same_rule(app, outside, tmp_path):
    url, public = app
    image = upload(url, scene_file(tmp_path))
    refusal = NOT_RECEIVED.format(what="mask")
    for path in (outside, link_in_upload_folder(outside), "/etc/hostname"):
        values = edit_values(image, public)
        values[MASK] = payload(path)
        answer = call_edit(url, values)
        assert "event: error" in answer and refusal in answer, f"mask {path}: {answer[-300:]}"
        assert str(outside) not in answer
        for layer in (payload(path), marked(path)):  # painted layers: Gradio's own check refuses them first
            values[MASK : MASK + 2] = [None, {"layers": [layer]}]
            answer = call_edit(url, values)
            assert "event: error" in answer and str(outside) not in answer and "event: complete" not in answer
    values = edit_values(image, public)
    values[MASK] = upload(url, solid(tmp_path / "mask.png", (255, 255, 255), size=(20, 20)))  # white: all may change
    answer = call_edit(url, values)
    assert "event: complete" in answer and refusal not in answer


def test_the_refusal_is_the_same_sentence_whether_or_not_the_file_exists(outside, tmp_path):
    sentences = set()
    for path in (outside, outside.parent / "missing.png", tmp_path, "/", "", "\x00", "../../etc/passwd"):
        with pytest.raises(BadInput) as refusal:
            received_file(path)
        sentences.add(str(refusal.value))
    assert sentences == {REFUSAL}


def test_an_upload_is_read_and_a_link_out_of_the_upload_folder_is_not(outside):
    inside = Path(get_upload_folder()) / f"up-{uuid.uuid4().hex}" / "photo.png"
    inside.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(inside)
    assert received_file(str(inside)) == inside.resolve()
    assert actions.image_input(payload(inside)) == inside.resolve()
    with pytest.raises(BadInput, match="uploaded to this page"):
        actions.image_input(payload(link_in_upload_folder(outside)))


def test_a_data_url_larger_than_an_upload_is_refused_before_it_is_decoded():
    huge = "data:image/png;base64," + "A" * (70 * 2**20)
    with pytest.raises(BadInput, match="at most 50 MB"):
        actions.image_input({"url": huge, "path": None})


def test_the_mcp_tool_reads_only_uploads_and_fetches_nothing_on_a_public_page(outside):
    link = link_in_upload_folder(outside)
    for path in (outside, link):
        with pytest.raises(BadInput, match="does not fetch images"):
            agent.tool_image(f"http://127.0.0.1:7860/gradio_api/file={path}", public=True)


def test_a_run_zip_must_be_an_upload_too(outside, tmp_path):
    session = actions.Session()
    for path in (str(outside), {"path": str(outside)}):
        with pytest.raises(Exception, match="run's zip must be a file uploaded"):
            actions.open_saved(path, "", session, Settings(runs_dir=tmp_path), viewer=None, history=None)
