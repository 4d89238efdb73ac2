"""Offline editor made of ordinary image operations: color, tone, geometry, frames and text.

It reads the prompt with `thinkedit.instructions.read` and applies the operations in the order written,
with Pillow and vectorised numpy. What it cannot do it leaves alone and names in `info["editor_note"]`. When every
operation acted on a region it found ("the sky", "the red cup"), the pixels it selected are `info["selection"]`.
With a mask it changes only what lies inside it, and refuses geometry (a rotation, crop, resize or flip moves the
whole frame, which a mask cannot fence in).
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import replace

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..backend import BackendSpec, OnStep
from ..config import MAX_IMAGE_PIXELS, Settings
from ..errors import BadInput
from ..instructions import COLORS, GEOMETRY, OPERATIONS, REPERTOIRE, WHERE, Op, applied, phrase, read, resolve
from ..regions import NoRegion, mask

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
SEPIA = np.array([1.0, 0.78, 0.55], np.float32) / float(LUMA @ np.array([1.0, 0.78, 0.55], np.float32))
TONES = tuple(name for name, facts in OPERATIONS.items() if facts.kind == "tone")
# A recolored region moves this share of the way from its own mean brightness to the named color's, so a dark sky
# made orange reads as orange (not brown) while its shading stays.
TOWARD_VALUE = 0.6
GENERATIVE = "a generative editor such as flux-kontext, qwen-image-edit or instruct-pix2pix"


class ClassicEditor:
    """`edit` runs the operations read from the prompt; `on_step` is called after each one."""

    model = None

    def __init__(self, spec: BackendSpec, settings: Settings):
        self.spec = spec
        self.settings = settings

    def edit(
        self,
        image: Image.Image,
        prompt: str,
        *,
        seed: int,
        steps: int | None = None,
        guidance: float | None = None,
        on_step: OnStep | None = None,
        mask: Image.Image | None = None,
    ) -> Image.Image:
        plan = read(prompt)
        ops = [applied(resolve(op, image.size)) for op in plan.ops]
        if mask is not None:
            refuse_geometry(ops)
        image = image.convert("RGB")
        result, pixels, missing, selected = image, None, [], []
        for index, op in enumerate(ops, 1):
            if op.name in TONES and not op.region:  # consecutive per-pixel operations share one float array
                pixels = np.asarray(result, np.float32) if pixels is None else pixels
                pixels = np.clip(_tone(pixels, op.name, float(op.amount or 0.0)), 0, 255)
            else:
                result, pixels = result if pixels is None else _image(pixels), None
                try:
                    result = apply(result, op, selected)
                except NoRegion as exc:
                    missing.append(f"'{phrase(op)}', since {exc}")
            if on_step is not None:
                on_step(index, len(ops))
        result = result.copy() if pixels is None else _image(pixels)
        result.info.clear()
        if mask is not None:
            result = _inside(image, result, mask)
        elif selected and len(selected) == len(ops) - len(missing):  # every operation done acted on a region
            result.info["selection"] = _image(np.max(selected, axis=0) * 255 + 0.5).convert("L")
        if missing or plan.unknown:
            parts = ", ".join(missing + [f"'{part}'" for part in plan.unknown])
            unchanged = " (the image is unchanged)" if len(missing) == len(ops) else ""
            why = (
                f" — this offline editor only does {REPERTOIRE}, on the whole image or on a region it finds by rule "
                f"({WHERE}, or a thing by its color); {GENERATIVE} can"
                if plan.unknown
                else ""
            )
            result.info["editor_note"] = f"could not do: {parts}{unchanged}{why}."
        return result


def refuse_geometry(ops: list[Op]) -> None:
    """`BadInput` for a rotation, crop, resize or flip asked inside a mask: it moves the whole frame."""
    moved = [phrase(op) for op in ops if op.name in GEOMETRY]
    if moved:
        raise BadInput(
            f"A mask keeps the image's frame, so '{moved[0]}' cannot be done inside it: a rotation, crop, resize or "
            "flip moves the whole image. Remove the mask to change the frame, or ask for a change inside the region."
        )


def _inside(source: Image.Image, result: Image.Image, fence: Image.Image) -> Image.Image:
    """`result` where the mask is white, `source` where it is black (in between, blended)."""
    weight = np.asarray(fence.convert("L").resize(source.size, Image.Resampling.BILINEAR), np.float32)[..., None] / 255
    return _image(np.asarray(source, np.float32) * (1 - weight) + np.asarray(result, np.float32) * weight + 0.5)


def apply(image: Image.Image, op: Op, selected: list[np.ndarray] | None = None) -> Image.Image:
    """One operation on an RGB image. Geometry may change the size; everything else keeps it. An operation on a
    region is done on the whole image and kept where the region's weight says (`NoRegion` when it finds none); that
    weight is added to `selected` when given."""
    if op.name in ("recolor", "keep_color"):
        return _by_color(image, op, selected)
    if op.region:
        weight = mask(np.asarray(image), op.region)
        if selected is not None:
            selected.append(weight)
        done = np.asarray(_apply(image, replace(op, region=None)), np.float32)
        return _image(np.asarray(image, np.float32) * (1 - weight[..., None]) + done * weight[..., None] + 0.5)
    return _apply(image, op)


def _apply(image: Image.Image, op: Op) -> Image.Image:
    a = float(op.amount) if op.amount is not None else 0.0
    match op.name:
        case "blur":
            return image.filter(ImageFilter.GaussianBlur(a))
        case "sharpen":
            radius = max(1.0, max(image.size) / 400)
            return image.filter(ImageFilter.UnsharpMask(radius=radius, percent=round(a * 100), threshold=2))
        case "pixelate":
            return _pixelate(image, max(2, round(a)))
        case "rotate":
            turns = {
                90.0: Image.Transpose.ROTATE_270,
                180.0: Image.Transpose.ROTATE_180,
                270.0: Image.Transpose.ROTATE_90,
            }
            if a % 360 in turns:
                return image.transpose(turns[a % 360])
            return image.rotate(-a, Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))
        case "flip":
            return image.transpose(
                Image.Transpose.FLIP_TOP_BOTTOM if op.where == "vertical" else Image.Transpose.FLIP_LEFT_RIGHT
            )
        case "crop":
            return image.crop(crop_box(image.size, op))
        case "resize":
            return image.resize(resized(image.size, op), Image.Resampling.LANCZOS)
        case "border":
            return _border(image, op)
        case "text":
            return _text(image, op)
    return _image(np.clip(_tone(np.asarray(image, np.float32), op.name, a), 0, 255))


def _image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels.astype(np.uint8))


def _tone(x: np.ndarray, name: str, a: float) -> np.ndarray:
    """Per-pixel operations on a float RGB array in 0..255."""
    luma = x @ LUMA
    match name:
        case "brightness":
            return x * (1 + a)
        case "contrast":
            mean = float(luma.mean())
            return (x - mean) * (1 + a) + mean
        case "saturation":
            gray = luma[..., None]
            return gray + (x - gray) * (1 + a)
        case "warmth":
            return x * np.array([1 + a / 2, 1.0, 1 - a / 2], np.float32)
        case "sepia":
            return x * (1 - a) + luma[..., None] * SEPIA * a
        case "grayscale":
            return x * (1 - a) + luma[..., None] * a
        case "invert":
            return x * (1 - a) + (255 - x) * a
        case "vignette":
            return x * (1 - a * radial(x.shape[1], x.shape[0]))[..., None]
        case "posterize":
            levels = max(2, round(a)) - 1
            return np.round(x / 255 * levels) * (255 / levels)
    raise ValueError(f"unknown operation {name}")


def radial(width: int, height: int) -> np.ndarray:
    """Squared distance from the centre, 0 there and 1 in the corners."""
    ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    return (xs * xs + ys * ys) / 2


def planned_size(size: tuple[int, int], ops: list[Op]) -> tuple[int, int]:
    """The size `apply` gives an image of `size` after `ops`: quarter turns, crops and resizes change it."""
    for op in ops:
        if op.name == "rotate" and float(op.amount or 0.0) % 180 == 90:
            size = (size[1], size[0])
        elif op.name == "crop":
            left, top, right, bottom = crop_box(size, op)
            size = (right - left, bottom - top)
        elif op.name == "resize":
            size = resized(size, op)
    return size


def resized(size: tuple[int, int], op: Op) -> tuple[int, int]:
    """The size a resize asks for, shrunk (the aspect ratio kept) to within the image limit."""
    if op.where:
        width, height = (max(1, int(v)) for v in op.where.split("x"))
    else:
        width, height = (max(1, round(side * float(op.amount or 1.0))) for side in size)
    if width * height > MAX_IMAGE_PIXELS:
        shrink = math.sqrt(MAX_IMAGE_PIXELS / (width * height))
        width, height = max(1, int(width * shrink)), max(1, int(height * shrink))
        width = min(width, MAX_IMAGE_PIXELS // height)
    return width, height


def crop_box(size: tuple[int, int], op: Op) -> tuple[int, int, int, int]:
    width, height = size
    keep = min(1.0, max(0.01, float(op.amount or 0.75)))
    if op.where == "square":
        side = min(size)
        left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side
    w, h = max(1, round(width * keep)), max(1, round(height * keep))
    match op.where:
        case "left":
            return 0, 0, w, height
        case "right":
            return width - w, 0, width, height
        case "top":
            return 0, 0, width, h
        case "bottom":
            return 0, height - h, width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def _pixelate(image: Image.Image, block: int) -> Image.Image:
    small = image.resize((math.ceil(image.width / block), math.ceil(image.height / block)), Image.Resampling.BOX)
    big = small.resize((small.width * block, small.height * block), Image.Resampling.NEAREST)
    return big.crop((0, 0, image.width, image.height))


def _border(image: Image.Image, op: Op) -> Image.Image:
    x = np.array(image)
    t = max(1, min(round(op.amount or 1), min(image.size) // 2))
    color = COLORS.get(op.color or "white", (255, 255, 255))
    x[:t], x[-t:], x[:, :t], x[:, -t:] = color, color, color, color
    return Image.fromarray(x)


def text_layout(size: tuple[int, int], op: Op) -> tuple[ImageFont.FreeTypeFont, tuple[float, float], str, int]:
    """(font, anchor point, anchor, stroke width) for the text operation; the critic uses it to find the band."""
    width, height = size
    font_size = max(6, round(float(op.amount or 0.08) * height))
    font = ImageFont.load_default(size=font_size)
    text_width = font.getlength(op.text or "")
    if text_width > 0.92 * width:
        font_size = max(6, int(font_size * 0.92 * width / text_width))
        font = ImageFont.load_default(size=font_size)
    margin = 0.04 * height
    anchor, y = {"top": ("mt", margin), "bottom": ("mb", height - margin)}.get(op.where or "", ("mm", height / 2))
    return font, (width / 2, y), anchor, max(1, font_size // 16)


def text_box(size: tuple[int, int], op: Op) -> tuple[int, int, int, int]:
    font, xy, anchor, stroke = text_layout(size, op)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return tuple(round(v) for v in probe.textbbox(xy, op.text or "", font=font, anchor=anchor, stroke_width=stroke))


def _text(image: Image.Image, op: Op) -> Image.Image:
    result = image.copy()
    font, xy, anchor, stroke = text_layout(image.size, op)
    fill = COLORS.get(op.color or "white", (255, 255, 255))
    outline = (0, 0, 0) if float(LUMA @ np.array(fill, np.float32)) > 128 else (255, 255, 255)
    ImageDraw.Draw(result).text(
        xy, op.text or "", fill=fill, font=font, anchor=anchor, stroke_width=stroke, stroke_fill=outline
    )
    return result


def _by_color(image: Image.Image, op: Op, selected: list[np.ndarray] | None = None) -> Image.Image:
    source = np.asarray(image)
    weight = mask(source, op.region or "the red areas")[..., None]
    if selected is not None:  # keep_color changes what lies outside the color
        selected.append(1 - weight[..., 0] if op.name == "keep_color" else weight[..., 0])
    if op.name == "keep_color":
        gray = np.repeat((source.astype(np.float32) @ LUMA)[..., None], 3, axis=2)
        return _image(gray * (1 - weight) + source * weight + 0.5)
    return _image(source * (1 - weight) + _recolored(image, op.color or "red", weight[..., 0]) * weight + 0.5)


def _recolored(image: Image.Image, color: str, weight: np.ndarray) -> np.ndarray:
    """The image with every pixel in the named color, its shading kept: the color's hue, at least most of its
    saturation, and the region's brightness moved `TOWARD_VALUE` of the way to the color's."""
    hsv = np.array(image.convert("HSV")).astype(np.float32)
    hue, saturation, value = colorsys.rgb_to_hsv(*(c / 255 for c in COLORS[color]))
    region_value = float((hsv[..., 2] * weight).sum() / max(float(weight.sum()), 1e-6))
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    if color in ("white", "black", "gray", "grey"):
        s[...] = 0
        v[...] = {"white": np.maximum(v, 235), "black": v / 6}.get(color, v)
    else:
        h[...] = round(hue * 255) % 256
        s[...] = np.maximum(s, saturation * 200)
        v += (value * 255 - region_value) * TOWARD_VALUE
    recolored = Image.fromarray(np.clip(hsv + 0.5, 0, 255).astype(np.uint8), "HSV").convert("RGB")
    return np.asarray(recolored, np.float32)
