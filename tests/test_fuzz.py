"""Fuzzing the .lcf reader and decoder with mutated real files (a golden file of every model
family, format 1.0 and 1.1, image and audio, and a file of several tiles): every case ends in a
decoded image or signal or an LcodecError, never another exception or a hang. Run longer by hand with
LCODEC_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py, counted in docs/fuzz.md by
scripts/fuzz_report.py (or coverage-guided: tests/fuzz_atheris.py)."""
import os
import struct
import time
import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lcodec
from lcodec.errors import LcodecError
from lcodec.formats import header

from .conftest import GOLDEN, ROOT

SEEDS = ("walloc-rgb-q2", "walloc-stereo-q2", "clc-q1", "vqgan-q1", "mgm-q2", "mbt2018-mean-q3",
         "bmshj2018-hyperprior-q1")   # every family's tile format, format 1.0 and 1.1, image and audio


def _two_by_two_tiles():
    """A vqgan file of 2 x 2 tiles (256 px): tile order, counts and stitching get mutated too."""
    from PIL import Image
    pixels = np.asarray(Image.open(ROOT / "examples" / "seeding.png").convert("RGB"))[:300, :280]
    return lcodec.encode(np.ascontiguousarray(pixels), model="vqgan", quality=1, device="cpu")


GOLDEN_FILES = [(GOLDEN / f"{name}.lcf").read_bytes() for name in SEEDS] + [_two_by_two_tiles()]
EXAMPLES = int(os.environ.get("LCODEC_FUZZ_EXAMPLES", "300"))
SLOWEST_S = 30   # a case taking longer counts as a hang


def chunks(data):
    """(offset, length) of every chunk of a well-formed file."""
    pos, out = 10, []
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        out.append((pos, n))
        pos += 12 + n
    return out


def refresh_crc(data, pos):
    (n,) = struct.unpack_from("<I", data, pos)
    crc = zlib.crc32(bytes(data[pos + 4:pos + 8 + n]))
    data[pos + 8 + n:pos + 12 + n] = struct.pack("<I", crc)


@st.composite
def mutated(draw):
    golden = draw(st.sampled_from(GOLDEN_FILES))
    data = bytearray(golden)
    kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "payload", "length", "shape",
                                 "reorder", "duplicate"]))
    cs = chunks(golden)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
    elif kind == "insert":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=16))
    elif kind == "delete":
        i = draw(st.integers(0, len(data) - 1))
        del data[i:i + draw(st.integers(1, 16))]
    elif kind == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif kind == "payload":  # garbage inside a chunk with a *valid* CRC: reaches the decoders
        pos, n = cs[draw(st.integers(0, len(cs) - 1))]
        if n:
            for _ in range(draw(st.integers(1, 8))):
                data[pos + 8 + draw(st.integers(0, n - 1))] = draw(st.integers(0, 255))
            refresh_crc(data, pos)
    elif kind == "length":
        pos, _ = cs[draw(st.integers(0, len(cs) - 1))]
        data[pos:pos + 4] = struct.pack("<I", draw(st.integers(0, 2**32 - 1)))
    elif kind == "shape":  # huge, zero or odd declared sizes in the header, CRC kept valid
        pos, n = cs[0]
        h = header.unpack(bytes(data[pos + 8:pos + 8 + n]))
        size = st.sampled_from([0, 1, 7, 63, 255, 256, 257, 1024, 44100, 65536, 2**31, 2**32 - 1])
        if h["modality"] == "image":   # small sizes keep one tile and so reach the decoder
            h.update(width=draw(size), height=draw(size), tiles=draw(st.sampled_from([h["tiles"], 0, 2, 2**20])))
        else:
            h.update(frames=draw(st.sampled_from([0, 1, 100, h["frames"] * 3, 2**40, 2**64 - 1])),
                     channels=draw(st.sampled_from([0, 1, 2, 3, 255, 65535])),
                     sample_rate=draw(st.sampled_from([0, 1, 8000, 48000, 10**6, 2**32 - 1])))
        body = header.pack(h)
        data = bytearray(golden[:pos] + struct.pack("<I", len(body)) + golden[pos + 4:pos + 8] + body
                         + b"\0\0\0\0" + golden[pos + 12 + n:])
        refresh_crc(data, pos)
    elif kind == "reorder":
        i, j = sorted(draw(st.lists(st.integers(0, len(cs) - 1), min_size=2, max_size=2, unique=True)))
        parts = [bytes(golden[p:p + 12 + n]) for p, n in cs]
        parts[i], parts[j] = parts[j], parts[i]
        data = bytearray(golden[:10] + b"".join(parts))
    elif kind == "duplicate":
        pos, n = cs[draw(st.integers(0, len(cs) - 1))]
        data[pos:pos] = golden[pos:pos + 12 + n]
    return bytes(data)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(mutated())
def test_mutated_files_decode_or_fail_cleanly(data):
    t = time.perf_counter()
    try:
        out = lcodec.decode(data, device="cpu")
    except LcodecError:
        return
    finally:
        assert time.perf_counter() - t < SLOWEST_S
    if out.dtype == np.uint8:
        assert out.ndim == 3 and out.shape[2] == 3
    else:
        assert out.dtype == np.float32 and out.ndim == 2 and np.isfinite(out).all()
