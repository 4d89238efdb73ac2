"""Reading what people really upload into plain RGB images, and refusing what cannot be edited."""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import re
import warnings
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

from .config import MAX_IMAGE_PIXELS
from .errors import BadInput, ThinkEditError

# Pillow refuses to decode anything over twice this (every decode in the process, Gradio's included);
# between 1× and 2× it only warns, and `check_size` below refuses it with the clear message.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
_SRGB = ImageCms.createProfile("sRGB")
WHITE = (255, 255, 255)


def load_image(source: str | Path | bytes | Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Open a path, bytes or PIL image as an upright RGB image, or raise `BadInput` saying why not.

    EXIF rotation is applied, an embedded colour profile is applied (the pixels become sRGB), alpha is
    composited on `background` (white; a mask's transparent areas are black: they may not change), palette / 16-bit / CMYK images are converted, and an animated image gives its first
    frame. The result carries no metadata (profile, EXIF, text chunks): what a run writes, it can read back.
    A file is not read whole before it is known to be an image: Pillow reads its header first.
    """
    if source is None:
        raise BadInput("No image: upload or choose an image to edit.")
    if not isinstance(source, (str, Path, bytes, bytearray, Image.Image)):
        raise BadInput(f"The image must be an uploaded file, a path or image bytes, not {type(source).__name__}.")
    if isinstance(source, Image.Image):
        return _upright_rgb(source, background)
    with _image_file(source) as file:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # check_size says it better
                image = Image.open(file)
        except UnidentifiedImageError:
            raise BadInput("This file is not an image Pillow can read (PNG, JPEG, WebP, GIF, BMP, TIFF).") from None
        except Image.DecompressionBombError as exc:
            pixels = re.search(r"\((\d+) pixels\)", str(exc))
            raise BadInput(_too_large(int(pixels.group(1)) if pixels else None)) from None
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad upload
            raise BadInput(_unreadable(exc, "The image could not be opened: {}.")) from None
        return _upright_rgb(image, background)


def _image_file(source: str | Path | bytes | bytearray) -> BinaryIO:
    """The bytes as a file, or the path's file opened (not read); `BadInput` when there is nothing to read."""
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise BadInput("The image file is empty.")
        return io.BytesIO(source)
    path = Path(source)
    if not path.is_file():
        raise BadInput(f"No image file at {path}.")
    if path.stat().st_size == 0:
        raise BadInput("The image file is empty.")
    return path.open("rb")


def _upright_rgb(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """An opened image, its size checked, decoded as an upright sRGB RGB image without metadata (transparent areas
    on `background`)."""
    check_size(image.width, image.height)
    with contextlib.suppress(EOFError, AttributeError, ValueError):
        image.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
            image = to_rgb(to_srgb(ImageOps.exif_transpose(image)), background)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated files raise OSError, odd modes ValueError
        raise BadInput(_unreadable(exc, "The image is damaged or truncated and could not be decoded ({}).")) from None
    image.info = {}  # exif_transpose made this copy: the profile is applied, and the rest the run does not need
    return image


def _unreadable(exc: Exception, message: str) -> str:
    """Why Pillow could not read an image: `message` with its error, or what to do about oversized metadata."""
    if "MAX_TEXT_CHUNK" not in str(exc):  # Pillow's only sign of a metadata chunk over its limit
        return message.format(exc)
    limit = PngImagePlugin.MAX_TEXT_CHUNK // 2**20
    return (
        f"The image carries a block of metadata (a colour profile or text) over {limit} MB, which is not read "
        "safely: save it again without its metadata or colour profile, and upload that."
    )


def to_srgb(image: Image.Image) -> Image.Image:
    """The image with its embedded colour profile (RGB, RGBA, CMYK or grey) applied, in sRGB; unchanged when it
    has none, or one that cannot be read (its pixels are then taken as sRGB)."""
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return image
    try:
        return ImageCms.profileToProfile(
            image,
            ImageCms.ImageCmsProfile(io.BytesIO(profile)),
            _SRGB,
            outputMode="RGBA" if image.mode == "RGBA" else "RGB",
        )
    except (OSError, ImageCms.PyCMSError, ValueError):
        return image


def check_size(width: int, height: int, what: str = "The image", advice: str = " Downscale it first.") -> None:
    """`BadInput` for an image of no pixels or over the limit; `what` names the image in the message."""
    if width < 1 or height < 1:
        raise BadInput(f"{what} has no pixels ({width}×{height}).")
    if width * height > MAX_IMAGE_PIXELS:
        raise BadInput(_too_large(width * height, f"{width}×{height} = ", what, advice))


def editor_output(edited: Any) -> Image.Image:
    """What an editor returned as an RGB image of its own size, or a `ThinkEditError` saying why it cannot be kept."""
    if edited is None:
        raise ThinkEditError("The editor returned no image.")
    if not isinstance(edited, Image.Image):
        raise ThinkEditError(f"The editor returned {type(edited).__name__}, not an image.")
    try:
        check_size(*edited.size, what="The editor's result", advice="")
    except BadInput as exc:  # the editor's fault, not the request's
        raise ThinkEditError(str(exc)) from None
    return to_rgb(edited)


def _too_large(
    pixels: int | None, size: str = "", what: str = "The image", advice: str = " Downscale it first."
) -> str:
    limit = MAX_IMAGE_PIXELS / 1e6
    if not pixels:
        return f"{what} is too large; the limit is {limit:g} megapixels.{advice}"
    # as many decimals as it takes to differ from the limit: 6400×6300 is 40.3 megapixels, not "40"
    places = next((p for p in range(7) if round(pixels / 1e6, p) != limit), 6)
    return f"{what} is {size}{pixels / 1e6:.{places}f} megapixels; the limit is {limit:g} megapixels.{advice}"


def to_rgb(image: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Any Pillow mode to RGB; transparent areas become `background` (white rather than black)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        return Image.fromarray((array / peak * 255).clip(0, 255).astype("uint8")).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = image.convert("RGBA")
        behind = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(behind, rgba).convert("RGB")
    return image.convert("RGB")


def base64_bytes(text: str) -> bytes:
    """The bytes of a base64 image, with or without a `data:image/...;base64,` prefix; `BadInput` otherwise."""
    if not isinstance(text, str) or not text:
        raise BadInput("The image is missing: send it base64-encoded (PNG or JPEG).")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("The image is not valid base64.") from None


def png_bytes(image: Image.Image) -> bytes:
    """Lossless PNG, compressed lightly: a 1024² photo encodes ~5× faster than at the default level for ~18%
    more bytes, and these images are written once per turn and sent to servers on the hot path."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def fit_within(image: Image.Image, longest_side: int) -> Image.Image:
    """Downscale (never upscale) so that the longest side is at most `longest_side`."""
    if max(image.size) <= longest_side:
        return image
    scale = longest_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)
