"""Context-modelled coding of integer latent planes (C x h x w), e.g. WaLLoC's latents.

Static per-channel tables ignore what a lossless image coder exploits: smooth channels are
predictable from their neighbours, and the size of a symbol follows the local activity and
the previous channel. This coder keeps every table static and every context an integer
computed from already-decoded symbols, so decoding is exact on any device:

* channels are coded in order; each plane is coded coarse-to-fine by interpolation: the
  even-even subgrid first (recursively), then the odd-odd points from their 4 diagonal
  neighbours, then the remaining points from their 4 axial neighbours;
* per channel, a prediction mode chosen at fit time: mean of the 4 neighbours, or 0;
* the table of a symbol is chosen by (channel, activity bin, cross-channel bin), where
  activity = sum |neighbour - prediction| and the cross-channel bin quantizes the local
  high-pass energy of all earlier channels (3x3 box sums of |9 s - box3(s)|, integers).

Each stage's symbols are coded grouped by table (Encoder.encode_indexed), so the work per
stage is a few numpy calls and one constriction call per table in use (one call in all for a
small stage: see coder.PER_SYMBOL_MAX).
"""
from functools import lru_cache

import numpy as np

from .coder import Decoder, Encoder
from ..errors import FormatError
from .tables import TOTAL, TableSet

SBIN_EDGES = np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192])
CBIN_EDGES = np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32])
NS = len(SBIN_EDGES) + 2   # activity bins + one for the base stage (no neighbours)
NC = len(CBIN_EDGES) + 1
# the bin of every value up to the last edge (larger values share the last bin): a table
# lookup is several times faster than a binary search over the edges, with the same answer
SBIN_OF = np.searchsorted(SBIN_EDGES, np.arange(SBIN_EDGES[-1] + 1), side="right")
CBIN_OF = np.searchsorted(CBIN_EDGES, np.arange(CBIN_EDGES[-1] + 1), side="right")


def bins(of, values):
    """Bin of each non-negative value (as np.searchsorted(edges, values, side='right'))."""
    return of[np.minimum(values, len(of) - 1)]


@lru_cache(maxsize=64)
def plan(h, w):
    """Stages of one h x w plane: list of (positions, neighbours 4 x n or None)."""
    return tuple(_plan(np.arange(h * w).reshape(h, w)))


def _plan(g):
    gh, gw = g.shape
    if gh < 3 and gw < 3:
        return [(g.ravel(), None)]
    if gh < 3 or gw < 3:  # a thin plane (or a 1-D signal as 1 x n): interpolate along its long axis
        return _plan_1d(g if gh < 3 else g.T, transpose=gh >= 3)
    p0, p1, p2, p3 = g[0::2, 0::2], g[1::2, 1::2], g[0::2, 1::2], g[1::2, 0::2]
    r0, c0 = p0.shape
    r1, c1 = p1.shape

    def take(src, rows, cols):
        return src[np.clip(rows, 0, src.shape[0] - 1)][:, np.clip(cols, 0, src.shape[1] - 1)]

    i1, j1 = np.arange(r1), np.arange(c1)
    nb1 = [take(p0, i1, j1), take(p0, i1, j1 + 1), take(p0, i1 + 1, j1), take(p0, i1 + 1, j1 + 1)]
    i2, j2 = np.arange(p2.shape[0]), np.arange(p2.shape[1])
    nb2 = [take(p0, i2, j2), take(p0, i2, j2 + 1), take(p1, i2 - 1, j2), take(p1, i2, j2)]
    i3, j3 = np.arange(p3.shape[0]), np.arange(p3.shape[1])
    nb3 = [take(p0, i3, j3), take(p0, i3 + 1, j3), take(p1, i3, j3 - 1), take(p1, i3, j3)]
    stages = _plan(p0)
    for pos, nb in ((p1, nb1), (p2, nb2), (p3, nb3)):
        stages.append((pos.ravel(), np.stack([n.ravel() for n in nb])))
    return stages


def _plan_1d(g, transpose):
    """Even samples first (recursively), then odd ones from their two neighbours (each counted
    twice, so the 4-neighbour rules of the 2-D stages apply unchanged)."""
    gh, gw = g.shape
    if gw < 3:
        return [((g.T if transpose else g).ravel(), None)]
    even, odd = g[:, 0::2], g[:, 1::2]
    j = np.arange(odd.shape[1])
    left, right = even[:, j], even[:, np.minimum(j + 1, even.shape[1] - 1)]
    if transpose:
        odd, left, right = odd.T, left.T, right.T
    stages = _plan_1d(even, transpose)
    stages.append((odd.ravel(), np.stack([left.ravel(), right.ravel(), left.ravel(), right.ravel()])))
    return stages


def stage_context(flat, pos, nb, predict, base):
    """(prediction, table id) of every position of a stage, from decoded symbols only; `base`
    is the channel's table id offset per position (channel_base)."""
    if nb is None:
        return np.zeros(len(pos), dtype=np.int64), base[pos] + (NS - 1) * NC
    v = flat[nb]
    if predict:
        mu = (v.sum(0) + 2) // 4
        act = np.abs(v - mu).sum(0)
    else:
        mu = np.zeros(len(pos), dtype=np.int64)
        act = np.abs(v).sum(0)
    return mu, base[pos] + bins(SBIN_OF, act) * NC


