"""The offline editor: each instruction's measurable effect on the pixels, checked directly."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from thinkedit.config import Settings
from thinkedit.editors.classic import LUMA, text_box
from thinkedit.errors import Cancelled
from thinkedit.instructions import Op, describe, read, resolve
from thinkedit.registry import build_backend

ASSETS = Path(__file__).resolve().parent.parent / "assets"
RED_SQUARE = (slice(12, 37), slice(10, 35))  # rows, columns of the conftest scene's red square


@pytest.fixture(scope="module")
def editor():
    return build_backend("editor", Settings(), "classic")


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A real photo, small and a little dark so brightening does not clip."""
    image = Image.open(ASSETS / "chelsea.jpg").convert("RGB").resize((120, 80))
    return Image.fromarray((np.asarray(image) * 0.7).astype(np.uint8))


def edit(editor, image, prompt):
    return editor.edit(image, prompt, seed=0)


def arr(image):
    return np.asarray(image).astype(np.int16)


def luma(image):
    return np.asarray(image, np.float32) @ LUMA


def saturation(image):
    x = arr(image)
    return float((x.max(axis=2) - x.min(axis=2)).mean())


def detail(image):
    y = luma(image)
    return float(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())


def test_black_and_white_has_no_saturation(editor, photo):
    out = edit(editor, photo, "make it black and white")
    assert saturation(photo) > 10
    assert saturation(out) < 1


@pytest.mark.parametrize(
    "prompt, transpose",
    [
        ("rotate 90 degrees clockwise", Image.Transpose.ROTATE_270),
        ("rotate it 90° counter-clockwise", Image.Transpose.ROTATE_90),
        ("turn it upside down", Image.Transpose.ROTATE_180),
        ("mirror the image", Image.Transpose.FLIP_LEFT_RIGHT),
        ("flip vertically", Image.Transpose.FLIP_TOP_BOTTOM),
    ],
)
def test_exact_geometry(editor, scene, prompt, transpose):
    assert np.array_equal(arr(edit(editor, scene, prompt)), arr(scene.transpose(transpose)))


def test_rotate_any_angle_keeps_size_and_turns_content(editor, scene):
    out = edit(editor, scene, "rotate 30 degrees clockwise")
    assert out.size == scene.size
    assert np.abs(arr(out) - arr(scene)).mean() > 10
    assert np.array_equal(arr(out)[0, 0], [0, 0, 0])  # a corner outside the turned picture


def test_red_border_leaves_centre_untouched(editor, scene):
    out = arr(edit(editor, scene, "add a red border"))
    ring = np.concatenate([out[:2].reshape(-1, 3), out[-2:].reshape(-1, 3), out[:, :2].reshape(-1, 3)])
    assert (np.abs(ring - [220, 30, 30]).max(axis=1) == 0).all()
    assert np.array_equal(out[8:-8, 8:-8], arr(scene)[8:-8, 8:-8])


def test_border_thickness_in_pixels(editor, scene):
    out = arr(edit(editor, scene, "add a 5-pixel white border"))
    assert (out[:5] == 255).all() and (out[:, -5:] == 255).all()
    assert np.array_equal(out[5:-5, 5:-5], arr(scene)[5:-5, 5:-5])


def test_recolor_changes_only_the_named_color(editor, scene):
    out, src = arr(edit(editor, scene, "make the red square blue")), arr(scene)
    square = out[RED_SQUARE]
    assert (square[..., 2] > square[..., 0] + 100).all()
    rest = np.ones(src.shape[:2], bool)
    rest[RED_SQUARE] = False
    assert np.array_equal(out[rest], src[rest])


def test_keep_one_color_grays_the_rest(editor, scene):
    out, src = arr(edit(editor, scene, "keep only the red and make everything else black and white")), arr(scene)
    assert np.array_equal(out[RED_SQUARE], src[RED_SQUARE])
    rest = np.ones(src.shape[:2], bool)
    rest[RED_SQUARE] = False
    assert (out[rest].max(axis=1) - out[rest].min(axis=1)).max() <= 1


