import io

import pytest
from helpers import encode, truncated
from PIL import Image

from thinkedit.errors import BadInput
from thinkedit.images import fit_within, load_image


def test_not_an_image(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"this is a text file, not a PNG")
    with pytest.raises(BadInput, match="not an image"):
        load_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(fmt):
    with pytest.raises(BadInput, match="damaged or truncated"):
        load_image(truncated(fmt, (256, 256)))


def test_empty_file():
    with pytest.raises(BadInput, match="empty"):
        load_image(b"")


def test_zero_pixels():
    with pytest.raises(BadInput, match="no pixels"):
        load_image(Image.new("RGB", (0, 0)))


def test_one_pixel_is_fine():
    assert load_image(Image.new("RGB", (1, 1), (9, 8, 7))).getpixel((0, 0)) == (9, 8, 7)


def test_decompression_bomb_is_refused_before_decoding():
    data = encode(Image.new("1", (20000, 20000)), "PNG")  # small file, 400 megapixels
    with pytest.raises(BadInput, match="400 megapixels"):
        load_image(data)


def test_exif_rotation_is_applied():
    wide = Image.new("RGB", (40, 20), (200, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    image = load_image(encode(wide, "JPEG", exif=exif.tobytes()))
    assert image.size == (20, 40)


def test_modes_people_upload_become_rgb():
    sixteen = Image.new("I;16", (4, 4), 65535)
    assert load_image(encode(sixteen, "PNG")).getpixel((0, 0)) == (255, 255, 255)
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))
    red = load_image(encode(cmyk, "JPEG"))
    assert red.mode == "RGB" and red.getpixel((0, 0))[0] > 200
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.info["transparency"] = 0
    assert load_image(encode(palette, "PNG", transparency=0)).getpixel((0, 0)) == (255, 255, 255)
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert load_image(encode(rgba, "PNG")).getpixel((0, 0)) == (255, 255, 255)


def test_animated_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (8, 8), color) for color in [(255, 0, 0), (0, 0, 255)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    first = load_image(buffer.getvalue())
    red, green, blue = first.getpixel((0, 0))
    assert red > 200 and blue < 50


def test_svg_is_refused():
    with pytest.raises(BadInput, match="not an image"):
        load_image(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')


def test_fit_within_downscales_only():
    assert fit_within(Image.new("RGB", (2000, 1000)), 1024).size == (1024, 512)
    assert fit_within(Image.new("RGB", (100, 50)), 1024).size == (100, 50)


def test_pillows_own_bomb_guard_stays_on_for_every_decode():
    assert Image.MAX_IMAGE_PIXELS == 40_000_000
    data = encode(Image.new("1", (9000, 8000)), "PNG")  # between 1× and 2× the limit: our own message
    with pytest.raises(BadInput, match="72 megapixels; the limit is 40"):
        load_image(data)


def test_colour_profiles_are_applied_and_no_metadata_is_kept():
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "a camera"
    half_clear = Image.new("RGBA", (4, 4), (255, 0, 0, 128))
    for data in (
        encode(half_clear, "PNG", icc_profile=srgb),  # RGBA: the profile is applied, then alpha on white
        encode(Image.new("RGB", (4, 4), (255, 0, 0)), "JPEG", icc_profile=b"not a profile", exif=exif),
    ):
        image = load_image(data)
        assert image.mode == "RGB" and image.info == {}
        assert image.getpixel((0, 0))[0] > 240 and image.getpixel((0, 0))[2] < 140
