"""Hostile and odd inputs: every model on 1 x 1 and 1 x N images, forged files of empty tiles,
EXIF orientation, animated GIFs, decompression bombs, symlinks; and every model's bytes
independent of the thread count."""
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

import lcodec
from lcodec import InputError, LcodecError
from lcodec.codec.tiling import tile_grid
from lcodec.formats import container
from lcodec.io.images import read_image

from .conftest import GOLDEN, torch_threads

IMAGE_MODELS = ["walloc-rgb", "mgm", "vqgan", "clc", "mbt2018-mean", "bmshj2018-hyperprior"]


@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_every_model_codes_one_pixel_and_one_pixel_wide_images(model, crop):
    for shape in [(1, 1, 3), (1, 37, 3), (29, 1, 3)]:
        img = np.ascontiguousarray(crop[:shape[0], :shape[1]])
        out = lcodec.decode(lcodec.encode(img, model=model, quality=1, device="cpu"))
        assert out.shape == shape and out.dtype == np.uint8


@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_a_forged_file_of_empty_tiles_is_refused_at_once(model):
    """A few hundred bytes declaring 4096 x 4096 of empty tiles: the first tile is refused (it
    decoded as a whole image in 44 s to minutes before)."""
    c = container.read((GOLDEN / f"{model}-q1.lcf").read_bytes())
    h = {k: v for k, v in c.header.items() if k != "format"}
    n = len(tile_grid(4096, 4096, h["tile_size"]))
    forged = container.write(dict(h, width=4096, height=4096, tiles=n), [b""] * n)
    t = time.perf_counter()
    with pytest.raises(LcodecError):
        lcodec.decode(forged, device="cpu")
    assert time.perf_counter() - t < 10


def test_exif_orientation_is_applied(tmp_path):
    """A camera's portrait photo is stored landscape with an EXIF rotation: code it upright."""
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)          # left half red
    exif = Image.Exif()
    exif[0x0112] = 6                 # "rotate 90 degrees clockwise to view"
    Image.fromarray(a).save(tmp_path / "p.png", exif=exif)
    arr, _ = read_image(tmp_path / "p.png")
    assert arr.shape == (40, 20, 3)
    assert (arr[:20] == (255, 0, 0)).all() and (arr[20:] == 0).all()   # red ends up on top


def test_animated_gif_codes_its_first_frame_and_says_so(tmp_path):
    frames = [Image.new("RGB", (16, 8), c) for c in ((250, 0, 0), (0, 0, 250))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
    arr, notes = read_image(tmp_path / "a.gif")
    assert arr.shape == (8, 16, 3) and arr[..., 0].mean() > 200 and arr[..., 2].mean() < 50
    assert any("first of 2 frames" in n for n in notes)


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    """67 bytes declaring 100000 x 100000 pixels: Pillow's guard (kept on) refuses at open."""
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b""))
    t = time.perf_counter()
    with pytest.raises(InputError, match="too large"):
        read_image(tmp_path / "bomb.png")
    assert time.perf_counter() - t < 1


def test_symlinks_are_followed_and_dangling_ones_refused(tmp_path, crop):
    Image.fromarray(crop).save(tmp_path / "real.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "real.png")
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    assert lcodec.encode(tmp_path / "link.png", device="cpu") == lcodec.encode(tmp_path / "real.png", device="cpu")
    with pytest.raises(InputError, match="no such file"):
        lcodec.encode(tmp_path / "dangling.png", device="cpu")


@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_every_model_writes_the_same_bytes_with_1_and_2_threads(model, crop):
    blobs = []
    for n in (1, 2):
        with torch_threads(n):
            blobs.append(lcodec.encode(crop, model=model, quality=2, device="cpu"))
    assert blobs[0] == blobs[1]
