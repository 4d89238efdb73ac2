"""Which pixels a region of an instruction names: a place found by a rule, or a colored thing.

`mask(pixels, region)` gives a weight per pixel (0..1, soft only where the rule is unsure) or raises `NoRegion`
with a sentence that says why. The regions and their rules:

- "the top/bottom/left/right half, third or quarter": that share of the frame; "the centre": the middle third
  both ways. Their edges fade over 2% of the side.
- "the shadows" / "the highlights": by luminance, fully below 64 / above 192 of 255 and fading out over 64 levels.
- "the sky": the connected region of sky-like color (blue, or near-white and smooth) that touches the top edge,
  plus pixels of its color seen through gaps (between a tower's struts) above its lowest row. None → `NoRegion`.
  At full size it reaches `AROUND` small pixels further where the color is the sky's, so its edge follows the
  picture (a lamp's glare, a strut), not the small copy's blocks.
- "the background": the pixels of the colors seen along the top edge and the upper half of the side edges,
  connected to them (a subject usually stands on the bottom edge), never skin; "the foreground": the rest. Either under 10% of the
  picture → `NoRegion` (the rule cannot tell them apart there).
- "the red areas": every pixel of the hue (`HUES`), grown through its shading. "the red cup": the pixels of that
  color split into pieces of similar neighbouring color (a surface shades gradually; its edge against another
  surface is a step); the piece with the most pixels fully of the color, with every piece up to `GAP` pixels away
  that is like it (its hue in the first piece's range, no grainier: the suit's other side across a strap, not the
  grainy, browner wood beside a red saucer), and thin rims touching it of its hue; inside it, what it encloses of
  about its color that is as smooth, or thin and as saturated (a fold, the cup's shadow on the saucer). "the red
  cups": every such thing at least an eighth of the largest. "the blue disc" (a shape word): the connected region
  of similar color whose outline fits the word, the largest when several fit.

Rules run on a copy at most `LABEL_SIDE` pixels a side (texture on one 4× larger) and are traced back at full
size. The offline editor acts on these regions; the offline critic uses the place rules to know what a place word
means, reads a colored thing by a simpler rule of its own (`changes.colored_thing`) and judges what changed from
the pixels themselves (`changes.alike`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from PIL import Image

from .instructions import PLACES, SHAPES

LABEL_SIDE = 256
SIMILAR = 24  # neighbours whose channels differ by at most this belong to the same region (about ΔE 10)
FIT = 0.85  # overlap (intersection over union) with the ideal outline for a region to fit a shape word
ROUND = (0.75, 4 / 3)  # the width / height a square or a disc may have
GAP = 6  # parts of a thing this many pixels apart (at `LABEL_SIDE`) are one thing: the astronaut's suit across its 5-pixel strap
FADE = 0.02  # share of the side over which the edge of a half, third or quarter fades
# A color word's pixels: (hue range in degrees, least saturation, value range), saturation and value in 0..1.
# The ranges follow how people name colors in photos: a spacesuit at hue 14° is orange, a cup at 10° red, a
# face at 25° with saturation 0.3 is skin, not orange; brown is a dark orange.
HUES: dict[str, tuple[tuple[float, float], float, tuple[float, float]]] = {
    "red": ((345, 12), 0.35, (0.2, 1)), "orange": ((12, 40), 0.35, (0.55, 1)), "yellow": ((40, 70), 0.35, (0.3, 1)),
    "gold": ((38, 55), 0.35, (0.4, 1)), "green": ((70, 165), 0.25, (0.15, 1)), "cyan": ((165, 195), 0.25, (0.2, 1)),
    "blue": ((195, 255), 0.25, (0.15, 1)), "purple": ((255, 290), 0.25, (0.15, 1)), "violet": ((255, 290), 0.25, (0.15, 1)),
    "magenta": ((290, 330), 0.35, (0.2, 1)), "pink": ((320, 350), 0.25, (0.6, 1)), "brown": ((5, 45), 0.35, (0.12, 0.6)),
}  # fmt: skip
NEUTRAL = {"white": (0.84, 1.0), "black": (0.0, 0.2), "gray": (0.2, 0.84), "grey": (0.2, 0.84)}  # value ranges
GRAY = 0.16  # saturation under which a pixel is neutral (white, gray, black)
# How far past a color's range a pixel still belongs a little (the membership fades to 0 over this): shading and
# highlights on one object drift a few degrees of hue and lose some saturation.
HUE_FADE, SATURATION_FADE, VALUE_FADE = 8.0, 0.12, 0.1
# A piece of a thing's color belongs to it when it is no grainier than this many times the thing's first piece (its
# core) and its mean hue lies within the core's own range widened by `HUE_SLACK` degrees.
TEXTURE, HUE_SLACK = 2.0, 4.0
PALER = 0.1  # a thin piece inside a thing up to this much less saturated (0..1) than the thing is its shading
STARTS = 64  # "the red cups" grows things from at most this many pieces, the largest: beyond them are specks
THIN = 0.25  # a piece with under this share of inner pixels (all four neighbours in it) is a rim or an outline
AROUND = 3  # small pixels beyond the sky found on the small copy where a pixel of its color still belongs to it
TEXTURE_SIDE = 4 * LABEL_SIDE  # texture is measured on a copy at most this size: 4×4 samples per small pixel
# Inside a thing, patches of a hue this many fades away belong to it too: the orange-lit half of a red-orange suit
# (a blue badge or a white glint inside it does not).
ENCLOSED = 3.0


class NoRegion(LookupError):
    """No pixels fit the region's rule; the message says what was looked for."""


