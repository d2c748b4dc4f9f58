"""CDF 9/7 wavelet packet transform by lifting, exactly invertible to float precision.

Every level re-splits *all* subbands (a packet, not a dyadic, transform):
images C x H x W -> C*4^J x H/2^J x W/2^J, audio C x L -> C*2^J x L/2^J.

Boundaries use whole-sample symmetric extension (as JPEG 2000 does) instead of the
WaLLoC paper's periodic wrap: a tile's left and right edges are unrelated pixels, and
wrapping them together costs bits and rings at every tile seam.
"""
import torch

ALPHA = -1.586134342059924
BETA = -0.052980118572961
GAMMA = 0.882911075530934
DELTA = 0.443506852043971
ZETA = 1.149604398860241  # scales the bands so the transform is close to orthonormal
INV_ZETA = 1.0 / ZETA  # multiply, never divide: IEEE multiplication rounds the same on every device


def _next(v):
    """v[i+1], with the last element repeated (symmetric extension of the even samples)."""
    return torch.cat([v[..., 1:], v[..., -1:]], dim=-1)


def _prev(v):
    """v[i-1], with the first element repeated (symmetric extension of the odd samples)."""
    return torch.cat([v[..., :1], v[..., :-1]], dim=-1)


def analysis_1d(x):
    """One lifting level along the last axis (even length): returns (low, high)."""
    s, d = x[..., 0::2], x[..., 1::2]
    d = d + ALPHA * (s + _next(s))
    s = s + BETA * (d + _prev(d))
    d = d + GAMMA * (s + _next(s))
    s = s + DELTA * (d + _prev(d))
    return s * ZETA, d * INV_ZETA


def synthesis_1d(s, d):
    """Exact inverse of analysis_1d."""
    s, d = s * INV_ZETA, d * ZETA
    s = s - DELTA * (d + _prev(d))
    d = d - GAMMA * (s + _next(s))
    s = s - BETA * (d + _prev(d))
    d = d - ALPHA * (s + _next(s))
    return torch.stack([s, d], dim=-1).flatten(-2)


def packet_forward_2d(x, levels):
    """B x C x H x W -> B x C*4^J x H/2^J x W/2^J (H, W divisible by 2^J)."""
    for _ in range(levels):
        b, c, h, w = x.shape
        lo, hi = analysis_1d(x)                       # along W
        x = torch.stack([lo, hi], dim=2)              # B C 2 H W/2
        lo, hi = analysis_1d(x.transpose(-1, -2))     # along H
        x = torch.stack([lo, hi], dim=3).transpose(-1, -2)  # B C 2 2 H/2 W/2
        x = x.reshape(b, c * 4, h // 2, w // 2)
    return x


def packet_inverse_2d(x, levels):
    for _ in range(levels):
        b, c4, h, w = x.shape
        x = x.reshape(b, c4 // 4, 2, 2, h, w).transpose(-1, -2)  # B C 2(w) 2(h) W H
        x = synthesis_1d(x[:, :, :, 0], x[:, :, :, 1]).transpose(-1, -2)  # B C 2 2H W
        x = synthesis_1d(x[:, :, 0], x[:, :, 1])                   # B C 2H 2W
    return x


def packet_forward_1d(x, levels):
    """B x C x L -> B x C*2^J x L/2^J (L divisible by 2^J)."""
    for _ in range(levels):
        b, c, n = x.shape
        lo, hi = analysis_1d(x)
        x = torch.stack([lo, hi], dim=2).reshape(b, c * 2, n // 2)
    return x


def packet_inverse_1d(x, levels):
    for _ in range(levels):
        b, c2, n = x.shape
        x = x.reshape(b, c2 // 2, 2, n)
        x = synthesis_1d(x[:, :, 0], x[:, :, 1])
    return x