def channel_base(c, energy):
    """Table id offset of every position of channel c: the channel's block of tables, plus the
    cross-channel bin (the mean local high-pass energy of channels 0..c-1; 0 for channel 0)."""
    h, w = energy.shape
    if not c:
        return np.zeros(h * w, dtype=np.int64)
    cross = (box3(energy) // (9 * c)).ravel()
    return c * NS * NC + bins(CBIN_OF, cross)


def box3(a):
    """Integer 3x3 box sums with replicated edges (rows, then columns)."""
    return _sum3(_sum3(a, 1), 0)


def _sum3(a, axis):
    """Sums of 3 neighbours along an axis, the edge values counted again past the ends."""
    a = np.moveaxis(a, axis, 0)
    out = np.empty_like(a)
    if len(a) == 1:
        out[0] = 3 * a[0]
    else:
        out[1:-1] = a[:-2] + a[1:-1] + a[2:]
        out[0] = 2 * a[0] + a[1]
        out[-1] = a[-2] + 2 * a[-1]
    return np.moveaxis(out, 0, axis)


def highpass_energy(plane):
    return np.abs(9 * plane - box3(plane))


def walk(planes, predict):
    """Yield (c, positions, prediction, table ids, symbols) of every stage in coding order."""
    c_count, h, w = planes.shape
    planes = planes.astype(np.int64)
    flat = planes.reshape(c_count, -1)
    energy = np.zeros((h, w), dtype=np.int64)
    for c in range(c_count):
        base = channel_base(c, energy)
        for pos, nb in plan(h, w):
            mu, tid = stage_context(flat[c], pos, nb, predict[c], base)
            yield c, pos, mu, tid, flat[c][pos]
        energy += highpass_energy(planes[c])


class LatentCoder:
    def __init__(self, tables: TableSet):
        self.tables = tables
        self.predict = tables.extra["predict"].astype(bool)
        top = max(int(tables.frequencies(i).max()) for i in range(len(tables)))
        self.min_bits = -np.log2(top / TOTAL)

    def encode(self, planes):
        """planes: C x h x w integers -> bytes."""
        enc = Encoder()
        for _c, _pos, mu, tid, sym in walk(planes, self.predict):
            enc.encode_indexed(sym - mu, self.tables, tid)
        return enc.finish()

    def decode(self, data, shape):
        c_count, h, w = shape
        # every symbol costs at least -log2(largest probability) bits: a stream too short for
        # its declared size is refused before any work (a coarse bound; tiles are at most
        # 1024 px, so the decode work a forged file can cause is bounded per tile anyway)
        if len(data) * 8 + 64 < c_count * h * w * self.min_bits:
            raise FormatError("tile stream too short for its declared size (corrupt file)")
        dec = Decoder(data)
        flat = np.zeros((c_count, h * w), dtype=np.int64)
        energy = np.zeros((h, w), dtype=np.int64)
        for c in range(c_count):
            base = channel_base(c, energy)
            plane = flat[c]
            for pos, nb in plan(h, w):
                mu, tid = stage_context(plane, pos, nb, self.predict[c], base)
                plane[pos] = dec.decode_indexed(self.tables, tid) + mu
            energy += highpass_energy(flat[c].reshape(h, w))
        return flat.reshape(c_count, h, w)


def fit(samples, channels, max_symbol, alpha=4.0):
    """Frozen tables from training latents (a list of C x h x w arrays).

    The prediction mode of each channel is the one with the lower empirical code length."""
    span = 4 * max_symbol + 1            # residuals lie in [-2M, 2M]
    counts = {mode: _count(samples, np.full(channels, mode), span, max_symbol) for mode in (False, True)}
    predict = np.zeros(channels, dtype=bool)
    for c in range(channels):
        sl = slice(c * NS * NC, (c + 1) * NS * NC)
        bits = {m: code_length(counts[m][sl]) for m in (False, True)}
        predict[c] = bits[True] < bits[False]
    # contexts of later channels may depend on earlier channels' modes: count again with the final modes
    cnt = _count(samples, predict, span, max_symbol)
    pmfs, los = [], []
    for c in range(channels):
        add_block_tables(cnt[c * NS * NC:(c + 1) * NS * NC], max_symbol, alpha, pmfs, los)
    return TableSet.from_pmfs(pmfs, los, extra={"predict": predict.astype(np.int64)})


def add_block_tables(block, max_symbol, alpha, pmfs, los):
    """Append one table per context row of `block` (counts of residuals + 2M): each row's counts
    smoothed towards the block's pooled distribution, over the block's support plus one symbol
    each side, with an escape entry last."""
    span = block.shape[1]
    pooled = block.sum(0).astype(np.float64)
    nz = np.flatnonzero(pooled)
    a, b = (nz.min() - 1, nz.max() + 1) if nz.size else (2 * max_symbol - 1, 2 * max_symbol + 1)
    a, b = max(a, 0), min(b, span - 1)
    prior = (pooled[a:b + 1] + 0.01) / (pooled[a:b + 1] + 0.01).sum()
    for row in block:
        p = row[a:b + 1] + alpha * prior
        p = p / p.sum()
        pmfs.append(np.append(p * (1 - 1e-5), 1e-5))   # last entry: escape
        los.append(a - 2 * max_symbol)


def _count(samples, predict, span, max_symbol):
    cnt = np.zeros((len(predict) * NS * NC, span), dtype=np.int64)
    for planes in samples:
        for _c, _pos, mu, tid, sym in walk(planes, predict):
            np.add.at(cnt, (tid, sym - mu + 2 * max_symbol), 1)
    return cnt


def code_length(cnt):
    tot = cnt.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(cnt > 0, cnt / np.maximum(tot, 1), 1)
    return float(-(cnt * np.log2(p)).sum())
