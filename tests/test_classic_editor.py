"""The offline editor: each instruction's measurable effect on the pixels, checked directly."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from thinkedit.editors.classic import LUMA, text_box
from thinkedit.errors import Cancelled
from thinkedit.instructions import Op, phrase, read, resolve

ASSETS = Path(__file__).resolve().parent.parent / "assets"
RED_SQUARE = (slice(12, 37), slice(10, 35))  # rows, columns of the conftest scene's red square


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


def regions(image) -> dict[str, np.ndarray]:
    """The conftest scene's regions, by their exact colors."""
    x = arr(image)
    colors = {"sky": (135, 190, 235), "grass": (60, 150, 60), "square": (220, 30, 30), "disc": (30, 60, 200)}
    return {name: (x == color).all(axis=2) for name, color in colors.items()}


def is_red(pixels):
    return (pixels[..., 0] > 150) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)


@pytest.mark.parametrize("size", [(96, 64), (960, 640)])  # found on a small copy and traced back at full size
def test_a_color_with_a_shape_word_changes_only_that_object(editor, scene, size):
    """The disc and the sky are both blue and touch each other: "the blue disc" is the disc, not the sky."""
    source = scene.resize(size, Image.Resampling.NEAREST)
    where, src = regions(source), arr(source)
    out = arr(edit(editor, source, "make the blue disc red"))
    assert where["disc"].sum() > 0.1 * where["disc"].size and is_red(out[where["disc"]]).all()
    untouched = ~where["disc"]
    assert where["sky"].sum() > 0.3 * where["sky"].size
    assert np.array_equal(out[untouched], src[untouched]), "the sky and everything but the disc stay as they were"
    for prompt in ("turn the blue ball red", "make the blue circle red"):
        assert np.array_equal(arr(edit(editor, source, prompt)), out)


def test_a_bare_color_still_means_every_pixel_of_that_hue(editor, scene):
    where = regions(scene)
    for prompt in ("make the blues red", "make everything blue red"):
        out = arr(edit(editor, scene, prompt))
        assert is_red(out[where["sky"]]).all() and is_red(out[where["disc"]]).all()
        assert np.array_equal(out[where["grass"]], arr(scene)[where["grass"]])


