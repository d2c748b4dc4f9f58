"""The .lcf container: signature, version, CRC-checked chunks (see FORMAT.md beside this file).

This module knows bytes, never tensors. Everything it reads is checked against limits
before anything is allocated from it.
"""
import json
import struct
import zlib
from dataclasses import dataclass, field

from ..errors import FormatError, VersionError
from . import header as header_codec

SIGNATURE = b"\x89LCF\r\n\x1a\n"
MAJOR, MINOR = 1, 1         # the newest minor this lcodec writes (see header.py)
MAX_CHUNK = 1 << 30          # no chunk is larger than 1 GiB
MAX_HEADER = 1 << 16         # header record
MAX_TILES = 1 << 20
MAX_PIXELS = 16384 * 16384   # the largest image lcodec encodes; decode allocates no more
MAX_SIDE = 1 << 16
HEAD, TILE, META, END = b"HEAD", b"TILE", b"meta", b"LEND"
KNOWN = {HEAD, TILE, META, END}


def is_critical(ctype):
    """PNG's rule: an upper-case first letter marks a chunk a reader must understand."""
    return 65 <= ctype[0] <= 90


def chunk(ctype, payload):
    return struct.pack("<I", len(payload)) + ctype + payload + struct.pack("<I", zlib.crc32(ctype + payload))


def write(header, tiles, meta=None, minor=None):
    """Serialize a header dict, a list of tile payloads (index = position) and optional metadata,
    as format 1.`minor` (default: the lowest minor that holds the header's fields)."""
    if minor is None:
        minor = 1 if "dictionary_sha256" in header else 0
    out = [SIGNATURE, struct.pack("<BB", MAJOR, minor)]
    header = validate_header(dict(header, format=f"{MAJOR}.{minor}"))  # never write what read() refuses
    if len(tiles) != header["tiles"]:
        raise FormatError("tile count does not match the header")
    out.append(chunk(HEAD, header_codec.pack(header)))
    if meta:
        out.append(chunk(META, json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()))
    for i, payload in enumerate(tiles):
        out.append(chunk(TILE, struct.pack("<I", i) + payload))
    out.append(chunk(END, b""))
    return b"".join(out)


