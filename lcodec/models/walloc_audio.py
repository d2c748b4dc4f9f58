"""walloc-stereo as a codec: one channel group of one segment <-> entropy-coded latent bytes.

One single-channel WaLLoC codes every signal: mono as itself, a stereo pair as mid and side
(M = (L+R)/2, S = (L-R)/2, an orthogonal pair up to scale, so equal quantization error on M
and S is MSE-optimal for L and R, and a near-mono pair's side costs almost nothing). Files
with more channels are coded as pairs in order (1+2, 3+4, ...), an odd last channel as mono.
The latents of M and S are stacked into 2C channels so the frozen tables of S are its own.

Each coded group is peak-normalized first (gain in 1.5 dB steps, stored as one signed byte
in front of the stream), so quality does not depend on the recording level. A group of
digital silence is the byte SILENT alone and decodes to exact zeros."""
import struct

import numpy as np
import torch

from ..codec.signal_context import SignalCoder
from ..errors import FormatError, InputError
from .registry import model_spec
from .walloc_image import load_shipped

GAIN_STEPS_PER_OCTAVE = 4      # 1.5 dB
MAX_BOOST_CODE = 32            # at most +48 dB: the noise floor of a near-silent file is not worth bits
SILENT = -128                  # gain code reserved for an all-zero group (no stream follows)


def to_mid_side(x):
    """n x k (k = 1 or 2) samples -> k x n planes (the channel, or mid and side)."""
    if x.shape[1] == 1:
        return x.T.copy()
    return np.stack([(x[:, 0] + x[:, 1]) * 0.5, (x[:, 0] - x[:, 1]) * 0.5])


def from_mid_side(planes):
    if planes.shape[0] == 1:
        return planes.T.copy()
    return np.stack([planes[0] + planes[1], planes[0] - planes[1]], axis=1)


def gain_code(peak):
    if peak <= 0:
        return 0
    return int(np.clip(np.floor(-GAIN_STEPS_PER_OCTAVE * np.log2(peak)), SILENT + 1, MAX_BOOST_CODE))


def gain(code):
    return 2.0 ** (code / GAIN_STEPS_PER_OCTAVE)


def normalize(planes):
    """Scale planes to a peak of at most 1; returns (scaled planes, gain code)."""
    peak = float(np.abs(planes).max(initial=0.0))
    code = gain_code(peak)
    if peak * gain(code) > 2.0:  # only peaks beyond the gain code's range (float rounding aside)
        raise InputError(f"sample values up to {peak:.3g}: too large to code (audio is expected near +-1)")
    return planes * gain(code), code


def group_symbols(model, thresholds, planes, device="cpu"):
    """k x n normalized planes -> (k * latent) x frames int symbols; the signal is extended
    symmetrically to the model's stride. Table fitting calls this too."""
    s = model.stride()
    n = planes.shape[1]
    padded = np.pad(planes, ((0, 0), (0, -n % s)), mode="symmetric") if n % s else planes
    x = torch.from_numpy(padded.astype(np.float32))[:, None, :].to(device)
    sym = model.symbols(x, thresholds).cpu().numpy()           # k x latent x frames
    return sym.reshape(-1, sym.shape[-1])


class WallocAudioCodec:
    def __init__(self, name, quality, device):
        spec = model_spec(name)
        self.entry, self.model, tables = load_shipped(name, quality, device)
        self.device = device
        self.rate, self.segment, self.overlap = spec["rate"], spec["segment"], spec["overlap"]
        self.thresholds = self.model.thresholds()
        self.coder = SignalCoder(tables)
        self.stride = self.model.stride()

    def encode_group(self, x):
        """n x k float samples at the model rate (k = 1 or 2) -> tile payload."""
        if not np.any(x):
            return struct.pack("<b", SILENT)
        planes, code = normalize(to_mid_side(x))
        sym = group_symbols(self.model, self.thresholds, planes, self.device)
        return struct.pack("<b", code) + self.coder.encode(sym)

    def decode_symbols(self, payload, n, k):
        if len(payload) < 1:
            raise FormatError("empty audio tile (corrupt file)")
        frames = -(-n // self.stride)
        if payload[:1] == struct.pack("<b", SILENT):
            if len(payload) != 1:
                raise FormatError("silent audio tile with data (corrupt file)")
            return SILENT, np.zeros((k, self.model.latent, frames), dtype=np.int64)
        sym = self.coder.decode(payload[1:], (k * self.model.latent, frames))
        if np.abs(sym).max(initial=0) > self.model.max_symbol:
            raise FormatError("decoded latent symbol out of range (corrupt tile)")
        return struct.unpack("<b", payload[:1])[0], sym.reshape(k, self.model.latent, frames)

    def latents(self, payload, n, k):
        """The companded latent (k x latent x frames float): what compressed-domain models consume."""
        return torch.from_numpy(self.decode_symbols(payload, n, k)[1].astype(np.float32))

    def decode_group(self, payload, n, k):
        """Tile payload -> n x k float64 samples at the model rate."""
        code, sym = self.decode_symbols(payload, n, k)
        if code == SILENT:
            return np.zeros((n, k))
        with torch.no_grad():
            y = torch.from_numpy(sym).to(self.device).float()
            planes = self.model.synthesis(y).clamp(-1.0, 1.0)[:, 0, :n].double().cpu().numpy()
        return from_mid_side(planes / gain(code))
