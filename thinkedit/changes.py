"""What changed between two images of the same size, and where: the offline critic's independent measurements.

Nothing here knows how an edit was made. From the pixels alone: which pixels changed noticeably, how much of a
named area took a color, how far the change spread beyond the named area, specks and holes inside it, new hard
edges (seams) along its border, and skin tones left in a few flat steps. All arrays are float RGB 0..255 of one
shape (the critic's small copies).

A colored thing ("the red cup") is read here by a rule of its own, not the editor's: the largest connected region
of pixels fully of the color. Whether a change stayed on it is judged from what changed: the source under every
changed pixel must be of the same surface as the thing's core (`alike`), whatever rule chose the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .regions import GAP, circular_mean, fill_holes, grow, hsv, hue_offset, hues, label, membership, window_sum

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# A pixel changed noticeably when one channel moved by more than 30 levels (about 12%): plainly visible side by
# side, and above what JPEG noise and resampling do to an untouched photo.
NOTICEABLE = 30
# A region changed visibly when its pixels moved by 8 levels (`shift`, about 3%): a person comparing the two images
# sees it at a glance; under it "is it different?" needs a second look.
VISIBLE = 8.0
# A clean recolor or region edit leaves only its outline disagreeing with the 5×5 neighbourhood: at the critic's
# 256-pixel size that is under 5% of the area. More is a blotchy, speckled change.
SPECKLE = 0.05
# New edges along under 10% of the change's border are the objects' own outlines shifting a little; more is a
# hard seam where the source was smooth.
SEAMS = 0.1


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The largest per-channel difference at each pixel."""
    return np.abs(a - b).max(axis=2)


def shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How far each pixel moved, averaged over its channels: closer to what the eye sees than the largest channel."""
    return np.abs(a - b).mean(axis=2)


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return difference(a, b) > NOTICEABLE


def speckle(mask: np.ndarray, within: np.ndarray) -> float:
    """Share of the pixels `within` whose state in `mask` disagrees with the majority of their 5×5 neighbourhood."""
    if not within.any():
        return 0.0
    majority = window_sum(mask.astype(np.int32), 2) > 12
    return float((majority != mask)[within].mean())


def seams(before: np.ndarray, after: np.ndarray, moved: np.ndarray) -> tuple[float, int]:
    """(share of the border of `moved` where the result has a new hard edge the source did not have, border pairs):
    a neighbour pair with one side changed, the source smooth across it (under half of `NOTICEABLE`) and the
    result not (over `NOTICEABLE`)."""
    hard = border = 0
    for axis in (0, 1):
        one = moved.take(range(moved.shape[axis] - 1), axis=axis)
        two = moved.take(range(1, moved.shape[axis]), axis=axis)
        edge = one != two
        source_step = np.abs(np.diff(before, axis=axis)).max(axis=2)
        result_step = np.abs(np.diff(after, axis=axis)).max(axis=2)
        hard += int((edge & (source_step < NOTICEABLE / 2) & (result_step > NOTICEABLE)).sum())
        border += int(edge.sum())
    return (hard / border if border else 0.0), border


def largest(mask: np.ndarray) -> np.ndarray:
    """The largest connected part of a mask (all False when it is empty)."""
    if not mask.any():
        return mask
    labels = label(mask)
    found, counts = np.unique(labels[mask], return_counts=True)
    return labels == found[int(np.argmax(counts))]


def where(mask: np.ndarray, scale: float) -> str:
    """Where the largest connected part of a mask lies, in the full-size image's pixels: 'around (x, y)'."""
    rows, columns = np.nonzero(largest(mask))
    return f"around ({round(columns.mean() * scale)}, {round(rows.mean() * scale)})"


def took(after: np.ndarray, named: np.ndarray, color: str) -> float:
    """Share of the `named` pixels that now are at least half of `color`."""
    return float((membership(hsv(after), color) >= 0.5)[named].mean()) if named.any() else 0.0


def steps(x: np.ndarray, within: np.ndarray) -> int:
    """How many distinct brightness levels the pixels `within` hold."""
    return len(np.unique(np.round(x[within] @ LUMA)))


