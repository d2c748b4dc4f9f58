"""Audio files in and out (soundfile), and exact-length polyphase resampling of windows of a
long signal, so codecs can stream audio of any duration in bounded memory."""
import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import InputError, OutputError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".au", ".caf", ".w64", ".rf64",
                  ".mp3"}
MIN_RATE, MAX_RATE = 8000, 192000
MAX_CHANNELS = 64
MAX_FRAMES = 1 << 40
MAX_RATIO_TERM = 4096   # resampling ratios up/down with larger terms need impractically long filters
# integer PCM and float sample types, as recorded in the .lcf header (index = header code)
SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8", "PCM_S8", "OTHER")
OUTPUT_FORMATS = {".wav": "WAV", ".flac": "FLAC"}


@dataclass
class AudioInfo:
    path: str
    rate: int
    channels: int
    frames: int
    subtype: str        # one of SUBTYPES

    @property
    def seconds(self):
        return self.frames / self.rate


def is_audio_path(path):
    return os.path.splitext(str(path))[1].lower() in AUDIO_SUFFIXES


def probe(path):
    """Header facts of an audio file, or an InputError naming what is wrong."""
    import soundfile as sf
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: empty file")
    try:
        i = sf.info(path)
    except Exception as e:  # soundfile raises its own error types, and RuntimeError for bad files
        raise InputError(f"{path}: not a readable audio file ({_reason(e)})") from None
    if i.frames <= 0:
        raise InputError(f"{path}: contains no audio samples")
    if not MIN_RATE <= i.samplerate <= MAX_RATE:
        raise InputError(f"{path}: sample rate {i.samplerate} Hz is outside {MIN_RATE}..{MAX_RATE} Hz")
    if not 1 <= i.channels <= MAX_CHANNELS:
        raise InputError(f"{path}: {i.channels} channels (at most {MAX_CHANNELS} are supported)")
    if i.frames > MAX_FRAMES:
        raise InputError(f"{path}: too long ({i.frames} frames)")
    subtype = i.subtype if i.subtype in SUBTYPES else "OTHER"
    return AudioInfo(path, int(i.samplerate), int(i.channels), int(i.frames), subtype)


def _reason(e):
    text = str(e).strip().splitlines()
    return text[-1][:160] if text else type(e).__name__


class Reader:
    """Random access to the frames of an audio file as float64, zeros outside the file; NaN or
    infinite samples are refused."""

    def __init__(self, info):
        import soundfile as sf
        self.info = info
        try:
            self.f = sf.SoundFile(info.path)
        except Exception as e:
            raise InputError(f"{info.path}: not a readable audio file ({_reason(e)})") from None

    def __call__(self, start, stop):
        n, ch = stop - start, self.info.channels
        out = np.zeros((n, ch), dtype=np.float64)
        a, b = max(start, 0), min(stop, self.info.frames)
        if a < b:
            try:
                self.f.seek(a)
                got = self.f.read(b - a, dtype="float64", always_2d=True)
            except Exception as e:
                raise InputError(f"{self.info.path}: cannot decode audio ({_reason(e)})") from None
            if not np.isfinite(got).all():
                raise InputError(f"{self.info.path}: contains NaN or infinite samples")
            out[a - start:a - start + len(got)] = got
        return out

    def close(self):
        self.f.close()


def array_reader(samples):
    """The Reader interface over an in-memory frames x channels array."""
    samples = np.asarray(samples, dtype=np.float64)

    def read(start, stop):
        out = np.zeros((stop - start, samples.shape[1]), dtype=np.float64)
        a, b = max(start, 0), min(stop, len(samples))
        if a < b:
            out[a - start:b - start] = samples[a:b]
        return out
    return read


# ---- resampling ------------------------------------------------------------------------------
def ratio(src_rate, dst_rate):
    g = math.gcd(src_rate, dst_rate)
    return dst_rate // g, src_rate // g


def resampled_length(frames, up, down):
    return -(-frames * up // down)


@lru_cache(maxsize=8)
def _filter(up, down):
    """The anti-aliasing low-pass resample_poly designs by default (Kaiser, beta 5), made once
    (resample_poly scales it by up itself)."""
    from scipy.signal import firwin
    half = 10 * max(up, down)
    return firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", 5.0))


def resample_window(read, up, down, start, stop):
    """Samples [start, stop) of resample_poly(whole signal, up, down), where read(a, b) gives
    input frames [a, b) (zeros outside the signal). The input window starts at a multiple of
    `down`, so the window's output grid is the whole signal's grid, and reaches past the filter
    on both sides, so the window's samples equal the whole-signal result."""
    from scipy.signal import resample_poly
    if up == down:
        return read(start, stop)
    h = _filter(up, down)
    margin = len(h) // (2 * up) + 2                       # filter half-length in input samples
    a = (start * down // up - margin) // down * down       # floor to a multiple of down
    b = -(-stop * down // up) + margin
    y = resample_poly(read(a, b), up, down, axis=0, window=h)
    off = start - a * up // down
    return y[off:off + stop - start]


def check_rate_supported(rate, model_rate):
    up, down = ratio(rate, model_rate)
    if max(up, down) > MAX_RATIO_TERM:
        raise InputError(f"sample rate {rate} Hz has no short rational ratio to {model_rate} Hz "
                         f"({up}/{down}); resample it to a standard rate first")


# ---- writing ---------------------------------------------------------------------------------
def output_format(path, subtype, channels=1):
    """(soundfile format, subtype) to write `path` in, from its extension and the input's type."""
    fmt = OUTPUT_FORMATS.get(os.path.splitext(str(path))[1].lower())
    if fmt is None:
        raise OutputError(f"{path}: unsupported output type (use .wav or .flac)")
    if fmt == "FLAC" and channels > 8:
        raise OutputError(f"{path}: FLAC holds at most 8 channels, this audio has {channels} (use .wav)")
    import soundfile as sf
    if fmt == "FLAC":  # FLAC stores 8..24-bit integers only
        return fmt, "PCM_16" if subtype in ("PCM_16", "PCM_U8", "PCM_S8") else "PCM_24"
    return fmt, subtype if sf.check_format(fmt, subtype) else "PCM_16"
