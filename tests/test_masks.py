"""Masks fence an edit in: how a mask is read (any size, empty, full, not an image), the composite every editor's
result goes through, the region in words, what the loop does with them, and how a masked run is saved and reopened."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from helpers import RecordingEditor, ScriptedThinker, same_pixels
from PIL import Image, ImageDraw

from thinkedit import loop, masks, store
from thinkedit.errors import BadInput
from thinkedit.requests import make_request


def left_half(size: tuple[int, int]) -> Image.Image:
    mask = Image.new("L", size)
    mask.paste(255, (0, 0, size[0] // 2, size[1]))
    return mask


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def finished(events) -> loop.Trajectory:
    return next(event.trajectory for event in events if isinstance(event, loop.RunFinished))


def outside_is_the_source(source: Image.Image, result: Image.Image, mask: Image.Image) -> bool:
    outside = np.asarray(mask) < masks.HALF
    return bool((np.asarray(result)[outside] == np.asarray(source)[outside]).all())


# -- reading a mask ---------------------------------------------------------------------------------------------


def test_a_mask_of_another_size_is_scaled_and_stretching_it_is_said(scene):
    mask, notes = masks.load_mask(left_half((48, 32)), scene.size)  # half the size, the same shape
    assert mask.size == scene.size and mask.mode == "L" and notes == []
    assert (np.asarray(mask)[:, :44] >= masks.HALF).all() and (np.asarray(mask)[:, 52:] < masks.HALF).all()
    stretched, notes = masks.load_mask(png(left_half((40, 40))), scene.size)
    assert stretched.size == scene.size
    assert notes == ["The mask is 40×40 and the image 96×64: the mask was stretched to the image's shape."]


def test_an_empty_mask_is_refused_and_a_full_one_fences_nothing(scene):
    with pytest.raises(BadInput, match="The mask is empty: nothing in it is white"):
        masks.load_mask(Image.new("L", scene.size), scene.size)
    with pytest.raises(BadInput, match="The mask is empty"):
        make_request(scene, "make it brighter", mask=Image.new("RGB", scene.size, (100, 100, 100)))
    request = make_request(scene, "make it brighter", mask=Image.new("L", scene.size, 255))
    assert request.mask is None
    assert request.notes == (
        "The mask covers the whole image, so it fences nothing in: the run goes on without a mask.",
    )


@pytest.mark.parametrize(
    "mask, message",
    [
        (b"not an image at all", "This file is not an image Pillow can read"),
        (b"", "The image file is empty."),
        (12, "must be an uploaded file, a path or image bytes, not int"),
    ],
)
def test_a_mask_that_is_not_an_image_gets_a_sentence(scene, mask, message):
    with pytest.raises(BadInput) as refused:
        make_request(scene, "make it brighter", mask=mask)
    assert str(refused.value).startswith("The mask must be an image: white where the edit may change, black where")
    assert message in str(refused.value)


def test_a_transparent_mask_is_painted_strokes_on_black(scene, tmp_path):
    strokes = Image.new("RGBA", scene.size, (0, 0, 0, 0))
    ImageDraw.Draw(strokes).rectangle((10, 10, 30, 30), fill=(255, 255, 255, 255))
    strokes.save(tmp_path / "strokes.png")
    request = make_request(scene, "make it brighter", mask=str(tmp_path / "strokes.png"))
    inside = np.asarray(request.mask) >= masks.HALF
    assert inside[10:31, 10:31].all() and inside.sum() == 21 * 21


def test_painted_layers_become_a_mask_and_unpainted_ones_none():
    layer = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
    ImageDraw.Draw(layer).ellipse((5, 5, 15, 15), fill=(255, 45, 149, 153))
    mask = masks.from_layers([layer, Image.new("RGBA", (40, 20), (0, 0, 0, 0))])
    assert mask.size == (40, 20) and np.asarray(mask)[10, 10] == 255 and np.asarray(mask)[2, 30] == 0
    assert masks.from_layers([Image.new("RGBA", (40, 20), (0, 0, 0, 0))]) is None
    assert masks.from_layers([]) is None


# -- the composite and the words ------------------------------------------------------------------------------------


def test_the_composite_keeps_every_pixel_outside_the_mask_and_the_edit_inside_it(scene):
    edited = Image.eval(scene, lambda v: 255 - v)
    mask = Image.new("L", scene.size)
    ImageDraw.Draw(mask).ellipse((20, 10, 70, 55), fill=255)
    result = masks.composite(scene, edited, mask)
    assert outside_is_the_source(scene, result, mask)
    core = Image.new("L", scene.size)
    ImageDraw.Draw(core).ellipse((26, 16, 64, 49), fill=255)  # away from the soft edge
    inner = np.asarray(core) > 0
    assert (np.asarray(result)[inner] == np.asarray(edited)[inner]).all()
    weight = masks.weight(mask)
    assert 0 < weight[32, 21] < 1, "the edge inside the mask is soft"


def test_the_region_in_words_says_where_and_how_big():
    mask = Image.new("L", (200, 100))
    draw = ImageDraw.Draw(mask)
    draw.rectangle((10, 10, 59, 39), fill=255)
    draw.ellipse((150, 60, 190, 95), fill=255)
    text = masks.in_words(mask)
    assert text.startswith("Only a masked region may change: 13% of the image, in 2 parts, at the top left and at ")
    assert "at the bottom right (the pixels from x 10 to 190 and y 10 to 95 of the 200×100 image)" in text
    assert "count any change outside the region as over-editing" in text
    centre = Image.new("L", (640, 480))
    centre.paste(255, (300, 200, 341, 261))
    assert "may change: 0.8% of the image, in the centre (the pixels from x 300 to 340" in masks.in_words(centre)


# -- the loop ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "instruction",
    [
        "increase brightness by 40%",
        "make the sky orange",
        "add a red border",
        "invert the colors",
        'add the text "HELLO"',
        "blur by 3",
    ],
)
def test_a_mask_confines_the_classic_editor_and_the_loop_keeps_it(scene, editor, thinker, instruction):
    mask = left_half(scene.size)
    request = make_request(scene, instruction, mask=mask, max_turns=2)
    trajectory = finished(loop.run(editor, thinker, request))
    assert trajectory.error is None and trajectory.turns
    for turn in trajectory.turns:
        assert outside_is_the_source(scene, turn.image, mask), instruction
        assert turn.drift.outside == 0.0
    masked_alone = editor.edit(scene, instruction, seed=0, mask=mask)  # the editor alone keeps the outside too
    assert outside_is_the_source(scene, masked_alone, mask)
    assert not same_pixels(trajectory.turns[0].image, scene), "inside the mask the edit happened"


def test_any_editor_is_fenced_in_even_one_that_knows_no_masks(scene):
    mask = left_half(scene.size)
    editor = RecordingEditor(returns=lambda image: Image.eval(image, lambda v: 255 - v))  # its edit() takes no mask
    trajectory = finished(loop.run(editor, None, make_request(scene, "anything", mask=mask)))
    (turn,) = trajectory.turns
    assert outside_is_the_source(scene, turn.image, mask)
    assert same_pixels(editor.inputs[0], scene)
    assert turn.drift.changed == pytest.approx(0.5, abs=0.05) and turn.drift.outside == 0.0


@pytest.mark.parametrize("instruction", ["rotate 90 degrees", "crop the left half", "flip it horizontally"])
def test_geometry_inside_a_mask_is_refused_with_a_sentence(scene, editor, thinker, instruction):
    trajectory = finished(loop.run(editor, thinker, make_request(scene, instruction, mask=left_half(scene.size))))
    assert trajectory.turns == [] and trajectory.stop_reason == "error"
    assert trajectory.error.startswith("A mask keeps the image's frame, so '")
    assert "Remove the mask to change the frame" in trajectory.error
    unmasked = finished(loop.run(editor, thinker, make_request(scene, instruction, max_turns=1)))
    assert unmasked.error is None, "without a mask it is done"
    shape_kept = instruction.startswith("flip")
    assert (unmasked.turns[0].drift is None) is not shape_kept, "a turn of another shape has no drift"


def test_an_editor_that_changes_the_shape_inside_a_mask_is_refused(scene):
    rotating = RecordingEditor(returns=lambda image: image.transpose(Image.Transpose.ROTATE_90))
    trajectory = finished(loop.run(rotating, None, make_request(scene, "rotate", mask=left_half(scene.size))))
    assert trajectory.turns == [] and "returned a 64×96 image for a 96×64 source" in trajectory.error
    assert "Remove the mask to change the image's shape." in trajectory.error


def test_the_thinker_is_told_the_region_or_the_person_is_told_it_cannot_be(scene, editor):
    class RegionThinker(ScriptedThinker):
        def critique(self, source, edited, instruction, prompt, *, on_token=None, region=None):
            self.regions = [*getattr(self, "regions", []), region]
            return super().critique(source, edited, instruction, prompt, on_token=on_token)

    mask = left_half(scene.size)
    told = RegionThinker([(9, 9, "same")])
    trajectory = finished(loop.run(editor, told, make_request(scene, "make it brighter", mask=mask)))
    assert told.regions == [masks.in_words(mask)] == [trajectory.region]
    unmasked = RegionThinker([(9, 9, "same")])
    finished(loop.run(editor, unmasked, make_request(scene, "make it brighter")))
    assert unmasked.regions == [None], "without a mask nothing is said"

    older = ScriptedThinker([(9, 9, "same")])  # its critique() takes no region
    events = list(loop.run(editor, older, make_request(scene, "make it brighter", mask=mask)))
    notices = [event.message for event in events if isinstance(event, loop.Notice)]
    assert any("cannot be told the masked region" in notice for notice in notices), notices
    assert finished(events).error is None and len(older.calls) == 1


def test_the_classic_editor_s_own_selection_gives_the_drift_outside_it(scene, editor):
    trajectory = finished(loop.run(editor, None, make_request(scene, "make the red square blue")))
    (turn,) = trajectory.turns
    assert 0 < turn.drift.changed < 0.3 and turn.drift.outside == 0.0
    whole = finished(loop.run(editor, None, make_request(scene, "increase brightness by 40%")))
    assert whole.turns[0].drift.outside is None, "an edit of the whole image has no region"


def test_the_mask_and_the_drift_travel_with_the_run(scene, editor, thinker, tmp_path):
    mask = left_half(scene.size)
    run_dir = tmp_path / "run"
    trajectory = finished(
        loop.run(editor, thinker, make_request(scene, "add a red border", mask=mask), run_dir=run_dir)
    )
    saved = store.load_run(run_dir)
    assert saved.record["mask"] == "mask.png" and saved.record["region"] == trajectory.region
    assert same_pixels(saved.mask, mask) and saved.mask.mode == "L"
    assert [turn["drift"] for turn in saved.record["turns"]] == [t.drift.record() for t in trajectory.turns]
    archive = store.zip_run(run_dir)
    assert f"{run_dir.name}/mask.png" in zipfile.ZipFile(archive).namelist()
    unpacked = store.load_run(archive, unpack_to=tmp_path)
    assert same_pixels(unpacked.mask, mask)
    assert store.load_run(_unmasked(scene, editor, tmp_path)).mask is None

    (run_dir / "mask.png").unlink()
    with pytest.raises(BadInput, match="has no mask.png, which its trajectory.json names"):
        store.load_run(run_dir)


def _unmasked(scene, editor, tmp_path):
    run_dir = tmp_path / "plain"
    finished(loop.run(editor, None, make_request(scene, "add a red border"), run_dir=run_dir))
    assert not (run_dir / "mask.png").exists()
    return run_dir


def test_a_bad_drift_in_a_record_is_refused_with_the_field_named(scene, editor, tmp_path):
    run_dir = _unmasked(scene, editor, tmp_path)
    record = json.loads((run_dir / "trajectory.json").read_text())
    record["turns"][0]["drift"] = {"changed": 7, "outside": None}
    (run_dir / "trajectory.json").write_text(json.dumps(record))
    with pytest.raises(BadInput, match='turn 1\'s "drift" is an object, where a drift'):
        store.load_run(run_dir)


@pytest.mark.parametrize("instruction", ["increase brightness by 30%", "make the sky orange", "make it look old"])
def test_the_offline_critic_measures_what_is_asked_inside_the_mask(scene, editor, thinker, instruction):
    mask = left_half(scene.size)
    trajectory = finished(loop.run(editor, thinker, make_request(scene, instruction, mask=mask, max_turns=3)))
    best = trajectory.best_turn
    assert best.critique.semantic >= 8, best.critique.reasoning  # (a recolor cut by the mask's edge leaves a seam)
    told = thinker.critique(scene, best.image, instruction, best.prompt, region="the left half", mask=mask)
    blind = thinker.critique(scene, best.image, instruction, best.prompt)
    assert told.semantic >= 8 > blind.semantic, "measured over the whole image, half the change is missing"
