"""Write the example images in assets/: public-domain photos shipped with scikit-image, and scenes drawn here.

Run once with scikit-image installed (`python scripts/make_assets.py`); the app itself needs only the files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def shapes() -> Image.Image:
    """Sky, grass, a red square, a blue disc and a yellow triangle: flat colors every operation can be checked on."""
    image = Image.new("RGB", (512, 384), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 260, 511, 383], fill=(60, 150, 60))
    draw.rectangle([60, 90, 190, 220], fill=(220, 30, 30))
    draw.ellipse([300, 70, 440, 210], fill=(30, 60, 200))
    draw.polygon([(210, 330), (270, 230), (330, 330)], fill=(245, 215, 30))
    return image


def sunset() -> Image.Image:
    """A soft gradient sky, a sun and layered hills: smooth tones for the vague looks."""
    height, width = 384, 576
    t = np.linspace(0, 1, height)[:, None, None]
    sky = (1 - t) * np.array([70, 90, 170]) + t * np.array([250, 170, 110])
    image = Image.fromarray(np.broadcast_to(sky, (height, width, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse([250, 200, 330, 280], fill=(255, 225, 150))
    for i, (shade, base) in enumerate([((90, 70, 90), 250), ((60, 50, 70), 290), ((35, 30, 45), 330)]):
        points = [(x, base + 25 * np.sin(x / (60 + 25 * i) + i)) for x in range(0, width + 8, 8)]
        draw.polygon([(0, height), *points, (width, height)], fill=shade)
    return image.filter(ImageFilter.GaussianBlur(1))


def main() -> None:
    from skimage import data

    ASSETS.mkdir(exist_ok=True)
    Image.fromarray(data.astronaut()).save(ASSETS / "astronaut.jpg", quality=90)
    Image.fromarray(data.coffee()).save(ASSETS / "coffee.jpg", quality=90)
    Image.fromarray(data.chelsea()).save(ASSETS / "chelsea.jpg", quality=90)
    shapes().save(ASSETS / "shapes.png")
    sunset().save(ASSETS / "sunset.png")


if __name__ == "__main__":
    main()
