"""Which pixels a color word names: every pixel of a hue ("make the reds blue"), or one object of it.

A color with a shape word ("the blue disc", "the red square") names one thing in the picture: the
connected region of that color whose outline fits the word, the largest when several fit; a plural ("the
red squares") names every region that fits. Regions are
found on a copy at most `LABEL_SIDE` pixels a side and traced back at full size. The offline editor and
the offline critic both select through `select`, so the critic measures the region the editor changed.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image

from .instructions import COLORS

LABEL_SIDE = 256
SIMILAR = 24  # neighbours whose channels differ by at most this belong to the same region
FIT = 0.85  # overlap (intersection over union) with the ideal outline for a region to fit a shape word
ROUND = (0.75, 4 / 3)  # the width / height a square or a disc may have


class NoRegion(LookupError):
    """No region of the color has the outline of the shape word."""


def color_mask(hsv: np.ndarray, color: str) -> np.ndarray:
    """Pixels of a named color in a Pillow HSV array (all channels 0..255)."""
    h, s, v = (hsv[..., i].astype(np.int16) for i in range(3))
    if color in ("white", "black", "gray", "grey"):
        return {"white": (s < 40) & (v > 215), "black": v < 50}.get(color, (s < 40) & (v >= 50) & (v <= 215))
    hue, saturation, value = colorsys.rgb_to_hsv(*(c / 255 for c in COLORS[color]))
    distance = np.abs(h - round(hue * 255))
    near = np.minimum(distance, 256 - distance) <= 14
    mask = near & (s > 70) & (v > 50)
    if color in ("brown", "orange"):
        mask &= (v < 160) if color == "brown" else (v >= 160)
    return mask


def hsv(pixels: np.ndarray) -> np.ndarray:
    """An RGB array (any numeric type, 0..255) as a Pillow HSV array."""
    return np.asarray(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("HSV"))


def select(
    pixels: np.ndarray, color: str, shape: str | None = None, hsv_pixels: np.ndarray | None = None
) -> np.ndarray:
    """The mask of what "the `color` [`shape`]" names in an RGB array ("squares": every square); `NoRegion` when no
    region fits. `hsv_pixels`: the array's HSV, when the caller has it already."""
    hue = color_mask(hsv(pixels) if hsv_pixels is None else hsv_pixels, color)
    if shape is None:
        return hue
    height, width = hue.shape
    scale = max(1.0, max(width, height) / LABEL_SIDE)
    if scale == 1.0:
        small, small_hue = np.asarray(pixels, np.int16), hue
    else:
        size = (max(1, round(width / scale)), max(1, round(height / scale)))
        small = np.asarray(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).resize(size, Image.Resampling.BOX))
        small, small_hue = small.astype(np.int16), color_mask(hsv(small), color)
    single = shape.removesuffix("s")
    region = _fitting_regions(small, small_hue, single, every=single != shape)
    if region is None:
        raise NoRegion(f"no {color} region in the image has the outline of a {single}")
    if scale == 1.0:
        return region
    return _trace(region, small, np.asarray(pixels), hue)


def _fitting_regions(pixels: np.ndarray, hue: np.ndarray, shape: str, every: bool) -> np.ndarray | None:
    """The largest region of similar neighbouring pixels inside `hue` whose outline fits `shape` (or, with
    `every`, all of them); None when none does."""
    labels = _label(pixels, hue)
    found, counts = np.unique(labels[hue], return_counts=True)
    smallest = max(16, hue.size // 2000)
    fitting = np.zeros_like(hue)
    for label in found[np.argsort(-counts, kind="stable")]:
        region = labels == label
        if region.sum() < smallest:
            break
        rows, columns = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
        if fit(region[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1], shape) >= FIT:
            fitting |= region
            if not every:
                break
    return fitting if fitting.any() else None


def _label(pixels: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Connected regions (4-neighbours of similar color, both inside the mask), each labelled with the flat index
    of its first pixel: the smallest label spreads to the neighbours, and each pixel jumps to its label's label."""
    right = inside[:, 1:] & inside[:, :-1] & (np.abs(pixels[:, 1:] - pixels[:, :-1]).max(axis=2) <= SIMILAR)
    down = inside[1:] & inside[:-1] & (np.abs(pixels[1:] - pixels[:-1]).max(axis=2) <= SIMILAR)
    labels = np.arange(inside.size).reshape(inside.shape)
    while True:
        spread = labels.copy()
        np.minimum(spread[:, :-1], np.where(right, labels[:, 1:], spread[:, :-1]), out=spread[:, :-1])
        np.minimum(spread[:, 1:], np.where(right, labels[:, :-1], spread[:, 1:]), out=spread[:, 1:])
        np.minimum(spread[:-1], np.where(down, labels[1:], spread[:-1]), out=spread[:-1])
        np.minimum(spread[1:], np.where(down, labels[:-1], spread[1:]), out=spread[1:])
        spread = spread.ravel()[spread]
        if np.array_equal(spread, labels):
            return labels
        labels = spread


def fit(box: np.ndarray, shape: str) -> float:
    """How well a region, cut to its bounding box, fits a shape word: its best overlap with an ideal outline."""
    height, width = box.shape
    y = ((np.arange(height) + 0.5) / height)[:, None]
    x = ((np.arange(width) + 0.5) / width)[None, :]
    full = np.ones_like(box)
    round_enough = ROUND[0] <= width / height <= ROUND[1]
    outlines = {
        "rectangle": [full],
        "square": [full] if round_enough else [],
        "disc": [(2 * x - 1) ** 2 + (2 * y - 1) ** 2 <= 1] if round_enough else [],
        "triangle": [
            y >= np.abs(2 * x - 1),
            1 - y >= np.abs(2 * x - 1),
            x >= np.abs(2 * y - 1),
            1 - x >= np.abs(2 * y - 1),
            x + y <= 1,
            x + y >= 1,
            x <= y,
            x >= y,
        ],
    }[shape]
    return max((float((box & o).sum() / (box | o).sum()) for o in outlines), default=0.0)


def grow(mask: np.ndarray) -> np.ndarray:
    """The mask and its 4-neighbours."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def _trace(region: np.ndarray, small: np.ndarray, pixels: np.ndarray, hue: np.ndarray) -> np.ndarray:
    """A region found on the small copy, at full size: the pixels of its hue and color within two small pixels of it."""
    (height, width), (small_height, small_width) = hue.shape, region.shape
    near = grow(grow(region))  # diagonal neighbours too
    rows, columns = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
    top, bottom = rows[0] * height // small_height, -(-(rows[-1] + 1) * height // small_height)
    left, right = columns[0] * width // small_width, -(-(columns[-1] + 1) * width // small_width)
    window = (slice(top, bottom), slice(left, right))
    near = np.asarray(Image.fromarray(near).resize((width, height), Image.Resampling.NEAREST))[window]
    colors = small[region].astype(np.float32)
    tolerance = max(40.0, 2.5 * float(colors.std(axis=0).max()))
    close = np.abs(pixels[window] - colors.mean(axis=0)).max(axis=2) <= tolerance
    mask = np.zeros_like(hue)
    mask[window] = near & hue[window] & close
    return mask