def test_the_largest_region_that_fits_the_word_is_the_one(editor):
    from PIL import ImageDraw

    image = Image.new("RGB", (120, 80), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle([5, 5, 20, 20], fill=(220, 30, 30))  # a small red square
    draw.rectangle([30, 5, 60, 35], fill=(220, 30, 30))  # the largest red square
    draw.ellipse([70, 5, 115, 50], fill=(220, 30, 30))  # larger still, but a disc
    draw.rectangle([5, 60, 115, 75], fill=(220, 30, 30))  # a long red rectangle
    out = arr(edit(editor, image, "make the red square blue"))
    changed = np.abs(out - arr(image)).max(axis=2) > 0
    expected = np.zeros_like(changed)
    expected[5:36, 30:61] = True
    assert np.array_equal(changed, expected)
    disc = np.abs(arr(edit(editor, image, "make the red disc green")) - arr(image)).max(axis=2) > 0
    assert disc[5:51, 70:116].sum() > 0.7 * 46 * 46 and not disc[:, :65].any()
    every = np.abs(arr(edit(editor, image, "make the red squares blue")) - arr(image)).max(axis=2) > 0
    expected[5:21, 5:21] = True  # a plural: every square
    assert np.array_equal(every, expected)


@pytest.mark.parametrize(
    ("prompt", "box"),
    [("make the yellow triangle red", (210, 230, 331, 331)), ("make the green rectangle yellow", (0, 260, 512, 384))],
)
def test_triangles_and_rectangles(editor, prompt, box):
    from PIL import ImageDraw

    shapes = Image.open(ASSETS / "shapes.png").convert("RGB")
    draw = ImageDraw.Draw(shapes)
    draw.ellipse([450, 10, 500, 60], fill=(245, 215, 30))  # a yellow sun: yellow, not a triangle
    draw.ellipse([10, 10, 40, 40], fill=(40, 170, 60))  # a green disc: green, not a rectangle
    changed = np.abs(arr(edit(editor, shapes, prompt)) - arr(shapes)).max(axis=2) > 0
    rows, columns = np.nonzero(changed)
    left, top, right, bottom = box
    assert changed.sum() > 3000
    assert left <= columns.min() and columns.max() < right and top <= rows.min() and rows.max() < bottom


def test_no_region_of_that_shape_leaves_the_image_and_says_so(editor, scene):
    out = edit(editor, scene, "make the blue square red")
    assert np.array_equal(arr(out), arr(scene))
    note = out.info["editor_note"]
    assert "'make the blue square red'" in note and "no blue region" in note and "square" in note
    assert "unchanged" in note and "generative" not in note
    partial = edit(editor, scene, "make it warmer and make the blue triangle red")
    assert not np.array_equal(arr(partial), arr(scene)) and "unchanged" not in partial.info["editor_note"]


def test_keep_only_one_object(editor, scene):
    from PIL import ImageDraw

    image = scene.copy()
    ImageDraw.Draw(image).ellipse([40, 44, 56, 60], fill=(220, 30, 30))  # a red disc on the grass
    out = arr(edit(editor, image, "keep only the red square and make everything else black and white"))
    assert np.array_equal(out[RED_SQUARE], arr(image)[RED_SQUARE])
    disc = out[46:58, 42:54]
    assert (disc.max(axis=2) - disc.min(axis=2)).max() <= 1


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
    means = [
        luma(edit(editor, photo, p)).mean()
        for p in ("make it slightly brighter", "make it brighter", "make it much brighter")
    ]
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


def test_a_resize_stays_within_the_image_limit(editor):
    from thinkedit.config import MAX_IMAGE_PIXELS

    out = edit(editor, Image.new("RGB", (5, 4), (200, 100, 50)), "resize to 10000x8000")
    assert out.width * out.height <= MAX_IMAGE_PIXELS < 10000 * 8000
    assert out.size == (7071, 5656), "shrunk to the limit, the aspect ratio kept"


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
    [
        Op("brightness", -0.2),
        Op("contrast", 0.35),
        Op("saturation", 0.5),
        Op("warmth", -0.15),
        Op("sepia", 0.8),
        Op("vignette", 0.3),
        Op("sharpen", 1.5),
        Op("grayscale", 1.0),
        Op("invert", 1.0),
        Op("blur", 4.0),
        Op("pixelate", 12.0),
        Op("posterize", 5.0),
        Op("border", 8.0, color="black"),
        Op("rotate", -45.0),
        Op("flip", where="vertical"),
        Op("crop", 0.5, where="right"),
        Op("crop", 0.4, where="center"),
        Op("resize", 0.5),
        Op("resize", 1.0, where="640x480"),
        Op("recolor", color="green", region="the blue areas"),
        Op("keep_color", region="the yellow areas"),
        Op("text", 0.1, where="top", color="red", text="Big Sale, 50% off"),
        Op("recolor", color="red", region="the blue disc"),
        Op("keep_color", region="the red square"),
        Op("recolor", color="green", region="the yellow triangles"),
        Op("recolor", color="blue", region="the orange spacesuit"),
        Op("recolor", color="orange", region="the sky"),
        Op("brightness", -0.2, region="the sky"),
        Op("grayscale", 1.0, region="the top half"),
        Op("blur", 4.0, region="the background"),
        Op("saturation", 0.5, region="the red cup"),
        Op("sepia", 0.6, region="the left third"),
        Op("contrast", 0.3, region="the shadows"),
    ],
)
def test_a_phrase_reads_back_to_the_same_operation(op):
    assert read(phrase(op)).ops == [op]
    assert read(phrase(op)).unknown == []


def test_amounts_from_numbers_and_words():
    assert read("brighten by 30%").ops[0].amount == 0.3
    assert read("rotate 45 degrees").ops[0].amount == 45
    assert read("make it twice as bright").ops[0].amount == 1.0
    assert read("zoom in 3x").ops[0].amount == pytest.approx(1 / 3, abs=0.001)
    blur = [resolve(read(p).ops[0], (1000, 800)).amount for p in ("blur slightly", "blur", "blur very much")]
    assert blur[0] < blur[1] < blur[2]
    assert resolve(read("blur by 3 pixels").ops[0], (1000, 800)).amount == 3
