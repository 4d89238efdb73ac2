"""How much of the image an edit changed, and where: the drift meter of every turn.

Both images are brought to a working copy (`WORK_SIDE` pixels on the longest side, by area averaging; smaller
images at their own size) and blurred by a Gaussian of `BLUR` working pixels, which stands for viewing the picture
whole: film grain, JPEG noise and a one-pixel misregistration average out, a changed object does not. Each
working pixel's colour difference is CIEDE2000 (ΔE00) between the two copies in CIELAB (sRGB, D65). A pixel
changed noticeably when ΔE00 > `NOTICEABLE`:

    changed = share of the working pixels with ΔE00 > NOTICEABLE
    outside = the same share over the pixels outside the region (null when no region is known)

The region is the person's mask, or the pixels the editor itself selected (the classic editor's region edits).
A working pixel counts as outside only when no part of the region reaches it, blur included, so a perfect fence
reads 0. Two images of different shapes (a rotation, a crop, a resize) have no pixel-by-pixel difference: their
drift is None (`null` in trajectory.json), and the "what changed" picture says so instead of drawing one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WORK_SIDE = 512
BLUR = 1.0  # σ of the Gaussian on the working copies, in working pixels
# ΔE00 of 1 is the just-noticeable difference of two flat patches side by side; in a photograph texture hides small
# differences, and graphic-arts tolerances put "clearly visible" at 3.5 to 5. Above 5 a reader sees the change.
NOTICEABLE = 5.0
_SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_D65 = np.array([0.95047, 1.0, 1.08883])
SHAPE_CHANGED = (
    "turn {turn} is {turn_size} and the source {source_size}: a rotation, crop or resize moves every pixel, so "
    "there is no pixel-by-pixel difference to measure or draw"
)


@dataclass(frozen=True)
class Drift:
    changed: float  # 0..1: share of the image that changed noticeably
    outside: float | None  # 0..1: share of the area outside the region that changed; None without a region

    def record(self) -> dict[str, float | None]:
        return {"changed": round(self.changed, 4), "outside": None if self.outside is None else round(self.outside, 4)}


def valid(value: Any) -> bool:
    """Whether a record's `drift` holds what the contract allows: {"changed": 0..1, "outside": 0..1 or null}."""
    if not isinstance(value, dict) or set(value) != {"changed", "outside"}:
        return False
    return _share(value["changed"]) and (value["outside"] is None or _share(value["outside"]))


