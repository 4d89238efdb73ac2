"""Masks fence an edit in: white may change, black stays as the source is.

A mask arrives as an image (a black-and-white PNG; its transparent areas count as black) or as the layers a
person painted in the Studio (any colour: painted pixels may change). `load_mask` makes it an 8-bit mask at the
source's size; `composite` keeps the source outside it, with a soft edge that lies inside the mask, so every
pixel outside the painted region is exactly the source's; `in_words` says where the region is and how big, in
words the thinker and the judge are given.

Rules: a mask of another size is scaled to the source's (stretched, and the run says so, when its shape differs
too); a mask with no white (nothing may change) is refused; a mask that is white all over fences nothing and the
run goes on without it (and says so). A pixel belongs to the region from half white up.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from .errors import BadInput
from .images import load_image
from .regions import label

HALF = 128  # a mask pixel at least this white belongs to the region
FEATHER = 0.01  # the soft edge: this share of the shorter side (at least one pixel), inside the region
BLACK = (0, 0, 0)
NO_MASK_SAY = "The mask must be an image: white where the edit may change, black where it must not."


def load_mask(source: str | Path | bytes | Image.Image, size: tuple[int, int]) -> tuple[Image.Image | None, list[str]]:
    """(the mask as an L image of `size`, or None when it fences nothing; what the person should be told).
    `BadInput` for a mask that is not an image or has no white in it."""
    try:
        mask = load_image(source, background=BLACK).convert("L")
    except BadInput as exc:
        raise BadInput(f"{NO_MASK_SAY} {exc}") from None
    return fitted(mask, size)


def fitted(mask: Image.Image, size: tuple[int, int]) -> tuple[Image.Image | None, list[str]]:
    """An L mask at `size` (scaled there when it has another size), None when it is white all over; with notes."""
    notes = []
    if mask.size != size:
        if abs(mask.width * size[1] / (mask.height * size[0]) - 1) > 0.01:  # a scaled copy (the painter's) says nothing
            notes.append(
                f"The mask is {mask.width}×{mask.height} and the image {size[0]}×{size[1]}: the mask was stretched "
                "to the image's shape."
            )
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    inside = np.asarray(mask) >= HALF
    if not inside.any():
        raise BadInput(
            "The mask is empty: nothing in it is white, so nothing could change. Paint the region the edit may "
            "change (white), or send no mask."
        )
    if inside.all():
        notes.append("The mask covers the whole image, so it fences nothing in: the run goes on without a mask.")
        return None, notes
    return mask, notes


def joined(mask: Any, strokes: Image.Image) -> Image.Image:
    """A mask image (anything `load_image` reads) and painted strokes together: where either is white may change."""
    try:
        first = load_image(mask, background=BLACK).convert("L")
    except BadInput as exc:
        raise BadInput(f"{NO_MASK_SAY} {exc}") from None
    second = strokes.convert("L").resize(first.size, Image.Resampling.BILINEAR)
    return Image.fromarray(np.maximum(np.asarray(first), np.asarray(second)), "L")


def from_layers(layers: list[Image.Image], size: tuple[int, int] | None = None) -> Image.Image | None:
    """The mask a person painted: every pixel of any layer that is painted (not transparent; in a layer without
    transparency, not black) may change. None when nothing is painted. The layers are placed on a canvas of `size`
    (default the first layer's)."""
    if not layers:
        return None
    size = size or layers[0].size
    painted = np.zeros((size[1], size[0]), bool)
    for layer in layers:
        transparent = layer.mode in ("RGBA", "LA", "PA") or "transparency" in layer.info
        strokes = layer.convert("RGBA").getchannel("A") if transparent else layer.convert("L")
        painted |= np.asarray(strokes.resize(size, Image.Resampling.BILINEAR) if strokes.size != size else strokes) > 0
    return Image.fromarray(painted.astype(np.uint8) * 255, "L") if painted.any() else None


def weight(mask: Image.Image) -> np.ndarray:
    """How much of the edit each pixel keeps (0..1): 0 outside the region, rising over the soft edge inside it."""
    radius = max(1.0, FEATHER * min(mask.size))
    soft = np.asarray(mask.filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255
    return np.clip(2 * soft - 1, 0, 1) * (np.asarray(mask) >= HALF)


def composite(source: Image.Image, edited: Image.Image, mask: Image.Image) -> Image.Image:
    """`edited` inside the mask, `source` outside it, blended over the soft edge; all three of one size."""
    keep = weight(mask)[..., None]
    blended = np.asarray(source, np.float32) * (1 - keep) + np.asarray(edited.convert("RGB"), np.float32) * keep
    return Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8), "RGB")


# -- the region in words ------------------------------------------------------------------------------------------

ROWS, COLUMNS = ("top", "middle", "bottom"), ("left", "centre", "right")


def in_words(mask: Image.Image) -> str:
    """Where the region is and how big, for the thinker and the judge: its share of the image, where its parts lie
    on a 3×3 grid (the largest first) and its bounding box in pixels."""
    inside = np.asarray(mask) >= HALF
    height, width = inside.shape
    rows, columns = np.nonzero(inside)
    places = list(dict.fromkeys(_place(x / width, y / height) for x, y in _parts(inside)))
    where = (
        places[0] if len(places) == 1 else f"in {len(places)} parts, " + ", ".join(places[:-1]) + f" and {places[-1]}"
    )
    return (
        f"Only a masked region may change: {_share(inside.mean())} of the image, {where} (the pixels from "
        f"x {columns.min()} to {columns.max()} and y {rows.min()} to {rows.max()} of the {width}×{height} image). "
        "Everything outside the mask is kept exactly as in the source, whatever the editor does; count any change "
        "outside the region as over-editing."
    )


def _share(share: float) -> str:
    value = share * 100
    return f"{value:.0f}%" if value >= 10 else f"{value:.1f}%"


def _place(x: float, y: float) -> str:
    row, column = ROWS[min(2, int(y * 3))], COLUMNS[min(2, int(x * 3))]
    if row == "middle" and column == "centre":
        return "in the centre"
    if row == "middle":
        return f"on the {column}"
    return f"at the {row}" if column == "centre" else f"at the {row} {column}"


def _parts(inside: np.ndarray) -> list[tuple[float, float]]:
    """The centres (x, y in pixels) of the region's separate parts of at least 5% of it, largest first, at most
    four (found on a copy at most 128 pixels a side)."""
    scale = max(1, math.ceil(max(inside.shape) / 128))
    small = inside[::scale, ::scale]
    if not small.any():  # a region thinner than the copy's step: one part, where it is
        rows, columns = np.nonzero(inside)
        return [(columns.mean(), rows.mean())]
    labels = label(small)
    found, counts = np.unique(labels[small], return_counts=True)
    centres = []
    for part in found[np.argsort(-counts)][:4]:
        if (labels == part).sum() >= 0.05 * small.sum():
            rows, columns = np.nonzero(labels == part)
            centres.append(((columns.mean() + 0.5) * scale, (rows.mean() + 0.5) * scale))
    return centres