@pytest.mark.parametrize("where", ["bottom", "top"])
def test_text_changes_only_its_band(editor, where):
    image = Image.new("RGB", (240, 160), (40, 90, 140))
    out = arr(edit(editor, image, f'add the text "HELLO" at the {where} in yellow'))
    changed = np.abs(out - arr(image)).max(axis=2) > 0
    rows = np.nonzero(changed.any(axis=1))[0]
    _, top, _, bottom = text_box(image.size, Op("text", 0.08, where=where, color="yellow", text="HELLO"))
    assert changed.sum() > 50
    assert rows.min() >= top - 1 and rows.max() <= bottom + 1
    assert (rows.max() < 80) if where == "top" else (rows.min() > 80)
    assert (np.abs(out[changed] - [245, 215, 30]).max(axis=1) < 40).sum() > 20


def test_brightness_degree_words_are_monotonic(editor, photo):
    means = [luma(edit(editor, photo, p)).mean() for p in
             ("make it slightly brighter", "make it brighter", "make it much brighter")]  # fmt: skip
    assert luma(photo).mean() < means[0] < means[1] < means[2]


def test_brightness_by_percent(editor, photo):
    ratio = luma(edit(editor, photo, "increase brightness by 30%")).mean() / luma(photo).mean()
    assert ratio == pytest.approx(1.3, abs=0.03)
    assert luma(edit(editor, photo, "make it darker")).mean() < luma(photo).mean() * 0.85


def test_contrast_up_and_down(editor, photo):
    std = luma(photo).std()
    assert luma(edit(editor, photo, "increase contrast by 40%")).std() == pytest.approx(std * 1.4, rel=0.06)
    assert luma(edit(editor, photo, "lower the contrast")).std() < std * 0.85


def test_saturation_up_and_down(editor, photo):
    values = [
        saturation(edit(editor, photo, p)) for p in ("desaturate by 50%", "make it more vivid", "much more saturated")
    ]
    assert values[0] < saturation(photo) * 0.6
    assert saturation(photo) < values[1] < values[2]


def test_warmer_and_cooler(editor, photo):
    def balance(image):
        x = arr(image)
        return float((x[..., 0] - x[..., 2]).mean())

    assert balance(edit(editor, photo, "make it warmer")) > balance(photo) + 5
    assert balance(edit(editor, photo, "make it cooler")) < balance(photo) - 5


def test_sepia_is_brown_and_keeps_luminance(editor, photo):
    out = arr(edit(editor, photo, "apply a sepia tone"))
    assert ((out[..., 0] >= out[..., 1]) & (out[..., 1] >= out[..., 2])).all()
    assert luma(Image.fromarray(out.astype(np.uint8))).mean() == pytest.approx(luma(photo).mean(), rel=0.05)


def test_invert(editor, scene):
    assert np.array_equal(arr(edit(editor, scene, "invert the colors")), 255 - arr(scene))


def test_blur_and_sharpen_change_detail(editor, photo):
    light, heavy = (detail(edit(editor, photo, p)) for p in ("blur slightly", "blur a lot"))
    assert heavy < light < detail(photo)
    assert detail(edit(editor, photo, "sharpen")) > detail(photo) * 1.1


def test_pixelate_makes_constant_blocks(editor, photo):
    out = arr(edit(editor, photo, "pixelate with 8-pixel blocks"))
    blocks = out[:80, :120].reshape(10, 8, 15, 8, 3)
    assert (blocks.max(axis=(1, 3)) == blocks.min(axis=(1, 3))).all()


def test_posterize_levels(editor, photo):
    out = arr(edit(editor, photo, "posterize to 4 levels"))
    assert all(len(np.unique(out[..., c])) <= 4 for c in range(3))


def test_crop_and_zoom_return_the_region(editor, scene):
    left = edit(editor, scene, "crop the left half")
    assert np.array_equal(arr(left), arr(scene.crop((0, 0, 48, 64))))
    zoom = edit(editor, scene, "zoom in 2x")
    assert np.array_equal(arr(zoom), arr(scene.crop((24, 16, 72, 48))))
    assert edit(editor, scene, "resize to 50%").size == (48, 32)


