"""Images: read as an image viewer shows them (orientation, bit depth, value range, modes) or
refused with the reason; one pixel cap, checked before decoding, for every command and the page."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from textok.data.transforms import MAX_IMAGE_PIXELS, ImageError, decode_image, load_image


def _two_colour(w=40, h=20):
    """Left half red, right half blue: where red ends up says how the image was turned."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (255, 0, 0)
    arr[:, w // 2 :] = (0, 0, 255)
    return Image.fromarray(arr)


def test_exif_orientation_is_applied(tmp_path):
    img = _two_colour()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    out = np.asarray(load_image(tmp_path / "turned.jpg"))
    assert out.shape == (40, 20, 3)  # shown upright: 20 wide, 40 tall
    assert out[2, 10, 0] > 200 and out[-3, 10, 2] > 200  # red on top, blue at the bottom


@pytest.mark.parametrize("name, dtype, value, expected", [("deep.png", "<u2", 65535, 255), ("deep.png", "<u2", 257 * 100, 100),
                                                           ("deep.png", "<u2", 1000, 4), ("deep.tif", "<i4", 257 * 200, 200)])
def test_high_bit_depth_is_scaled_from_its_full_range(tmp_path, name, dtype, value, expected):
    """A dim 16-bit image stays dim (it used to be stretched to its own maximum: 1000 -> 255)."""
    Image.fromarray(np.full((8, 8), value, dtype)).save(tmp_path / name)  # I;16 PNG, I (32-bit) TIFF
    out = np.asarray(load_image(tmp_path / name))
    assert out.shape == (8, 8, 3) and np.all(out == expected), (Image.open(tmp_path / name).mode, out[0, 0])
    if dtype == "<i4":  # beyond 16 bits there is no display range to scale from
        Image.fromarray(np.full((8, 8), 1 << 20, dtype)).save(tmp_path / name)
        with pytest.raises(ImageError, match="beyond 16 bits"):
            load_image(tmp_path / name)


def test_float_images_in_0_1_are_scaled_and_others_refused(tmp_path):
    Image.fromarray(np.full((4, 4), 0.5, np.float32), "F").save(tmp_path / "half.tif")
    assert np.all(np.asarray(load_image(tmp_path / "half.tif")) == 128)
    Image.fromarray(np.full((4, 4), 7.0, np.float32), "F").save(tmp_path / "hot.tif")
    with pytest.raises(ImageError, match="hot.tif: floating-point image with values in \\[7, 7\\]"):
        load_image(tmp_path / "hot.tif")
    Image.fromarray(np.array([[np.nan, 0.2]], np.float32), "F").save(tmp_path / "nan.tif")
    with pytest.raises(ImageError, match="NaN"):
        load_image(tmp_path / "nan.tif")


def test_palette_la_cmyk_become_rgb(tmp_path):
    base = _two_colour()
    base.convert("P", palette=Image.ADAPTIVE).save(tmp_path / "p.png")
    base.convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    Image.new("LA", (4, 4), (0, 0)).save(tmp_path / "la.png")  # fully transparent black: white on screen
    assert tuple(np.asarray(load_image(tmp_path / "p.png"))[0, 0]) == (255, 0, 0)
    c = np.asarray(load_image(tmp_path / "c.jpg"))
    assert c[5, 5, 0] > 200 and c[5, 5, 2] < 60 and c[5, -5, 2] > 200
    assert np.all(np.asarray(load_image(tmp_path / "la.png")) == 255)


def test_a_pixel_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (16000, 16000)).save(path, optimize=True)  # ~ 30 KB on disk, 768 MB as RGB
    assert path.stat().st_size < 1_000_000
    for read in (lambda: load_image(path), lambda: decode_image(path.read_bytes(), "member.png")):
        t = time.perf_counter()
        with pytest.raises(ImageError, match="16000 x 16000 pixels is beyond the 50 megapixel limit"):
            read()
        assert time.perf_counter() - t < 2.0  # the header only


def test_one_pixel_cap_for_every_command_and_the_page():
    from textok import explore

    assert MAX_IMAGE_PIXELS == 50_000_000 and explore.DEFAULT_MAX_PIXELS == MAX_IMAGE_PIXELS


def test_an_unknown_mode_is_refused_by_name(tmp_path):
    from textok.data.transforms import to_rgb

    with pytest.raises(ImageError, match="x.png: image mode HSV has no standard display"):
        to_rgb(Image.new("HSV", (2, 2)), "x.png")
