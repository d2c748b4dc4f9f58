"""bmshj2018-hyperprior: CompressAI's scale hyperprior (Balle et al., ICLR 2018) as the learned
peer of the benchmark. The network is CompressAI's `ScaleHyperprior`; it is trained here like
our own models, and its symbols go through lcodec's container and constriction coder, never
through CompressAI's entropy coder.

Per tile (edge-padded to a multiple of 64 px), in one range-coded stream:
  z = h_a(|g_a(x)|): symbols round(z - median_c), one frozen table per channel c (fitted from
      the trained factorized density at export, stored beside the weights with the medians);
  y = g_a(x):        symbols round(y), each under the frozen Gaussian table (codec/scale_tables)
                     of the nearest-above scale of h_s(z_hat).
The scale indices are what the decoder must reproduce exactly, so h_s runs on one reference
path at both ends: float64 on the CPU, from z_hat = symbol + median. A file encoded on a GPU
thus decodes bit-exactly on a CPU; only g_a and h_a (encoder) and g_s (decoder) use the device.
"""
import copy

import numpy as np
import torch

from ..codec import scale_tables
from ..codec.coder import Decoder, Encoder
from ..codec.tables import TableSet
from ..errors import FormatError
from .registry import model_arch, model_spec
from .state import load_installed

STRIDE = 64            # g_a downsamples 16x, h_a another 4x
MAX_SYMBOL = 1 << 16   # a decoded |symbol| above this cannot come from a real image: corrupt tile


def build(name, quality):
    from compressai.models import ScaleHyperprior
    arch = model_arch(name, quality)
    return ScaleHyperprior(N=arch["N"], M=arch["M"])


def fit_z_tables(model, radius=256, tail=1e-7):
    """One table per z channel from the trained factorized density, over the integers around
    the channel's median where the density has mass above `tail` (the rest goes to the escape)."""
    eb = model.entropy_bottleneck.cpu().double()
    medians = eb.quantiles[:, 0, 1].detach().double()
    k = torch.arange(-radius, radius + 1, dtype=torch.float64)
    pmfs, los = [], []
    with torch.no_grad():
        for c in range(len(medians)):
            v = (k + medians[c]).reshape(1, 1, -1).expand(len(medians), 1, -1).contiguous()
            lik = eb._likelihood(v)[0][c, 0].numpy()
            keep = np.flatnonzero(lik > tail)
            a, b = (keep[0], keep[-1]) if keep.size else (radius, radius)
            p = lik[a:b + 1]
            pmfs.append(np.append(p, max(1.0 - p.sum(), 1e-9)))
            los.append(int(a) - radius)
    model.entropy_bottleneck.float()
    return TableSet.from_pmfs(pmfs, los, extra={"medians": medians.numpy()})


class HyperpriorCodec:
    def __init__(self, model, z_tables, device, tile, entry=None):
        self.entry = entry
        self.model = model.eval().to(device)
        self.z_tables = z_tables
        self.medians = z_tables.extra["medians"].astype(np.float64)
        if len(self.medians) != len(z_tables):
            raise FormatError("hyperprior tables do not match their medians")
        self.gaussian = scale_tables.load()
        self.h_s64 = copy.deepcopy(self.model.h_s).cpu().double()   # the reference scale path
        self.device = device
        self.tile = tile
        self.stride = 16

    @classmethod
    def load(cls, name, quality, device):
        """The installed weights and tables of (name, quality), checked against their sha256."""
        entry, model, tables = load_installed(name, quality, build(name, quality))
        return cls(model, tables, device, model_spec(name)["tile"], entry)

    def _padded(self, h, w):
        return -(-h // STRIDE) * STRIDE, -(-w // STRIDE) * STRIDE

    def latent_shape(self, h, w):
        ph, pw = self._padded(h, w)
        return (self.model.M, ph // 16, pw // 16)

    def _z_shape(self, h, w):
        ph, pw = self._padded(h, w)
        return (len(self.medians), ph // STRIDE, pw // STRIDE)

    def scale_ids(self, z_sym):
        """Gaussian table ids of every y symbol, from the z symbols, on the reference path."""
        z_hat = torch.from_numpy(z_sym.astype(np.float64) + self.medians[:, None, None])[None]
        with torch.no_grad():
            scales = self.h_s64(z_hat)[0].numpy()
        return scale_tables.table_id("gaussian", 0) + scale_tables.scale_index(scales)

    def _channel_ids(self, shape):
        return np.broadcast_to(np.arange(shape[0])[:, None, None], shape)

    def encode_tile(self, pixels):
        h, w, _ = pixels.shape
        ph, pw = self._padded(h, w)
        padded = np.pad(pixels, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        x = torch.from_numpy(padded).permute(2, 0, 1)[None].to(self.device).float() / 255.0
        with torch.no_grad():
            y = self.model.g_a(x)
            z = self.model.h_a(torch.abs(y))
        z_sym = np.rint(z[0].double().cpu().numpy() - self.medians[:, None, None]).astype(np.int64)
        y_sym = torch.round(y[0]).cpu().numpy().astype(np.int64)
        enc = Encoder()
        enc.encode_indexed(z_sym, self.z_tables, self._channel_ids(z_sym.shape))
        enc.encode_indexed(y_sym, self.gaussian, self.scale_ids(z_sym))
        return enc.finish()

    def decode_symbols(self, payload, h, w):
        dec = Decoder(payload)
        zs = self._z_shape(h, w)
        z_sym = dec.decode_indexed(self.z_tables, self._channel_ids(zs)).reshape(zs)
        if np.abs(z_sym).max(initial=0) > MAX_SYMBOL:
            raise FormatError("decoded hyper-latent symbol out of range (corrupt tile)")
        ids = self.scale_ids(z_sym)
        y_sym = dec.decode_indexed(self.gaussian, ids).reshape(ids.shape)
        if np.abs(y_sym).max(initial=0) > MAX_SYMBOL:
            raise FormatError("decoded latent symbol out of range (corrupt tile)")
        return y_sym

    def latents(self, payload, h, w):
        """y_hat (M x ceil(h/16) x ceil(w/16)): the quantized analysis latent, no synthesis run."""
        y = self.decode_symbols(payload, h, w)[:, :-(-h // 16), :-(-w // 16)]
        return torch.from_numpy(y.astype(np.float32))

    def decode_tile(self, payload, h, w):
        y = torch.from_numpy(self.decode_symbols(payload, h, w).astype(np.float32))[None].to(self.device)
        with torch.no_grad():
            x = self.model.g_s(y)
        x = torch.round(x[0].clamp(0, 1) * 255.0).to(torch.uint8)
        return x.permute(1, 2, 0).cpu().numpy()[:h, :w]
