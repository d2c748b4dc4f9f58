"""Fuzzing the .lcf reader and decoder with mutated real files (golden files: two images, one
of format 1.0 and one of 1.1 with a dictionary hash, and an audio file): every case ends in a decoded image or signal or an LcodecError, never another
exception or a hang. Run longer by hand with
LCODEC_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py (or tests/fuzz_atheris.py)."""
import os
import struct
import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lcodec
from lcodec.errors import LcodecError

from .conftest import GOLDEN

GOLDEN_FILES = [(GOLDEN / "walloc-rgb-q2.lcf").read_bytes(), (GOLDEN / "walloc-stereo-q2.lcf").read_bytes(),
                (GOLDEN / "clc-q1.lcf").read_bytes(), (GOLDEN / "vqgan-q1.lcf").read_bytes()]
IMAGE_TAIL = {0: 0, 2: 33, 3: 0}   # bytes after the image fields in the HEAD (1.1: dictionary count + sha256)
EXAMPLES = int(os.environ.get("LCODEC_FUZZ_EXAMPLES", "120"))


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
    elif kind == "shape":  # huge or zero declared sizes in the header, CRC kept valid
        pos, n = cs[0]
        a, b = draw(st.sampled_from([0, 1, 7, 44100, 65536, 2**31, 2**32 - 1])), draw(st.integers(0, 2**32 - 1))
        image = [i for i, g in enumerate(GOLDEN_FILES) if g is golden and i in IMAGE_TAIL]
        if image:  # width, height, channels, dtype, tile_size end the image fields of the HEAD
            end = pos + 8 + n - IMAGE_TAIL[image[0]]
            data[end - 14:end - 6] = struct.pack("<II", a, b)
        else:  # sample_rate, channels, frames, subtype, model_rate, segment, overlap end the audio HEAD
            data[pos + 8 + n - 25:pos + 8 + n - 11] = struct.pack("<IHQ", a, b & 0xFFFF, b * 977)
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
    try:
        out = lcodec.decode(data, device="cpu")
    except LcodecError:
        return
    if out.dtype == np.uint8:
        assert out.ndim == 3 and out.shape[2] == 3
    else:
        assert out.dtype == np.float32 and out.ndim == 2 and np.isfinite(out).all()
