"""Frozen integer probability tables: built once (at training/export time), stored, hashed.

A table covers the symbols lo .. lo+K-2 plus one escape entry (the last) for any symbol
outside that support. Frequencies are positive integers summing to TOTAL, so every symbol of
the support (and the escape) stays encodable. Tables of different sizes are stored ragged:
one flat uint32 array `freqs`, with `starts` (n+1 offsets) and `lo` (n first symbols).
"""
import io

import numpy as np

from ..errors import ModelError

PRECISION = 16
TOTAL = 1 << PRECISION


def quantize_pmf(p, total=TOTAL):
    """Float probabilities -> positive integer frequencies summing exactly to `total`.

    Runs only when tables are built; decoders read the stored integers."""
    p = np.asarray(p, dtype=np.float64)
    p = np.maximum(p, 0) / max(p.sum(), 1e-300)
    n = len(p)
    if n > total // 2:
        raise ValueError("table too large for the precision")
    f = np.floor(p * (total - n)).astype(np.int64) + 1   # every entry >= 1
    rest = total - int(f.sum())
    # hand out the remainder to the largest fractional parts (ties broken by index: deterministic)
    frac = p * (total - n) - np.floor(p * (total - n))
    order = np.lexsort((np.arange(n), -frac))
    f[order[:rest]] += 1
    assert f.sum() == total and f.min() >= 1
    return f.astype(np.uint32)


class TableSet:
    """A list of frozen tables, addressed by integer id."""

    def __init__(self, freqs, starts, lo, extra=None):
        self.freqs = np.asarray(freqs, dtype=np.uint32)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.lo = np.asarray(lo, dtype=np.int64)
        self.extra = {k: np.asarray(v) for k, v in (extra or {}).items()}
        self._validate()
        self.sizes = np.diff(self.starts)
        self._models = [None] * len(self.lo)
        self._dense = {}
        # runs of consecutive ids with one size and first symbol: symbols sorted by id whose
        # first and last ids share a run all have those (a constant-time test for the coder)
        change = (self.sizes[1:] != self.sizes[:-1]) | (self.lo[1:] != self.lo[:-1])
        self.shape_run = np.concatenate([[0], np.cumsum(change)])

    def _validate(self):
        n = len(self.lo)
        if len(self.starts) != n + 1 or self.starts[0] != 0 or self.starts[-1] != len(self.freqs):
            raise ModelError("probability tables are inconsistent")
        sizes = np.diff(self.starts)
        if sizes.min(initial=2) < 2:
            raise ModelError("probability table with fewer than two entries")

    def __len__(self):
        return len(self.lo)

    def frequencies(self, i):
        return self.freqs[self.starts[i]:self.starts[i + 1]]

    def probabilities(self, i):
        """Table i's frequencies normalised to floats: what every constriction model of the table
        is built from (per table in `models`, per symbol in `dense`)."""
        f = self.frequencies(i).astype(np.float64)
        return f / f.sum()

    def models(self, ids):
        """The constriction models of tables `ids` (a sequence of ints or an int array), each
        built once, on first use."""
        ids = np.asarray(ids).tolist()
        cache = self._models
        missing = [i for i in ids if cache[i] is None]
        if missing:
            import constriction
            for i in missing:
                cache[i] = constriction.stream.model.Categorical(self.probabilities(i), perfect=False)
        return [cache[i] for i in ids]

    def dense(self, size):
        """(row of every table in a matrix of the tables with `size` entries, -1 for others;
        that matrix of their probabilities), built once per size. A row is exactly what
        `models` gives constriction, so coding a symbol under its row (constriction's per-symbol
        Categorical, perfect=False) quantizes to the same integers as coding it under its model."""
        d = self._dense.get(size)
        if d is None:
            members = np.flatnonzero(self.sizes == size)
            rows = np.full(len(self.lo), -1, dtype=np.int64)
            rows[members] = np.arange(len(members))
            d = self._dense[size] = (rows, np.stack([self.probabilities(i) for i in members]))
        return d

    @classmethod
    def from_pmfs(cls, pmfs, los, extra=None):
        """pmfs: list of float arrays, each over lo..lo+K-2 plus a final escape probability."""
        freqs = [quantize_pmf(p) for p in pmfs]
        starts = np.concatenate([[0], np.cumsum([len(f) for f in freqs])])
        return cls(np.concatenate(freqs), starts, los, extra)

    def to_bytes(self):
        buf = io.BytesIO()
        np.savez_compressed(buf, freqs=self.freqs, starts=self.starts, lo=self.lo,
                            **{f"extra_{k}": v for k, v in self.extra.items()})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data):
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                extra = {k[6:]: z[k] for k in z.files if k.startswith("extra_")}
                return cls(z["freqs"], z["starts"], z["lo"], extra)
        except (ValueError, KeyError, OSError) as e:
            raise ModelError(f"unreadable probability tables: {e}") from None
