"""WaLLoC: wavelet packet transform + shallow asymmetric autoencoder (Jacobellis & Yadwadkar 2024).

encode: pixels -> CDF 9/7 packet transform (J levels) -> one linear 1x1 conv -> companding
        (Gaussian CDF to +-(2^(b-1)-0.5)) -> rounding: integers in [-(2^(b-1)-1), 2^(b-1)-1]
decode: integers -> inverse companding -> linear 1x1 path + residual conv body at latent
        resolution -> inverse packet transform -> clamp

The symbol path is deterministic across devices and thread counts: the packet transform is
elementwise float32 (every op IEEE-rounded), the 1x1 projection runs in float64 and the
rounding compares against per-channel thresholds precomputed once on the CPU, so no erf of a
device's own math library ever decides a symbol.
"""
import math

import torch
from torch import nn

from . import wavelet


def _conv(dims, cin, cout, k):
    cls = nn.Conv2d if dims == 2 else nn.Conv1d
    return cls(cin, cout, k, padding=k // 2)


class ResBlock(nn.Module):
    def __init__(self, dims, ch, k=3):
        super().__init__()
        self.a = _conv(dims, ch, ch, k)
        self.b = _conv(dims, ch, ch, k)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x):
        return x + self.b(self.act(self.a(self.act(x))))


class WaLLoC(nn.Module):
    """dims=2: images (C x H x W); dims=1: audio (C x L)."""

    def __init__(self, channels=3, levels=3, latent=12, hidden=128, blocks=4, bits=8, dims=2,
                 kernel=3, postfilter=0):
        super().__init__()
        self.channels, self.levels, self.latent, self.bits, self.dims = channels, levels, latent, bits, dims
        self.packet = channels * (4 if dims == 2 else 2) ** levels
        self.amp = 2 ** (bits - 1) - 0.5           # companding range +-amp
        self.max_symbol = 2 ** (bits - 1) - 1
        self.encoder = _conv(dims, self.packet, latent, 1)   # the whole encoder: linear
        self.log_scale = nn.Parameter(torch.zeros(latent))   # companding scale s per channel
        self.skip = _conv(dims, latent, self.packet, 1)      # linear decoder path (PCA inverse at init)
        body = [_conv(dims, latent, hidden, kernel)]
        body += [ResBlock(dims, hidden, kernel) for _ in range(blocks)]
        body += [nn.LeakyReLU(0.1), _conv(dims, hidden, self.packet, 1)]
        self.body = nn.Sequential(*body)
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)
        # audio: a long 1-D post-filter on the waveform (residual, zero at init)
        self.post = _conv(1, channels, channels, postfilter) if postfilter else None
        if self.post is not None:
            nn.init.zeros_(self.post.weight)
            nn.init.zeros_(self.post.bias)

    # ---- transform ---------------------------------------------------------------
    def stride(self):
        return 2 ** self.levels

    def to_packets(self, x):
        fwd = wavelet.packet_forward_2d if self.dims == 2 else wavelet.packet_forward_1d
        return fwd(x, self.levels)

    def from_packets(self, w):
        inv = wavelet.packet_inverse_2d if self.dims == 2 else wavelet.packet_inverse_1d
        return inv(w, self.levels)

    def scales(self):
        return self.log_scale.exp()

    def _bshape(self, v):
        return v.view(1, -1, *([1] * self.dims))

    # ---- companding ----------------------------------------------------------------
    def compand(self, z):
        return self.amp * torch.erf(z / (self._bshape(self.scales()) * math.sqrt(2.0)))

    def expand(self, y):
        """Inverse companding (y may be noisy in training: kept strictly inside the range)."""
        lim = self.max_symbol + 0.49
        u = y.clamp(-lim, lim) / self.amp
        return torch.erfinv(u) * self._bshape(self.scales()) * math.sqrt(2.0)

    # ---- training / evaluation path --------------------------------------------------
    def analysis(self, x):
        return self.encoder(self.to_packets(x))

    def synthesis(self, y):
        z = self.expand(y)
        w = self.skip(z) + self.body(z)
        x = self.from_packets(w)
        if self.post is not None:
            x = x + self.post(x)
        return x

    def forward(self, x, noise=True):
        y = self.compand(self.analysis(x))
        y = y + torch.empty_like(y).uniform_(-0.5, 0.5) if noise else torch.round(y)
        return self.synthesis(y), y

    # ---- deterministic symbol path (encoder) ----------------------------------------
    def thresholds(self):
        """Per-channel float64 decision levels: symbol k covers [t_(k-1), t_k)."""
        k = torch.arange(-self.max_symbol, self.max_symbol, dtype=torch.float64) + 0.5
        s = self.log_scale.detach().double().cpu().exp()
        return (torch.erfinv(k / self.amp)[None, :] * s[:, None] * math.sqrt(2.0)).contiguous()

    @torch.no_grad()
    def symbols(self, x, thresholds):
        """x: B x C x ... float32 in [-0.5, 0.5] -> int16 symbols B x latent x ...; exact."""
        w = self.to_packets(x.float()).double()
        wt = self.encoder.weight.detach().double().flatten(1)
        bias = self.encoder.bias.detach().double()
        z = torch.einsum("oc,bc...->bo...", wt, w) + self._bshape(bias)
        zf = z.movedim(1, -1).contiguous()                       # B ... latent
        lead = zf.shape[:-1]
        zf = zf.reshape(-1, self.latent).T.contiguous()          # latent x N
        sym = torch.searchsorted(thresholds.to(zf.device), zf, right=True) - self.max_symbol
        return sym.T.reshape(*lead, self.latent).movedim(-1, 1).to(torch.int16)

    @torch.no_grad()
    def reconstruct(self, symbols):
        """Integer symbols -> float reconstruction in [-0.5, 0.5]."""
        x = self.synthesis(symbols.to(self.encoder.weight.dtype))
        return x.clamp(-0.5, 0.5)
