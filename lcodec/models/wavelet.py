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


def _shift_next(v, out):
    """out[i] = v[i+1], the last element repeated (symmetric extension of the even samples)."""
    out[..., :-1] = v[..., 1:]
    out[..., -1:] = v[..., -1:]
    return out


def _shift_prev(v, out):
    """out[i] = v[i-1], the first element repeated (symmetric extension of the odd samples)."""
    out[..., 1:] = v[..., :-1]
    out[..., :1] = v[..., :1]
    return out


def _lift(target, source, coef, shift, t):
    """target += coef * (source + shifted source), in place (IEEE: same bits as the plain form)."""
    shift(source, t).add_(source).mul_(coef)
    target.add_(t)


def analysis_1d(x):
    """One lifting level along the last axis (even length): returns (low, high)."""
    s, d = x[..., 0::2].clone(memory_format=torch.contiguous_format), x[..., 1::2].clone(
        memory_format=torch.contiguous_format)  # contiguous copies: strided operands are 5x slower
    t = torch.empty_like(s)
    _lift(d, s, ALPHA, _shift_next, t)
    _lift(s, d, BETA, _shift_prev, t)
    _lift(d, s, GAMMA, _shift_next, t)
    _lift(s, d, DELTA, _shift_prev, t)
    return s.mul_(ZETA), d.mul_(INV_ZETA)


def synthesis_1d(s, d):
    """Exact inverse of analysis_1d."""
    s, d = s * INV_ZETA, d * ZETA   # new contiguous tensors: the inputs stay untouched
    t = torch.empty_like(s)
    _lift(s, d, -DELTA, _shift_prev, t)
    _lift(d, s, -GAMMA, _shift_next, t)
    _lift(s, d, -BETA, _shift_prev, t)
    _lift(d, s, -ALPHA, _shift_next, t)
    return torch.stack([s, d], dim=-1).flatten(-2)


def packet_last(x, levels):
    """Full packet transform along the last axis: (..., N) -> (..., 2^J bands, N/2^J).
    Band index = the bits of (lo=0/hi=1) choices, first level most significant."""
    x = x.unsqueeze(-2)
    for _ in range(levels):
        lo, hi = analysis_1d(x)
        x = torch.stack([lo, hi], dim=-2).flatten(-3, -2)
    return x


def packet_last_inverse(x, levels):
    for _ in range(levels):
        nb = x.shape[-2] // 2
        x = x.unflatten(-2, (nb, 2))
        x = synthesis_1d(x[..., 0, :], x[..., 1, :])
    return x.squeeze(-2)


def packet_forward_2d(x, levels):
    """B x C x H x W -> B x C*4^J x H/2^J x W/2^J (H, W divisible by 2^J).

    The 2-D packet transform is separable (every level splits every band along both axes), so
    it runs as J levels along W, then J along H. Channel order: c, then for each level the
    (W band, H band) bit pair, first level most significant."""
    b, c, h, w = x.shape
    k = 2 ** levels
    y = packet_last(x, levels)                                   # B C H kw W/k
    y = packet_last(y.permute(0, 1, 3, 4, 2).contiguous(), levels)  # B C kw W/k kh H/k
    y = y.reshape(b, c, *([2] * levels), w // k, *([2] * levels), h // k)
    wb = list(range(2, 2 + levels))
    hb = list(range(3 + levels, 3 + 2 * levels))
    order = [0, 1] + [a for pair in zip(wb, hb) for a in pair] + [3 + 2 * levels, 2 + levels]
    return y.permute(order).reshape(b, c * k * k, h // k, w // k)


def packet_inverse_2d(x, levels):
    b, ck, hk, wk = x.shape
    k = 2 ** levels
    c = ck // (k * k)
    y = x.reshape(b, c, *([2] * (2 * levels)), hk, wk)           # B C w1 h1 w2 h2 ... H/k W/k
    wb = [2 + 2 * i for i in range(levels)]
    hb = [3 + 2 * i for i in range(levels)]
    y = y.permute([0, 1] + wb + [3 + 2 * levels] + hb + [2 + 2 * levels])   # B C w.. W/k h.. H/k
    y = y.reshape(b, c, k, wk, k, hk)
    y = packet_last_inverse(y, levels)                           # B C kw W/k H
    y = packet_last_inverse(y.permute(0, 1, 4, 2, 3).contiguous(), levels)  # B C H W
    return y


def packet_forward_1d(x, levels):
    """B x C x L -> B x C*2^J x L/2^J (L divisible by 2^J)."""
    b, c, n = x.shape
    return packet_last(x, levels).reshape(b, c * 2 ** levels, n >> levels)


def packet_inverse_1d(x, levels):
    b, ck, n = x.shape
    return packet_last_inverse(x.reshape(b, ck >> levels, 2 ** levels, n), levels)
