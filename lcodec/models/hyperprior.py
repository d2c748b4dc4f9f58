"""Hyperprior codecs: CompressAI's scale hyperprior (bmshj2018-hyperprior, Balle et al., ICLR
2018) and mean-scale hyperprior (mbt2018-mean, Minnen et al., NeurIPS 2018 without its context
model), the learned peers of the benchmark and the base codec of CLC (models/clc.py). The
networks are CompressAI's; they are trained here like our own models, and their symbols go
through lcodec's container and constriction coder, never through CompressAI's entropy coder.

Per tile (edge-padded to a multiple of 64 px), in one range-coded stream:
  z = h_a(|y|) (scale) or h_a(y) (mean-scale): symbols round(z - median_c), one frozen table
      per channel c (fitted from the trained factorized density at export, stored beside the
      weights with the medians);
  y = g_a(x): symbols round(y - mu), each under the frozen Gaussian table (codec/scale_tables)
      of the nearest-above scale sigma, where (sigma, mu) = h_s(z_hat) (mu = 0 for the scale
      hyperprior); the decoder's latent is symbol + mu.
Scale indices and means are what the decoder must reproduce exactly, so h_s runs on one
reference path at both ends: float64 on the CPU, from z_hat = symbol + median. A file encoded
on a GPU thus decodes bit-exactly on a CPU; only g_a and h_a (encoder) and g_s (decoder) use
the device.
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
    from compressai.models import MeanScaleHyperprior, ScaleHyperprior
    arch = model_arch(name, quality)
    net = MeanScaleHyperprior if arch.get("means") else ScaleHyperprior
    return net(N=arch["N"], M=arch["M"])


def has_means(model):
    from compressai.models import MeanScaleHyperprior
    return isinstance(model, MeanScaleHyperprior)


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
    """Tile coding of a hyperprior model. Subclasses (CLC) add side information before z and a
    conditioning of the entropy parameters and of the synthesis through the hooks below."""

    def __init__(self, model, z_tables, device, tile, entry=None):
        self.entry = entry
        self.model = model.eval().to(device)
        self.means = has_means(model)
        self.z_tables = z_tables
        self.medians = z_tables.extra["medians"].astype(np.float64)
        if len(self.medians) != len(z_tables):
            raise FormatError("hyperprior tables do not match their medians")
        self.gaussian = scale_tables.load()
        self.h_s64 = copy.deepcopy(self.model.h_s).cpu().double()   # the reference path
        self.device = device
        self.dtype = next(self.model.parameters()).dtype   # float32 (float64: the reference encoder)
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

    # -- hooks ------------------------------------------------------------------------------
    def side_encode(self, enc, pixels):
        """Side information coded before z (CLC: the reference ids); returns it."""
        return None

    def side_decode(self, dec):
        return None

    def hyper_params64(self, z_hat, side):
        """(scales, means or None, conditioning for the synthesis or None), float64 on the CPU."""
        with torch.no_grad():
            p = self.h_s64(z_hat)
        if not self.means:
            return p, None, None
        scales, means = p.chunk(2, 1)
        return scales, means, None

    def synthesize(self, y_hat, cond):
        return self.model.g_s(y_hat)

    # -- coding -----------------------------------------------------------------------------
    def entropy_params(self, z_sym, side):
        """Gaussian table ids and means (or None) of every y symbol, and the conditioning, from
        the z symbols and the side information, on the reference path."""
        z_hat = torch.from_numpy(z_sym.astype(np.float64) + self.medians[:, None, None])[None]
        scales, means, cond = self.hyper_params64(z_hat, side)
        ids = scale_tables.table_id("gaussian", 0) + scale_tables.scale_index(scales[0].numpy())
        return ids, (None if means is None else means[0].numpy()), cond

    def _channel_ids(self, shape):
        return np.broadcast_to(np.arange(shape[0])[:, None, None], shape)

    def encode_tile(self, pixels):
        h, w, _ = pixels.shape
        ph, pw = self._padded(h, w)
        padded = np.pad(pixels, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        x = torch.from_numpy(padded).permute(2, 0, 1)[None].to(self.device, self.dtype) / 255.0
        with torch.no_grad():
            y = self.model.g_a(x)
            z = self.model.h_a(y if self.means else torch.abs(y))
        z_sym = np.rint(z[0].double().cpu().numpy() - self.medians[:, None, None]).astype(np.int64)
        enc = Encoder()
        side = self.side_encode(enc, pixels)
        enc.encode_indexed(z_sym, self.z_tables, self._channel_ids(z_sym.shape))
        ids, means, _ = self.entropy_params(z_sym, side)
        y64 = y[0].double().cpu().numpy()
        y_sym = np.rint(y64 if means is None else y64 - means).astype(np.int64)
        enc.encode_indexed(y_sym, self.gaussian, ids)
        return enc.finish()

    def decode_latent(self, payload, h, w):
        """(y_hat as float32 M x h' x w', conditioning or None): entropy decoding only."""
        dec = Decoder(payload)
        side = self.side_decode(dec)
        zs = self._z_shape(h, w)
        z_sym = dec.decode_indexed(self.z_tables, self._channel_ids(zs)).reshape(zs)
        if np.abs(z_sym).max(initial=0) > MAX_SYMBOL:
            raise FormatError("decoded hyper-latent symbol out of range (corrupt tile)")
        ids, means, cond = self.entropy_params(z_sym, side)
        y_sym = dec.decode_indexed(self.gaussian, ids).reshape(ids.shape)
        if np.abs(y_sym).max(initial=0) > MAX_SYMBOL:
            raise FormatError("decoded latent symbol out of range (corrupt tile)")
        y_hat = y_sym.astype(np.float64) if means is None else y_sym + means
        return torch.from_numpy(y_hat.astype(np.float32)), cond

    def latents(self, payload, h, w):
        """y_hat (M x ceil(h/16) x ceil(w/16)): the quantized analysis latent, no synthesis run."""
        return self.decode_latent(payload, h, w)[0][:, :-(-h // 16), :-(-w // 16)]

    def decode_tile(self, payload, h, w):
        y_hat, cond = self.decode_latent(payload, h, w)
        with torch.no_grad():
            x = self.synthesize(y_hat[None].to(self.device, self.dtype), cond)
        x = torch.round(x[0].clamp(0, 1) * 255.0).to(torch.uint8)
        return x.permute(1, 2, 0).cpu().numpy()[:h, :w]