def colored_thing(fully: np.ndarray, every: bool) -> np.ndarray | None:
    """The critic's reading of "the red cup" in a mask of pixels fully of the color: its largest connected region,
    with every region at least an eighth its size within `GAP` pixels (a suit's two sides across a strap); with
    `every`, every region at least an eighth of the largest. None when the largest is under 1/2000 of the picture."""
    labels = label(fully)
    found, counts = np.unique(labels[fully], return_counts=True)
    if not len(found) or counts.max() < max(16, fully.size // 2000):
        return None
    big = found[counts >= counts.max() / 8]
    if every:
        return np.isin(labels, big) & fully
    chosen = (labels == found[int(np.argmax(counts))]) & fully
    while True:
        near = chosen
        for _ in range(GAP):
            near = grow(near)
        more = chosen | (np.isin(labels, np.intersect1d(np.unique(labels[near & fully]), big)) & fully)
        if np.array_equal(more, chosen):
            return chosen
        chosen = more


# A changed pixel lies on the named thing's surface when, among the changed pixels around it (7×7), at least half of
# those with a hue have one in the core's own range (its 5th to 95th percentile, `HUE_SLACK` wider), and their source
# is on average no grainier than `GRAINIER` times the core's, plus one level of noise. A glazed saucer's grain
# measures about 2 levels, the wooden table beside it 7 and more; its hue is the saucer's give or take 5°.
WINDOW, LIKE_SHARE, GRAINIER, HUE_SLACK = 3, 0.5, 2.5, 8.0
OUTLINE = 4  # pixels (at the critic's 256-pixel size) along a surface's border that are its edge: a saucer's rim
CHROMATIC = 0.25  # saturation from which a pixel's hue counts (under it: white, gray, black)


@dataclass
class Look:
    """What the source looks like under the core of a thing: the unambiguous middle of what changed on it."""

    hue: float | None  # its mean hue in degrees (None for a white, gray or black thing)
    band: tuple[float, float]  # its hue range around `hue` (5th and 95th percentile), in degrees
    grain: float  # its mean texture (`regions.texture`), in levels


def core(moved: np.ndarray, thing: np.ndarray) -> np.ndarray:
    """The middle of what changed on a thing: the changed pixels of it two pixels away from its border (when
    that leaves 16 or more; else all of them, or the thing itself when none of it changed)."""
    on = moved & thing
    if not on.any():
        return thing
    inner = on
    for _ in range(2):
        inner = inner & ~grow(~inner)
    return inner if inner.sum() >= 16 else on


def look(before: np.ndarray, rough: np.ndarray, pixels: np.ndarray, neutral: bool) -> Look:
    """The `Look` of the source `before` (texture `rough`) under `pixels`."""
    grain = float(rough[pixels].mean())
    if neutral:
        return Look(None, (0.0, 0.0), grain)
    hue = hues(before)[pixels]
    mean = circular_mean(hue)
    low, high = np.percentile(hue_offset(hue, mean), [5, 95])
    return Look(mean, (float(low), float(high)), grain)


def alike(before: np.ndarray, rough: np.ndarray, moved: np.ndarray, like: Look) -> np.ndarray:
    """The changed pixels whose source looks `like` the core, judged over the changed pixels around each, with
    their outline (`OUTLINE` pixels, and bands as narrow beyond it) and what they enclose (a highlight on a cup)."""
    hsv_before = hsv(before)
    chromatic = moved & (hsv_before[..., 1] >= CHROMATIC * 255) & (hsv_before[..., 2] >= 0.15 * 255)
    if like.hue is None:
        in_band = chromatic
    else:
        off = hue_offset(hues(before), like.hue)
        in_band = chromatic & (off >= like.band[0] - HUE_SLACK) & (off <= like.band[1] + HUE_SLACK)
    grainy = moved & (rough > GRAINIER * like.grain + 1)
    around = [window_sum(x.astype(np.float32), WINDOW) for x in (in_band, chromatic, grainy, moved)]
    share = np.where(around[1] > 0, around[0] / np.maximum(around[1], 1e-6), 1.0)
    smooth = around[2] <= around[3] / 2  # the median: a cup's rim or handle is an edge, not grain
    on = moved & (share >= LIKE_SHARE) & smooth
    for _ in range(OUTLINE):  # its outline: the rim of a saucer is an edge, not grain, and no other surface
        on = grow(on)
    on = fill_holes(on)
    other = moved & ~on
    solid = other  # what is left after an opening: bands along the outline under `OUTLINE` pixels wide go
    for _ in range(OUTLINE // 2):
        solid = solid & ~grow(~solid)
    for _ in range(OUTLINE // 2):
        solid = grow(solid) & other
    return on | (other & ~solid)


def unlike(before: np.ndarray, rough: np.ndarray, patch: np.ndarray, like: Look) -> str:
    """How the source under `patch` differs from the core's `like`, in numbers."""
    grain = f"grain {rough[patch].mean():.1f} levels (the core's {like.grain:.1f})"
    if like.hue is None:
        return grain
    low, high = ((like.hue + bound) % 360 for bound in like.band)
    return f"hue {circular_mean(hues(before)[patch]) % 360:.0f}° (the core's {low:.0f}–{high:.0f}°), {grain}"
