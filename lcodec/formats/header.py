"""The HEAD chunk: a compact little-endian binary record (a JSON header cost 400 bytes, which is
40% of a small image's file). Fields are read into a dict; later minor versions may append
fields, which older readers ignore (the chunk's CRC still covers them).

1.1 appends to image headers the count (0 or 1) and sha256 of a reference dictionary (CLC).
Writers use the lowest minor version that holds a file's fields, so files without a
dictionary stay 1.0 and byte-identical to earlier lcodec releases."""
import struct

from ..errors import FormatError

MODALITIES = ("image", "audio")
DTYPES = ("uint8",)
AUDIO_FIELDS = ("sample_rate", "channels", "frames", "subtype", "model_rate", "segment", "overlap")
_AUDIO = "<IHQBIIH"


def _str(s):
    b = s.encode("ascii")
    if len(b) > 255:
        raise ValueError(f"header string too long: {s!r}")
    return struct.pack("<B", len(b)) + b


def _minor(h):
    return int(h["format"].split(".")[1])


def pack(h):
    out = [struct.pack("<BB", int(h["format"].split(".")[0]), int(h["format"].split(".")[1])),
           struct.pack("<B", MODALITIES.index(h["modality"])), _str(h["model"]),
           struct.pack("<IH", h["model_version"], h["quality"]),
           bytes.fromhex(h["weights_sha256"]), bytes.fromhex(h["tables_sha256"]),
           _str(h["coder"]), _str(h["coder_version"]), struct.pack("<I", h["tiles"])]
    if h["modality"] == "image":
        out.append(struct.pack("<IIBBH", h["width"], h["height"], h["channels"], DTYPES.index(h["dtype"]),
                               h["tile_size"]))
        if _minor(h) >= 1:  # 1.1: the sha256 of the reference dictionary (CLC), or none
            refs = [h["dictionary_sha256"]] if "dictionary_sha256" in h else []
            out.append(struct.pack("<B", len(refs)) + b"".join(bytes.fromhex(r) for r in refs))
    else:
        from ..io.audio import SUBTYPES
        out.append(struct.pack(_AUDIO, *[SUBTYPES.index(h[k]) if k == "subtype" else h[k] for k in AUDIO_FIELDS]))
    return b"".join(out)


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise FormatError("header chunk too short")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def string(self):
        (n,) = self.unpack("<B")
        try:
            return self.take(n).decode("ascii")
        except UnicodeDecodeError:
            raise FormatError("header string is not ASCII") from None


def unpack(data):
    r = _Reader(data)
    major, minor = r.unpack("<BB")
    (modality,) = r.unpack("<B")
    if modality >= len(MODALITIES):
        raise FormatError(f"unknown modality code {modality}")
    h = {"format": f"{major}.{minor}", "modality": MODALITIES[modality], "model": r.string()}
    h["model_version"], h["quality"] = r.unpack("<IH")
    h["weights_sha256"] = r.take(32).hex()
    h["tables_sha256"] = r.take(32).hex()
    h["coder"], h["coder_version"] = r.string(), r.string()
    (h["tiles"],) = r.unpack("<I")
    if h["modality"] == "image":
        h["width"], h["height"], h["channels"], dtype, h["tile_size"] = r.unpack("<IIBBH")
        if dtype >= len(DTYPES):
            raise FormatError(f"unknown sample type code {dtype}")
        h["dtype"] = DTYPES[dtype]
        if minor >= 1:
            (n,) = r.unpack("<B")
            if n > 1:
                raise FormatError(f"header names {n} reference dictionaries (at most 1)")
            if n:
                h["dictionary_sha256"] = r.take(32).hex()
    else:
        from ..io.audio import SUBTYPES
        h.update(zip(AUDIO_FIELDS, r.unpack(_AUDIO)))
        if h["subtype"] >= len(SUBTYPES):
            raise FormatError(f"unknown sample type code {h['subtype']}")
        h["subtype"] = SUBTYPES[h["subtype"]]
    return h