def damage_tile(data, index):
    """`data` (an .lcf file written by `write`) with one byte in the middle of tile `index`'s
    payload flipped, so that tile's CRC fails: what concealment tests and reports start from."""
    pos = 10 + 12 + struct.unpack_from("<I", data, 10)[0]        # past the signature and header
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        if data[pos + 4:pos + 8] == TILE and struct.unpack_from("<I", data, pos + 8)[0] == index:
            out = bytearray(data)
            out[pos + 12 + (length - 4) // 2] ^= 0x5A
            return bytes(out)
        pos += 12 + length
    raise FormatError(f"no tile {index} in the file")


@dataclass
class Container:
    major: int
    minor: int
    header: dict
    tiles: dict = field(default_factory=dict)     # tile index -> payload bytes
    damaged: list = field(default_factory=list)   # tile indices whose CRC failed (read with tolerate_damage)
    meta: dict = field(default_factory=dict)
    size: int = 0
    header_bytes: int = 0                         # signature + version + HEAD chunk + LEND


def _json(payload, what):
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; deep nesting recurses
        raise FormatError(f"{what} chunk is not valid JSON") from None
    if not isinstance(obj, dict):
        raise FormatError(f"{what} chunk is not a JSON object")
    return obj


def read(data, tolerate_damage=False):
    """Parse and verify an .lcf file. With tolerate_damage, tiles whose CRC fails are listed in
    `damaged` instead of raising (for concealment); every other defect still raises."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError("expected bytes")
    data = bytes(data)
    n = len(data)
    if n < len(SIGNATURE) + 2:
        raise FormatError("file too short to be an .lcf file")
    if data[:8] != SIGNATURE:
        if data[1:4] == b"LCF":
            raise FormatError("damaged .lcf signature (file mangled by a text-mode transfer?)")
        raise FormatError("not an .lcf file (bad signature)")
    major, minor = data[8], data[9]
    if major != MAJOR:
        raise VersionError(f"file uses .lcf format {major}.{minor}; this lcodec reads format {MAJOR}.x")
    pos = 10
    c = Container(major, minor, header={}, size=n)
    seen_end = seen_meta = False
    while pos < n:
        if n - pos < 12:
            raise FormatError("truncated file (incomplete chunk)")
        (length,) = struct.unpack_from("<I", data, pos)
        ctype = data[pos + 4:pos + 8]
        if length > MAX_CHUNK or pos + 12 + length > n:
            raise FormatError(f"truncated file (chunk {ctype!r} runs past the end)")
        payload = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack_from("<I", data, pos + 8 + length)
        crc_ok = zlib.crc32(ctype + payload) == crc
        start, pos = pos, pos + 12 + length
        if not all(48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 for b in ctype):
            raise FormatError("corrupt chunk type")
        if ctype != HEAD and not c.header:
            raise FormatError("first chunk is not the header")
        if ctype == TILE:
            if length < 4:
                raise FormatError("tile chunk too short")
            (index,) = struct.unpack_from("<I", payload, 0)
            if not crc_ok:
                if not tolerate_damage:
                    raise FormatError(f"checksum mismatch in tile chunk at byte {start} (file damaged)")
                continue  # the index itself is untrusted: the tile is found missing below
            if index >= c.header["tiles"] or index in c.tiles:
                raise FormatError(f"tile index {index} out of range or repeated")
            c.tiles[index] = payload[4:]
            continue
        if not crc_ok:
            raise FormatError(f"checksum mismatch in {ctype.decode()} chunk at byte {start} (file damaged)")
        if ctype == HEAD:
            if c.header:
                raise FormatError("duplicate header chunk")
            if length > MAX_HEADER:
                raise FormatError("header chunk too large")
            c.header = validate_header(header_codec.unpack(payload))
            if c.header.get("format") != f"{major}.{minor}":
                raise FormatError("version bytes do not match the header (file damaged)")
            c.header_bytes = pos
        elif ctype == META:
            if seen_meta:
                raise FormatError("duplicate metadata chunk")
            seen_meta = True
            c.meta = _json(payload, "metadata")
        elif ctype == END:
            if length:
                raise FormatError("end chunk is not empty")
            seen_end = True
            c.header_bytes += 12
            if pos != n:
                raise FormatError("data after the end chunk")
            break
        elif is_critical(ctype):
            raise FormatError(f"unknown critical chunk '{ctype.decode()}' (written by a newer lcodec?)")
        # unknown ancillary chunks are skipped
    if not seen_end:
        raise FormatError("truncated file (no end chunk)")
    missing = [i for i in range(c.header["tiles"]) if i not in c.tiles]
    if missing and not tolerate_damage:
        raise FormatError(f"{len(missing)} tile(s) missing (first: {missing[0]})")
    c.damaged = missing
    return c


# ---- header schema -----------------------------------------------------------------------
_HEX64 = set("0123456789abcdef")


def _req(h, key, kind, check=None, what=""):
    v = h.get(key)
    if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
        raise FormatError(f"header field '{key}' missing or of the wrong type")
    if check is not None and not check(v):
        raise FormatError(f"header field '{key}' out of range{what}")
    return v


def validate_header(h):
    """Check every field a decoder relies on, with limits, before anything is allocated."""
    modality = _req(h, "modality", str, lambda v: v in ("image", "audio"))
    _req(h, "model", str, lambda v: 0 < len(v) < 64)
    _req(h, "model_version", int, lambda v: 0 <= v < 1 << 20)
    _req(h, "quality", int, lambda v: 0 <= v < 1000)
    for k in ("weights_sha256", "tables_sha256") + (("dictionary_sha256",) if "dictionary_sha256" in h else ()):
        _req(h, k, str, lambda v: len(v) == 64 and set(v) <= _HEX64)
    _req(h, "coder", str, lambda v: len(v) < 64)
    _req(h, "coder_version", str, lambda v: len(v) < 64)
    _req(h, "tiles", int, lambda v: 1 <= v <= MAX_TILES)
    if modality == "image":
        _req(h, "width", int, lambda v: 1 <= v <= MAX_SIDE)
        _req(h, "height", int, lambda v: 1 <= v <= MAX_SIDE)
        _req(h, "channels", int, lambda v: v == 3)
        _req(h, "dtype", str, lambda v: v == "uint8")
        _req(h, "tile_size", int, lambda v: 16 <= v <= 1 << 14 and v % 16 == 0)
        if h["width"] * h["height"] > MAX_PIXELS:
            raise FormatError(f"declared image of {h['width']}x{h['height']} exceeds the {MAX_PIXELS}-pixel limit")
        tiles_x = -(-h["width"] // h["tile_size"])
        tiles_y = -(-h["height"] // h["tile_size"])
        if tiles_x * tiles_y != h["tiles"]:
            raise FormatError("header tile count does not match the image size")
    else:
        _validate_audio(h)
    return h


def _validate_audio(h):
    from ..io import audio
    from ..codec.segments import channel_groups, segment_count
    rate = _req(h, "sample_rate", int, lambda v: audio.MIN_RATE <= v <= audio.MAX_RATE)
    channels = _req(h, "channels", int, lambda v: 1 <= v <= audio.MAX_CHANNELS)
    frames = _req(h, "frames", int, lambda v: 1 <= v <= audio.MAX_FRAMES)
    _req(h, "subtype", str, lambda v: v in audio.SUBTYPES)
    model_rate = _req(h, "model_rate", int, lambda v: audio.MIN_RATE <= v <= audio.MAX_RATE)
    segment = _req(h, "segment", int, lambda v: 256 <= v <= 1 << 24)
    _req(h, "overlap", int, lambda v: 0 <= v < segment)
    up, down = audio.ratio(rate, model_rate)
    if max(up, down) > audio.MAX_RATIO_TERM:
        raise FormatError("header sample rates have no supported resampling ratio")
    n = audio.resampled_length(frames, up, down)
    if segment_count(n, segment) * len(channel_groups(channels)) != h["tiles"]:
        raise FormatError("header tile count does not match the audio length")