def hsv(pixels: np.ndarray) -> np.ndarray:
    """An RGB array (any numeric type, 0..255) as a Pillow HSV array (all channels 0..255)."""
    return np.asarray(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("HSV"))


def membership(hsv_pixels: np.ndarray, color: str, reach: float = 1.0) -> np.ndarray:
    """How much each pixel of a Pillow HSV array is of a named color: 1 inside its ranges, fading to 0 just outside
    (over `reach` times the usual fades). The least of three tables, one per channel, looked up per pixel."""
    hue, saturation, value = _tables(color, reach)
    return np.minimum(np.minimum(hue[hsv_pixels[..., 0]], saturation[hsv_pixels[..., 1]]), value[hsv_pixels[..., 2]])


@functools.cache
def _tables(color: str, reach: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hue, saturation, value) → membership tables of a color word, over the 256 levels of each channel."""
    levels = np.arange(256, dtype=np.float32)
    h, s, v = levels * (360 / 256), levels / 255, levels / 255
    if color in NEUTRAL:
        low, high = NEUTRAL[color]
        gray = np.clip((GRAY + SATURATION_FADE * reach - s) / (SATURATION_FADE * reach), 0, 1)
        gray = gray if color != "black" else np.ones(256)
        return np.ones(256, np.float32), gray.astype(np.float32), _within(v, low, high, VALUE_FADE * reach)
    (start, end), least, (low, high) = HUES[color]
    past = np.where((h - start) % 360 <= (end - start) % 360, 0.0, np.minimum((start - h) % 360, (h - end) % 360))
    hue = np.clip(1 - past / (HUE_FADE * reach), 0, 1).astype(np.float32)
    saturation = np.clip((s - least + SATURATION_FADE * reach) / (SATURATION_FADE * reach), 0, 1).astype(np.float32)
    return hue, saturation, _within(v, low, high, VALUE_FADE * reach)


def _within(x: np.ndarray, low: float, high: float, fade: float) -> np.ndarray:
    return np.clip(np.minimum(x - low + fade, high + fade - x) / fade, 0, 1).astype(np.float32)


def color_mask(hsv_pixels: np.ndarray, color: str) -> np.ndarray:
    """Pixels fully of a named color."""
    return membership(hsv_pixels, color) >= 1.0


def mask(pixels: np.ndarray, region: str) -> np.ndarray:
    """The weight (0..1, float32) of each pixel of an RGB array in `region` ("the sky", "the red cup", …)."""
    pixels = np.asarray(pixels)
    if region in PLACES:
        return _place(pixels, region.removeprefix("the "))
    _, color, thing = region.split(" ", 2)
    if thing.removesuffix("s") in SHAPES:
        return select(pixels, color, thing).astype(np.float32)
    small, scale = _small(pixels)
    small_hsv = hsv(small)
    small_weight = membership(small_hsv, color)
    loose, seeds = small_weight >= 0.5, small_weight >= 1.0
    holes = membership(small_hsv, color, ENCLOSED) >= 0.5
    if thing == "areas":  # every region of the color: grown through its shading from pixels fully of it
        labels = label(loose)
        found = np.isin(labels, np.unique(labels[seeds])) & loose
        enclosed = fill_holes(found) & ~found & holes if found.any() else found
    else:
        surface = Surface(small, texture(pixels, small.shape[:2]), color)
        found = things(loose, thing.endswith("s") and not thing.endswith("ss"), seeds, surface)
        enclosed = found if found is None else surface.enclosed(fill_holes(found) & ~found & holes, found)
    if found is None or not found.any():
        raise NoRegion(f"there is nothing {color} in the picture")
    near, inner = (_upsample(grow(x), pixels.shape[:2]) if scale > 1 else grow(x).astype(np.float32)
                   for x in (found | enclosed, enclosed))  # fmt: skip
    return np.minimum(near, np.maximum(np.clip(2 * membership(hsv(pixels), color), 0, 1), inner))


class Surface:
    """What a small copy's pixels look like, to tell one surface from another: each pixel's hue (degrees) and
    texture (`texture`), and the color the region is named by."""

    def __init__(self, pixels: np.ndarray, rough: np.ndarray, color: str):
        self.pixels, self.rough, self.color = pixels.astype(np.int16), rough, color
        self.hue, self.saturation = hues(pixels), hsv(pixels)[..., 1].astype(np.float32) / 255

    def pieces(self, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`inside` split into pieces of similar neighbouring color (`label`), and per piece (indexed by its label)
        its mean hue in degrees, the mean texture of its inner pixels (of all of them when it has none), the share
        of its pixels that are inner and its mean saturation (0..1), stacked."""
        labels = label(inside, self.pixels)
        flat, where, size = labels.ravel(), inside.ravel(), labels.size

        def total(weights: np.ndarray, among: np.ndarray = where) -> np.ndarray:
            return np.bincount(flat[among], weights.ravel()[among], minlength=size)

        angle = np.radians(self.hue)
        hue = np.degrees(np.arctan2(total(np.sin(angle)), total(np.cos(angle))))
        inner = _inner(labels).ravel() & where
        ones, rough = np.ones(size), self.rough.astype(np.float64)
        count, pixels = total(ones, inner), total(ones).clip(1)
        grain = np.where(count > 0, total(rough, inner) / count.clip(1), total(rough) / pixels)
        return labels, np.stack([hue, grain, count / pixels, total(self.saturation.astype(np.float64)) / pixels])

    def like(self, core: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """A test of pieces (`pieces`' stats) against the pixels `core`. A piece is like it when it is no grainier
        than `TEXTURE` times it (plus one level of noise) and, for a hue, its mean hue lies in the core's own range
        (5th to 95th percentile) widened by `HUE_SLACK`. A thin piece (under a quarter of it inner: a rim, an
        outline) is all edge, its texture tells nothing: it is like the core when its hue lies in the range itself."""
        grain = self.grain(core)
        mean = circular_mean(self.hue[core])
        low, high = np.percentile(hue_offset(self.hue[core], mean), [5, 95])

        def test(stats: np.ndarray) -> np.ndarray:
            thin = stats[2] < THIN
            smooth = thin | (stats[1] <= TEXTURE * grain + 1)
            if self.color in NEUTRAL:
                return smooth
            off, slack = hue_offset(stats[0], mean), np.where(thin, 0.0, HUE_SLACK)
            return smooth & (off >= low - slack) & (off <= high + slack)

        return test

    def grain(self, core: np.ndarray) -> float:
        """The mean texture of the inner pixels of `core` (of all of them when none is inner)."""
        inner = _inner(core) & core
        return float(self.rough[inner if inner.any() else core].mean())

    def enclosed(self, candidates: np.ndarray, thing: np.ndarray) -> np.ndarray:
        """The pieces of `candidates` (pixels of about the color inside `thing`) that belong to it: those no
        grainier than `TEXTURE` times it, like the shadow a cup casts on its saucer, and thin ones at least about as
        saturated (`PALER`), the folds and seams of a suit: shading deepens a color, while its reflection in the
        steel of a spoon lying on the saucer is paler."""
        labels, stats = self.pieces(candidates)
        deep = stats[3] >= float(np.median(self.saturation[thing])) - PALER
        return candidates & (((stats[2] < THIN) & deep) | (stats[1] <= TEXTURE * self.grain(thing) + 1))[labels]


def things(inside: np.ndarray, every: bool, seeds: np.ndarray, surface: Surface) -> np.ndarray | None:
    """One thing of a color in a small copy (None when there is none of at least 1/2000 of the picture). `inside`
    splits into pieces of similar neighbouring color (`Surface.pieces`): a surface's shading changes gradually,
    while its edge against another surface is a step. The thing starts as the piece holding the most `seeds` and
    takes in every piece within `GAP` pixels that is like that first piece (`Surface.like`), again and again: the
    folds of a suit, its other side across a strap. The darker, grainier wood beside a red saucer is not like it
    and stays out. With `every`, every thing grown from a piece at least an eighth of the largest, each kept when
    it is at least an eighth of the largest thing."""
    labels, stats = surface.pieces(inside)
    counts = np.bincount(labels[seeds & inside], minlength=labels.size)
    order = np.argsort(-counts, kind="stable")[: STARTS if every else 1]
    starts = order[counts[order] >= max(1, counts[order[0]] / 8)]
    found, claimed = [], np.zeros_like(inside)
    for start in starts:
        if not claimed.ravel()[start] and counts[start]:
            like = surface.like(labels == start)(stats)
            grown = _grow(labels == start, labels, inside, like & (stats[2] >= THIN), like & (stats[2] < THIN))
            claimed |= grown
            found.append(grown)
    sizes = [int((thing & seeds).sum()) for thing in found]
    if not sizes or max(sizes) < max(16, inside.size // 2000):
        return None
    if not every:
        return found[0]
    return np.logical_or.reduce([t for t, n in zip(found, sizes, strict=True) if n >= max(sizes) / 8])


def _grow(chosen: np.ndarray, labels: np.ndarray, inside: np.ndarray, like: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """`chosen` with every piece within `GAP` pixels that is `like` it, and every thin piece touching it that is
    (`edge`: its rim), until none is left (flags per label)."""
    while True:
        near = chosen
        for _ in range(GAP):
            near = grow(near)
        more = chosen | (near & inside & like[labels]) | (grow(chosen) & inside & edge[labels])
        more = np.isin(labels, np.unique(labels[more & inside])) & inside
        if np.array_equal(more, chosen):
            return chosen
        chosen = more


def _inner(labels: np.ndarray) -> np.ndarray:
    """Pixels whose four neighbours carry the same value (a label, or a mask's True and False)."""
    padded = np.pad(labels, 1, mode="edge")
    same = (padded[:-2, 1:-1] == labels) & (padded[2:, 1:-1] == labels)
    return same & (padded[1:-1, :-2] == labels) & (padded[1:-1, 2:] == labels)


def hues(pixels: np.ndarray) -> np.ndarray:
    """The hue of each pixel of an RGB array, in degrees."""
    return hsv(pixels)[..., 0].astype(np.float32) * (360 / 256)


def circular_mean(degrees: np.ndarray) -> float:
    """The mean of angles in degrees (350° and 10° average to 0°, not 180°)."""
    angle = np.radians(degrees)
    return float(np.degrees(np.arctan2(np.sin(angle).sum(), np.cos(angle).sum())))


def hue_offset(degrees: np.ndarray, mean: float) -> np.ndarray:
    """Signed difference in degrees from `mean`, in -180..180."""
    return (degrees - mean + 180) % 360 - 180


def texture(pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The fine texture under each pixel of a small copy of `shape`: the standard deviation of brightness over 3×3
    pixels of the picture (on a copy at most `TEXTURE_SIDE` a side), averaged over the small pixel. Glazed china
    measures 1–2 levels, a suit's fabric about 4, the grain of a wooden table 7 and more."""
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("L")
    if max(image.size) > TEXTURE_SIDE:
        side = TEXTURE_SIDE / max(image.size)
        size = (max(1, round(image.width * side)), max(1, round(image.height * side)))
        image = image.resize(size, Image.Resampling.BOX)
    luma = np.asarray(image, np.float32)
    mean, square = window_sum(luma, 1) / 9, window_sum(luma * luma, 1) / 9
    spread = np.sqrt(np.maximum(square - mean * mean, 0))
    return np.asarray(Image.fromarray(spread).resize((shape[1], shape[0]), Image.Resampling.BOX), np.float32)


def window_sum(x: np.ndarray, radius: int) -> np.ndarray:
    """Sums over each pixel's (2·radius+1)² neighbourhood, the frame's edge repeated beyond it."""
    side = 2 * radius + 1
    total = np.pad(np.pad(x, radius, mode="edge").cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    height, width = x.shape
    return (
        total[side : side + height, side : side + width]
        - total[:height, side : side + width]
        - total[side : side + height, :width]
        + total[:height, :width]
    )


def label(inside: np.ndarray, pixels: np.ndarray | None = None) -> np.ndarray:
    """Connected regions (4-neighbours, both inside the mask, and of similar color when `pixels` is given), each
    labelled with the flat index of its first pixel: the smallest label spreads to the neighbours, and each pixel
    jumps to its label's label."""
    right, down = inside[:, 1:] & inside[:, :-1], inside[1:] & inside[:-1]
    if pixels is not None:
        right &= np.abs(pixels[:, 1:] - pixels[:, :-1]).max(axis=2) <= SIMILAR
        down &= np.abs(pixels[1:] - pixels[:-1]).max(axis=2) <= SIMILAR
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


# -- places ------------------------------------------------------------------------------------------------------


def _place(pixels: np.ndarray, place: str) -> np.ndarray:
    height, width = pixels.shape[:2]
    if place in ("shadows", "highlights"):
        luma = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip((128 - luma) / 64, 0, 1) if place == "shadows" else np.clip((luma - 128) / 64, 0, 1)
    if place in ("sky", "background", "foreground"):
        small, scale = _small(pixels)
        found = _sky(small) if place == "sky" else _background(small, place == "foreground")
        if place == "sky" and scale > 1:
            return _like_around(pixels, small, found)
        return _upsample(found, (height, width)) if scale > 1 else found.astype(np.float32)
    y = (np.arange(height, dtype=np.float32)[:, None] + 0.5) / height
    x = (np.arange(width, dtype=np.float32)[None, :] + 0.5) / width
    if place == "centre":
        return np.minimum(_band(x, 1 / 3, 2 / 3), _band(y, 1 / 3, 2 / 3))
    side, part = place.split()
    share = {"half": 1 / 2, "third": 1 / 3, "quarter": 1 / 4}[part]
    along = {"top": y, "bottom": 1 - y, "left": x, "right": 1 - x}[side]
    return np.broadcast_to(_band(along, -1.0, share), (height, width)).astype(np.float32)


def _band(t: np.ndarray, start: float, end: float) -> np.ndarray:
    return np.clip(np.minimum(t - start, end - t) / FADE + 0.5, 0, 1)


def _sky(small: np.ndarray) -> np.ndarray:
    """Smooth sky-like pixels (blue, or near-white) touching the top edge, grown through smooth pixels of any hue
    that are not much darker (a sunset's purple and pink), and the seeds' family's pixels seen through gaps (a
    tower's struts) above the seeds' lowest row."""
    h = hsv(small).astype(np.float32) / 255
    x = small.astype(np.float32)
    luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
    padded = np.pad(luma, 1, mode="edge")  # the frame's own edge is no edge in the picture
    rough = np.maximum(np.abs(padded[2:, 1:-1] - padded[:-2, 1:-1]), np.abs(padded[1:-1, 2:] - padded[1:-1, :-2]))
    blue = (h[..., 0] * 360 >= 180) & (h[..., 0] * 360 <= 260) & (h[..., 1] >= 0.12) & (h[..., 2] >= 0.12)
    bright = (h[..., 1] < 0.15) & (h[..., 2] >= 0.85)
    smooth = rough <= 12  # 12 levels between neighbours two pixels apart
    seeds = {name: family & smooth & np.isin(label(family & smooth), label(family & smooth)[0][(family & smooth)[0]])
             for name, family in (("blue", blue), ("bright", bright))}  # fmt: skip
    name = max(seeds, key=lambda key: int(seeds[key].sum()))
    family, seed = (blue if name == "blue" else bright), seeds[name]
    if seed.mean() < 0.02:
        raise NoRegion("there is no sky: nothing of sky-like color (blue, or near-white) and smooth touches the top")
    passable = smooth & (luma >= 0.5 * np.percentile(luma[seed], 10))  # half as bright: ground, not sky
    labels = label(passable)
    sky = np.isin(labels, np.unique(labels[seed])) & passable
    lowest = np.flatnonzero(seed.any(axis=1))[-1]
    mean, spread = x[seed].mean(axis=0), x[seed].std(axis=0).max()
    through = (np.abs(x - mean).max(axis=2) <= 3 * spread + 16) & family
    through[lowest + 1 :] = False
    return sky | through


def _like_around(pixels: np.ndarray, small: np.ndarray, found: np.ndarray) -> np.ndarray:
    """A region found on the small copy, at full size: every pixel up to `AROUND` small pixels from it whose color
    is near (within 24 levels, fully out from 48) the region's color around it. So its edge follows the picture,
    not the small copy's pixels: a tower's thin struts and a lamp's glare stay out of the sky, the sky between the
    glare's rays does not."""
    size = (pixels.shape[1], pixels.shape[0])

    def spread(x: np.ndarray) -> np.ndarray:  # blurred over a few small pixels, at full size
        x = x.astype(np.float32)
        for _ in range(AROUND):
            x = window_sum(x, 1) / 9
        return np.asarray(Image.fromarray(x).resize(size, Image.Resampling.BILINEAR), np.float32)

    weight = spread(found)
    around = np.stack([spread(small[..., c] * found) for c in range(3)], axis=-1) / np.maximum(weight, 1e-3)[..., None]
    distance = np.abs(pixels.astype(np.float32) - around).max(axis=2)
    near = found
    for _ in range(AROUND):
        near = grow(near)
    reach = np.clip(_upsample(near, pixels.shape[:2]) * 2, 0, 1)
    return np.minimum(reach, np.clip((48 - distance) / 24, 0, 1))


def _background(small: np.ndarray, foreground: bool) -> np.ndarray:
    """Pixels of the colors seen along the top edge and the upper half of the side edges (within `SIMILAR` of one of
    them), connected to those edges; for the foreground, the rest."""
    x = small.astype(np.int16)
    half = max(1, x.shape[0] // 2)
    edge = np.concatenate([x[0], x[:half, 0], x[:half, -1]])
    edge = np.unique(edge // 8, axis=0) * 8 + 4  # the edge's colors, to 8 levels
    near = np.zeros(x.shape[:2], bool)
    for start in range(0, len(edge), 64):
        chunk = edge[start : start + 64]
        near |= (np.abs(x[:, :, None, :] - chunk[None, None]).max(axis=3) <= SIMILAR).any(axis=2)
    labels = label(near)
    touching = np.concatenate(
        [labels[0][near[0]], labels[:half, 0][near[:half, 0]], labels[:half, -1][near[:half, -1]]]
    )
    back = np.isin(labels, np.unique(touching)) & near & ~skin(small)  # a person is never the background
    share = float(back.mean())
    if not 0.1 <= share <= 0.9:
        raise NoRegion(
            f"cannot tell the background from the subject here (what touches the top and upper sides is "
            f"{share * 100:.0f}% of the picture)"
        )
    return ~back if foreground else back


def skin(x: np.ndarray) -> np.ndarray:
    """Skin-toned pixels: hue 0–50°, saturation 0.15–0.6, value at least 0.35 (the usual rule for lit skin)."""
    h = hsv(x).astype(np.float32) / 255
    return (h[..., 0] * 360 <= 50) & (h[..., 1] >= 0.15) & (h[..., 1] <= 0.6) & (h[..., 2] >= 0.35)


# -- shapes --------------------------------------------------------------------------------------------------------


def select(pixels: np.ndarray, color: str, shape: str) -> np.ndarray:
    """The mask of "the `color` `shape`" in an RGB array ("squares": every square); `NoRegion` when no region fits."""
    hue = color_mask(hsv(pixels), color)
    small, scale = _small(pixels)
    small, small_hue = small.astype(np.int16), (hue if scale == 1.0 else color_mask(hsv(small), color))
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
    labels = label(hue, pixels)
    found, counts = np.unique(labels[hue], return_counts=True)
    smallest = max(16, hue.size // 2000)
    fitting = np.zeros_like(hue)
    for region_label in found[np.argsort(-counts, kind="stable")]:
        region = labels == region_label
        if region.sum() < smallest:
            break
        rows, columns = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
        if fit(region[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1], shape) >= FIT:
            fitting |= region
            if not every:
                break
    return fitting if fitting.any() else None


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


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask and everything it encloses (what is not connected to the border through pixels outside it)."""
    outside = ~mask
    labels = label(outside)
    sides = [
        (labels[0], outside[0]),
        (labels[-1], outside[-1]),
        (labels[:, 0], outside[:, 0]),
        (labels[:, -1], outside[:, -1]),
    ]
    edge = np.concatenate([found[kept] for found, kept in sides])
    return mask | (outside & ~np.isin(labels, np.unique(edge)))


def grow(mask: np.ndarray) -> np.ndarray:
    """The mask and its 4-neighbours."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def _small(pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """A copy at most `LABEL_SIDE` pixels a side (the array itself when it is that small) and the scale."""
    height, width = pixels.shape[:2]
    scale = max(1.0, max(width, height) / LABEL_SIDE)
    if scale == 1.0:
        return np.asarray(pixels), 1.0
    size = (max(1, round(width / scale)), max(1, round(height / scale)))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return np.asarray(image.resize(size, Image.Resampling.BOX)), scale


def _upsample(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    image = Image.fromarray(mask.astype(np.float32))
    return np.clip(np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)), 0, 1)


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
    result = np.zeros_like(hue)
    result[window] = near & hue[window] & close
    return result