def _share(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def read(value: Any) -> Drift | None:
    """A record's `drift` as a `Drift` (None when it has none)."""
    return Drift(float(value["changed"]), value["outside"]) if valid(value) else None


def percent(share: float | None) -> str:
    """A share for people: '12%', '0.4%', or '–' when unknown."""
    if share is None:
        return "–"
    value = share * 100
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"


def words(drift: Drift | None) -> str:
    """'12% changed, 0% outside the region' (or 'changed –' for a turn of another shape)."""
    if drift is None:
        return "changed –"
    outside = "" if drift.outside is None else f", {percent(drift.outside)} outside the region"
    return f"{percent(drift.changed)} changed{outside}"


# -- the measurement ---------------------------------------------------------------------------------------------


def measure(source: Image.Image, edited: Image.Image, region: Image.Image | None = None) -> Drift | None:
    """The drift of `edited` from `source` (None when their shapes differ); `region` (L, white = inside, at the
    source's size) gives `outside`."""
    delta = delta_e(source, edited)
    if delta is None:
        return None
    moved = delta > NOTICEABLE
    outside = None
    if region is not None:
        away = outside_pixels(region, delta.shape)
        outside = float(moved[away].mean()) if away.any() else None
    return Drift(float(moved.mean()), outside)


def delta_e(source: Image.Image, edited: Image.Image) -> np.ndarray | None:
    """ΔE00 per working pixel between the two images (None when their shapes differ)."""
    if source.size != edited.size:
        return None
    return ciede2000(lab(_working(source)), lab(_working(edited)))


def working_size(size: tuple[int, int]) -> tuple[int, int]:
    scale = min(1.0, WORK_SIDE / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _working(image: Image.Image) -> np.ndarray:
    small = image.convert("RGB").resize(working_size(image.size), Image.Resampling.BOX)
    return np.asarray(small.filter(ImageFilter.GaussianBlur(BLUR)), np.float64) / 255


def outside_pixels(region: Image.Image, shape: tuple[int, ...]) -> np.ndarray:
    """The working pixels that no part of `region` reaches, after the same area averaging and blur as the images."""
    small = region.convert("L").resize((shape[1], shape[0]), Image.Resampling.BOX)
    return np.asarray(small.filter(ImageFilter.GaussianBlur(BLUR))) == 0


def lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0..1, H×W×3) to CIELAB under D65."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _D65
    edge = (6 / 29) ** 3
    f = np.where(xyz > edge, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """The CIEDE2000 colour difference of two CIELAB arrays, per pixel (Sharma, Wu and Dalal, 2005), kL = kC = kH = 1."""
    (l1, a1, b1), (l2, a2, b2) = np.moveaxis(lab1, -1, 0), np.moveaxis(lab2, -1, 0)
    mean_c = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(mean_c**7 / (mean_c**7 + 25.0**7)))
    a1, a2 = a1 * (1 + g), a2 * (1 + g)
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1)) % 360, np.degrees(np.arctan2(b2, a2)) % 360
    chroma = c1 * c2 != 0
    dh = h2 - h1
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh)) * chroma
    dl, dc = l2 - l1, c2 - c1
    d_hue = 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh / 2))
    mean_l, mean_c = (l1 + l2) / 2, (c1 + c2) / 2
    total = h1 + h2
    mean_h = np.where(np.abs(h1 - h2) <= 180, total / 2, np.where(total < 360, total + 360, total - 360) / 2)
    mean_h = np.where(chroma, mean_h, total)
    t = (
        1
        - 0.17 * np.cos(np.radians(mean_h - 30))
        + 0.24 * np.cos(np.radians(2 * mean_h))
        + 0.32 * np.cos(np.radians(3 * mean_h + 6))
        - 0.20 * np.cos(np.radians(4 * mean_h - 63))
    )
    rotation = (
        -np.sin(np.radians(60 * np.exp(-(((mean_h - 275) / 25) ** 2)))) * 2 * np.sqrt(mean_c**7 / (mean_c**7 + 25.0**7))
    )
    s_l = 1 + 0.015 * (mean_l - 50) ** 2 / np.sqrt(20 + (mean_l - 50) ** 2)
    s_c, s_h = 1 + 0.045 * mean_c, 1 + 0.015 * mean_c * t
    terms = (dl / s_l) ** 2 + (dc / s_c) ** 2 + (d_hue / s_h) ** 2 + rotation * (dc / s_c) * (d_hue / s_h)
    return np.sqrt(np.maximum(terms, 0))


# -- the picture --------------------------------------------------------------------------------------------------

STRONG = 25.0  # ΔE00 at which the heat map is fully red
REGION_COLOR = (0, 200, 255)


def picture(source: Image.Image, edited: Image.Image, region: Image.Image | None = None) -> Image.Image | None:
    """What changed, drawn over the source: the source in dimmed grey, every pixel that changed noticeably in yellow
    (just over the threshold) to red (ΔE00 of `STRONG` and more), and the region's outline in cyan. None when the
    shapes differ. At the source's size, measured on the same working copies as `measure`."""
    delta = delta_e(source, edited)
    if delta is None:
        return None
    size = source.size
    grey = np.asarray(source.convert("L"), np.float32)[..., None] * 0.45 + 70
    heat = Image.fromarray(delta.astype(np.float32), "F").resize(size, Image.Resampling.BILINEAR)
    strength = np.asarray(heat, np.float32)[..., None]
    level = np.clip((strength - NOTICEABLE) / (STRONG - NOTICEABLE), 0, 1)
    color = np.concatenate([np.full_like(level, 255), 230 * (1 - level), np.zeros_like(level)], axis=-1)
    alpha = np.where(strength > NOTICEABLE, 0.55 + 0.4 * level, 0.0)
    pixels = grey * (1 - alpha) + color * alpha
    drawn = Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), "RGB")
    if region is not None:
        _outline(drawn, region)
    return drawn


def _outline(image: Image.Image, region: Image.Image) -> None:
    """Draw the border of `region` (where it crosses half) onto `image`, about 0.3% of the longest side thick."""
    inside = np.asarray(region.convert("L").resize(image.size, Image.Resampling.BILINEAR)) >= 128
    edge = np.zeros_like(inside)
    edge[:-1] |= inside[:-1] != inside[1:]
    edge[:, :-1] |= inside[:, :-1] != inside[:, 1:]
    width = max(1, math.ceil(max(image.size) / 300))
    line = Image.fromarray(edge.astype(np.uint8) * 255, "L").filter(ImageFilter.MaxFilter(2 * (width // 2) + 1))
    ImageDraw.Draw(image).bitmap((0, 0), line, fill=REGION_COLOR)
