"""The drift meter (thinkedit/drift.py) on constructed cases and real photographs: its colour difference is
CIEDE2000 as published, an unchanged image reads 0, an edit of a known rectangle reads that rectangle's share and
nothing outside it, a global colour shift reads the whole image, and photographic noise reads (almost) nothing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from thinkedit import drift

skimage_data = pytest.importorskip("skimage.data")
skimage_color = pytest.importorskip("skimage.color")

# Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula", Table 1: (Lab 1, Lab 2, ΔE00).
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


def photo(name: str = "astronaut", side: int = 384) -> Image.Image:
    image = Image.fromarray(getattr(skimage_data, name)()).convert("RGB")
    return image.resize((side, round(side * image.height / image.width)), Image.Resampling.LANCZOS)


def test_ciede2000_gives_the_published_differences():
    first = np.array([pair[0] for pair in SHARMA])[None]
    second = np.array([pair[1] for pair in SHARMA])[None]
    expected = np.array([pair[2] for pair in SHARMA])
    assert np.allclose(drift.ciede2000(first, second)[0], expected, atol=1e-4)
    assert np.allclose(drift.ciede2000(second, first)[0], expected, atol=1e-4), "symmetric"


def test_lab_and_ciede2000_agree_with_scikit_image_on_random_colours():
    rng = np.random.default_rng(3)
    a = rng.random((40, 50, 3))
    b = np.clip(a + rng.normal(0, 0.08, a.shape), 0, 1)
    assert np.abs(drift.lab(a) - skimage_color.rgb2lab(a)).max() < 0.01
    ours = drift.ciede2000(drift.lab(a), drift.lab(b))
    theirs = skimage_color.deltaE_ciede2000(skimage_color.rgb2lab(a), skimage_color.rgb2lab(b))
    assert np.abs(ours - theirs).max() < 0.05


def test_an_unchanged_image_has_no_drift_with_or_without_a_region():
    image = photo()
    region = Image.new("L", image.size)
    region.paste(255, (40, 40, 120, 120))
    assert drift.measure(image, image.copy()) == drift.Drift(0.0, None)
    assert drift.measure(image, image.copy(), region) == drift.Drift(0.0, 0.0)
    assert drift.measure(image, image.copy()).record() == {"changed": 0.0, "outside": None}


def test_an_edit_of_a_known_rectangle_reads_its_share_and_nothing_outside_it():
    image = photo("coffee", 400)
    width, height = image.size
    box = (100, 60, 220, 180)  # 120×120 painted a flat green: every pixel in it changes a lot
    edited = image.copy()
    ImageDraw.Draw(edited).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(40, 200, 60))
    share = (box[2] - box[0]) * (box[3] - box[1]) / (width * height)
    inside = Image.new("L", image.size)
    inside.paste(255, box)

    measured = drift.measure(image, edited, inside)
    assert measured.changed == pytest.approx(share, rel=0.08), (measured, share)  # the blur softens its border
    assert measured.outside == 0.0
    elsewhere = Image.new("L", image.size)
    elsewhere.paste(255, (300, 200, 390, 260))
    moved = drift.measure(image, edited, elsewhere).outside
    assert moved == pytest.approx(share / (1 - 90 * 60 / (width * height)), rel=0.1), "all of it lies outside"


def test_a_global_colour_shift_reads_as_the_whole_image():
    image = photo("chelsea")
    warmer = np.asarray(image, np.float32) * np.array([1.25, 1.0, 0.7])
    shifted = Image.fromarray(np.clip(warmer, 0, 255).astype(np.uint8))
    measured = drift.measure(image, shifted)
    assert measured.changed > 0.9 and measured.outside is None
    faint = Image.fromarray(np.clip(np.asarray(image, np.float32) + 2, 0, 255).astype(np.uint8))
    assert drift.measure(image, faint).changed < 0.01, "two levels brighter is below what a reader notices"


@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket"])
def test_photographic_noise_and_a_one_pixel_shift_read_as_almost_nothing(name):
    image = photo(name, 1024)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    recompressed = Image.open(buffer).convert("RGB")
    assert drift.measure(image, recompressed).changed < 0.01
    shifted = Image.fromarray(np.roll(np.asarray(image), 1, axis=1))
    assert drift.measure(image, shifted).changed < 0.05


def test_turns_of_another_shape_have_no_drift_and_no_picture():
    image = photo("coffee")
    rotated = image.transpose(Image.Transpose.ROTATE_90)
    assert drift.measure(image, rotated) is None
    assert drift.picture(image, rotated) is None
    text = drift.SHAPE_CHANGED.format(turn=2, turn_size="10×20", source_size="20×10")
    assert "no pixel-by-pixel difference" in text


def test_the_picture_marks_what_changed_and_outlines_the_region():
    image = photo("coffee", 400)
    edited = image.copy()
    ImageDraw.Draw(edited).rectangle((100, 60, 219, 179), fill=(40, 200, 60))
    region = Image.new("L", image.size)
    region.paste(255, (90, 50, 230, 190))
    drawn = np.asarray(drift.picture(image, edited, region), np.int32)
    assert drawn.shape == (image.height, image.width, 3)
    heat = (drawn[..., 0] - drawn[..., 2] > 80) & (drawn[..., 1] < 240)  # yellow to red
    assert heat[70:170, 110:210].all(), "every changed pixel is marked"
    assert not heat[:40].any() and not heat[:, 260:].any(), "nothing away from the edit is"
    assert (drawn[50, 120] == drift.REGION_COLOR).all(), "the region's edge is drawn in cyan"
    plain = np.asarray(drift.picture(image, image.copy()), np.int32)
    assert (plain[..., 0] == plain[..., 1]).all() and (plain[..., 1] == plain[..., 2]).all(), "unchanged: all grey"


@pytest.mark.parametrize(
    "value",
    [None, {}, {"changed": 0.5}, {"changed": "0.5", "outside": None}, {"changed": 2, "outside": None}, [0.1, 0.2]],
)
def test_a_record_s_drift_is_read_only_when_it_follows_the_contract(value):
    assert drift.read(value) is None and not drift.valid(value)


def test_shares_read_as_percentages():
    assert [drift.percent(x) for x in (None, 0.0, 0.004, 0.1234, 1.0)] == ["–", "0%", "0.4%", "12%", "100%"]
    assert drift.words(drift.Drift(0.25, 0.0)) == "25% changed, 0% outside the region"
    assert drift.words(None) == "changed –"