def test_vignette_darkens_corners_not_centre(editor, photo):
    before, after = luma(photo), luma(edit(editor, photo, "add a vignette"))
    assert after[:8, :8].mean() < before[:8, :8].mean() * 0.8
    assert after[36:44, 56:64].mean() == pytest.approx(before[36:44, 56:64].mean(), rel=0.03)


def test_several_operations_in_one_instruction(editor, photo):
    out = arr(edit(editor, photo, "make it warmer and add a thin white frame"))
    assert (out[:2] == 255).all() and (out[:, -2:] == 255).all()
    inner, source = out[4:-4, 4:-4], arr(photo)[4:-4, 4:-4]
    assert (inner[..., 0] - inner[..., 2]).mean() > (source[..., 0] - source[..., 2]).mean() + 5


def test_unsupported_request_leaves_image_and_says_so(editor, scene):
    out = edit(editor, scene, "add a dragon")
    assert np.array_equal(arr(out), arr(scene))
    assert "add a dragon" in out.info["editor_note"] and "generative" in out.info["editor_note"]
    partial = edit(editor, scene, "make it warmer and add a dragon")
    assert not np.array_equal(arr(partial), arr(scene))
    assert "'add a dragon'" in partial.info["editor_note"] and "warmer" not in partial.info["editor_note"]
    assert "editor_note" not in edit(editor, scene, "make it warmer").info


def test_progress_per_operation_and_stop(editor, scene):
    steps = []
    edit_with = editor.edit(
        scene,
        "make it warmer, add a red border and rotate 90 degrees",
        seed=0,
        on_step=lambda i, n: steps.append((i, n)),
    )
    assert edit_with.size == (64, 96)
    assert steps == [(1, 3), (2, 3), (3, 3)]

    def stop(i, n):
        raise Cancelled

    with pytest.raises(Cancelled):
        editor.edit(scene, "make it warmer and blur it", seed=0, on_step=stop)


def test_vague_look_is_applied_cautiously(editor, photo):
    """A look without amounts gets a mild version; the explicit recipe the critic writes gets the full one."""
    vague = saturation(edit(editor, photo, "make it pop"))
    explicit = saturation(edit(editor, photo, "increase saturation by 35% and increase contrast by 25%"))
    assert saturation(photo) < vague < explicit


@pytest.mark.parametrize(
    "op",
    [Op("brightness", -0.2), Op("contrast", 0.35), Op("saturation", 0.5), Op("warmth", -0.15), Op("sepia", 0.8),
     Op("vignette", 0.3), Op("sharpen", 1.5), Op("grayscale", 1.0), Op("invert", 1.0), Op("blur", 4.0),
     Op("pixelate", 12.0), Op("posterize", 5.0), Op("border", 8.0, color="black"), Op("rotate", -45.0),
     Op("flip", where="vertical"), Op("crop", 0.5, where="right"), Op("crop", 0.4, where="center"),
     Op("resize", 0.5), Op("resize", 1.0, where="640x480"), Op("recolor", color="green", source_color="blue"),
     Op("keep_color", color="yellow"), Op("text", 0.1, where="top", color="red", text="Big Sale, 50% off")],
)  # fmt: skip
def test_describe_reads_back_to_the_same_operation(op):
    assert read(describe(op)).ops == [op]
    assert read(describe(op)).unknown == []


def test_amounts_from_numbers_and_words():
    assert read("brighten by 30%").ops[0].amount == 0.3
    assert read("rotate 45 degrees").ops[0].amount == 45
    assert read("make it twice as bright").ops[0].amount == 1.0
    assert read("zoom in 3x").ops[0].amount == pytest.approx(1 / 3, abs=0.001)
    blur = [resolve(read(p).ops[0], (1000, 800)).amount for p in ("blur slightly", "blur", "blur very much")]
    assert blur[0] < blur[1] < blur[2]
    assert resolve(read("blur by 3 pixels").ops[0], (1000, 800)).amount == 3
