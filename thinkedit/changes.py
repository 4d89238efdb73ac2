"""What changed between two images of the same size, and where: the offline critic's independent measurements.

Nothing here knows how an edit was made. From the pixels alone: which pixels changed noticeably, how much of a
named area took a color, how far the change spread beyond the named area, specks and holes inside it, new hard
edges (seams) along its border, and skin tones left in a few flat steps. All arrays are float RGB 0..255 of one
shape (the critic's small copies).
"""

from __future__ import annotations

import numpy as np

from .regions import hsv, label, membership

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
    padded = np.pad(mask.astype(np.int32), 2, mode="edge")
    total = padded.cumsum(0).cumsum(1)
    total = np.pad(total, ((1, 0), (1, 0)))
    height, width = mask.shape
    count = total[5 : 5 + height, 5 : 5 + width] - total[:height, 5 : 5 + width]
    count = count - total[5 : 5 + height, :width] + total[:height, :width]
    majority = count > 12
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


def where(mask: np.ndarray, scale: float) -> str:
    """Where the largest connected part of a mask lies, in the full-size image's pixels: 'around (x, y)'."""
    labels = label(mask)
    found, counts = np.unique(labels[mask], return_counts=True)
    biggest = labels == found[int(np.argmax(counts))]
    rows, columns = np.nonzero(biggest)
    return f"around ({round(columns.mean() * scale)}, {round(rows.mean() * scale)})"


def took(after: np.ndarray, named: np.ndarray, color: str) -> float:
    """Share of the `named` pixels that now are at least half of `color`."""
    return float((membership(hsv(after), color) >= 0.5)[named].mean()) if named.any() else 0.0


def steps(x: np.ndarray, within: np.ndarray) -> int:
    """How many distinct brightness levels the pixels `within` hold."""
    return len(np.unique(np.round(x[within] @ LUMA)))
