"""Audio quality metrics: SNR, SI-SDR and a log-mel spectrogram distance (float64 numpy)."""
import math
from functools import lru_cache

import numpy as np


def snr(ref, rec):
    err = np.sum((ref - rec) ** 2)
    return 10 * math.log10(max(np.sum(ref ** 2), 1e-20) / err) if err > 0 else float("inf")


def si_sdr(ref, rec):
    """Scale-invariant SDR (Le Roux et al. 2019) over all channels together."""
    r, e = ref.ravel(), rec.ravel()
    alpha = np.dot(e, r) / max(np.dot(r, r), 1e-20)
    target = alpha * r
    noise = np.sum((e - target) ** 2)
    return 10 * math.log10(max(np.sum(target ** 2), 1e-20) / noise) if noise > 0 else float("inf")


@lru_cache(maxsize=8)
def mel_filters(rate, n_fft=2048, bands=80):
    """Triangular mel filterbank (HTK mel scale), bands x (n_fft/2 + 1)."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    edges = hz(np.linspace(mel(0.0), mel(rate / 2.0), bands + 2))
    freqs = np.linspace(0.0, rate / 2.0, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))


def log_mel(x, rate, n_fft=2048, hop=512):
    """Per-channel log-mel power in dB (floor -100 dB), channels x bands x frames."""
    n = len(x)
    pad = max(0, n_fft - n)
    x = np.pad(x, ((n_fft // 2, n_fft // 2 + pad), (0, 0)), mode="constant")
    frames = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    win = np.hanning(n_fft)
    out = []
    for c in range(x.shape[1]):
        spec = np.abs(np.fft.rfft(x[idx, c] * win, axis=1)) ** 2      # frames x bins
        out.append(10 * np.log10(np.maximum(mel_filters(rate, n_fft) @ spec.T, 1e-10)))
    return np.stack(out)


def mel_distance(ref, rec, rate):
    """Mean absolute difference of the log-mel spectrograms, in dB (0 = identical)."""
    return float(np.mean(np.abs(log_mel(ref, rate) - log_mel(rec, rate))))
