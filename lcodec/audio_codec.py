"""Audio <-> .lcf, streamed segment by segment so memory stays bounded for any duration:
input is read (and resampled to the model's rate) one segment window at a time; decoded
segments are cross-faded, resampled back to the file's rate and handed out (or written)
chunk by chunk."""
import numpy as np

from .codec import segments as seg
from .errors import FormatError, InputError
from .io import audio

OUTPUT_CHUNK = 1 << 16      # output frames resampled per step on decode
MAX_ARRAY_SAMPLES = 1 << 28  # decode() into one array: 1 GiB of float32 (47 min of 48 kHz stereo);
                             # longer: decode_chunks() or write_audio(), which stream


def tile_inputs(reader, info, rate, segment, overlap):
    """The model-rate samples of every tile, in tile order: (segment window x group channels)
    arrays. The encoder codes these; table fitting sees exactly the same."""
    audio.check_rate_supported(info.rate, rate)
    up, down = audio.ratio(info.rate, rate)
    n = audio.resampled_length(info.frames, up, down)
    groups = seg.channel_groups(info.channels)
    for k in range(seg.segment_count(n, segment)):
        a, b = seg.segment_span(k, n, segment, overlap)
        x = audio.resample_window(reader, up, down, a, b)
        for g in groups:
            yield x[:, list(g)]


def encode(reader, info, codec, model, quality):
    """reader(a, b) -> frames [a, b) of the input (zeros outside); info: AudioInfo.
    Returns (header, tile payloads)."""
    from .codec.coder import CODER_NAME, coder_version
    payloads = [codec.encode_group(x) for x in tile_inputs(reader, info, codec.rate, codec.segment, codec.overlap)]
    e = codec.entry
    header = {"modality": "audio", "sample_rate": info.rate, "channels": info.channels,
              "frames": info.frames, "subtype": info.subtype, "model_rate": codec.rate,
              "segment": codec.segment, "overlap": codec.overlap,
              "model": model, "model_version": e["version"], "quality": quality,
              "weights_sha256": e["weights_sha256"], "tables_sha256": e["tables_sha256"],
              "coder": CODER_NAME, "coder_version": coder_version(), "tiles": len(payloads)}
    return header, payloads


ARRAY_SUBTYPES = {"int16": "PCM_16", "int32": "PCM_32", "uint8": "PCM_U8", "int8": "PCM_S8"}  # floats: FLOAT


def array_subtype(samples):
    """The sample type a decoded WAV of this array gets."""
    return ARRAY_SUBTYPES.get(np.asarray(samples).dtype.name, "FLOAT")


def check_array(samples, rate):
    """An in-memory signal (frames or frames x channels, float or int PCM) as float64."""
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"expected a frames x channels array, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.unsignedinteger):  # offset binary, as in 8-bit WAV
        half = float(np.iinfo(x.dtype).max // 2 + 1)
        x = (x.astype(np.float64) - half) / half
    elif np.issubdtype(x.dtype, np.integer):
        x = x / float(-np.iinfo(x.dtype).min)
    elif not np.issubdtype(x.dtype, np.floating):
        raise InputError(f"audio samples of type {x.dtype} (expected integers or floats)")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise InputError("audio contains NaN or infinite samples")
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) and not (
            isinstance(rate, float) and rate.is_integer()):
        raise InputError(f"sample rate must be a whole number of Hz, got {rate!r}")
    if not audio.MIN_RATE <= int(rate) <= audio.MAX_RATE:
        raise InputError(f"sample rate {rate} Hz is outside {audio.MIN_RATE}..{audio.MAX_RATE} Hz")
    if x.shape[1] > audio.MAX_CHANNELS:
        raise InputError(f"{x.shape[1]} channels (at most {audio.MAX_CHANNELS} are supported)")
    return x


def check_layout(header, codec):
    h = header
    if (codec.rate, codec.segment, codec.overlap) != (h["model_rate"], h["segment"], h["overlap"]):
        raise FormatError("header segment layout does not match the model")


def model_rate_segments(header, tiles, codec):
    """Decoded segments at the model's rate, in order (frames x channels float64)."""
    h = header
    check_layout(h, codec)
    up, down = audio.ratio(h["sample_rate"], h["model_rate"])
    n = audio.resampled_length(h["frames"], up, down)
    groups = seg.channel_groups(h["channels"])
    for k in range(seg.segment_count(n, codec.segment)):
        a, b = seg.segment_span(k, n, codec.segment, codec.overlap)
        x = np.empty((b - a, h["channels"]))
        for j, g in enumerate(groups):
            x[:, list(g)] = codec.decode_group(tiles(k * len(groups) + j), b - a, len(g))
        yield x


class _Stream:
    """Random access, moving forward only, to a signal produced piece by piece: keeps only the
    samples from the last window's start on."""

    def __init__(self, pieces, total, channels):
        self.pieces, self.total = iter(pieces), total
        self.buf, self.start = np.zeros((0, channels)), 0

    def __call__(self, a, b):
        while self.start + len(self.buf) < min(b, self.total):
            self.buf = np.concatenate([self.buf, next(self.pieces)])
        drop = min(max(a - self.start, 0), len(self.buf))
        self.buf, self.start = self.buf[drop:], self.start + drop
        out = np.zeros((b - a, self.buf.shape[1]))
        lo, hi = max(a, self.start), min(b, self.start + len(self.buf))
        if lo < hi:
            out[lo - a:hi - a] = self.buf[lo - self.start:hi - self.start]
        return out


def decode_chunks(header, tiles, codec):
    """Yield the decoded audio at the file's own rate, in chunks (frames x channels float32),
    exactly header['frames'] frames in all."""
    h = header
    up, down = audio.ratio(h["model_rate"], h["sample_rate"])
    n = audio.resampled_length(h["frames"], down, up)
    pieces = seg.assemble(model_rate_segments(h, tiles, codec), n, codec.segment, codec.overlap)
    source = _Stream(pieces, n, h["channels"])
    for a in range(0, h["frames"], OUTPUT_CHUNK):
        b = min(a + OUTPUT_CHUNK, h["frames"])
        yield audio.resample_window(source, up, down, a, b).astype(np.float32)
