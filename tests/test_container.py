import struct
import zlib

import numpy as np
import pytest

from lcodec.errors import FormatError, LcodecError, VersionError
from lcodec.formats import container

HEADER = {"modality": "image", "width": 40, "height": 20, "channels": 3, "dtype": "uint8",
          "model": "walloc-rgb", "model_version": 1, "quality": 2, "weights_sha256": "a" * 64,
          "tables_sha256": "b" * 64, "coder": "constriction-range", "coder_version": "0.5.0",
          "tile_size": 32, "tiles": 2}


@pytest.fixture
def blob():
    return container.write(HEADER, [b"tile-zero-data", b"tile-one"], {"notes": ["x"]})


def test_round_trip(blob):
    c = container.read(blob)
    assert c.header == dict(HEADER, format="1.0") and c.tiles == {0: b"tile-zero-data", 1: b"tile-one"}
    assert c.meta == {"notes": ["x"]} and (c.major, c.minor) == (1, 0)


def test_every_truncation_is_a_clean_error(blob):
    for n in range(len(blob)):
        with pytest.raises(FormatError):
            container.read(blob[:n])


def test_every_single_byte_flip_is_a_clean_error(blob):
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x5A
        with pytest.raises(LcodecError):
            container.read(bytes(bad))


def test_text_mode_mangling_is_named(blob):
    with pytest.raises(FormatError, match="text-mode"):
        container.read(blob.replace(b"\r\n", b"\n", 1))


def test_unknown_major_version_is_refused(blob):
    bad = blob[:8] + bytes([2, 0]) + blob[10:]
    with pytest.raises(VersionError, match="format 2.0"):
        container.read(bad)


def _insert_before_end(blob, chunk_bytes):
    return blob[:-12] + chunk_bytes + blob[-12:]


def test_unknown_ancillary_chunk_is_skipped_and_critical_refused_by_name(blob, monkeypatch):
    newer = container.write(dict(HEADER), [b"tile-zero-data", b"tile-one"], minor=7)  # a later minor
    newer = _insert_before_end(newer, container.chunk(b"xtra", b"future data"))
    c = container.read(newer)
    assert c.tiles[1] == b"tile-one" and c.minor == 7
    with pytest.raises(FormatError, match="unknown critical chunk 'XTRA'"):
        container.read(_insert_before_end(blob, container.chunk(b"XTRA", b"must understand")))


def test_files_without_a_dictionary_stay_format_1_0_and_a_dictionary_makes_1_1(blob):
    assert blob[8:10] == b"\x01\x00" and container.read(blob).header["format"] == "1.0"
    with_dict = container.write(dict(HEADER, dictionary_sha256="c" * 64), [b"t0", b"t1"])
    c = container.read(with_dict)
    assert with_dict[8:10] == b"\x01\x01" and c.header["dictionary_sha256"] == "c" * 64
    with pytest.raises(FormatError, match="dictionary_sha256"):
        container.write(dict(HEADER, dictionary_sha256="nothex"), [b"t0", b"t1"])


def test_header_survives_appended_fields_of_a_later_minor():
    from lcodec.formats import header
    packed = header.pack(dict(HEADER, format="1.3")) + b"new field"
    assert header.unpack(packed) == dict(HEADER, format="1.3")


def test_duplicates_order_and_trailing_data(blob):
    tile0 = container.chunk(container.TILE, struct.pack("<I", 0) + b"again")
    with pytest.raises(FormatError, match="repeated"):
        container.read(_insert_before_end(blob, tile0))
    head = container.chunk(container.HEAD, b"{}")
    with pytest.raises(FormatError, match="duplicate header"):
        container.read(_insert_before_end(blob, head))
    with pytest.raises(FormatError, match="after the end"):
        container.read(blob + b"\x00")
    no_head = blob[:10] + blob[10 + 12 + struct.unpack_from("<I", blob, 10)[0]:]
    with pytest.raises(FormatError, match="first chunk"):
        container.read(no_head)


def test_length_past_end_and_huge_shapes():
    bad = container.SIGNATURE + bytes([1, 0]) + struct.pack("<I", 0xFFFFFFF0) + b"HEAD"
    with pytest.raises(FormatError, match="past the end"):
        container.read(bad + b"\x00" * 16)
    for field, value in (("width", 10**9), ("height", 0), ("tiles", 5), ("tile_size", 7)):
        h = dict(HEADER, **{field: value})
        with pytest.raises(FormatError):
            container.read(container.write(h, [b"a", b"b"]))


def test_damaged_tile_can_be_tolerated(blob):
    bad = container.damage_tile(blob, 1)     # past the metadata chunk too
    assert len(bad) == len(blob) and sum(a != b for a, b in zip(bad, blob)) == 1
    with pytest.raises(FormatError, match="checksum"):
        container.read(bad)
    c = container.read(bad, tolerate_damage=True)
    assert c.damaged == [1] and c.tiles == {0: b"tile-zero-data"}
    with pytest.raises(FormatError, match="no tile 2"):
        container.damage_tile(blob, 2)


def test_crc_is_crc32_of_type_and_payload(blob):
    (length,) = struct.unpack_from("<I", blob, 10)
    ctype_payload = blob[14:18 + length]
    assert struct.unpack_from("<I", blob, 18 + length)[0] == zlib.crc32(ctype_payload)


def test_hostile_metadata_and_end_chunks(blob):
    deep = _insert_before_end(container.write(HEADER, [b"a", b"b"]), container.chunk(b"meta", b"[" * 100000))
    with pytest.raises(FormatError, match="JSON"):
        container.read(deep)
    with pytest.raises(FormatError, match="duplicate metadata"):
        container.read(_insert_before_end(blob, container.chunk(b"meta", b"{}")))
    with pytest.raises(FormatError, match="not empty"):
        container.read(blob[:-12] + container.chunk(container.END, b"x"))


def test_writer_refuses_what_the_reader_would_refuse():
    with pytest.raises(FormatError):
        container.write(dict(HEADER, width=70000), [b"a", b"b"])
    with pytest.raises(FormatError):
        container.write(HEADER, [b"only one tile"])


@pytest.mark.parametrize("name", ["walloc-rgb-q2", "mgm-q2", "walloc-stereo-q2"])
def test_a_later_minor_with_new_fields_and_chunks_decodes_like_the_original(name):
    """Format stability, end to end: a real file rewritten as format 1.9 (a header field
    appended, an unknown ancillary chunk before the tiles and one before the end) decodes to
    exactly what the original decodes to; an unknown critical chunk is refused by name."""
    import lcodec
    from lcodec.formats import header
    from .conftest import GOLDEN
    original = (GOLDEN / f"{name}.lcf").read_bytes()
    c = container.read(original)
    future = {k: v for k, v in c.header.items() if k != "format"}
    body = header.pack(dict(future, format="1.9")) + b"a field of 1.9"
    head = container.chunk(container.HEAD, body)
    tiles = [container.chunk(container.TILE, struct.pack("<I", i) + t) for i, t in sorted(c.tiles.items())]
    def later(note_type):
        return (original[:8] + b"\x01\x09" + head + container.chunk(note_type, b"written by lcodec 9")
                + b"".join(tiles) + container.chunk(b"xtra", b"more") + original[-12:])
    assert container.read(later(b"note")).minor == 9
    np.testing.assert_array_equal(lcodec.decode(later(b"note"), device="cpu"), lcodec.decode(original, device="cpu"))
    with pytest.raises(FormatError, match="unknown critical chunk 'NOTE'"):
        lcodec.decode(later(b"NOTE"), device="cpu")
