"""Classical audio anchors through soundfile (libsndfile's Opus and LAME MP3), run in-process.

Quality is libsndfile's compression level (0 = highest rate, 1 = lowest). Opus runs at 48 kHz
(the input is resampled there and back with the same polyphase resampler lcodec uses); MP3
runs constant-bitrate at the input's rate (resampled to 48 kHz when MP3 has no such rate), and
`mp3-22k` at 22.05 kHz, which is how MP3 encoders reach bitrates below 32 kbps."""
import io

import numpy as np

QUALITIES = {
    "opus": [1.0, 0.99, 0.98, 0.96, 0.93, 0.9, 0.85, 0.75],
    "mp3": [0.99, 0.95, 0.9, 0.8, 0.7, 0.5, 0.2],
    "mp3-22k": [0.99, 0.95, 0.9, 0.7],
}
RATE = {"opus": 48000, "mp3": None, "mp3-22k": 22050}
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def available():
    import soundfile as sf
    fmts = sf.available_formats()
    out = []
    if "OGG" in fmts and "OPUS" in sf.available_subtypes("OGG"):
        out.append("opus")
    if "MP3" in fmts:
        out += ["mp3", "mp3-22k"]
    return out


def supports(name, channels):
    return channels <= 2


def _resample(x, src, dst):
    from ..io.audio import array_reader, ratio, resample_window, resampled_length
    up, down = ratio(src, dst)
    return resample_window(array_reader(x), up, down, 0, resampled_length(len(x), up, down))


def encode(name, x, rate, level):
    """frames x channels float64 -> compressed bytes."""
    import soundfile as sf
    r = RATE[name] or (rate if rate in MP3_RATES else 48000)
    y = _resample(x, rate, r) if r != rate else x
    buf = io.BytesIO()
    if name == "opus":
        sf.write(buf, y, r, format="OGG", subtype="OPUS", compression_level=level)
    else:
        sf.write(buf, y, r, format="MP3", subtype="MPEG_LAYER_III", compression_level=level,
                 bitrate_mode="CONSTANT")
    return buf.getvalue()


def decode(name, data, rate, ref):
    """Bytes -> frames x channels float64 at `rate`, aligned to and as long as `ref`.

    libsndfile strips MP3's encoder delay only when the LAME tag allows it; where the decoded
    signal comes out longer than the input, the delay is found by cross-correlation (up to
    4096 samples), as codec evaluations do."""
    import soundfile as sf
    y, r = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    if r != rate:
        y = _resample(y, r, rate)
    frames = len(ref)
    if len(y) > frames:
        y = y[_delay(ref, y):]
    y = y[:frames]
    return np.pad(y, ((0, frames - len(y)), (0, 0))) if len(y) < frames else y


def _delay(ref, y, max_lag=4096):
    a, b = ref.sum(1), y.sum(1)
    lags = min(max_lag, len(b) - len(a))
    n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    corr = np.fft.irfft(np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n)), n)[:lags + 1]
    return int(np.argmax(corr))
