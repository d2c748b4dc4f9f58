"""Context-modelled coding of many parallel 1-D latent signals (C x n integers), e.g. the
latents of walloc-stereo: hundreds of channels at ~172 frames per second.

The plane coder (context.py) codes channel after channel, which is right for a dozen image
channels but would cost one numpy pass per channel and stage here. This coder codes all
channels of a stage at once, with the same coarse-to-fine interpolation along time (even
frames first, recursively, then odd frames from their two neighbours) and static tables
selected by integer contexts computed from decoded symbols only:

* the channel's class (channels ranked by mean magnitude at fit time, split into equal
  groups), which also fixes whether the neighbours' mean predicts the symbol;
* the activity bin of the neighbours (as in context.py).

A stage is one constriction call per table in use, so the work per segment is a few dozen
numpy calls whatever the channel count."""
import numpy as np

from .coder import Decoder, Encoder
from .context import NS, SBIN_OF, add_block_tables, bins, code_length, plan
from ..errors import FormatError
from .tables import TOTAL, TableSet


def stage_context(planes, nb, predict, klass):
    """(prediction, table id), both C x m, of a stage whose neighbours are nb (4 x m or None)."""
    if nb is None:
        return 0, (klass * NS + NS - 1)[:, None]
    v = planes[:, nb]                                          # C x 4 x m
    mu = np.where(predict[:, None], (v.sum(1) + 2) // 4, 0)
    act = np.abs(v - mu[:, None, :]).sum(1)
    return mu, klass[:, None] * NS + bins(SBIN_OF, act)


class SignalCoder:
    def __init__(self, tables: TableSet):
        self.tables = tables
        self.klass = tables.extra["channel_class"].astype(np.int64)
        self.predict = tables.extra["predict"].astype(bool)[self.klass]
        top = max(int(tables.frequencies(i).max()) for i in range(len(tables)))
        self.min_bits = -np.log2(top / TOTAL)

    def _check(self, channels):
        if channels > len(self.klass):
            raise FormatError(f"{channels} latent channels, but the tables cover {len(self.klass)}")

    def encode(self, planes):
        """planes: C x n integers -> bytes."""
        c, n = planes.shape
        self._check(c)
        planes = planes.astype(np.int64)
        enc = Encoder()
        klass, predict = self.klass[:c], self.predict[:c]
        for pos, nb in plan(1, n):
            mu, tid = stage_context(planes, nb, predict, klass)
            sym = planes[:, pos]
            enc.encode_indexed(sym - mu, self.tables, np.broadcast_to(tid, sym.shape))
        return enc.finish()

    def decode(self, data, shape):
        c, n = shape
        self._check(c)
        if len(data) * 8 + 64 < c * n * self.min_bits:
            raise FormatError("stream too short for its declared size (corrupt file)")
        dec = Decoder(data)
        planes = np.zeros((c, n), dtype=np.int64)
        klass, predict = self.klass[:c], self.predict[:c]
        for pos, nb in plan(1, n):
            mu, tid = stage_context(planes, nb, predict, klass)
            tid = np.broadcast_to(tid, (c, len(pos)))
            planes[:, pos] = dec.decode_indexed(self.tables, tid).reshape(c, len(pos)) + mu
        return planes


def fit(samples, max_symbol, classes=32, alpha=4.0):
    """Frozen tables from training latents (a list of C x n arrays; all with the largest C the
    codec uses, or fewer leading channels). Channels are ranked by mean |symbol| into
    `classes` groups; each group's prediction mode is the one with the shorter code."""
    channels = max(s.shape[0] for s in samples)
    mag, cnt = np.zeros(channels), np.zeros(channels)
    for s in samples:
        mag[:s.shape[0]] += np.abs(s).sum(1)
        cnt[:s.shape[0]] += s.shape[1]
    rank = np.argsort(np.argsort(-mag / np.maximum(cnt, 1), kind="stable"), kind="stable")
    klass = rank * classes // channels
    span = 4 * max_symbol + 1             # residuals lie in [-2M, 2M]
    counts = {m: _count(samples, klass, np.full(classes, m), classes, span, max_symbol) for m in (False, True)}
    predict = np.array([code_length(counts[True][k * NS:(k + 1) * NS]) <
                        code_length(counts[False][k * NS:(k + 1) * NS]) for k in range(classes)])
    total = np.where(predict[np.arange(classes * NS) // NS, None], counts[True], counts[False])
    pmfs, los = [], []
    for k in range(classes):
        add_block_tables(total[k * NS:(k + 1) * NS], max_symbol, alpha, pmfs, los)
    return TableSet.from_pmfs(pmfs, los, extra={"predict": predict.astype(np.int64),
                                                "channel_class": klass.astype(np.int64)})


def _count(samples, klass, predict_per_class, classes, span, max_symbol):
    cnt = np.zeros((classes * NS, span), dtype=np.int64)
    for s in samples:
        c, n = s.shape
        s = s.astype(np.int64)
        k = klass[:c]
        for pos, nb in plan(1, n):
            mu, tid = stage_context(s, nb, predict_per_class[k], k)
            sym = s[:, pos]
            np.add.at(cnt, (np.broadcast_to(tid, sym.shape).ravel(), (sym - mu).ravel() + 2 * max_symbol), 1)
    return cnt

